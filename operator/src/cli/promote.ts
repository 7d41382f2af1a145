/**
 * `kubectl failover switchover|promote|failover|reprotect`: records a person's request in
 * `spec.promotionRequest`. The API server checks it (the CRD's CEL rules); the operator acts on
 * it once. `--dry-run` asks the API server to check it without storing it, then runs the
 * operator's own `decide()` on what the API says now, and prints what the operator would do.
 */
import { randomBytes } from 'node:crypto';
import { agentAlive } from '../agent/liveness.ts';
import { type FailoverPolicySpec, failoverPolicySpec, type Operation } from '../api/v1alpha1/index.ts';
import { decide, type Plan } from '../controllers/failover-policy/decide.ts';
import { judgePrimary } from '../controllers/failover-policy/detection.ts';
import type { ClusterFacts, DecideInput, Vote } from '../controllers/failover-policy/facts.ts';
import { describeDivergence } from '../controllers/failover-policy/reprotect.ts';
import type { FailoverApi } from './api.ts';
import { age, bytes, seconds } from './format.ts';
import { activePrimary, decideInputOf, type PolicyView, readObservations, readPolicy } from './policies.ts';
import { dryRunPatch, patchRequest } from './policy-patch.ts';

export interface PromoteOptions {
  namespace: string;
  policy: string;
  /** The cluster to promote; for a Reprotect, the former primary to make a standby again. */
  target: string;
  kind: 'Switchover' | 'Failover' | 'Reprotect';
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

/**
 * The request as a JSON merge patch: a field the new request leaves out is deleted (null), else a
 * field of the previous request (maxLagSeconds, reason, requestedBy) would carry over into it.
 */
export function requestPatch(r: PromotionRequest): Record<string, unknown> {
  return { maxLagSeconds: null, reason: null, requestedBy: null, ...r };
}

export function describeRequest(r: PromotionRequest, p: PolicyView): string {
  if (r.kind === 'Reprotect')
    return `Reprotect of ${p.namespace}/${p.name}: ${r.target} made a standby of ${activePrimary(p) ?? 'the primary'} again${r.allowDataLoss ? ', discarding what it wrote after the fork if need be' : ''}`;
  return `${r.kind} of ${p.namespace}/${p.name} to ${r.target}${r.kind === 'Failover' && r.allowDataLoss ? ', data loss allowed' : ''}`;
}

/** A request already in spec that the operator has not acted on yet. */
function pendingRequest(p: PolicyView): PromotionRequest | undefined {
  const r = p.spec?.promotionRequest;
  return r && r.id !== p.status.lastHandledRequestId ? r : undefined;
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
    spec: { promotionRequest: requestPatch(request) },
  };
  if (!opts.dryRun) {
    // A conflict with the operator's own status writes is read and sent again; one with another
    // person's request, not handled yet, is refused as above.
    await patchRequest(api, opts, policy, patch, 'promotion request', (fresh) => {
      const other = pendingRequest(fresh);
      return other && !opts.replace
        ? `someone else asked at the same moment: request ${other.id} (${describeRequest(other, fresh)}) is pending; wait for it, or pass --replace`
        : undefined;
    });
    const lines = [`Requested: ${describeRequest(request, policy)} (request ${request.id}).`];
    // A reprotect waits on the agent's assessment: say at once what the operator makes of it.
    if (request.kind === 'Reprotect') {
      // Recorded whatever this says: a failure to judge it here is only a warning.
      const judged = await judgeWithOperator(api, policy, request, opts).catch((err: Error) => {
        opts.warn(`recorded, but could not tell what the operator will do: ${err.message}`);
        return undefined;
      });
      if (judged)
        lines.push(
          `From status now, the operator ${judged.verdict.text.replace(/^would /, 'will ')}.`,
          ...judged.discards,
        );
    }
    lines.push(
      'The operator acts on it once; follow it with:',
      `  kubectl failover status ${opts.policy} -n ${opts.namespace}`,
      `  kubectl failover history ${opts.policy} -n ${opts.namespace}`,
    );
    return { exitCode: 0, output: lines.join('\n') };
  }
  return dryRun(api, policy, request, patch, opts);
}

