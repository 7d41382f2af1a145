/**
 * `kubectl failover drill run|cancel|history`: a person asks for a drill now (a round trip, or an
 * isolated copy of a standby), or for the one in progress to stop, by recording
 * `spec.drillRequest`; the operator answers each request id once in `status.lastDrillRequest`, and
 * the command waits for that answer. Before writing a run, and instead of writing on `--dry-run`,
 * it runs the operator's own `decide()` on status as it is now. `history` prints `status.drills`
 * with the figures measured from the client's side (the canary) and the drill in progress.
 */
import { randomBytes } from 'node:crypto';
import { agentAlive } from '../agent/liveness.ts';
import {
  type DrillMeasure,
  type DrillMode,
  type DrillReport,
  type DrillRequest,
  type DrillState,
  type FailoverObservationSpec,
  type FailoverPolicySpec,
  type FailoverPolicyStatus,
  failoverPolicySpec,
} from '../api/v1alpha1/index.ts';
import { decide, type Plan } from '../controllers/failover-policy/decide.ts';
import type { ClusterFacts, DecideInput } from '../controllers/failover-policy/facts.ts';
import type { FailoverApi } from './api.ts';
import { age, seconds, table, timestamp } from './format.ts';
import {
  activePrimary,
  decideInputOf,
  type PolicyView,
  pollStatus,
  readObservations,
  readPolicy,
} from './policies.ts';
import { dryRunPatch, patchRequest } from './policy-patch.ts';

export interface DrillRequestOptions {
  namespace: string;
  policy: string;
  action: DrillRequest['action'];
  /** Run: the kind of drill; the policy's spec.drills.mode when unset. */
  mode?: DrillMode;
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
  return parseDuration(value);
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * A duration as kubectl's flags take one (Go's time.ParseDuration: 1m30s, 1.5h, 500ms), or a
 * bare number of seconds; undefined when it is neither.
 */
export function parseDuration(value: string): number | undefined {
  if (/^\d+$/.test(value)) return Number(value) * 1000;
  if (!/^(\d+(\.\d+)?(ms|s|m|h))+$/.test(value)) return undefined;
  let ms = 0;
  for (const [, n, , unit] of value.matchAll(/(\d+(\.\d+)?)(ms|s|m|h)/g))
    ms += Number(n) * (UNIT_MS[unit ?? 's'] ?? 1000);
  return Math.round(ms);
}

/** The drill modes, as `--mode` takes them (exactly, as kubectl takes an enum). */
export const DRILL_MODES: readonly DrillMode[] = ['RoundTrip', 'Isolated'];

/**
 * The request as a JSON merge patch: a field the new request leaves out is deleted (null), else
 * the previous request's reason, requestedBy or mode would carry over into it.
 */
export function drillRequestPatch(r: DrillRequest): Record<string, unknown> {
  return { reason: null, requestedBy: null, mode: null, ...r };
}

/** The kind of drill a run request starts: its own mode, else the policy's. */
export function requestMode(r: DrillRequest, spec: FailoverPolicySpec | undefined): DrillMode {
  return r.mode ?? spec?.drills?.mode ?? 'RoundTrip';
}

function describeRequest(r: DrillRequest, p: Pick<PolicyView, 'namespace' | 'name' | 'spec'>): string {
  const kind = requestMode(r, p.spec) === 'Isolated' ? 'an isolated drill' : 'a drill';
  return r.action === 'Run'
    ? `run ${kind} of ${p.namespace}/${p.name} now`
    : `cancel the drill of ${p.namespace}/${p.name} in progress`;
}

const isIsolated = (d: { mode?: DrillMode; isolated?: object }) => d.mode === 'Isolated' || !!d.isolated;

/** "drill d1" or "isolated drill d1". */
const drillName = (d: DrillState) => `${isIsolated(d) ? 'isolated drill' : 'drill'} ${d.id}`;

/** What an isolated drill's copy is: "a copy of b on port 5433" (a provider's port comes later). */
function copyOf(d: DrillState): string {
  return d.isolated?.copiedBy === 'Provider'
    ? `a copy of ${d.to} made by its provider`
    : `a copy of ${d.to} on port ${d.isolated?.port ?? '?'}`;
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
    return `${drillName(drill)} is in progress (leg ${drill.leg}, ${isIsolated(drill) ? copyOf(drill) : `${drill.from}→${drill.to}`}): wait for it (kubectl failover drill history ${where}), or stop it with kubectl failover drill cancel ${where}`;
  const pending = pendingRequest(policy);
  if (opts.action === 'Run' && pending && !opts.replace)
    return (
      `FailoverPolicy ${opts.namespace}/${opts.policy} already has a drill request the operator has not handled: ` +
      `${pending.id} (${pending.action}${pending.requestedBy ? `, by ${pending.requestedBy}` : ''}). ` +
      'Wait for it, or pass --replace to supersede it.'
    );
  return undefined;
}

