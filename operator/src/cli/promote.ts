/**
 * `kubectl failover promote POLICY --to CLUSTER`: records a person's promotion request in
 * `spec.promotionRequest`. The API server checks it (the CRD's CEL rules); the operator acts on
 * it once. `--dry-run` asks the API server to check it without storing it, then runs the
 * operator's own `decide()` on what the API says now, and prints what the operator would do.
 */
import { randomBytes } from 'node:crypto';
import { type FailoverPolicySpec, failoverPolicySpec } from '../api/v1alpha1/index.ts';
import { decide, type Plan } from '../controllers/failover-policy/decide.ts';
import { judgePrimary } from '../controllers/failover-policy/detection.ts';
import type { ClusterFacts, Vote } from '../controllers/failover-policy/facts.ts';
import { factsFromStatus, gatherInput, voteFromStatus } from '../controllers/failover-policy/observe.ts';
import { ApiError, type FailoverApi } from './api.ts';
import { age, bytes, seconds } from './format.ts';
import { activePrimary, notFound, type PolicyView, readObservations, readPolicy } from './policies.ts';

export interface PromoteOptions {
  namespace: string;
  policy: string;
  target: string;
  kind: 'Switchover' | 'Failover';
  allowDataLoss: boolean;
  maxLagSeconds?: number;
  reason?: string;
  id?: string;
  /** Supersede a request the operator has not handled yet. */
  replace: boolean;
  dryRun: boolean;
  now: Date;
  warn: (message: string) => void;
}

export interface PromoteResult {
  output: string;
  /** 0: recorded, or the operator would act; 1: refused by the API server or (dry run) the operator. */
  exitCode: number;
}

/** A fresh request id, a DNS label as the schema wants: switchover-20261121-030405-a1b2. */
export function requestId(kind: PromoteOptions['kind'], now: Date): string {
  const stamp = now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace('T', '-')
    .replace(/\.\d+Z$/, '')
    .toLowerCase();
  return `${kind.toLowerCase()}-${stamp}-${randomBytes(2).toString('hex')}`;
}

type PromotionRequest = NonNullable<FailoverPolicySpec['promotionRequest']>;

function buildRequest(opts: PromoteOptions, requestedBy: string | undefined): PromotionRequest {
  return {
    id: opts.id ?? requestId(opts.kind, opts.now),
    target: opts.target,
    kind: opts.kind,
    // Sent as given even for a Switchover: the API server's rule then says what to change.
    allowDataLoss: opts.allowDataLoss,
    ...(opts.maxLagSeconds !== undefined ? { maxLagSeconds: opts.maxLagSeconds } : {}),
    ...(opts.reason ? { reason: opts.reason } : {}),
    ...(requestedBy ? { requestedBy: requestedBy.slice(0, 253) } : {}),
  };
}

const describeRequest = (r: PromotionRequest, p: { namespace: string; name: string }) =>
  `${r.kind} of ${p.namespace}/${p.name} to ${r.target}${r.kind === 'Failover' && r.allowDataLoss ? ', data loss allowed' : ''}`;

/** A request already in spec that the operator has not acted on yet. */
function pendingRequest(p: PolicyView): PromotionRequest | undefined {
  const r = p.spec?.promotionRequest;
  return r && r.id !== p.status.lastHandledRequestId ? r : undefined;
}

function apiRefusal(err: unknown, opts: PromoteOptions): never {
  if (err instanceof ApiError) {
    if (err.status === 422) throw new Error(`the API server refused the request: ${err.message}`);
    if (err.status === 403) {
      throw new Error(
        `you may not change FailoverPolicies in namespace ${opts.namespace}: ${err.message}\n` +
          'A promotion request is a patch of the policy: ask for the edit role there (the Helm chart extends edit to it).',
      );
    }
    if (err.status === 409) {
      throw new Error('the policy changed while the request was being made: run the command again');
    }
    if (err.status === 404) notFound(err, `FailoverPolicy ${opts.policy}`, opts.namespace);
  }
  throw err;
}

export async function promoteCommand(api: FailoverApi, opts: PromoteOptions): Promise<PromoteResult> {
  const policy = await readPolicy(api, opts.namespace, opts.policy);
  const pending = pendingRequest(policy);
  if (pending && !opts.replace && !opts.dryRun) {
    throw new Error(
      `FailoverPolicy ${opts.namespace}/${opts.policy} already has a request the operator has not handled: ` +
        `${pending.id} (${describeRequest(pending, policy)}${pending.requestedBy ? `, by ${pending.requestedBy}` : ''}). ` +
        'Wait for it (kubectl failover status), or pass --replace to supersede it.',
    );
  }
  const request = buildRequest(opts, await api.whoAmI());
  // Conditional on the version read: a request made at the same moment by someone else is not
  // silently overwritten.
  const patch = {
    metadata: { resourceVersion: policy.object.metadata.resourceVersion },
    spec: { promotionRequest: request },
  };
  if (!opts.dryRun) {
    await api.patchPolicy(opts.namespace, opts.policy, patch).catch((err) => apiRefusal(err, opts));
    return {
      exitCode: 0,
      output: [
        `Requested: ${describeRequest(request, policy)} (request ${request.id}).`,
        'The operator acts on it once; follow it with:',
        `  kubectl failover status ${opts.policy} -n ${opts.namespace}`,
        `  kubectl failover history ${opts.policy} -n ${opts.namespace}`,
      ].join('\n'),
    };
  }
  return dryRun(api, policy, request, patch, opts);
}

