/**
 * The FailoverPolicy reconciler, a thin shell: it reads, calls observe → decide → act →
 * transition, and writes. Every decision is in decide (what to do), transition (what a step's
 * outcome means) and summary (what status tells people); nothing here chooses.
 *
 * 1. read the policy; a spec that does not validate, or a status that does not parse, is a
 *    condition and no side effect (an unreadable status is never "reset": that would forget the
 *    primary and the epoch);
 * 2. observe: the operator's probes, the observers' fresh votes, and the DNS record when it is due
 *    or needed to learn who is primary;
 * 3. decide, then carry out at most one side effect (a step, or a DNS repair);
 * 4. write status (conditional on the resourceVersion read), then record Events and metrics;
 * 5. come back when the plan says.
 */

import { isDeepStrictEqual } from 'node:util';
import { primaryLeaseName } from '../../agent/lease-settings.ts';
import {
  type FailoverObservationSpec,
  type FailoverPolicySpec,
  type FailoverPolicyStatus,
  failoverPolicySpec,
  failoverPolicyStatus,
  type ReplicaClusterSpec,
} from '../../api/v1alpha1/index.ts';
import {
  type Condition,
  type ConditionInput,
  changedConditions,
  setCondition,
} from '../../runtime/conditions.ts';
import { type EventInput, eventOf } from '../../runtime/events.ts';
import { keyParts, objectKey } from '../../runtime/informer.ts';
import type { KubeObject } from '../../runtime/kube-client.ts';
import { leaseType } from '../../runtime/leader-election.ts';
import { done, type ReconcileResult, requeueAfter, retryAfter } from '../../runtime/reconcile.ts';
import { type ClaimedCluster, claimedElsewhere } from '../claims.ts';
import type { OperatorContext } from '../context.ts';
import { readSpec, readStatus } from '../read-object.ts';
import { failoverPolicyType } from '../resources.ts';
import { changedFields, writeStatus } from '../status-writer.ts';
import { readDns, repairDns, runStep, type StepPorts } from './act.ts';
import { monthlyAvailability, nextLedger } from './availability.ts';
import { decide, type Plan, refusePendingRequests } from './decide.ts';
import { abstains, freshVotes, maxObservationAgeMs } from './detection.ts';
import {
  afterDiscoveryRead,
  type DiscoveryRead,
  discoveryDns,
  discoveryMayKeep,
  discoveryNeedsDns,
} from './discovery.ts';
import { afterDnsCheck, CHECK_NOW, type DnsCheck, dnsCheckDue } from './dns-check.ts';
import { drillNeedsDns } from './drill.ts';
import { runDrillCopy, runDrillRecord } from './drill-act.ts';
import { type DecideInput, type LeaseFacts, policyClusters } from './facts.ts';
import { afterDrillCopy, afterDrillRecord } from './isolated-drill.ts';
import { lossFollowsPrimary } from './loss.ts';
import { agentReportOf, factsFromProbe, gatherInput, voteFromProbe } from './observe.ts';
import { clustersResolvedWith } from './one-server.ts';
import { CLIENT_MEASURE_RETRY_MS, type ClientMeasures, measureOperations } from './operation-canary.ts';
import { canaryTargetFor, portsFor } from './ports.ts';
import { quietLookMs } from './quiet.ts';
import { ReportFiling } from './report-filing.ts';
import { readyCondition, type StepResult, summarize, topologyOf } from './summary.ts';
import { transition } from './transition.ts';

/** How often a policy whose status cannot be read is looked at again. */
const UNREADABLE_RETRY_MS = 60_000;
/** How often a policy held by another's claim (claims.ts) is looked at again, woken or not. */
const HELD_LOOK_MS = 60_000;