/**
 * A run the operator's own rules refuse on status as it is now (no agent beside the standby, a
 * standby that lags, the primary not writable) is refused here, before anything is written; the
 * operator's answer remains the word on anything this cannot see. A failure to judge is no refusal.
 */
async function refusedByOperator(
  api: FailoverApi,
  policy: PolicyView,
  request: DrillRequest,
  opts: DrillRequestOptions,
): Promise<string | undefined> {
  if (request.action !== 'Run') return undefined;
  const judged = await judgeWithOperator(api, policy, request, opts).catch(() => undefined);
  if (!judged?.refusal) return undefined;
  const mode = request.mode ? ` --mode ${request.mode}` : '';
  return (
    `the operator would refuse this ${requestMode(request, policy.spec) === 'Isolated' ? 'isolated drill' : 'drill'}: ${judged.refusal}. ` +
    `Nothing was recorded; kubectl failover drill run ${opts.policy} -n ${opts.namespace}${mode} --dry-run shows what it decides from.`
  );
}

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
    ...(opts.action === 'Run' && opts.mode ? { mode: opts.mode } : {}),
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
  const refused = await refusedByOperator(api, policy, request, opts);
  if (refused) throw new Error(refused);

  const applied = await patchRequest(api, opts, policy, patch, 'drill request', (fresh) =>
    refuseBeforeWriting(fresh, opts),
  );
  const superseded = pendingRequest(applied);
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
function waitForAnswer(
  api: FailoverApi,
  opts: DrillRequestOptions,
  id: string,
): Promise<Pick<PolicyView, 'status'> | undefined> {
  return pollStatus(api, opts, opts.timeoutMs, POLL_MS, (parsed) => {
    const status = parsed ?? {};
    return status.lastDrillRequest?.id === id || status.lastHandledDrillRequestId === id
      ? { status }
      : undefined;
  });
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
      text: isIsolated(running)
        ? `Accepted: isolated drill ${running.id} started: ${copyOf(running)}, written to through ${running.isolated?.recordName ?? 'the drill record'}; nothing in production moves (leg ${running.leg}).`
        : `Accepted: drill ${running.id} started: from ${running.from} out to ${running.to} and back (leg ${running.leg}).`,
    };
  const filed = p.status.drills?.find((r) => r.requestId === request.id);
  if (filed)
    return {
      ok: filed.result === 'Succeeded',
      text: `Accepted: ${isIsolated(filed) ? `isolated drill ${filed.id} of ${filed.to}` : `drill ${filed.id} from ${filed.from} to ${filed.to}`} has already ended: ${filed.result}: ${filed.reason ?? ''}`,
    };
  return { ok: true, text: `Accepted: ${answer.message}.` };
}

/** What stopping a drill does, from where it is. */
export function stopConsequence(
  drill: DrillState,
  status: Pick<FailoverPolicyStatus, 'currentOperation'>,
): string {
  if (isIsolated(drill)) return stopIsolatedConsequence(drill);
  if (drill.leg === 'Starting') return 'nothing has moved yet';
  if (drill.leg === 'Back') return `it is already switching back to ${drill.from}`;
  if (drill.leg === 'Holding') return `it switches back to ${drill.from} at once`;
  const op = status.currentOperation;
  const notPromoted = ['Detected', 'Fencing', 'CatchingUp', 'RollingBack', 'Aborted'];
  if (op && op.id === drill.outboundOperationId && notPromoted.includes(op.step))
    return `its switchover to ${drill.to} has not promoted: it rolls back, nothing moves`;
  return `its switchover to ${drill.to} finishes, then it switches back to ${drill.from} at once`;
}

