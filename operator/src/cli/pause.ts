import type { FailoverPolicyStatus } from '../api/v1alpha1/index.ts';
import { type FailoverApi, failoverPolicyType } from './api.ts';
import { pollStatus, readPolicy } from './policies.ts';
import { dryRunPatch, patchRequest } from './policy-patch.ts';

export interface PauseOptions {
  namespace: string;
  policy: string;
  paused: boolean;
  reason?: string;
  dryRun: boolean;
  /** How long to wait for the operator to acknowledge; 0 does not wait. */
  timeoutMs: number;
}

const POLL_MS = 250;

export async function pauseCommand(
  api: FailoverApi,
  opts: PauseOptions,
): Promise<{ exitCode: number; output: string }> {
  const policy = await readPolicy(api, opts.namespace, opts.policy);
  const what = opts.paused ? 'pause' : 'resume';
  const name = `${opts.namespace}/${opts.policy}`;
  if (!opts.paused && !policy.spec?.paused && !policy.status.pausedSince)
    return { exitCode: 0, output: `${name} is not paused: nothing to do.` };
  // Merge patch: a resume removes the reason with the flag.
  const patch = {
    metadata: { resourceVersion: policy.object.metadata.resourceVersion },
    spec: opts.paused
      ? { paused: true, pauseReason: opts.reason ?? null }
      : { paused: null, pauseReason: null },
  };
  if (opts.dryRun) {
    const verdict = await dryRunPatch(api, opts, patch, what);
    return {
      exitCode: verdict.refused ? 1 : 0,
      output: [`Would ${what} ${name}${opts.reason ? ` (${opts.reason})` : ''}.`, verdict.line].join('\n'),
    };
  }
  await patchRequest(api, opts, policy, patch, what, () => undefined);
  // The generation the patch made: only a status that observed it acknowledges this change (a
  // pausedSince left from a pause a moment ago does not).
  const generation =
    (await api.get(failoverPolicyType, opts.namespace, opts.policy)).metadata.generation ?? 0;
  const lines = [
    opts.paused
      ? `${name} paused${opts.reason ? ` (${opts.reason})` : ''}: no automatic failover, DNS repair, reprotect, failback or drill starts; a stray primary is still fenced; requests (switchover, promote, reprotect) still run.`
      : `${name} resumed: automatic actions run again.`,
  ];
  if (opts.timeoutMs === 0) return { exitCode: 0, output: lines.join('\n') };
  const seen = await waitForOperator(api, opts, generation);
  if (seen === undefined) {
    lines.push(
      `warning: the operator has not acknowledged it within ${opts.timeoutMs / 1000} s (status.pausedSince): is it running? The spec is set and is honoured when it reads it.`,
    );
    return { exitCode: 1, output: lines.join('\n') };
  }
  if (opts.paused) lines.push(`The operator acknowledged it: paused since ${seen.since}.`);
  else lines.push('The operator acknowledged it.');
  const op = seen.operation;
  if (opts.paused && op && op.step !== 'Completed' && op.step !== 'Aborted')
    lines.push(
      `warning: ${op.kind} ${op.id} (${op.trigger}) is under way at ${op.step} and finishes; watch it with kubectl failover status ${opts.policy} -n ${opts.namespace}`,
    );
  return { exitCode: 0, output: lines.join('\n') };
}

/**
 * Reads status until the operator has reconciled the patched generation and pausedSince says so
 * (set, or cleared); then its value, and the operation status shows in flight.
 */
function waitForOperator(
  api: FailoverApi,
  opts: PauseOptions,
  generation: number,
): Promise<{ since: string; operation?: FailoverPolicyStatus['currentOperation'] } | undefined> {
  return pollStatus(api, opts, opts.timeoutMs, POLL_MS, (status) => {
    const observed = (status?.observedGeneration ?? 0) >= generation;
    const since = status?.pausedSince;
    const operation = status?.currentOperation ? { operation: status.currentOperation } : {};
    if (observed && opts.paused && since) return { since, ...operation };
    if (observed && !opts.paused && status && !since) return { since: '', ...operation };
    return undefined;
  });
}