async function dryRun(
  api: FailoverApi,
  policy: PolicyView,
  request: PromotionRequest,
  patch: unknown,
  opts: PromoteOptions,
): Promise<PromoteResult> {
  const lines = [`Dry run: ${describeRequest(request, policy)}. Nothing is changed.`, ''];
  try {
    await api.patchPolicy(opts.namespace, opts.policy, patch, { dryRun: true });
    lines.push('API server:  accepts the request (checked with dryRun=All)');
  } catch (err) {
    if (err instanceof ApiError && err.status === 422) {
      lines.push(`API server:  would refuse it: ${err.message}`);
      return { exitCode: 1, output: lines.join('\n') };
    }
    if (!(err instanceof ApiError && err.status === 403)) apiRefusal(err, opts);
    // A dry-run patch is authorized like a real one; someone who may only read still learns
    // what the operator would decide, from the same rules checked locally below.
    lines.push(
      `API server:  not asked: you may not patch FailoverPolicies in ${opts.namespace}, so a real request would be refused`,
    );
  }
  const spec = failoverPolicySpec.safeParse({ ...(policy.object.spec as object), promotionRequest: request });
  if (!spec.success) {
    lines.push(
      `Operator:    cannot read the policy with this request: ${spec.error.issues.map((i) => i.message).join('; ')}`,
    );
    return { exitCode: 1, output: lines.join('\n') };
  }
  const observations = await readObservations(api, opts.namespace, opts.warn);
  const statusOf = (name: string) => policy.clusters.get(name);
  const input = gatherInput({
    policyName: policy.name,
    spec: spec.data,
    status: policy.status,
    facts: (name) => factsFromStatus(name, statusOf(name)),
    operatorVote: (active) => voteFromStatus(statusOf(active)),
    observations,
    now: opts.now,
  });
  const plan = decide(input);
  const verdict = explain(plan, request, policy);
  lines.push(`Operator:    ${verdict.text}`);
  lines.push('', 'What it would decide from (ReplicaCluster status and FailoverObservations now):');
  lines.push(...describeFacts(input.clusters, activePrimary(policy), opts.now));
  lines.push(...describeVotes(spec.data, input.votes, activePrimary(policy) ?? spec.data.primary, opts.now));
  return { exitCode: verdict.acts ? 0 : 1, output: lines.join('\n') };
}

/** What decide's plan means for this request, in words. */
export function explain(
  plan: Plan,
  request: PromotionRequest,
  policy: PolicyView,
): { acts: boolean; text: string } {
  const before = policy.status.currentOperation;
  const started = plan.status.currentOperation;
  if (before && plan.action.kind === 'RunStep')
    return {
      acts: false,
      text: `is busy: a ${before.kind} to ${before.to} (epoch ${before.epoch}) is at step ${before.step}; the request is considered when it ends`,
    };
  if (!before && started?.requestId === request.id) {
    const steps =
      started.kind === 'Switchover'
        ? `it fences ${started.from}, waits until ${started.to} has replayed everything, promotes it, re-points DNS and verifies it`
        : `it fences ${started.from} if reachable, promotes ${started.to}, re-points DNS and verifies it`;
    return {
      acts: true,
      text: `would start a ${started.kind} from ${started.from} to ${started.to}, epoch ${started.epoch - 1} → ${started.epoch}: ${steps}`,
    };
  }
  if (!before && started?.kind === 'Fence')
    return {
      acts: false,
      text: `would first fence ${started.from}, which accepts writes but is not the primary; the request is considered after that`,
    };
  const last = plan.status.lastRequest;
  if (
    last?.id === request.id &&
    last.outcome === 'Rejected' &&
    policy.status.lastHandledRequestId !== request.id
  )
    return { acts: false, text: `would refuse it (${last.reason}): ${last.message}` };
  if (plan.undiscovered)
    return {
      acts: false,
      text: `would first learn who the primary is (${plan.undiscovered.message}); the request waits`,
    };
  return {
    acts: false,
    text:
      request.id === policy.status.lastHandledRequestId
        ? `would ignore it: request ${request.id} was already handled (use a new --id)`
        : `would not act on it now (${plan.why})`,
  };
}

function describeFacts(
  clusters: Record<string, ClusterFacts>,
  active: string | undefined,
  now: Date,
): string[] {
  return Object.values(clusters).map((f) => {
    const label = `${f.name}${f.name === active ? ' (active primary)' : ''}`;
    if (!f.exists) return `  ${label}: no such ReplicaCluster`;
    if (!f.reachable) return `  ${label}: unreachable`;
    const lag =
      f.role === 'Standby'
        ? `, lag ${seconds(f.lagSeconds)} / ${bytes(f.lagBytes)}${f.lagObservedAt ? ` (measured ${age(f.lagObservedAt.toISOString(), now)} ago)` : ''}`
        : '';
    return `  ${label}: ${f.role}${lag}`;
  });
}

function describeVotes(spec: FailoverPolicySpec, votes: Vote[], primary: string, now: Date): string[] {
  const verdict = judgePrimary(spec, votes, now, primary);
  const lines = votes.map(
    (v) =>
      `  observer ${v.observer}: ${v.reachable ? 'reaches' : `cannot reach (${v.consecutiveFailures} failed probes)`} ${primary}, ${age(v.observedAt.toISOString(), now)} ago`,
  );
  if (lines.length === 0) lines.push(`  no observer has reported on ${primary}`);
  lines.push(`  verdict: ${verdict.down ? 'primary down' : 'primary not down'}: ${verdict.message}`);
  return lines;
}
