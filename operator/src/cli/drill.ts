/**
 * `kubectl failover drill run|cancel|history`: a person asks for a drill now, or for the one in
 * progress to stop, by recording `spec.drillRequest`; the operator answers each request id once in
 * `status.lastDrillRequest`, and the command waits for that answer. `--dry-run` runs the operator's
 * own `decide()` on status as it is now instead. `history` prints `status.drills` with the
 * figures measured from the client's side (the canary) and the drill in progress.
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { agentAlive } from '../agent/liveness.ts';
import {
  type DrillMeasure,
  type DrillReport,
  type DrillRequest,
  type DrillState,
  type FailoverObservationSpec,
  type FailoverPolicySpec,
  type FailoverPolicyStatus,
  failoverPolicySpec,
  failoverPolicyStatus,
} from '../api/v1alpha1/index.ts';
import { decide, type Plan } from '../controllers/failover-policy/decide.ts';
import type { ClusterFacts, DecideInput } from '../controllers/failover-policy/facts.ts';
import { ApiError, type FailoverApi, failoverPolicyType } from './api.ts';
import { age, seconds, table, timestamp } from './format.ts';
import {
  activePrimary,
  decideInputOf,
  notFound,
  type PolicyView,
  readObservations,
  readPolicy,
} from './policies.ts';
import { dryRunPatch, patchRefusal } from './policy-patch.ts';

export interface DrillRequestOptions {
  namespace: string;
  policy: string;
  action: DrillRequest['action'];
  reason?: string;
  id?: string;
  /** Supersede a request the operator has not handled yet (a Cancel always does). */
  replace: boolean;
  dryRun: boolean;
  /** How long to wait for the operator's answer; 0: record the request and return. */
  timeoutMs: number;
  now: Date;
  warn: (message: string) => void;
}

export interface DrillCommandResult {
  output: string;
  /** 0: accepted (or would be); 1: refused, or not answered within the timeout. */
  exitCode: number;
}

/** How often the answer is looked for while waiting. */
const POLL_MS = 500;
/** A REASON cell longer than this is cut; -o json has it whole. */
const REASON_WIDTH = 60;

/** A fresh request id, a DNS label as the schema wants: drill-run-20261121-030405-a1b2. */
export function drillRequestId(action: DrillRequest['action'], now: Date): string {
  const stamp = now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace('T', '-')
    .replace(/\.\d+Z$/, '')
    .toLowerCase();
  return `drill-${action.toLowerCase()}-${stamp}-${randomBytes(2).toString('hex')}`;
}

/** kubectl's form of a timeout: 30s, 2m, or a number of seconds; 0 does not wait. */
export function parseTimeout(value: string | undefined, fallbackMs: number): number | undefined {
  if (value === undefined) return fallbackMs;
  const m = /^(\d+)(s|m)?$/.exec(value);
  if (!m) return undefined;
  return Number(m[1]) * (m[2] === 'm' ? 60_000 : 1000);
}

/**
 * The request as a JSON merge patch: a field the new request leaves out is deleted (null), else
 * the previous request's reason or requestedBy would carry over into it.
 */
export function drillRequestPatch(r: DrillRequest): Record<string, unknown> {
  return { reason: null, requestedBy: null, ...r };
}

function describeRequest(r: DrillRequest, p: Pick<PolicyView, 'namespace' | 'name'>): string {
  return r.action === 'Run'
    ? `run a drill of ${p.namespace}/${p.name} now`
    : `cancel the drill of ${p.namespace}/${p.name} in progress`;
}

/** A drill request in spec that the operator has not answered yet. */
function pendingRequest(p: PolicyView): DrillRequest | undefined {
  const r = p.spec?.drillRequest;
  return r && r.id !== p.status.lastHandledDrillRequestId ? r : undefined;
}

