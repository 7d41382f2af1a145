/**
 * The Grafana dashboard the chart ships (grafanaDashboard.enabled): one page per policy, chosen
 * with the namespace and policy variables. Written to the chart by `make generate`; a test checks
 * that every query reads a series the operator exports.
 */

const sel = '{namespace=~"$namespace", policy=~"$policy"}';
/** Grafana's own variable syntax (the datasource chosen on the dashboard), not a JavaScript template. */
const DATASOURCE = { type: 'prometheus', uid: '$' + '{datasource}' };

interface Target {
  expr: string;
  legendFormat?: string;
  instant?: boolean;
}

interface Panel {
  title: string;
  type: 'stat' | 'timeseries' | 'state-timeline' | 'table' | 'row' | 'bargauge';
  description?: string;
  targets?: Target[];
  unit?: string;
  /** Grid width (of 24) and height. */
  w: number;
  h: number;
  options?: Record<string, unknown>;
  thresholds?: { color: string; value: number | null }[];
  min?: number;
  max?: number;
  mappings?: unknown[];
}

const row = (title: string): Panel => ({ title, type: 'row', w: 24, h: 1 });

/** The panels, in reading order: what is true now, then replication, detection, operations, the operator. */
export const panels: Panel[] = [
  row('Now'),
  {
    title: 'Phase',
    type: 'stat',
    description:
      'status.phase: Healthy, Degraded, FailingOver, SwitchingOver, Drilling, Reprotecting, Blocked, Paused.',
    targets: [
      { expr: `max by (phase) (failover_policy_phase${sel}) == 1`, legendFormat: '{{phase}}', instant: true },
    ],
    options: { textMode: 'name', colorMode: 'none', reduceOptions: { calcs: ['lastNotNull'] } },
    w: 4,
    h: 4,
  },
  {
    title: 'Active primary',
    type: 'stat',
    description: 'status.activePrimary: the ReplicaCluster the DNS name points at.',
    targets: [
      {
        expr: `max by (cluster) (failover_policy_active_primary${sel})`,
        legendFormat: '{{cluster}}',
        instant: true,
      },
    ],
    options: { textMode: 'name', colorMode: 'none', reduceOptions: { calcs: ['lastNotNull'] } },
    w: 4,
    h: 4,
  },
  {
    title: 'Epoch',
    type: 'stat',
    description: 'The failover epoch: one step per promotion.',
    targets: [{ expr: `max(failover_epoch${sel})`, instant: true }],
    options: { colorMode: 'none' },
    w: 3,
    h: 4,
  },
  {
    title: 'Ready / could fail over',
    type: 'stat',
    description:
      'Ready: the primary takes writes and DNS is in sync. Could fail over: FailoverReady, a standby could be promoted now.',
    targets: [
      { expr: `max(failover_policy_ready${sel})`, legendFormat: 'Ready', instant: true },
      { expr: `max(failover_policy_failover_ready${sel})`, legendFormat: 'Could fail over', instant: true },
    ],
    mappings: [
      { type: 'value', options: { '0': { text: 'No', color: 'red' }, '1': { text: 'Yes', color: 'green' } } },
    ],
    w: 5,
    h: 4,
  },
  {
    title: 'Availability this month',
    type: 'stat',
    description:
      'Calendar month so far (UTC), counted as SLAs count: down only while a quorum of observers agree, until DNS answers a primary again.',
    targets: [{ expr: `max(failover_policy_month_availability_ratio${sel})`, instant: true }],
    unit: 'percentunit',
    options: { colorMode: 'value' },
    thresholds: [
      { color: 'red', value: null },
      { color: 'orange', value: 0.999 },
      { color: 'green', value: 0.9995 },
    ],
    w: 4,
    h: 4,
  },
  {
    title: 'Error budget left (30 days)',
    type: 'stat',
    description:
      'What is left of 1 − spec.slo.availabilityTarget over the last 30 days. Empty without spec.slo.',
    targets: [
      {
        expr: `1 - avg_over_time(max(failover_policy_unavailable${sel})[30d:1m]) / (1 - max(failover_policy_availability_target_ratio${sel}))`,
        instant: true,
      },
    ],
    unit: 'percentunit',
    thresholds: [
      { color: 'red', value: null },
      { color: 'orange', value: 0.25 },
      { color: 'green', value: 0.5 },
    ],
    w: 4,
    h: 4,
  },
  row('Replication'),
  {
    title: 'Standby lag (seconds)',
    type: 'timeseries',
    description: "Each standby's lag, from the operator's heartbeat.",
    targets: [
      {
        expr: `max by (cluster, region) (failover_replication_lag_seconds${sel})`,
        legendFormat: '{{cluster}} ({{region}})',
      },
    ],
    unit: 's',
    w: 12,
    h: 8,
  },
  {
    title: 'Standby lag (bytes)',
    type: 'timeseries',
    description: 'WAL bytes each standby has not replayed.',
    targets: [
      {
        expr: `max by (cluster, region) (failover_replication_lag_bytes${sel})`,
        legendFormat: '{{cluster}} ({{region}})',
      },
    ],
    unit: 'bytes',
    w: 12,
    h: 8,
  },
  {
    title: 'Databases reached by the operator',
    type: 'state-timeline',
    targets: [{ expr: `max by (cluster) (failover_cluster_up${sel})`, legendFormat: '{{cluster}}' }],
    mappings: [
      {
        type: 'value',
        options: { '0': { text: 'down', color: 'red' }, '1': { text: 'up', color: 'green' } },
      },
    ],
    w: 24,
    h: 5,
  },
  row('Detection'),
  {
    title: "Observers' votes on the primary",
    type: 'timeseries',
    description:
      'Observers with a fresh observation, those that lost the primary, and the quorum they must reach.',
    targets: [
      { expr: `max(failover_observers_fresh${sel})`, legendFormat: 'fresh observers' },
      { expr: `max(failover_observers_lost_primary${sel})`, legendFormat: 'lost the primary' },
      { expr: `max(failover_policy_quorum${sel})`, legendFormat: 'quorum' },
    ],
    w: 12,
    h: 8,
  },
  {
    title: 'Down, as the quorum counts it',
    type: 'state-timeline',
    description:
      'The availability ledger: down while a quorum of observers agree, until DNS answers a primary again.',
    targets: [{ expr: `max(failover_policy_unavailable${sel})`, legendFormat: 'service' }],
    mappings: [
      {
        type: 'value',
        options: { '0': { text: 'up', color: 'green' }, '1': { text: 'down', color: 'red' } },
      },
    ],
    w: 12,
    h: 8,
  },
  row('Failovers and drills'),
  {
    title: 'Operations in range',
    type: 'table',
    description:
      'Failovers, switchovers, fences and reprotects finished in the time range (kubectl failover report lists their records).',
    targets: [
      {
        expr: `sum by (kind, trigger, result) (increase(failover_operations_total${sel}[$__range]))`,
        legendFormat: '{{kind}} {{trigger}} {{result}}',
        instant: true,
      },
    ],
    w: 8,
    h: 8,
  },
  {
    title: 'Last drill',
    type: 'stat',
    description: 'Whether the last drill succeeded, its RTO and the canary rows it lost.',
    targets: [
      { expr: `max(failover_drill_last_succeeded${sel})`, legendFormat: 'succeeded', instant: true },
      { expr: `max(failover_drill_rto_seconds${sel})`, legendFormat: 'RTO (s)', instant: true },
      { expr: `max(failover_drill_rpo_transactions${sel})`, legendFormat: 'rows lost', instant: true },
    ],
    w: 8,
    h: 8,
  },
  {
    title: "RTO and lost writes, client's side",
    type: 'timeseries',
    description:
      'The continuous canary (spec.canary.mode Always): each failover and switchover as a client saw it.',
    targets: [
      { expr: `max by (kind) (failover_client_rto_seconds${sel})`, legendFormat: '{{kind}} RTO (s)' },
      { expr: `max by (kind) (failover_client_lost_writes${sel})`, legendFormat: '{{kind}} writes lost' },
      { expr: `max(failover_drill_rto_seconds${sel})`, legendFormat: 'drill RTO (s)' },
    ],
    w: 8,
    h: 8,
  },
  {
    title: 'Drills in range',
    type: 'bargauge',
    targets: [
      {
        expr: `sum by (result) (increase(failover_drills_total${sel}[$__range]))`,
        legendFormat: '{{result}}',
        instant: true,
      },
    ],
    w: 8,
    h: 6,
  },
  {
    title: 'Step failures',
    type: 'timeseries',
    description:
      'Failed attempts of an operation step, by reason: a step that keeps failing is what FailoverStepFailing alerts on.',
    targets: [
      {
        expr: `sum by (kind, step, reason) (increase(failover_step_failures_total${sel}[5m]))`,
        legendFormat: '{{kind}} {{step}}: {{reason}}',
      },
    ],
    w: 16,
    h: 6,
  },
  row('Operator'),
  {
    title: 'Leader',
    type: 'stat',
    description: 'Operator replicas that hold the leader Lease: exactly one.',
    targets: [{ expr: 'sum(leader_election_master_status)', instant: true }],
    w: 4,
    h: 6,
  },
  {
    title: 'Reconciles',
    type: 'timeseries',
    targets: [
      {
        expr: 'sum by (controller, result) (rate(controller_runtime_reconcile_total[5m]))',
        legendFormat: '{{controller}} {{result}}',
      },
    ],
    unit: 'reqps',
    w: 10,
    h: 6,
  },
  {
    title: 'Work queue depth',
    type: 'timeseries',
    targets: [{ expr: 'sum by (name) (workqueue_depth)', legendFormat: '{{name}}' }],
    w: 10,
    h: 6,
  },
];