export function reconcileFailoverPolicy(ctx: OperatorContext): (key: string) => Promise<ReconcileResult> {
  const dnsChecks = new Map<string, DnsCheck>();
  const discoveryReads = new Map<string, DiscoveryRead>();
  const reports = new ReportFiling(ctx);
  // From the first reconcile, not the process start: a replica waits for its Lease before then.
  let startedAt: Date | undefined;
  return async (key) => {
    startedAt ??= ctx.clock.now();
    const started = startedAt;
    const object = ctx.policies.get(key);
    if (!object) {
      dnsChecks.delete(key);
      discoveryReads.delete(key);
      reports.forget(key);
      forgetMetrics(ctx, key);
      ctx.canaries.stop(key);
      return done();
    }
    const spec = readSpec(failoverPolicySpec, object);
    if (!spec.ok) {
      // A policy that cannot be read runs no drill: no canary writes into its database meanwhile.
      ctx.canaries.stop(key);
      const invalid: ConditionInput = {
        type: 'SpecValid',
        status: 'False',
        reason: 'InvalidSpec',
        message: spec.message,
      };
      await writeConditionsOnly(ctx, object, [invalid], 'Pending');
      ctx.metrics.policyReady.set(policyLabels(object), 0);
      return done();
    }
    const read = readStatus(failoverPolicyStatus, object);
    if (read.problem) {
      ctx.canaries.stop(key);
      await writeConditionsOnly(ctx, object, [
        {
          type: 'StatusUnreadable',
          status: 'True',
          reason: 'InvalidStatus',
          message: `status does not parse, so nothing is done: ${read.problem}. Fix or remove the field (kubectl edit --subresource=status), or clear status to rediscover the primary from the world`,
        },
      ]);
      return requeueAfter(UNREADABLE_RETRY_MS, 'status unreadable');
    }
    // What it would act on: its spec's clusters, and those its status still runs (an active
    // primary, or an operation's side, its spec no longer names: another policy may own them).
    const op = read.status.currentOperation;
    const acting = [...policyClusters(spec.spec), read.status.activePrimary, op?.from, op?.to];
    const claimed = claimedElsewhere(
      object,
      acting.filter((n): n is string => n !== undefined),
      (name) => ctx.policiesOf(objectKey({ metadata: { name, namespace: ns(object) } })),
    );
    if (claimed.length) {
      await holdClaimed(ctx, object, spec.spec, read.status, claimed);
      // The manager wakes it when a policy naming the clusters changes or goes; a cluster only its
      // status runs is not indexed under it, so it also looks again now and then.
      return requeueAfter(HELD_LOOK_MS);
    }
    const records = { dnsChecks, discoveryReads };
    return reconcileReadable(ctx, object, spec.spec, read.status, records, reports, started);
  };
}

const SPEC_VALID: ConditionInput = {
  type: 'SpecValid',
  status: 'True',
  reason: 'Valid',
  message: 'spec is valid',
};

/** ClustersResolved for a policy naming clusters that belong to an older policy. */
function claimedCondition(claimed: ClaimedCluster[], named: readonly string[]): ConditionInput {
  const owners = [...new Set(claimed.map((c) => c.policy))];
  const unnamed = claimed.filter((c) => !named.includes(c.cluster)).map((c) => c.cluster);
  const runs = unnamed.length
    ? ` This policy's status still runs ${unnamed.join(', ')}, which its spec no longer names.`
    : '';
  const parts = owners.map((owner) => {
    const names = claimed.filter((c) => c.policy === owner).map((c) => c.cluster);
    return names.length === 1
      ? `ReplicaCluster ${names[0]} belongs to policy ${owner}`
      : `ReplicaClusters ${names.join(', ')} belong to policy ${owner}`;
  });
  const them = claimed.length === 1 ? 'it' : 'them';
  return {
    type: 'ClustersResolved',
    status: 'False',
    reason: 'ClusterClaimed',
    message: `${parts.join('; ')} (a cluster belongs to the policy running it, else to the oldest naming it): this policy acts on nothing while it names ${them}.${runs} Take ${them} out of one of the two specs, or delete ${owners.length === 1 ? `policy ${owners[0]}` : 'those policies'}`,
  };
}

/**
 * A policy naming another policy's clusters: nothing acted on, no DNS, no canary writes
 * (claims.ts). A person's request is answered as refused now, not left to run whenever the
 * clusters become this policy's.
 */
async function holdClaimed(
  ctx: OperatorContext,
  object: KubeObject,
  spec: FailoverPolicySpec,
  status: FailoverPolicyStatus,
  claimed: ClaimedCluster[],
): Promise<void> {
  ctx.canaries.stop(objectKey(object));
  const condition = claimedCondition(claimed, policyClusters(spec));
  const refused = refusePendingRequests({ spec, status, now: ctx.clock.now() }, 'ClusterClaimed', (what) =>
    `this ${what} was not acted on: ${condition.message}`.slice(0, 1024),
  );
  await writeConditionsOnly(ctx, object, [SPEC_VALID, condition], 'Blocked', refused);
  if (refused.lastRequest)
    void ctx.events.record(
      object,
      eventOf(
        'Warning',
        'PromotionRejected',
        'Promote',
        `request ${refused.lastRequest.id}: ${condition.message}`,
      ),
    );
  if (refused.lastDrillRequest)
    void ctx.events.record(
      object,
      eventOf(
        'Warning',
        'DrillRequestRejected',
        'Drill',
        `drill request ${refused.lastDrillRequest.id}: ${condition.message}`,
      ),
    );
  ctx.metrics.policyReady.set(policyLabels(object), 0);
  ctx.metrics.policyPhase.set(policyLabels(object), 'Blocked');
}

/** What the reconciler remembers of each policy's DNS record between reconciles. */
interface DnsReads {
  dnsChecks: Map<string, DnsCheck>;
  discoveryReads: Map<string, DiscoveryRead>;
}