/** What stops a request before it is written: with a reason a person can act on. */
function refuseBeforeWriting(policy: PolicyView, opts: DrillRequestOptions): string | undefined {
  const where = `${opts.policy} -n ${opts.namespace}`;
  if (opts.action === 'Run' && policy.spec && !policy.spec.drills)
    return (
      `FailoverPolicy ${opts.namespace}/${opts.policy} has no spec.drills, which a drill needs (hold, maximum duration, lag limit): ` +
      'add spec.drills (suspend: true runs drills only on request)'
    );
  if (opts.dryRun) return undefined;
  const drill = policy.status.drill;
  if (opts.action === 'Run' && drill)
    return `drill ${drill.id} is in progress (leg ${drill.leg}, ${drill.from}→${drill.to}): wait for it (kubectl failover drill history ${where}), or stop it with kubectl failover drill cancel ${where}`;
  const pending = pendingRequest(policy);
  if (opts.action === 'Run' && pending && !opts.replace)
    return (
      `FailoverPolicy ${opts.namespace}/${opts.policy} already has a drill request the operator has not handled: ` +
      `${pending.id} (${pending.action}${pending.requestedBy ? `, by ${pending.requestedBy}` : ''}). ` +
      'Wait for it, or pass --replace to supersede it.'
    );
  return undefined;
}

/** How often a request patch that met a conflicting write is tried. */
const PATCH_ATTEMPTS = 5;

export async function drillRequestCommand(
  api: FailoverApi,
  opts: DrillRequestOptions,
): Promise<DrillCommandResult> {
  const policy = await readPolicy(api, opts.namespace, opts.policy);
  const refusal = refuseBeforeWriting(policy, opts);
  if (refusal) throw new Error(refusal);
  const requestedBy = await api.whoAmI();
  const request: DrillRequest = {
    id: opts.id ?? drillRequestId(opts.action, opts.now),
    action: opts.action,
    ...(opts.reason ? { reason: opts.reason } : {}),
    ...(requestedBy ? { requestedBy: requestedBy.slice(0, 253) } : {}),
  };
  // Conditional on the version read: a request someone makes at the same moment, or the
  // operator's answer to the one pending, is not silently overwritten.
  const patch = {
    metadata: { resourceVersion: policy.object.metadata.resourceVersion },
    spec: { drillRequest: drillRequestPatch(request) },
  };
  if (opts.dryRun) return dryRun(api, policy, request, patch, opts);

  let superseded = pendingRequest(policy);
  // The operator writes status often during a drill, and each write moves the resourceVersion: a
  // conflict is read again, judged again and retried a few times before giving up.
  let attemptPatch = patch;
  for (let attempt = 1; ; attempt++) {
    try {
      await api.patchPolicy(opts.namespace, opts.policy, attemptPatch);
      break;
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 409) || attempt >= PATCH_ATTEMPTS)
        patchRefusal(err, opts, 'drill request');
      const fresh = await readPolicy(api, opts.namespace, opts.policy);
      const again = refuseBeforeWriting(fresh, opts);
      if (again) throw new Error(again);
      superseded = pendingRequest(fresh);
      attemptPatch = { ...patch, metadata: { resourceVersion: fresh.object.metadata.resourceVersion } };
    }
  }
  const lines = [`Requested: ${describeRequest(request, policy)} (request ${request.id}).`];
  if (superseded)
    lines.push(
      `It replaces request ${superseded.id} (${superseded.action}), which the operator had not handled: that one is never acted on.`,
    );
  const follow = followUp(opts);
  if (opts.timeoutMs === 0) return { exitCode: 0, output: [...lines, ...follow].join('\n') };

  const answered = await waitForAnswer(api, opts, request.id);
  if (!answered) {
    const now = await readPolicy(api, opts.namespace, opts.policy);
    const judged = await judgeWithOperator(api, now, request, { ...opts, now: new Date() }).catch(
      (err: Error) => ({ acts: false, text: `cannot tell why: ${err.message}` }),
    );
    lines.push(
      `The operator has not answered within ${opts.timeoutMs / 1000} s; the request stays recorded and is acted on once.`,
      `From status now, the operator ${judged.text}.`,
      ...follow,
    );
    return { exitCode: 1, output: lines.join('\n') };
  }
  const outcome = describeAnswer(answered, request, superseded);
  lines.push(outcome.text, ...(outcome.ok ? follow : []));
  return { exitCode: outcome.ok ? 0 : 1, output: lines.join('\n') };
}

