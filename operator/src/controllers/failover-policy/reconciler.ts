/**
 * The FailoverPolicy reconciler, a thin shell around observe → decide → act:
 *
 * 1. read the policy and validate it (a broken spec is a condition, never a crash);
 * 2. observe: the operator's probes of each cluster and the observers' fresh votes;
 * 3. decide: pure, returns one action plus the status people read;
 * 4. act: at most one side effect, then write status (conditional on the resourceVersion read);
 * 5. come back after the interval the plan asks for.
 */
import { getServers } from 'node:dns';
import type { ReplicaClusterSpec } from '../../api/v1alpha1/index.ts';
import {
  type FailoverObservationSpec,
  type FailoverPolicySpec,
  type FailoverPolicyStatus,
  failoverPolicySpec,
  failoverPolicyStatus,
  replicaClusterSpec,
} from '../../api/v1alpha1/index.ts';
import {
  createDnsProvider,
  defaultVerifyServers,
  dnsSecretRef,
  parseServer,
} from '../../providers/dns/factory.ts';
import { ownershipRecordName } from '../../providers/dns/port.ts';
import { DirectDnsVerifier, findAuthoritativeServers } from '../../providers/dns/verifier.ts';
import { isProviderError } from '../../providers/errors.ts';
import { type ConditionInput, changedConditions, setCondition } from '../../runtime/conditions.ts';
import type { EventInput } from '../../runtime/events.ts';
import { objectKey } from '../../runtime/informer.ts';
import type { KubeObject } from '../../runtime/kube-client.ts';
import { done, type ReconcileResult, requeueAfter } from '../../runtime/reconcile.ts';
import type { OperatorContext } from '../context.ts';
import { readOwnStatus, readSpec } from '../read-object.ts';
import { failoverPolicyType } from '../resources.ts';
import { writeStatus } from '../status-writer.ts';
import { act, recordRef, type StepPorts } from './act.ts';
import { decide } from './decide.ts';
import { afterDnsCheck, type DnsCheck, dnsCheckDue } from './dns-check.ts';
import { factsFromProbe, gatherInput, voteFromProbe } from './observe.ts';

const verifier = new DirectDnsVerifier({ timeoutMs: 2_000 });

/** Builds the ports act works through, for one policy. */
function portsFor(ctx: OperatorContext, policy: KubeObject, spec: FailoverPolicySpec): StepPorts {
  const namespace = policy.metadata.namespace ?? 'default';
  const clusterSpec = (name: string) => {
    const obj = ctx.clusters.get(objectKey({ metadata: { name, namespace } }));
    const parsed = obj ? replicaClusterSpec.safeParse(obj.spec) : undefined;
    return parsed?.success ? parsed.data : undefined;
  };
  return {
    owner: spec.dns.ownerId ?? `${namespace}/${policy.metadata.name}`,
    dnsTarget: (name) => clusterSpec(name)?.dnsTarget,
    database: async (name) => {
      const s = clusterSpec(name);
      if (!s) throw new Error(`ReplicaCluster ${namespace}/${name} is missing or invalid`);
      return ctx.probes.providerFor({
        key: objectKey({ metadata: { name, namespace } }),
        namespace,
        spec: s,
      });
    },
    dns: async () => {
      const ref = dnsSecretRef(spec.dns.provider);
      const secret = ref ? (await ctx.probes.secrets.read(namespace, ref.name, ref.key)).value : undefined;
      return createDnsProvider(
        spec.dns.provider,
        secret,
        ref ? `Secret ${namespace}/${ref.name} key ${ref.key}` : '',
      );
    },
    verifier,
    verifyServers: async () => {
      if (spec.dns.authoritativeNameservers?.length)
        return spec.dns.authoritativeNameservers.map((s) => parseServer(s));
      const fixed = defaultVerifyServers(spec.dns.provider);
      if (fixed) return fixed;
      const resolver = getServers()[0];
      if (!resolver)
        throw new Error(
          'no DNS resolver configured to find the zone name servers; list them in spec.dns.authoritativeNameservers',
        );
      return findAuthoritativeServers(spec.dns.zone, parseServer(resolver));
    },
  };
}