/** observe → decide → act → transition → write, for a policy whose spec and status both parse. */
async function reconcileReadable(
  ctx: OperatorContext,
  object: KubeObject,
  spec: FailoverPolicySpec,
  previous: FailoverPolicyStatus,
  records: DnsReads,
  reports: ReportFiling,
  startedAt: Date,
): Promise<ReconcileResult> {
  const key = objectKey(object);
  const now = ctx.clock.now();
  const ports = portsFor(ctx, object, spec);
  const { dnsChecks, discoveryReads } = records;
  const kept = discoveryReads.get(key);
  const check = dnsChecks.get(key);
  const input = await observe(ctx, object, spec, previous, ports, check, kept, now, startedAt);
  // Each observer's vote wakes the policy when it goes stale, under the spec as it is now.
  ctx.voteExpiries.reset(key, input.votes, maxObservationAgeMs(spec), input.now);
  const plan = decide(input);
  ctx.log.debug({ policy: key, action: plan.action.kind, why: plan.why }, 'decided');
  // A fresh read that left the primary unknown is kept until it is due; once known, not needed.
  if (!discoveryMayKeep({ ...input, status: plan.status })) discoveryReads.delete(key);
  else if (input.dns && !input.dns.kept)
    discoveryReads.set(key, afterDiscoveryRead(kept, { ...input, dns: input.dns }, ctx.random));
  const grace = firstProbesGrace(object, previous, input, plan, now, startedAt);
  if (grace > 0) {
    // Just started: the status an earlier run wrote from its probes stands until this process's
    // own first probes answer. Written, "waiting for the first probe" would be undone a probe
    // later: two status writes and Events per policy on every restart. The gauges and the
    // canary follow the status that stands.
    exportMetrics(ctx, object, spec, input, previous, previous);
    await keepCanary(ctx, object, spec, ports, previous);
    return requeueAfter(
      Math.min(spec.detection.probeIntervalSeconds * 1000, grace),
      'waiting for the first probes',
    );
  }
  const result = await carryOut(ctx, object, ports, input, plan);
  const resolved = clustersResolved(ctx, object, spec);
  const { status: settled, dnsReady } = statusToWrite(object, spec, input, plan, result, resolved);
  const client = measureClientSide(ctx, key, spec, settled, now);
  const measured = client ? { ...settled, history: client.history } : settled;
  // After the step: an incident record never holds up a failover.
  const next = await reports.file(object, spec, previous, measured);
  // The record was looked at in this reconcile: check it again in five minutes if it is in sync
  // now, else soon (backing off); a record found out of sync is repaired by the next reconcile.
  if (dnsReady) {
    const inSync = dnsReady.status === 'True';
    dnsChecks.set(key, afterDnsCheck(dnsChecks.get(key), inSync, now, ctx.random));
    if (!inSync) ctx.metrics.dnsCheckFailures.inc({ ...policyLabels(object), reason: dnsReady.reason });
  }
  // An operation just ended: look at the record again now, whatever the five-minute schedule says.
  if (previous.currentOperation && !next.currentOperation && !dnsReady) dnsChecks.set(key, CHECK_NOW);
  // A drill just ended: its lowered TTL goes back at the next look, now.
  if (previous.drill && !next.drill) dnsChecks.set(key, CHECK_NOW);
  const current = object.status as FailoverPolicyStatus | undefined;
  const written = await writeStatus(ctx.client, failoverPolicyType, object, current, next, ctx.policies);
  if (written && ctx.log.isLevelEnabled('debug')) {
    const fields = changedFields(current, next);
    const said = (next.conditions ?? [])
      .filter((c) => fields.includes(`conditions.${c.type}`))
      .map((c) => `${c.type}=${c.status} ${c.reason}: ${c.message}`);
    ctx.log.debug({ policy: key, fields, said }, 'status written');
  }
  // Events after the write: a write that loses a race (409) is redone from fresh data, and its
  // Events with it, instead of being announced twice.
  announce(ctx, object, previous, next, [...result.events, ...(client?.events ?? [])]);
  exportMetrics(ctx, object, spec, input, previous, next);
  exportClientMeasures(ctx, object, client);
  await keepCanary(ctx, object, spec, ports, next);
  // A quiet policy waits for what changes its decisions (quiet.ts), the others for the plan.
  const quiet = result.failure
    ? undefined
    : quietLookMs(input, plan, dnsChecks.get(key), reports.nextPassAt(key));
  const look = nextLook(
    quiet === undefined ? result : { ...result, requeueMs: quiet },
    dnsChecks.get(key),
    now,
  );
  const requeueMs = Math.max(10, client?.waiting ? Math.min(look, CLIENT_MEASURE_RETRY_MS) : look);
  if (result.failure) return retryAfter(requeueMs, result.failure.reason, result.failure.message);
  return requeueAfter(requeueMs);
}

const policyLabels = (object: KubeObject) => ({ namespace: ns(object), policy: object.metadata.name });

/** How long after its start the operator keeps an earlier run's status while its probes begin. */
const FIRST_PROBES_GRACE_MS = 30_000;