function followUp(opts: DrillRequestOptions): string[] {
  const where = `${opts.policy} -n ${opts.namespace}`;
  return [
    'Follow it with:',
    `  kubectl failover drill history ${where}`,
    ...(opts.action === 'Run' ? ['Stop it with:', `  kubectl failover drill cancel ${where}`] : []),
  ];
}

/** Reads the policy until the operator has answered the request, or the timeout passes. */
async function waitForAnswer(
  api: FailoverApi,
  opts: DrillRequestOptions,
  id: string,
): Promise<Pick<PolicyView, 'status'> | undefined> {
  const deadline = Date.now() + opts.timeoutMs;
  for (;;) {
    // Only the policy: its status has the answer (the ReplicaClusters are not needed for it).
    const object = await api
      .get(failoverPolicyType, opts.namespace, opts.policy)
      .catch((err) => notFound(err, `FailoverPolicy ${opts.policy}`, opts.namespace));
    const parsed = failoverPolicyStatus.safeParse(object.status ?? {});
    const status = parsed.success ? parsed.data : {};
    if (status.lastDrillRequest?.id === id || status.lastHandledDrillRequestId === id) return { status };
    if (Date.now() >= deadline) return undefined;
    await sleep(Math.min(POLL_MS, Math.max(0, deadline - Date.now())));
  }
}

/** The operator's answer, in words; ok: what was asked happened (or, for a Cancel, nothing runs). */
export function describeAnswer(
  p: Pick<PolicyView, 'status'>,
  request: DrillRequest,
  superseded?: DrillRequest,
): { ok: boolean; text: string } {
  const answer = p.status.lastDrillRequest;
  if (answer?.id !== request.id)
    return {
      ok: true,
      text: `Handled: request ${request.id} was acted on, and a newer request's answer has replaced its outcome in status.`,
    };
  if (answer.outcome === 'Rejected') {
    // A Cancel that replaced a Run not yet handled has done its work: nothing was started.
    if (request.action === 'Cancel' && superseded?.action === 'Run' && !p.status.drill)
      return {
        ok: true,
        text: `No drill runs: the run request ${superseded.id} was withdrawn before the operator acted on it (the operator: ${answer.message}).`,
      };
    return { ok: false, text: `Rejected: ${answer.message}` };
  }
  if (request.action === 'Cancel') {
    const drill = p.status.drill;
    return {
      ok: true,
      text: `Accepted: ${answer.message}${drill ? `: ${stopConsequence(drill, p.status)}` : ''}.`,
    };
  }
  const running = p.status.drill?.requestId === request.id ? p.status.drill : undefined;
  if (running)
    return {
      ok: true,
      text: `Accepted: drill ${running.id} started: from ${running.from} out to ${running.to} and back (leg ${running.leg}).`,
    };
  const filed = p.status.drills?.find((r) => r.requestId === request.id);
  if (filed)
    return {
      ok: filed.result === 'Succeeded',
      text: `Accepted: drill ${filed.id} from ${filed.from} to ${filed.to} has already ended: ${filed.result}: ${filed.reason ?? ''}`,
    };
  return { ok: true, text: `Accepted: ${answer.message}.` };
}