interface Judged {
  verdict: { acts: boolean; text: string };
  /** For a Reprotect that would start: what it discards, as lines. */
  discards: string[];
  input?: DecideInput;
  spec?: FailoverPolicySpec;
}

/** Runs the operator's own decide() on status as it is now, with the request in spec. */
async function judgeWithOperator(
  api: FailoverApi,
  policy: PolicyView,
  request: PromotionRequest,
  opts: PromoteOptions,
): Promise<Judged> {
  const spec = failoverPolicySpec.safeParse({ ...(policy.object.spec as object), promotionRequest: request });
  if (!spec.success) {
    return {
      verdict: {
        acts: false,
        text: `cannot read the policy with this request: ${spec.error.issues.map((i) => i.message).join('; ')}`,
      },
      discards: [],
    };
  }
  const observations = await readObservations(api, opts.namespace, opts.warn);
  const input = decideInputOf(policy, spec.data, observations, opts.now);
  const plan = decide(input);
  const verdict = explain(plan, request, policy, input);
  const started = plan.status.currentOperation;
  const discards =
    verdict.acts && started?.kind === 'Reprotect'
      ? [describeDiscarded(started.discarded, input.clusters[started.from])]
      : [];
  return { verdict, discards, input, spec: spec.data };
}

/** What a reprotect about to start discards, from the agent's assessment it starts from. */
function describeDiscarded(d: Operation['discarded'], f: ClusterFacts | undefined): string {
  if (f?.reprotectsItself)
    return "Discards:    what its provider's rebuild does not keep: RDS and DigitalOcean make a new replica and leave the old database for a person to delete; Aurora resynchronizes the old member";
  if (f?.agent?.divergence?.relation === 'Unrelated')
    return `Discards:    its own history, which is not the primary's: a re-clone replaces its data (the old data directory is kept aside)${d?.transactions !== undefined ? `; ${d.transactions} committed transaction(s)` : ''}`;
  if (!d || d.bytes === 0) return "Discards:    nothing (its WAL is a prefix of the primary's)";
  const txs = d.transactions === undefined ? 'an unknown number of' : String(d.transactions);
  return `Discards:    ${bytes(d.bytes)} (${d.bytes} bytes) of WAL after the fork at ${d.forkLsn ?? '?'}, up to ${d.endLsn ?? '?'}: ${txs} committed transaction(s)`;
}

async function dryRun(
  api: FailoverApi,
  policy: PolicyView,
  request: PromotionRequest,
  patch: unknown,
  opts: PromoteOptions,
): Promise<PromoteResult> {
  const lines = [`Dry run: ${describeRequest(request, policy)}. Nothing is changed.`, ''];
  const server = await dryRunPatch(api, opts, patch, 'promotion request');
  lines.push(server.line);
  if (server.refused) return { exitCode: 1, output: lines.join('\n') };
  const judged = await judgeWithOperator(api, policy, request, opts);
  lines.push(`Operator:    ${judged.verdict.text}`, ...judged.discards);
  const { input, spec } = judged;
  if (!input || !spec) return { exitCode: 1, output: lines.join('\n') };
  lines.push('', 'What it would decide from (ReplicaCluster status and FailoverObservations now):');
  lines.push(...describeFacts(input.clusters, activePrimary(policy), opts.now));
  lines.push(...describeVotes(spec, input.votes, activePrimary(policy) ?? spec.primary, opts.now));
  return { exitCode: judged.verdict.acts ? 0 : 1, output: lines.join('\n') };
}