/**
 * How much longer (ms, 0 for not at all) the status an earlier run wrote stands: soon after this
 * process's start, on a policy judged at this generation with nothing under way, while some of its
 * clusters are not probed by this process yet, and only when the plan would change nothing but
 * conditions and phase. A primary found down, an Event, or any other field (when the primary went
 * down, the active primary, the next drill) is written at once: a hold-down must start from the
 * first reconcile that sees the loss. Bounded by the grace: a cluster that is never probed (its
 * spec does not parse) does not keep the policy's status from being written for long.
 */
export function firstProbesGrace(
  object: KubeObject,
  previous: FailoverPolicyStatus,
  input: DecideInput,
  plan: Plan,
  now: Date,
  startedAt: Date,
): number {
  const left = FIRST_PROBES_GRACE_MS - (now.getTime() - startedAt.getTime());
  if (left <= 0 || plan.action.kind !== 'Observe' || plan.verdict?.down || plan.events.length) return 0;
  if (previous.observedGeneration !== object.metadata.generation || !previous.conditions?.length) return 0;
  if (previous.currentOperation || previous.drill) return 0;
  const clusters = Object.values(input.clusters);
  if (!clusters.every((c) => c.exists) || !clusters.some((c) => c.unprobed)) return 0;
  const { conditions: _a, phase: _b, ...before } = previous;
  const { conditions: _c, phase: _d, ...after } = plan.status;
  return isDeepStrictEqual(before, after) ? left : 0;
}

interface Carried extends StepResult {
  status: FailoverPolicyStatus;
  events: EventInput[];
  requeueMs: number;
}

async function observe(
  ctx: OperatorContext,
  object: KubeObject,
  spec: FailoverPolicySpec,
  status: FailoverPolicyStatus,
  ports: StepPorts,
  dnsCheck: DnsCheck | undefined,
  kept: DiscoveryRead | undefined,
  now: Date,
  startedAt: Date,
): Promise<DecideInput> {
  const namespace = ns(object);
  const clusterKey = (name: string) => objectKey({ metadata: { name, namespace } });
  const observations = ctx.observationsOf(objectKey(object)).flatMap((o) => {
    const s = (o.spec ?? {}) as FailoverObservationSpec;
    return s.policy === object.metadata.name && Array.isArray(s.clusters) ? [s] : [];
  });
  const names = [spec.primary, ...spec.standbys];
  const canary = ctx.canaries.snapshot(objectKey(object));
  const gathered = gatherInput({
    policyName: object.metadata.name,
    spec,
    status,
    facts: (name) => {
      const agent = agentReportOf(ctx.clusters.get(clusterKey(name)));
      const facts = factsFromProbe(
        name,
        ctx.clusters.get(clusterKey(name))?.spec as ReplicaClusterSpec | undefined,
        ctx.probes.latest(clusterKey(name)),
        ctx.appChecks.latest(clusterKey(name)),
        agent,
      );
      const held = ctx.splitBrain.vouchHeldMs(clusterKey(name), agent?.vouch);
      return held === undefined ? facts : { ...facts, vouchHeldMs: held };
    },
    operatorVote: (active) => voteFromProbe(ctx.probes.latest(clusterKey(active))),
    observations,
    now,
    dnsTargets: Object.fromEntries(names.map((n) => [n, ports.dnsTarget(n)])),
    dnsOwner: ports.owner,
  });
  const lease = await readPrimaryLease(ctx, object, spec, gathered);
  const statusNew = status.observedGeneration === undefined;
  const withLease = {
    ...(lease ? { ...gathered, lease } : gathered),
    ...(statusNew ? { statusNew } : {}),
  };
  const input = canary ? { ...withLease, canary } : withLease;
  // A read that can wait is made only while the account's read budget has room (ports.withDns
  // spends from it, with no await between the two).
  const allowed = (purpose: 'Check' | 'Discovery') => {
    if (ctx.dnsReads.available(spec.dns.provider, ns(object))) return true;
    ctx.metrics.dnsReadsDeferred.inc({ purpose });
    return false;
  };
  // With no primary recorded, or a newer epoch in the world, the record serves discovery (and a
  // drill, read each time).
  if (discoveryMayKeep(input) && !drillNeedsDns(status)) {
    const discovery = discoveryDns(input, kept);
    if (discovery.read && (!discovery.canWait || allowed('Discovery'))) {
      ctx.metrics.dnsReads.inc({ purpose: 'Discovery' });
      return { ...input, dns: await readDns(ports, spec, now) };
    }
    return discovery.kept ? { ...input, dns: discovery.kept } : input;
  }
  // The record is read when the world is ahead of an operation in flight (never put off), or
  // when its check is due.
  const purpose = drillNeedsDns(status)
    ? 'Drill'
    : discoveryNeedsDns(input)
      ? 'Discovery'
      : !status.currentOperation && dnsCheckDue(dnsCheck, now)
        ? 'Check'
        : undefined;
  if (!purpose) return input;
  if (purpose === 'Check') {
    // A routine check can wait: for the budget, and for the first probes after a start (the
    // status then stands as it is, and a read's judgement would be thrown away). Not a policy's
    // first check, nor the one right after an operation or a drill.
    const routine = !dnsCheck?.urgent && status.conditions?.some((c) => c.type === 'DnsReady');
    const early =
      now.getTime() - startedAt.getTime() < FIRST_PROBES_GRACE_MS &&
      Object.values(input.clusters).some((c) => c.unprobed);
    if (routine && (early || !allowed(purpose))) return input;
  }
  ctx.metrics.dnsReads.inc({ purpose });
  return { ...input, dns: await readDns(ports, spec, now) };
}