/** Grafana's dashboard JSON (schemaVersion 39), panels laid out left to right, top to bottom. */
export function dashboard(): Record<string, unknown> {
  let x = 0;
  let y = 0;
  let rowHeight = 0;
  const laidOut = panels.map((p, i) => {
    if (p.type === 'row' || x + p.w > 24) {
      y += rowHeight;
      x = 0;
      rowHeight = 0;
    }
    const gridPos = { x, y, w: p.w, h: p.h };
    x += p.w;
    rowHeight = Math.max(rowHeight, p.h);
    if (p.type === 'row') {
      x = 24;
      return { id: i + 1, type: 'row', title: p.title, collapsed: false, gridPos, panels: [] };
    }
    return {
      id: i + 1,
      type: p.type,
      title: p.title,
      ...(p.description ? { description: p.description } : {}),
      datasource: DATASOURCE,
      gridPos,
      targets: (p.targets ?? []).map((t, j) => ({
        refId: String.fromCharCode(65 + j),
        datasource: DATASOURCE,
        expr: t.expr,
        ...(t.legendFormat ? { legendFormat: t.legendFormat } : {}),
        ...(t.instant ? { instant: true, range: false } : {}),
      })),
      fieldConfig: {
        defaults: {
          ...(p.unit ? { unit: p.unit } : {}),
          ...(p.mappings ? { mappings: p.mappings } : {}),
          ...(p.thresholds ? { thresholds: { mode: 'absolute', steps: p.thresholds } } : {}),
        },
        overrides: [],
      },
      options: p.options ?? {},
    };
  });
  const variable = (name: string, query: string) => ({
    name,
    type: 'query',
    datasource: DATASOURCE,
    query: { query, refId: name },
    definition: query,
    refresh: 2,
    includeAll: true,
    multi: false,
    current: {},
  });
  return {
    uid: 'failover-operator',
    title: 'Regional database failover',
    description:
      'One FailoverPolicy: phase, primary and epoch, standby lag, observers, failovers and drills, availability.',
    tags: ['failover-operator', 'postgresql'],
    schemaVersion: 39,
    editable: true,
    time: { from: 'now-24h', to: 'now' },
    refresh: '30s',
    templating: {
      list: [
        { name: 'datasource', type: 'datasource', query: 'prometheus', current: {} },
        variable('namespace', 'label_values(failover_policy_ready, namespace)'),
        variable('policy', 'label_values(failover_policy_ready{namespace=~"$namespace"}, policy)'),
      ],
    },
    panels: laidOut,
  };
}