/** What stopping a drill does, from where it is. */
export function stopConsequence(
  drill: DrillState,
  status: Pick<FailoverPolicyStatus, 'currentOperation'>,
): string {
  if (drill.leg === 'Starting') return 'nothing has moved yet';
  if (drill.leg === 'Back') return `it is already switching back to ${drill.from}`;
  if (drill.leg === 'Holding') return `it switches back to ${drill.from} at once`;
  const op = status.currentOperation;
  const notPromoted = ['Detected', 'Fencing', 'CatchingUp', 'RollingBack', 'Aborted'];
  if (op && op.id === drill.outboundOperationId && notPromoted.includes(op.step))
    return `its switchover to ${drill.to} has not promoted: it rolls back, nothing moves`;
  return `its switchover to ${drill.to} finishes, then it switches back to ${drill.from} at once`;
}

async function dryRun(
  api: FailoverApi,
  policy: PolicyView,
  request: DrillRequest,
  patch: unknown,
  opts: DrillRequestOptions,
): Promise<DrillCommandResult> {
  const lines = [
    `Dry run: ${describeRequest(request, policy)} (request ${request.id}). Nothing is changed.`,
    '',
  ];
  const server = await dryRunPatch(api, opts, patch, 'drill request');
  lines.push(server.line);
  if (server.refused) return { exitCode: 1, output: lines.join('\n') };
  const judged = await judgeWithOperator(api, policy, request, opts);
  lines.push(`Operator:    ${judged.text}`);
  if (judged.input && judged.plan)
    lines.push(
      '',
      'What it would decide from (ReplicaCluster status and FailoverObservations now):',
      ...describeDrillFacts(judged.input, judged.plan, activePrimary(policy)),
    );
  return { exitCode: judged.acts ? 0 : 1, output: lines.join('\n') };
}

interface Judged {
  acts: boolean;
  text: string;
  input?: DecideInput;
  plan?: Plan;
}

async function judgeWithOperator(
  api: FailoverApi,
  policy: PolicyView,
  request: DrillRequest,
  opts: Pick<DrillRequestOptions, 'namespace' | 'now' | 'warn'>,
): Promise<Judged> {
  const observations = await readObservations(api, opts.namespace, opts.warn);
  return judgeDrillRequest(policy, request, observations, opts.now);
}

/** Runs the operator's own decide() on status as it is, with the request in spec. */
export function judgeDrillRequest(
  policy: PolicyView,
  request: DrillRequest,
  observations: FailoverObservationSpec[],
  now: Date,
): Judged {
  const spec = failoverPolicySpec.safeParse({ ...(policy.object.spec as object), drillRequest: request });
  if (!spec.success)
    return {
      acts: false,
      text: `cannot read the policy with this request: ${spec.error.issues.map((i) => i.message).join('; ')}`,
    };
  const input = decideInputOf(policy, spec.data, observations, now);
  const plan = decide(input);
  return { ...explainDrill(plan, request, policy.status, spec.data), input, plan };
}

/** What decide's plan means for this drill request, in words. */
export function explainDrill(
  plan: Plan,
  request: DrillRequest,
  before: FailoverPolicyStatus,
  spec: FailoverPolicySpec,
): { acts: boolean; text: string } {
  if (before.lastHandledDrillRequestId === request.id)
    return {
      acts: false,
      text: `would ignore it: request ${request.id} was already handled (use a new --id)`,
    };
  const answer = plan.status.lastDrillRequest;
  if (answer?.id === request.id) {
    if (answer.outcome === 'Rejected') return { acts: false, text: `would refuse it: ${answer.message}` };
    const started = plan.status.drill;
    if (request.action === 'Run' && started?.requestId === request.id) {
      const d = spec.drills;
      const hold = d
        ? `holds there ${d.holdSeconds} s and switches back (at most ${d.maxDurationSeconds} s in all)`
        : 'and back';
      return {
        acts: true,
        text: `would start a drill from ${started.from} out to ${started.to}: the canary writes through the DNS name, it switches over to ${started.to}, ${hold}`,
      };
    }
    const stopping = before.drill;
    return {
      acts: true,
      text: `would accept it: ${answer.message}${request.action === 'Cancel' && stopping ? `: ${stopConsequence(stopping, before)}` : ''}`,
    };
  }
  const op = before.currentOperation;
  if (op && op.step !== 'Completed' && op.step !== 'Aborted')
    return {
      acts: false,
      text: `is busy: a ${op.kind} ${op.from} → ${op.to} (epoch ${op.epoch}) is at step ${op.step}; the request is considered when it ends`,
    };
  const started = plan.status.currentOperation;
  if (started && started.id !== op?.id)
    return {
      acts: false,
      text: `would first start a ${started.kind} ${started.from} → ${started.to} (${started.reason ?? started.trigger}); the request is considered after it`,
    };
  if (plan.undiscovered)
    return {
      acts: false,
      text: `would first learn who the primary is (${plan.undiscovered.message}); the request waits`,
    };
  if (plan.verdict?.down)
    return { acts: false, text: `would not start a drill: the primary is down (${plan.verdict.message})` };
  return { acts: false, text: `would not act on it now (${plan.why})` };
}