/**
 * The policy's primary Lease, read each reconcile while an agent runs beside any member (only an
 * agent holds it). A read that fails says nothing: the operator then knows no renewal, and a
 * failover waiting for the Lease waits on.
 */
async function readPrimaryLease(
  ctx: OperatorContext,
  object: KubeObject,
  spec: FailoverPolicySpec,
  input: DecideInput,
): Promise<LeaseFacts | undefined> {
  if (!spec.primaryLease.enabled || !Object.values(input.clusters).some((f) => f.agent)) return undefined;
  const key = objectKey(object);
  try {
    const lease = await ctx.client.find<KubeObject>(
      leaseType,
      ns(object),
      primaryLeaseName(object.metadata.name),
    );
    const s = (lease?.spec ?? {}) as { holderIdentity?: string; leaseDurationSeconds?: number };
    return ctx.splitBrain.lease(
      key,
      lease
        ? {
            ...(s.holderIdentity ? { holder: s.holderIdentity } : {}),
            ...(lease.metadata.resourceVersion ? { version: lease.metadata.resourceVersion } : {}),
            ...(s.leaseDurationSeconds ? { durationSeconds: s.leaseDurationSeconds } : {}),
          }
        : undefined,
    );
  } catch (err) {
    ctx.log.warn({ policy: key, err: (err as Error).message }, 'could not read the primary Lease');
    return { unreadable: true };
  }
}

/**
 * The canary writers: a drill's runs while the drill does, and with spec.canary.mode Always a
 * continuous one besides (an isolated drill's writes only into its copy, so production needs its
 * own writer meanwhile). One that cannot start (no credentials, the name unresolvable) leaves the
 * drill, or the next real operation, to be measured by the operator.
 */
async function keepCanary(
  ctx: OperatorContext,
  object: KubeObject,
  spec: FailoverPolicySpec,
  ports: StepPorts,
  status: FailoverPolicyStatus,
): Promise<void> {
  await keepContinuousCanary(ctx, object, spec, ports);
  const key = objectKey(object);
  const drill = status.drill;
  // An isolated drill writes only once its record answers, and stops before the record goes.
  if (!drill || (drill.mode === 'Isolated' && drill.leg !== 'Writing'))
    return ctx.canaries.stop(key, 'Drill');
  try {
    await ctx.canaries.ensure(key, () => canaryTargetFor(ctx, object, spec, ports, drill), drill.id, 'Drill');
  } catch (err) {
    ctx.log.warn(
      { policy: key, drill: drill.id, err: (err as Error).message },
      'the drill canary writer could not start; the drill is measured by the operator',
    );
  }
}

async function keepContinuousCanary(
  ctx: OperatorContext,
  object: KubeObject,
  spec: FailoverPolicySpec,
  ports: StepPorts,
): Promise<void> {
  const key = objectKey(object);
  const settings = spec.canary;
  if (settings?.mode !== 'Always') return ctx.canaries.stop(key, 'Continuous');
  // A writer is made for its settings and for where each cluster's DNS answer leads (how it names
  // the servers it reaches): a change starts a new one.
  const clusters = [spec.primary, ...spec.standbys].map((n) => [n, ports.dnsTarget(n)]);
  const token = JSON.stringify([settings.intervalMilliseconds, settings.retentionDays, clusters]);
  try {
    await ctx.canaries.ensure(key, () => canaryTargetFor(ctx, object, spec, ports), token, 'Continuous');
  } catch (err) {
    const message = (err as Error).message;
    // Tried again at every reconcile: said once per cause, not every few seconds.
    if (ctx.canaries.failedAnew(key, 'Continuous', message))
      ctx.log.warn(
        { policy: key, err: message },
        'the continuous canary writer could not start; real failovers are not measured from the client side',
      );
  }
}

/**
 * With the continuous canary on, a real failover or switchover that completed gets its
 * client-side measure in history (operation-canary.ts).
 */
function measureClientSide(
  ctx: OperatorContext,
  key: string,
  spec: FailoverPolicySpec,
  status: FailoverPolicyStatus,
  now: Date,
): ClientMeasures | undefined {
  if (spec.canary?.mode !== 'Always') return undefined;
  return measureOperations(status.history, ctx.canaries.snapshot(key, 'Continuous'), now);
}