/** An isolated drill stops by removing its record and its copy; nothing in production moved. */
function stopIsolatedConsequence(drill: DrillState): string {
  const record = drill.isolated?.recordName ?? 'the drill record';
  const copy = `the copy of ${drill.to}`;
  const maker = drill.isolated?.copiedBy === 'Provider' ? 'its provider' : `the agent beside ${drill.to}`;
  switch (drill.leg) {
    case 'Copying':
      return `nothing in production moved; ${maker} deletes ${copy} it is making (no record was written yet)`;
    case 'Pointing':
      return `nothing in production moved; ${record} is deleted, then ${copy}`;
    case 'Writing':
      return `nothing in production moved; the canary stops, ${record} is deleted, then ${copy}`;
    case 'Removing':
      return `it is already deleting ${record}; ${copy} goes next`;
    default:
      return `it is already removing ${copy}`;
  }
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
  /** The operator's own message when its rules refuse the request outright. */
  refusal?: string;
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
): { acts: boolean; text: string; refusal?: string } {
  if (before.lastHandledDrillRequestId === request.id)
    return {
      acts: false,
      text: `would ignore it: request ${request.id} was already handled (use a new --id)`,
    };
  const answer = plan.status.lastDrillRequest;
  if (answer?.id === request.id) {
    if (answer.outcome === 'Rejected')
      return { acts: false, text: `would refuse it: ${answer.message}`, refusal: answer.message };
    const started = plan.status.drill;
    if (request.action === 'Run' && started?.requestId === request.id && isIsolated(started))
      return { acts: true, text: isolatedStory(started, spec) };
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

/** What an isolated drill that starts will do, for the dry run. */
function isolatedStory(d: DrillState, spec: FailoverPolicySpec): string {
  const maker =
    d.isolated?.copiedBy === 'Provider'
      ? `its provider makes a copy of it and promotes it`
      : `the agent beside ${d.to} copies it and promotes the copy on port ${d.isolated?.port ?? '?'}`;
  const drills = spec.drills;
  const rows = drills ? `${drills.isolated.minCanaryWrites} rows` : 'rows';
  const limit = drills ? ` (at most ${drills.maxDurationSeconds} s)` : '';
  return `would start an isolated drill of ${d.to}: ${maker}, the canary writes ${rows} to it through ${d.isolated?.recordName ?? 'the drill record'}, then the record and the copy are removed; nothing in production moves${limit}`;
}

/**
 * The facts a drill depends on: roles, lag against the limit, and who brings a former primary
 * back (a round trip) or who copies the standby (an isolated drill).
 */
function describeDrillFacts(input: DecideInput, plan: Plan, active: string | undefined): string[] {
  const request = input.spec.drillRequest;
  const isolated = request?.action === 'Run' && requestMode(request, input.spec) === 'Isolated';
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
    if (!isolated) return `  ${label}: ${f.role}${lag}; ${comesBack(f, input.now)}`;
    return f.name === active
      ? `  ${label}: ${f.role}${lag}; left alone (nothing in production moves)`
      : `  ${label}: ${f.role}${lag}; ${copiedBy(f, input)}`;
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

/** Who would make an isolated drill's copy of a standby, and why not. */
function copiedBy(f: ClusterFacts, input: DecideInput): string {
  const port = input.spec.drills?.isolated.port ?? 5433;
  if (f.agent && agentAlive(f.agent, input.now))
    return `agent ${f.agent.name} reported ${age(f.agent.reportedAt, input.now)} ago (it makes the copy on port ${port})`;
  // Set by providers whose API makes the copy (RDS); read this way so older facts still compile.
  if ('drillCopiesByProvider' in f && f.drillCopiesByProvider === true) return 'its provider makes the copy';
  if (f.agent)
    return `agent ${f.agent.name} silent since ${age(f.agent.reportedAt, input.now)} ago: an isolated drill could not copy it`;
  return 'no database agent reports for it: an isolated drill could not copy it (docs/agent.md)';
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

/** RoundTrip, Isolated, or - for a drill skipped before it started (its report names no mode). */
function modeCell(r: DrillReport): string {
  if (isIsolated(r)) return 'Isolated';
  return r.mode ?? (r.to === r.from ? '-' : 'RoundTrip');
}

/**
 * A round trip's cells: RTO out and back, canary rows lost, DNS on the way out. An isolated
 * drill's in the same columns: the copy's promotion (what a real promotion of the standby would
 * take), how old its data was (what it would have lacked), the drill record's DNS; and COPY.
 */
function measureCells(r: DrillReport): string[] {
  if (!isIsolated(r))
    return [legRto(r.out, r.rtoSeconds), legRto(r.back), lostOf(r), seconds(r.dnsVerifySeconds)];
  const i = r.isolated;
  return [
    i?.promotionSeconds !== undefined ? `${seconds(i.promotionSeconds)} (promotion)` : '-',
    '-',
    i?.freshnessSeconds !== undefined ? `${seconds(i.freshnessSeconds)} old` : '-',
    seconds(i?.dnsVerifySeconds),
  ];
}

/** What the copy took and whether it is gone: "20 rows, cleaned up". */
function copyCell(r: DrillReport): string {
  const i = r.isolated;
  if (!i) return '-';
  return `${i.canaryWrites ?? 0} rows, ${i.cleanedUp ? 'cleaned up' : 'NOT cleaned up'}`;
}

/** status.drills as a table, newest first (the order status keeps). */
export function drillTable(reports: DrillReport[]): string {
  // Only where an isolated drill ran: the column is noise otherwise.
  const copies = reports.some(isIsolated);
  return table(
    [
      'ID',
      'MODE',
      'RESULT',
      'FROM→TO',
      'STARTED',
      'DURATION',
      'RTO OUT',
      'RTO BACK',
      'RPO',
      'DNS',
      ...(copies ? ['COPY'] : []),
      'REASON',
    ],
    reports.map((r) => [
      r.id,
      modeCell(r),
      r.result,
      // A drill skipped before it chose a standby is filed with to = from.
      isIsolated(r) ? `copy of ${r.isolated?.cluster ?? r.to}` : `${r.from}→${r.to === r.from ? '-' : r.to}`,
      timestamp(r.startedAt),
      duration(r.startedAt, r.completedAt),
      ...measureCells(r),
      ...(copies ? [copyCell(r)] : []),
      truncate(r.reason ?? '', REASON_WIDTH),
    ]),
  );
}

/** When the drill's current leg began, as status tells it; undefined when status does not say. */
function legSince(drill: DrillState, status: FailoverPolicyStatus): string | undefined {
  const i = drill.isolated;
  switch (drill.leg) {
    case 'Copying':
      return drill.startedAt;
    case 'Pointing':
      return i?.copyReadyAt ?? drill.startedAt;
    case 'Writing':
      return i?.writingSince ?? i?.verifiedAt;
    case 'Removing':
      // The leg begins when the verdict is decided, which status does not time.
      return undefined;
    case 'Cleaning':
      return i?.cleaningSince ?? i?.removedAt;
  }
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

/** The leg of an isolated drill and what it is at: "leg Writing for 3s, 12 of 20 canary rows". */
function isolatedLeg(
  d: DrillState,
  status: FailoverPolicyStatus,
  now: Date,
  spec?: FailoverPolicySpec,
): string {
  const i = d.isolated;
  const since = legSince(d, status);
  const leg = `leg ${d.leg}${since ? ` for ${age(since, now)}` : ''}`;
  const wanted = spec?.drills?.isolated.minCanaryWrites;
  const at =
    d.leg === 'Writing'
      ? `, ${i?.canaryWrites ?? 0}${wanted !== undefined ? ` of ${wanted}` : ''} canary rows`
      : d.leg === 'Pointing' && i?.pointedAt
        ? `, written ${age(i.pointedAt, now)} ago, not answered yet by the authoritative servers`
        : '';
  const problem = i?.problem ? `, retrying: ${i.problem}` : '';
  return `${leg}${at}${problem}`;
}

/** One line for the drill in progress, or undefined. `spec`: the policy's, for the canary rows wanted. */
export function drillInProgress(
  status: FailoverPolicyStatus,
  now: Date,
  spec?: FailoverPolicySpec,
): string | undefined {
  const d = status.drill;
  if (!d) return undefined;
  const requested = d.requestId ? `, on request ${d.requestId}` : '';
  if (isIsolated(d)) {
    const verdict = d.isolated?.verdict;
    const ending = verdict ? `; verdict ${verdict.result}: ${verdict.reason}` : '';
    return `In progress: isolated drill ${d.id}, ${copyOf(d)} through ${d.isolated?.recordName ?? 'the drill record'}, ${isolatedLeg(d, status, now, spec)} (started ${age(d.startedAt, now)} ago${requested})${ending}`;
  }
  const op = status.currentOperation;
  const step =
    op && (op.id === d.outboundOperationId || op.id === d.backOperationId)
      ? `, switchover at step ${op.step}`
      : '';
  const back =
    d.leg === 'Holding' && d.returnAfter && !d.stop ? `, switches back at ${timestamp(d.returnAfter)}` : '';
  const stop = d.stop ? `; stopping (${d.stop.result}): ${d.stop.reason}` : '';
  return `In progress: drill ${d.id} ${d.from}→${d.to}, leg ${d.leg} for ${age(legSince(d, status), now)}${step}${back} (started ${age(d.startedAt, now)} ago${requested})${stop}`;
}

/** The drills part of a policy's history, for people: the one in progress and the table. */
export function describeDrills(p: Pick<PolicyView, 'spec' | 'status'>, now: Date): string[] {
  const lines: string[] = [];
  const running = drillInProgress(p.status, now, p.spec);
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