/** The facts a drill depends on: roles, lag against the limit, who brings a former primary back. */
function describeDrillFacts(input: DecideInput, plan: Plan, active: string | undefined): string[] {
  const limit = input.spec.drills?.abortIfLagSecondsAbove;
  const lines = Object.values(input.clusters).map((f) => {
    const label = `${f.name}${f.name === active ? ' (active primary)' : ''}`;
    if (!f.exists) return `  ${label}: no such ReplicaCluster`;
    if (f.unprobed) return `  ${label}: not probed yet`;
    if (!f.reachable) return `  ${label}: unreachable`;
    const lag =
      f.role === 'Standby'
        ? `, lag ${seconds(f.lagSeconds)}${limit !== undefined ? ` (a drill needs ${limit}s at most)` : ''}`
        : '';
    return `  ${label}: ${f.role}${lag}; ${comesBack(f, input.now)}`;
  });
  if (plan.verdict)
    lines.push(`  verdict: primary ${plan.verdict.down ? 'down' : 'not down'}: ${plan.verdict.message}`);
  return lines;
}

/** Whether a cluster becomes a standby again after a switchover away from it, and why. */
function comesBack(f: ClusterFacts, now: Date): string {
  if (f.rejoinsAfterSwitchover) return 'its provider makes it a standby again after a switchover';
  if (f.agent && agentAlive(f.agent, now))
    return `agent ${f.agent.name} reported ${age(f.agent.reportedAt, now)} ago (it brings it back as a standby)`;
  if (f.agent)
    return `agent ${f.agent.name} silent since ${age(f.agent.reportedAt, now)} ago: a drill could not come back through it`;
  return 'no database agent reports for it: a drill could not come back through it (docs/agent.md)';
}

/** 12.3s (canary): a leg's RTO and who measured it. */
function legRto(m: DrillMeasure | undefined, fallback?: number): string {
  if (!m) return seconds(fallback);
  return `${seconds(m.rtoSeconds)} (${m.measuredBy.toLowerCase()})`;
}

/**
 * Canary rows lost, of those the old primary acknowledged before the switch out: "0 of 212", as
 * the drill's Event says it (lostWrites counts both legs; the way back rarely loses any).
 */
export function lostOf(r: Pick<DrillReport, 'lostWrites' | 'out'>): string {
  if (r.lostWrites === undefined) return '-';
  return r.out?.acknowledged !== undefined
    ? `${r.lostWrites} of ${r.out.acknowledged}`
    : String(r.lostWrites);
}

function duration(from: string, to: string): string {
  const s = (new Date(to).getTime() - new Date(from).getTime()) / 1000;
  return Number.isFinite(s) && s >= 0 ? seconds(Math.round(s)) : '-';
}

const truncate = (text: string, width: number) =>
  text.length > width ? `${text.slice(0, width - 1)}…` : text;