/** The client-side figures of the operations just measured, per kind. */
function exportClientMeasures(
  ctx: OperatorContext,
  object: KubeObject,
  client: ClientMeasures | undefined,
): void {
  // history is newest first: the newest of each kind is set last.
  for (const report of [...(client?.measured ?? [])].reverse()) {
    const labels = { ...policyLabels(object), kind: report.kind };
    const c = report.client;
    // Not measured by the canary: no figure, rather than an older operation's.
    if (c?.measuredBy === 'Canary' && c.rtoSeconds !== undefined)
      ctx.metrics.clientRto.set(labels, c.rtoSeconds);
    else ctx.metrics.clientRto.remove(labels);
    if (c?.measuredBy === 'Canary' && c.rpoTransactions !== undefined)
      ctx.metrics.clientLostWrites.set(labels, c.rpoTransactions);
    else ctx.metrics.clientLostWrites.remove(labels);
  }
}

/** Carries out the plan's side effect, if it has one, and folds its outcome into status. */
async function carryOut(
  ctx: OperatorContext,
  object: KubeObject,
  ports: StepPorts,
  input: DecideInput,
  plan: Plan,
): Promise<Carried> {
  const { action } = plan;
  const base: Carried = { status: plan.status, events: plan.events, requeueMs: plan.requeueMs };
  if (action.kind === 'RepairDns') {
    const { condition, event } = await repairDns(ports, input.spec, action);
    return { ...base, dnsReady: condition, ...(event ? { events: [...base.events, event] } : {}) };
  }
  if (action.kind === 'DrillCopy') {
    const drill = plan.status.drill;
    if (!drill) return base;
    const outcome = await runDrillCopy(ports, action);
    const next = afterDrillCopy(drill, action.want, outcome, input.now);
    if (outcome.phase === 'Error')
      ctx.log.warn(
        {
          policy: `${ns(object)}/${object.metadata.name}`,
          drill: drill.id,
          reason: outcome.reason,
          err: outcome.message,
        },
        'the drill copy step failed; trying again',
      );
    // A provider takes minutes to create, promote or delete: ask again every few seconds.
    const moved = next.leg !== drill.leg || next.isolated?.copyRemovedAt !== drill.isolated?.copyRemovedAt;
    return { ...base, status: { ...plan.status, drill: next }, requeueMs: moved ? 0 : 5000 };
  }
  if (action.kind === 'DrillRecord') {
    const drill = plan.status.drill;
    if (!drill) return base;
    const outcome = await runDrillRecord(ports, action);
    const next = afterDrillRecord(drill, outcome, input.now);
    const failed = outcome.kind === 'Failed' ? outcome : undefined;
    if (failed)
      ctx.log.warn(
        {
          policy: `${ns(object)}/${object.metadata.name}`,
          drill: drill.id,
          reason: failed.reason,
          err: failed.message,
        },
        'the drill record could not be changed; trying again',
      );
    return {
      ...base,
      status: { ...plan.status, drill: next },
      // Written but not answered yet: look again soon. Throttled: at the time afterDrillRecord set.
      requeueMs:
        next.leg === drill.leg
          ? failed
            ? Math.max(2000, Date.parse(next.isolated?.retryAt ?? '') - input.now.getTime() || 0)
            : 500
          : 0,
    };
  }
  if (action.kind !== 'RunStep') return base;
  const op = action.operation;
  const outcome = await runStep(ports, input.spec, op, input.now);
  const t = transition(op, outcome, input.now, ctx.random);
  if (t.failure) {
    ctx.metrics.stepFailures.inc({
      namespace: ns(object),
      policy: object.metadata.name,
      kind: op.kind,
      step: op.step,
      reason: t.failure.reason,
    });
    ctx.log.warn(
      {
        policy: `${ns(object)}/${object.metadata.name}`,
        operation: op.id,
        step: op.step,
        reason: t.failure.reason,
        err: t.failure.message,
      },
      'operation step failed; retrying after its backoff',
    );
  }
  return {
    status: { ...plan.status, ...t.settled, currentOperation: t.operation },
    events: [...plan.events, ...t.events],
    requeueMs: t.requeueMs,
    ...(t.failure ? { failure: t.failure } : {}),
  };
}

