/**
 * Prometheus metrics, named as controller-runtime and client-go name theirs so existing
 * dashboards and alerts work unchanged, plus the operator's own `failover_*` series.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { policyPhase } from '../api/v1alpha1/index.ts';
import { SeriesTable } from './series-table.ts';

const reconcileBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
const queueBuckets = [1e-5, 1e-4, 1e-3, 0.01, 0.1, 1, 10, 100, 1000];

export class Metrics {
  readonly registry = new Registry();
  /** The per-policy and per-cluster gauges, one row per object (see SeriesTable). */
  readonly policySeries = new SeriesTable(this.registry, ['namespace', 'policy'] as const);
  readonly clusterSeries = new SeriesTable(
    this.registry,
    ['namespace', 'policy', 'region', 'cluster'] as const,
    ['namespace', 'cluster'] as const,
  );

  // controller-runtime: pkg/internal/controller/metrics
  readonly reconcileTotal = new Counter({
    name: 'controller_runtime_reconcile_total',
    help: 'Total number of reconciliations per controller',
    labelNames: ['controller', 'result'] as const,
    registers: [this.registry],
  });
  readonly reconcileErrors = new Counter({
    name: 'controller_runtime_reconcile_errors_total',
    help: 'Total number of reconciliation errors per controller',
    labelNames: ['controller', 'reason'] as const,
    registers: [this.registry],
  });
  readonly reconcileTime = new Histogram({
    name: 'controller_runtime_reconcile_time_seconds',
    help: 'Length of time per reconciliation per controller',
    labelNames: ['controller'] as const,
    buckets: reconcileBuckets,
    registers: [this.registry],
  });
  readonly maxConcurrentReconciles = new Gauge({
    name: 'controller_runtime_max_concurrent_reconciles',
    help: 'Maximum number of concurrent reconciles per controller',
    labelNames: ['controller'] as const,
    registers: [this.registry],
  });
  readonly activeWorkers = new Gauge({
    name: 'controller_runtime_active_workers',
    help: 'Number of currently used workers per controller',
    labelNames: ['controller'] as const,
    registers: [this.registry],
  });

  // client-go: workqueue metrics
  readonly queueDepth = new Gauge({
    name: 'workqueue_depth',
    help: 'Current depth of workqueue',
    labelNames: ['name', 'controller'] as const,
    registers: [this.registry],
  });
  readonly queueAdds = new Counter({
    name: 'workqueue_adds_total',
    help: 'Total number of adds handled by workqueue',
    labelNames: ['name', 'controller'] as const,
    registers: [this.registry],
  });
  readonly queueLatency = new Histogram({
    name: 'workqueue_queue_duration_seconds',
    help: 'How long in seconds an item stays in workqueue before being requested',
    labelNames: ['name', 'controller'] as const,
    buckets: queueBuckets,
    registers: [this.registry],
  });
  readonly workDuration = new Histogram({
    name: 'workqueue_work_duration_seconds',
    help: 'How long in seconds processing an item from workqueue takes',
    labelNames: ['name', 'controller'] as const,
    buckets: queueBuckets,
    registers: [this.registry],
  });
  readonly unfinishedWork = new Gauge({
    name: 'workqueue_unfinished_work_seconds',
    help: 'How many seconds of work has been done that is in progress and has not been observed by work_duration',
    labelNames: ['name', 'controller'] as const,
    registers: [this.registry],
  });
  readonly longestRunningProcessor = new Gauge({
    name: 'workqueue_longest_running_processor_seconds',
    help: 'How many seconds has the longest running processor for workqueue been running',
    labelNames: ['name', 'controller'] as const,
    registers: [this.registry],
  });
  readonly queueRetries = new Counter({
    name: 'workqueue_retries_total',
    help: 'Total number of retries handled by workqueue',
    labelNames: ['name', 'controller'] as const,
    registers: [this.registry],
  });

  // client-go: rest client and leader election
  readonly restRequests = new Counter({
    name: 'rest_client_requests_total',
    help: 'Number of HTTP requests to the Kubernetes API, partitioned by status code and method',
    labelNames: ['code', 'method'] as const,
    registers: [this.registry],
  });
  readonly leaderStatus = new Gauge({
    name: 'leader_election_master_status',
    help: 'Gauge of if the reporting system is master of the relevant lease, 0 indicates backup, 1 indicates master',
    labelNames: ['name'] as const,
    registers: [this.registry],
  });

  // Sharding (--shards): how many, which are reconciled here, and how many replicas share them.
  readonly shards = new Gauge({
    name: 'failover_operator_shards',
    help: 'Shards the policies are spread over (--shards; 1 when not sharded)',
    registers: [this.registry],
  });
  readonly shardOwned = new Gauge({
    name: 'failover_operator_shard_owned',
    help: 'Whether this replica holds the shard Lease and reconciles its policies (1) or not (0)',
    labelNames: ['shard'] as const,
    registers: [this.registry],
  });
  readonly shardMembers = new Gauge({
    name: 'failover_operator_shard_members',
    help: 'Replicas of this shard layout seen alive (renewing their member Lease), this one included',
    registers: [this.registry],
  });

  // The operator's own view of its informers.
  readonly informerRestarts = new Counter({
    name: 'failover_informer_restarts_total',
    help: 'Watch restarts per resource, by cause (error, expired, stale, closed)',
    labelNames: ['resource', 'cause'] as const,
    registers: [this.registry],
  });
  readonly informerRelists = new Counter({
    name: 'failover_informer_relists_total',
    help: 'Full relists per resource',
    labelNames: ['resource'] as const,
    registers: [this.registry],
  });

  // Replication health, per cluster.
  readonly replicationLagSeconds = this.clusterSeries.gauge(
    'failover_replication_lag_seconds',
    'Replication lag of a standby in seconds, from the operator heartbeat',
  );
  readonly replicationLagBytes = this.clusterSeries.gauge(
    'failover_replication_lag_bytes',
    'Replication lag of a standby in WAL bytes not yet replayed',
  );
  readonly clusterUp = this.clusterSeries.gauge(
    'failover_cluster_up',
    'Whether the last probe reached the database (1) or not (0)',
  );
  // Failover operations, per policy.
  readonly operationStart = this.policySeries.gauge(
    'failover_operation_start_timestamp_seconds',
    'Start time of the failover or switchover in progress (0 when none), for "stuck operation" alerts',
  );
  readonly operations = new Counter({
    name: 'failover_operations_total',
    help: 'Finished operations (Failover, Switchover, Fence), by kind, trigger and result',
    labelNames: ['namespace', 'policy', 'kind', 'trigger', 'result'] as const,
    registers: [this.registry],
  });
  readonly epoch = this.policySeries.gauge(
    'failover_epoch',
    'The failover epoch of each policy: one step per promotion',
  );
  readonly probeDuration = new Histogram({
    name: 'failover_probe_duration_seconds',
    help: 'Time of one probe of one database',
    labelNames: ['provider'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly probeFailures = new Counter({
    name: 'failover_probe_failures_total',
    help: 'Probes that could not reach a database, by reason',
    labelNames: ['provider', 'reason'] as const,
    registers: [this.registry],
  });

  // Drills, per policy; the chart's "drill failed" and "drill overdue" alerts read these.
  readonly drillLastSucceeded = this.policySeries.gauge(
    'failover_drill_last_succeeded',
    'Whether the last drill (or a drill skipped when due) succeeded (1) or not (0)',
  );
  readonly drillNext = this.policySeries.gauge(
    'failover_drill_next_timestamp_seconds',
    'When the next scheduled drill is due (absent while drills are off or suspended)',
  );
  readonly drillRto = this.policySeries.gauge(
    'failover_drill_rto_seconds',
    "RTO of the last drill's switchover to the standby, from the client side: the last canary write the old primary acknowledged to the first the new one did, both through the DNS name (the operator's own figure when the canary could not measure)",
  );
  readonly drillRpo = this.policySeries.gauge(
    'failover_drill_rpo_transactions',
    'Canary rows acknowledged before a switch of the last drill and missing after it (out and back; 0 when nothing was lost)',
  );
  // Real failovers and switchovers measured by the continuous canary (spec.canary.mode Always).
  readonly clientRto = new Gauge({
    name: 'failover_client_rto_seconds',
    help: 'The last real failover or switchover of each kind, from the client side: the last canary write the old primary acknowledged to the first the new one did, both through the DNS name (absent when the canary could not measure it)',
    labelNames: ['namespace', 'policy', 'kind'] as const,
    registers: [this.registry],
  });
  readonly clientLostWrites = new Gauge({
    name: 'failover_client_lost_writes',
    help: 'Canary writes the old primary acknowledged that the new one lacks, for the last real failover or switchover of each kind (a switchover must lose none; absent when not counted)',
    labelNames: ['namespace', 'policy', 'kind'] as const,
    registers: [this.registry],
  });
  readonly drills = new Counter({
    name: 'failover_drills_total',
    help: 'Finished or skipped drills, by result',
    labelNames: ['namespace', 'policy', 'result'] as const,
    registers: [this.registry],
  });
  // Route 53 allows 5 requests a second per account: the reads behind that, and on what (an
  // operation's own reads and changes are not counted here).
  readonly dnsReads = new Counter({
    name: 'failover_dns_reads_total',
    help: "Reads of policies' DNS records (with their ownership records) by purpose: Check (between operations), Discovery (learning who is primary), Drill (a drill's lowered TTL)",
    labelNames: ['purpose'] as const,
    registers: [this.registry],
  });
  readonly dnsReadsDeferred = new Counter({
    name: 'failover_dns_reads_deferred_total',
    help: 'Reads of DNS records put off to a later reconcile because their credentials or server had spent the read budget (--dns-reads-per-second), by purpose',
    labelNames: ['purpose'] as const,
    registers: [this.registry],
  });
  readonly dnsCheckFailures = new Counter({
    name: 'failover_dns_check_failures_total',
    help: 'Checks of the DNS record between operations that could not leave it in sync, by reason',
    labelNames: ['namespace', 'policy', 'reason'] as const,
    registers: [this.registry],
  });

  // Whether each policy could fail over right now; the chart's alerts read these, so that losing
  // the ability to fail over is never silent.
  readonly policyReady = this.policySeries.gauge(
    'failover_policy_ready',
    "Whether the policy's Ready condition is True (1) or not (0)",
  );
  readonly failoverReady = this.policySeries.gauge(
    'failover_policy_failover_ready',
    'Whether a standby could be promoted automatically right now (1), from the FailoverReady condition',
  );
  readonly splitBrainProtected = this.policySeries.gauge(
    'failover_policy_split_brain_protected',
    "Whether the primary's agent keeps its Lease and would fence it if cut off (1), from the SplitBrainProtection condition",
  );
  readonly paused = this.policySeries.gauge(
    'failover_policy_paused',
    'Whether the policy is paused for maintenance (spec.paused): no automatic action starts (1)',
  );
  readonly pausedSince = this.policySeries.gauge(
    'failover_policy_paused_since_timestamp_seconds',
    'When the operator first saw the policy paused (status.pausedSince); absent while it is not',
  );
  readonly policyPhase = this.policySeries.enumGauge(
    'failover_policy_phase',
    'The phase of each policy: 1 for the phase it is in, 0 for the others (kube-state-metrics style)',
    'phase',
    policyPhase.options,
  );
  readonly activePrimary = this.policySeries.infoGauge(
    'failover_policy_active_primary',
    'The ReplicaCluster that is primary now (1); the series of a former primary goes',
    'cluster',
  );
  readonly observersLost = this.policySeries.gauge(
    'failover_observers_lost_primary',
    'Distinct observers with a fresh observation that cannot reach the active primary',
  );
  readonly freshObservers = this.policySeries.gauge(
    'failover_observers_fresh',
    'Distinct observers (the operator included) with a fresh observation of the active primary',
  );
  readonly quorum = this.policySeries.gauge(
    'failover_policy_quorum',
    'Observers that must agree before the primary counts as down (spec.detection.quorum)',
  );
  readonly stepFailures = new Counter({
    name: 'failover_step_failures_total',
    help: 'Failed attempts of a step of a failover, switchover or fence operation, by reason',
    labelNames: ['namespace', 'policy', 'kind', 'step', 'reason'] as const,
    registers: [this.registry],
  });
  // Availability as SLAs count it (status.availability); the chart's burn-rate alerts read these.
  readonly unavailable = this.policySeries.gauge(
    'failover_policy_unavailable',
    'Whether the database behind the DNS name is down as a quorum of observers agree, until DNS answers a primary again (1) or not (0)',
  );
  readonly availabilityTarget = this.policySeries.gauge(
    'failover_policy_availability_target_ratio',
    'The availability promised per calendar month (spec.slo.availabilityTarget), as a ratio: 0.9995',
  );
  readonly monthAvailability = this.policySeries.gauge(
    'failover_policy_month_availability_ratio',
    'Availability this calendar month so far (UTC), as a ratio, the outage in progress counted in',
  );
  readonly reportsFiled = new Counter({
    name: 'failover_reports_filed_total',
    help: 'Incident records filed as FailoverReport objects, by kind (an operation, Drill, or a refused Request)',
    labelNames: ['namespace', 'policy', 'kind'] as const,
    registers: [this.registry],
  });
  readonly eventsDropped = new Counter({
    name: 'failover_events_dropped_total',
    help: "Kubernetes Events not recorded, by reason (RateLimited: the object's budget was spent; ApiError; Backlog: too many waiting to be written)",
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly eventsQueued = new Gauge({
    name: 'failover_events_queued',
    help: 'Kubernetes Events recorded and not yet written (reconciles queue them; a few senders write them in order)',
    registers: [this.registry],
  });

  constructor(options: { processMetrics?: boolean } = {}) {
    if (options.processMetrics) collectDefaultMetrics({ register: this.registry });
  }
}