/** status.drills as a table, newest first (the order status keeps). */
export function drillTable(reports: DrillReport[]): string {
  return table(
    ['ID', 'RESULT', 'FROM→TO', 'STARTED', 'DURATION', 'RTO OUT', 'RTO BACK', 'RPO', 'DNS', 'REASON'],
    reports.map((r) => [
      r.id,
      r.result,
      // A drill skipped before it chose a standby is filed with to = from.
      `${r.from}→${r.to === r.from ? '-' : r.to}`,
      timestamp(r.startedAt),
      duration(r.startedAt, r.completedAt),
      legRto(r.out, r.rtoSeconds),
      legRto(r.back),
      lostOf(r),
      seconds(r.dnsVerifySeconds),
      truncate(r.reason ?? '', REASON_WIDTH),
    ]),
  );
}

/** When the drill's current leg began, as status tells it. */
function legSince(drill: DrillState, status: FailoverPolicyStatus): string {
  const op = (id: string | undefined) =>
    id === undefined
      ? undefined
      : status.currentOperation?.id === id
        ? status.currentOperation
        : status.history?.find((r) => r.id === id);
  if (drill.leg === 'Out') return op(drill.outboundOperationId)?.startedAt ?? drill.startedAt;
  if (drill.leg === 'Back') return op(drill.backOperationId)?.startedAt ?? drill.startedAt;
  if (drill.leg === 'Holding') {
    const out = status.history?.find((r) => r.id === drill.outboundOperationId);
    return out?.completedAt ?? drill.startedAt;
  }
  return drill.startedAt;
}

/** One line for the drill in progress, or undefined. */
export function drillInProgress(status: FailoverPolicyStatus, now: Date): string | undefined {
  const d = status.drill;
  if (!d) return undefined;
  const op = status.currentOperation;
  const step =
    op && (op.id === d.outboundOperationId || op.id === d.backOperationId)
      ? `, switchover at step ${op.step}`
      : '';
  const back =
    d.leg === 'Holding' && d.returnAfter && !d.stop ? `, switches back at ${timestamp(d.returnAfter)}` : '';
  const stop = d.stop ? `; stopping (${d.stop.result}): ${d.stop.reason}` : '';
  const requested = d.requestId ? `, on request ${d.requestId}` : '';
  return `In progress: drill ${d.id} ${d.from}→${d.to}, leg ${d.leg} for ${age(legSince(d, status), now)}${step}${back} (started ${age(d.startedAt, now)} ago${requested})${stop}`;
}

/** The drills part of a policy's history, for people: the one in progress and the table. */
export function describeDrills(p: Pick<PolicyView, 'spec' | 'status'>, now: Date): string[] {
  const lines: string[] = [];
  const running = drillInProgress(p.status, now);
  if (running) lines.push(running);
  if (p.status.drills?.length) lines.push(drillTable(p.status.drills));
  else if (p.spec?.drills)
    lines.push(
      `  none yet (schedule "${p.spec.drills.schedule}" in ${p.spec.drills.timeZone}${p.spec.drills.suspend ? ', suspended' : ''})`,
    );
  else lines.push('  none: the policy schedules no drills (spec.drills)');
  if (p.status.nextDrillTime) lines.push('', `Next drill: ${timestamp(p.status.nextDrillTime)}`);
  return lines;
}

export async function drillHistoryCommand(
  api: FailoverApi,
  opts: { namespace: string; policy: string; output: 'table' | 'json'; now: Date },
): Promise<string> {
  const p = await readPolicy(api, opts.namespace, opts.policy);
  if (opts.output === 'json') return JSON.stringify(p.status.drills ?? [], null, 2);
  return [
    `FailoverPolicy ${p.namespace}/${p.name}: primary ${activePrimary(p) ?? '-'}; drills, newest first:`,
    ...describeDrills(p, opts.now),
  ].join('\n');
}