/** The status to write, and DnsReady if this reconcile learned anything about the record. */
function statusToWrite(
  object: KubeObject,
  spec: FailoverPolicySpec,
  input: DecideInput,
  plan: Plan,
  result: Carried,
  resolved: ConditionInput,
): { status: FailoverPolicyStatus; dnsReady?: ConditionInput } {
  const generation = object.metadata.generation;
  const now = input.now;
  const summary = summarize(input, plan, result.status, result);
  let conditions = result.status.conditions;
  const set = (c: ConditionInput) => {
    conditions = setCondition(conditions, c, generation, now);
  };
  set(SPEC_VALID);
  set(clustersResolvedWith(resolved, plan.oneServer));
  for (const c of summary.conditions) set(c);
  set(readyCondition(conditions ?? [], result.status));
  // Conditions that no longer apply go: drills removed from spec, a status that parses again.
  const stale = new Set(['StatusUnreadable', ...(spec.drills ? [] : ['DrillsScheduled'])]);
  const dnsReady = summary.conditions.find((c) => c.type === 'DnsReady');
  const topology = topologyOf(input, result.status);
  // A promotion or a discovery moved the primary on: the old one's loss is no longer this status's.
  const next = lossFollowsPrimary(result.status);
  return {
    status: {
      ...next,
      ...(topology ? { topology } : {}),
      availability: nextLedger(result.status.availability, next, now),
      observedGeneration: generation,
      phase: summary.phase,
      conditions: (conditions ?? []).filter((c) => !stale.has(c.type)),
    },
    ...(dnsReady ? { dnsReady } : {}),
  };
}

function clustersResolved(
  ctx: OperatorContext,
  object: KubeObject,
  spec: FailoverPolicySpec,
): ConditionInput {
  const namespace = ns(object);
  const missing = [spec.primary, ...spec.standbys].filter(
    (n) => !ctx.clusters.get(objectKey({ metadata: { name: n, namespace } })),
  );
  return missing.length === 0
    ? { type: 'ClustersResolved', status: 'True', reason: 'AllFound', message: 'every ReplicaCluster exists' }
    : {
        type: 'ClustersResolved',
        status: 'False',
        reason: 'ClusterNotFound',
        message: `ReplicaCluster ${missing.join(', ')} not found in namespace ${namespace}`,
      };
}

/**
 * When to look again: what the step asked for, sooner if a failed DNS check is due to be retried.
 * A retry already due was put off (the read budget): it waits for the next look, not 100 ms.
 */
export function nextLook(
  result: Pick<Carried, 'requeueMs' | 'status'>,
  dnsCheck: DnsCheck | undefined,
  now: Date,
): number {
  let ms = result.requeueMs;
  const left = dnsCheck ? dnsCheck.dueAt - now.getTime() : 0;
  if (dnsCheck && dnsCheck.failures > 0 && left > 0 && !result.status.currentOperation)
    ms = Math.min(ms, Math.max(left, 100));
  return ms;
}

/** Writes conditions (a phase, and `fields`) only, keeping the rest of status exactly as it is. */
async function writeConditionsOnly(
  ctx: OperatorContext,
  object: KubeObject,
  inputs: ConditionInput[],
  phase?: FailoverPolicyStatus['phase'],
  fields: Partial<FailoverPolicyStatus> = {},
): Promise<void> {
  const raw = (object.status ?? {}) as Record<string, unknown>;
  const now = ctx.clock.now();
  let conditions = Array.isArray(raw.conditions) ? (raw.conditions as Condition[]) : undefined;
  const previous = conditions;
  for (const c of inputs) conditions = setCondition(conditions, c, object.metadata.generation, now);
  // Ready goes down with a condition it sums up (a spec that does not validate, a claimed
  // cluster), never up: what it would say True about was not looked at.
  const ready = readyCondition(conditions ?? [], {});
  if (ready.status !== 'True') conditions = setCondition(conditions, ready, object.metadata.generation, now);
  const next = { ...raw, ...fields, conditions, ...(phase ? { phase } : {}) };
  await writeStatus(ctx.client, failoverPolicyType, object, raw, next, ctx.policies);
  announceConditions(ctx, object, previous, conditions ?? []);
}

/** Queues the Events of a status change (written after the reconcile, never waited for). */
function announce(
  ctx: OperatorContext,
  object: KubeObject,
  previous: FailoverPolicyStatus,
  next: FailoverPolicyStatus,
  events: EventInput[],
): void {
  for (const e of events) void ctx.events.record(object, e);
  announceConditions(ctx, object, previous.conditions, next.conditions ?? []);
}

/** A condition whose status or reason changed is news; a new message alone is not. */
function announceConditions(
  ctx: OperatorContext,
  object: KubeObject,
  before: Condition[] | undefined,
  after: Condition[],
): void {
  const news: (EventInput & { condition: string })[] = [];
  for (const c of changedConditions(before, after)) {
    const was = before?.find((p) => p.type === c.type);
    // Operations announce themselves; Ready sums up conditions announced on their own.
    if (c.type === 'Progressing' || c.type === 'Ready') continue;
    const goodWhenTrue = c.type !== 'FailoverBlocked' && c.type !== 'StatusUnreadable' && c.type !== 'Paused';
    const good = goodWhenTrue ? c.status === 'True' : c.status === 'False';
    if (!was && good) continue; // the first evaluation of a good state is not news
    // Nor a policy without agents learning it has no Lease: only losing one is.
    if (!was && c.type === 'SplitBrainProtection') continue;
    news.push({
      type: good ? 'Normal' : 'Warning',
      reason: c.reason,
      action: 'Observe',
      note: c.message,
      condition: `${c.type}=${c.status}`,
    });
  }
  const [first] = news;
  // A new policy's first findings are one Event, not one per condition.
  if (!before?.length && first && news.length > 1) {
    void ctx.events.record(
      object,
      eventOf(
        first.type,
        first.reason,
        'Observe',
        news.map((e) => `${e.condition} ${e.reason}: ${e.note}`).join('; '),
      ),
    );
    return;
  }
  for (const { condition: _c, ...e } of news) void ctx.events.record(object, e);
}