/** What decide's plan means for this request, in words. */
export function explain(
  plan: Plan,
  request: PromotionRequest,
  policy: PolicyView,
  input?: DecideInput,
): { acts: boolean; text: string } {
  const before = policy.status.currentOperation;
  const started = plan.status.currentOperation;
  if (before && plan.action.kind === 'RunStep')
    return {
      acts: false,
      text: `is busy: a ${before.kind} to ${before.to} (epoch ${before.epoch}) is at step ${before.step}; the request is considered when it ends`,
    };
  if (!before && started?.requestId === request.id && started.kind === 'Reprotect') {
    return {
      acts: true,
      text: `would start a Reprotect of ${started.from} as a standby of ${started.to}, epoch ${started.epoch} unchanged: ${reprotectSteps(started, input?.clusters[started.from])}`,
    };
  }
  if (!before && started?.requestId === request.id) {
    const steps =
      started.kind === 'Switchover'
        ? started.demoted
          ? `it fences ${started.from}, waits until ${started.to} has replayed everything, then the agent beside ${started.from} stops it cleanly; it promotes ${started.to} once that last WAL is replayed, re-points DNS and verifies it, and ${started.from} restarts as its standby (nothing to rewind)`
          : `it fences ${started.from}, waits until ${started.to} has replayed everything, promotes it, re-points DNS and verifies it`
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

/** How a reprotect of `f` would go: by its provider, or by the agent beside it, after its assessment. */
function reprotectSteps(op: Operation, f: ClusterFacts | undefined): string {
  if (f?.reprotectsItself) return `its provider makes ${op.from} a replica of ${op.to} again`;
  const d = f?.agent?.divergence;
  const agent = `the agent beside ${op.from}`;
  if (d?.relation === 'Diverged')
    return `${agent} stops it, rewinds it with pg_rewind (a re-clone with pg_basebackup instead, where spec.reprotect.allowReclone allows it and a rewind cannot) and restarts it as a standby`;
  if (d?.relation === 'Unrelated')
    return `${agent} re-clones it with pg_basebackup (only where spec.reprotect.allowReclone allows it; the old data directory is kept aside): ${describeDivergence(d)}`;
  return `${agent} restarts it as a standby; nothing is discarded`;
}

function describeFacts(
  clusters: Record<string, ClusterFacts>,
  active: string | undefined,
  now: Date,
): string[] {
  return Object.values(clusters).flatMap((f) => {
    const line = describeCluster(f, active, now);
    return f.agent ? [line, describeAgent(f.agent, now)] : [line];
  });
}

function describeCluster(f: ClusterFacts, active: string | undefined, now: Date): string {
  const label = `${f.name}${f.name === active ? ' (active primary)' : ''}`;
  if (!f.exists) return `  ${label}: no such ReplicaCluster`;
  if (!f.reachable) return `  ${label}: unreachable`;
  const lag =
    f.role === 'Standby'
      ? `, lag ${seconds(f.lagSeconds)} / ${bytes(f.lagBytes)}${f.lagObservedAt ? ` (measured ${age(f.lagObservedAt.toISOString(), now)} ago)` : ''}`
      : '';
  return `  ${label}: ${f.role}${lag}`;
}

/** The database agent's last report: alive or not, the server, and its comparison with the primary. */
function describeAgent(a: NonNullable<ClusterFacts['agent']>, now: Date): string {
  const alive = agentAlive(a, now);
  const head = `    agent ${a.name}: ${alive ? 'reported' : 'not reporting, last report'} ${age(a.reportedAt, now)} ago, server ${a.server}`;
  if (a.problem) return `${head}; refuses: ${a.problem.message}`;
  const d = a.divergence;
  if (!d) return `${head}; no comparison with the primary yet`;
  const figures =
    d.relation === 'Diverged'
      ? `, fork ${d.forkLsn ?? '?'}, WAL to ${d.localEndLsn ?? '?'} (timeline ${d.localTimeline ?? '?'}), ${d.divergedBytes} bytes and ${d.divergedTransactions ?? 'an unknown number of'} transaction(s) past the fork`
      : '';
  return `${head}; compared with ${d.primary} ${age(d.assessedAt, now)} ago: ${d.relation}${figures}`;
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