export function reconcileFailoverPolicy(ctx: OperatorContext): (key: string) => Promise<ReconcileResult> {
  const dnsChecks = new Map<string, DnsCheck>();
  return async (key) => {
    const object = ctx.policies.get(key);
    if (!object) {
      dnsChecks.delete(key);
      return done();
    }
    const now = ctx.clock.now();
    const generation = object.metadata.generation;
    const namespace = object.metadata.namespace ?? 'default';
    const previous = await readOwnStatus(ctx.events, failoverPolicyStatus, object);
    const parsed = readSpec(failoverPolicySpec, object);
    const conditions: ConditionInput[] = [];
    if (!parsed.ok) {
      const next = withConditions(
        { ...previous, observedGeneration: generation, phase: 'Pending' },
        [{ type: 'SpecValid', status: 'False', reason: 'InvalidSpec', message: parsed.message }],
        generation,
        now,
      );
      await announce(ctx, object, previous, next, []);
      await writeStatus(
        ctx.client,
        failoverPolicyType,
        object,
        object.status as FailoverPolicyStatus | undefined,
        next,
        ctx.policies,
      );
      return done();
    }
    const spec = parsed.spec;
    conditions.push({ type: 'SpecValid', status: 'True', reason: 'Valid', message: 'spec is valid' });
    const names = [spec.primary, ...spec.standbys];
    const clusterKey = (name: string) => objectKey({ metadata: { name, namespace } });
    const missing = names.filter((n) => !ctx.clusters.get(clusterKey(n)));
    conditions.push(
      missing.length === 0
        ? {
            type: 'ClustersResolved',
            status: 'True',
            reason: 'AllFound',
            message: 'every ReplicaCluster exists',
          }
        : {
            type: 'ClustersResolved',
            status: 'False',
            reason: 'ClusterNotFound',
            message: `ReplicaCluster ${missing.join(', ')} not found in namespace ${namespace}`,
          },
    );

    // The state machine starts from the spec's primary at epoch 0.
    const status: FailoverPolicyStatus = {
      ...previous,
      activePrimary: previous.activePrimary ?? spec.primary,
      epoch: previous.epoch ?? 0,
    };
    const observations = ctx.observations
      .list()
      .filter((o) => o.metadata.namespace === namespace)
      .flatMap((o) => {
        const s = (o.spec ?? {}) as FailoverObservationSpec;
        return s.policy === object.metadata.name && Array.isArray(s.clusters) ? [s] : [];
      });
    const input = gatherInput({
      policyName: object.metadata.name,
      spec,
      status,
      facts: (name) =>
        factsFromProbe(
          name,
          ctx.clusters.get(clusterKey(name))?.spec as ReplicaClusterSpec | undefined,
          ctx.probes.latest(clusterKey(name)),
        ),
      operatorVote: (active) => voteFromProbe(ctx.probes.latest(clusterKey(active))),
      observations,
      now,
    });
    const plan = decide(input);
    const ports = portsFor(ctx, object, spec);
    const result = await act(ports, spec, status, plan.action, now);

    // Keep DNS owned and pointing at the primary between operations (and create it the first time).
    if (plan.action.kind === 'Observe' && !status.currentOperation && dnsCheckDue(dnsChecks.get(key), now)) {
      const dnsReady = await ensureDns(ports, spec, result.status);
      conditions.push(dnsReady);
      const inSync = dnsReady.status === 'True';
      if (!inSync)
        ctx.metrics.dnsCheckFailures.inc({
          namespace,
          policy: object.metadata.name,
          reason: dnsReady.reason,
        });
      dnsChecks.set(key, afterDnsCheck(dnsChecks.get(key), inSync, now));
    }
    let next: FailoverPolicyStatus = {
      ...result.status,
      observedGeneration: generation,
      phase: plan.phase,
      ...(plan.standbyLagSeconds !== undefined
        ? { standbyLagSeconds: Math.round(plan.standbyLagSeconds * 100) / 100 }
        : {}),
    };
    if (plan.primaryDownSince) next.primaryDownSince = plan.primaryDownSince;
    else delete next.primaryDownSince;
    if (plan.standbyLagSeconds === undefined) delete next.standbyLagSeconds;
    if (plan.nextDrillTime) next.nextDrillTime = plan.nextDrillTime;
    else delete next.nextDrillTime;
    if (plan.drill === null) delete next.drill;
    else if (plan.drill) next.drill = plan.drill;
    const drillEvents: EventInput[] = [];
    if (plan.drillReport) {
      const r = plan.drillReport;
      next.drills = [r, ...(next.drills ?? [])].slice(0, 10);
      drillEvents.push({
        type: r.result === 'Succeeded' ? 'Normal' : 'Warning',
        reason: r.result === 'Succeeded' ? 'DrillSucceeded' : 'DrillFailed',
        action: 'Drill',
        note: `drill ${r.id} ${r.result.toLowerCase()}: ${r.reason ?? ''}`,
      });
    }
    next = withConditions(next, [...conditions, ...plan.conditions], generation, now);
    // Drills removed from the spec: their condition goes too.
    if (!spec.drills && next.conditions?.some((c) => c.type === 'DrillsScheduled'))
      next.conditions = next.conditions.filter((c) => c.type !== 'DrillsScheduled');
    if (result.error) {
      next = withConditions(
        next,
        [
          {
            type: 'Progressing',
            status: 'False',
            reason: isProviderError(result.error) ? result.error.reason : 'StepFailed',
            message: next.currentOperation?.lastError ?? String(result.error),
          },
        ],
        generation,
        now,
      );
    } else if (next.currentOperation?.retryAfter && new Date(next.currentOperation.retryAfter) > now) {
      // Waiting out a failed attempt's backoff: Progressing stays as that failure left it (False).
    } else if (next.currentOperation) {
      next = withConditions(
        next,
        [
          {
            type: 'Progressing',
            status: 'True',
            reason: next.currentOperation.step,
            message: `${next.currentOperation.kind} ${next.currentOperation.from} → ${next.currentOperation.to}: ${next.currentOperation.step}`,
          },
        ],
        generation,
        now,
      );
    } else {
      next = withConditions(
        next,
        [{ type: 'Progressing', status: 'False', reason: 'Idle', message: 'no operation in progress' }],
        generation,
        now,
      );
    }
    exportMetrics(ctx, namespace, object.metadata.name, previous, next);
    await announce(ctx, object, previous, next, [...result.events, ...drillEvents]);
    await writeStatus(
      ctx.client,
      failoverPolicyType,
      object,
      object.status as FailoverPolicyStatus | undefined,
      next,
      ctx.policies,
    );
    if (result.error) throw result.error;
    let requeue =
      result.requeueMs ??
      (plan.action.kind === 'Observe' ? plan.action.requeueMs : spec.detection.probeIntervalSeconds * 1000);
    // A failed DNS check is retried when its backoff says, even if that is before the next probe.
    const dnsCheck = dnsChecks.get(key);
    if (dnsCheck && dnsCheck.failures > 0 && plan.action.kind === 'Observe' && !next.currentOperation)
      requeue = Math.min(requeue, Math.max(dnsCheck.dueAt - now.getTime(), 100));
    return requeueAfter(Math.max(requeue, 10));
  };
}