function exportMetrics(
  ctx: OperatorContext,
  object: KubeObject,
  spec: FailoverPolicySpec,
  input: DecideInput,
  previous: FailoverPolicyStatus,
  next: FailoverPolicyStatus,
): void {
  const labels = { namespace: ns(object), policy: object.metadata.name };
  const m = ctx.metrics;
  const op = next.currentOperation;
  const isTrue = (type: string) => (next.conditions?.find((c) => c.type === type)?.status === 'True' ? 1 : 0);
  m.operationStart.set(labels, op ? new Date(op.startedAt).getTime() / 1000 : 0);
  m.epoch.set(labels, next.epoch ?? 0);
  m.policyReady.set(labels, isTrue('Ready'));
  m.failoverReady.set(labels, isTrue('FailoverReady'));
  // Only where an agent reports: a policy without one never had the Lease, and is not alerted on.
  if (Object.values(input.clusters).some((f) => f.agent))
    m.splitBrainProtected.set(labels, isTrue('SplitBrainProtection'));
  else m.splitBrainProtected.remove(labels);
  m.paused.set(labels, spec.paused ? 1 : 0);
  if (next.pausedSince) m.pausedSince.set(labels, new Date(next.pausedSince).getTime() / 1000);
  else m.pausedSince.remove(labels);
  m.quorum.set(labels, spec.detection.quorum);
  const fresh = freshVotes(spec, input.votes, input.now);
  m.freshObservers.set(labels, fresh.length);
  // Not those it refused (a wrong password): they cannot say whether it is up.
  m.observersLost.set(labels, fresh.filter((v) => !v.reachable && !abstains(v)).length);
  if (next.phase) m.policyPhase.set(labels, next.phase);
  else m.policyPhase.remove(labels);
  // One series, for the cluster primary now: a former primary's goes with the change.
  if (next.activePrimary) m.activePrimary.set(labels, next.activePrimary);
  else m.activePrimary.remove(labels);
  const drill = next.drills?.[0];
  if (drill) {
    // A drill a person cancelled proves nothing either way: the last verdict stands.
    if (drill.result !== 'Cancelled') m.drillLastSucceeded.set(labels, drill.result === 'Succeeded' ? 1 : 0);
    if (drill.rtoSeconds !== undefined) m.drillRto.set(labels, drill.rtoSeconds);
    // Not measured (no canary saw the switch): no figure, rather than the last drill's.
    if (drill.lostWrites !== undefined) m.drillRpo.set(labels, drill.lostWrites);
    else m.drillRpo.remove(labels);
    if (drill.id !== previous.drills?.[0]?.id) m.drills.inc({ ...labels, result: drill.result });
  }
  if (next.nextDrillTime) m.drillNext.set(labels, new Date(next.nextDrillTime).getTime() / 1000);
  else m.drillNext.remove(labels);
  const finished = next.history?.[0];
  if (finished && finished.id !== previous.history?.[0]?.id)
    m.operations.inc({ ...labels, kind: finished.kind, trigger: finished.trigger, result: finished.result });
  m.unavailable.set(labels, next.availability?.downSince ? 1 : 0);
  const target = spec.slo?.availabilityTarget;
  if (target !== undefined) m.availabilityTarget.set(labels, target / 100);
  else m.availabilityTarget.remove(labels);
  const month = monthlyAvailability(next.availability, input.now, target, 1)[0];
  if (month?.percent !== undefined) m.monthAvailability.set(labels, month.percent / 100);
}

const ns = (object: KubeObject) => object.metadata.namespace ?? 'default';

/** A deleted policy's series go with it: a stale 0 would keep its alerts firing for ever. */
function forgetMetrics(ctx: OperatorContext, key: string): void {
  const { namespace, name } = keyParts(key);
  const labels = { namespace, policy: name };
  // Every per-policy gauge, the phase and the active primary's series included.
  ctx.metrics.policySeries.forget(labels);
  for (const kind of ['Failover', 'Switchover']) {
    ctx.metrics.clientRto.remove({ ...labels, kind });
    ctx.metrics.clientLostWrites.remove({ ...labels, kind });
  }
}