async function ensureDns(
  ports: StepPorts,
  spec: FailoverPolicySpec,
  status: FailoverPolicyStatus,
): Promise<ConditionInput> {
  const active = status.activePrimary ?? spec.primary;
  const value = ports.dnsTarget(active);
  if (!value)
    return {
      type: 'DnsReady',
      status: 'Unknown',
      reason: 'NoTarget',
      message: `ReplicaCluster ${active} has no dnsTarget yet`,
    };
  try {
    const dns = await ports.dns();
    const current = await dns.read(recordRef(spec));
    if (current.value !== undefined && current.owner !== ports.owner) {
      return {
        type: 'DnsReady',
        status: 'False',
        reason: 'NotOwned',
        message: `${spec.dns.name} exists but is not owned by ${ports.owner}: to hand it over, add a TXT record ${ownershipRecordName(spec.dns.name)} with "owner=${ports.owner}" "epoch=${status.epoch ?? 0}"`,
      };
    }
    if (current.value === value && (current.epoch ?? 0) >= (status.epoch ?? 0)) {
      return {
        type: 'DnsReady',
        status: 'True',
        reason: 'InSync',
        message: `${spec.dns.name} points at ${value} (epoch ${current.epoch ?? 0})`,
      };
    }
    await dns.apply({
      record: recordRef(spec),
      expected: current.value,
      value,
      ttl: spec.dns.ttlSeconds,
      owner: ports.owner,
      epoch: status.epoch ?? 0,
    });
    return {
      type: 'DnsReady',
      status: 'True',
      reason: current.value === undefined ? 'Created' : 'Repaired',
      message: `${spec.dns.name} set to ${value} (was ${current.value ?? 'absent'})`,
    };
  } catch (err) {
    const reason = isProviderError(err) ? err.reason : 'DnsError';
    return { type: 'DnsReady', status: 'False', reason, message: (err as Error).message.slice(0, 1000) };
  }
}

function withConditions(
  status: FailoverPolicyStatus,
  inputs: ConditionInput[],
  generation: number | undefined,
  now: Date,
): FailoverPolicyStatus {
  let list = status.conditions;
  for (const c of inputs) list = setCondition(list, c, generation, now);
  return { ...status, conditions: list };
}

async function announce(
  ctx: OperatorContext,
  object: KubeObject,
  previous: FailoverPolicyStatus,
  next: FailoverPolicyStatus,
  events: EventInput[],
): Promise<void> {
  for (const e of events) await ctx.events.record(object, e);
  for (const c of changedConditions(previous.conditions, next.conditions ?? [])) {
    const before = previous.conditions?.find((p) => p.type === c.type);
    if (c.type === 'Progressing') continue; // operations announce themselves
    if (!before && c.status === 'True' && c.type !== 'FailoverBlocked') continue;
    if (!before && c.status === 'False' && c.type === 'FailoverBlocked') continue;
    const bad =
      (c.type === 'FailoverBlocked' && c.status === 'True') ||
      (c.type !== 'FailoverBlocked' && c.status !== 'True');
    await ctx.events.record(object, {
      type: bad ? 'Warning' : 'Normal',
      reason: c.reason,
      action: 'Observe',
      note: c.message,
    });
  }
}

function exportMetrics(
  ctx: OperatorContext,
  namespace: string,
  policy: string,
  previous: FailoverPolicyStatus,
  next: FailoverPolicyStatus,
): void {
  const labels = { namespace, policy };
  const op = next.currentOperation;
  ctx.metrics.operationStart.set(labels, op ? new Date(op.startedAt).getTime() / 1000 : 0);
  ctx.metrics.epoch.set(labels, next.epoch ?? 0);
  const drill = next.drills?.[0];
  if (drill) {
    ctx.metrics.drillLastSucceeded.set(labels, drill.result === 'Succeeded' ? 1 : 0);
    if (drill.rtoSeconds !== undefined) ctx.metrics.drillRto.set(labels, drill.rtoSeconds);
    if (drill.id !== previous.drills?.[0]?.id) ctx.metrics.drills.inc({ ...labels, result: drill.result });
  }
  if (next.nextDrillTime) ctx.metrics.drillNext.set(labels, new Date(next.nextDrillTime).getTime() / 1000);
  else ctx.metrics.drillNext.remove(labels);
  const finished = next.history?.[0];
  if (finished && finished.id !== previous.history?.[0]?.id) {
    ctx.metrics.operations.inc({
      ...labels,
      kind: finished.kind,
      trigger: finished.trigger,
      result: finished.result,
    });
  }
}
