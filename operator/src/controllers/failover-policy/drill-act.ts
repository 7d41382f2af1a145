/**
 * The side effect of an isolated drill: its record written and verified at the authoritative
 * servers, or deleted. One call, no waiting: an answer not there yet is asked for again on a
 * later reconcile.
 */
import type { StepPorts } from './act.ts';
import { failure } from './act.ts';
import type { DrillRecordAction, DrillRecordOutcome } from './isolated-drill.ts';

export async function runDrillRecord(
  ports: StepPorts,
  action: DrillRecordAction,
): Promise<DrillRecordOutcome> {
  try {
    if (action.want === 'Absent') {
      await ports.withDns((dns) => dns.remove(action.record, ports.owner));
      return { kind: 'Absent' };
    }
    await ports.withDns((dns) =>
      dns.apply({
        record: action.record,
        // A record left by this drill (an operator restart after the write) is written again as is.
        expected: undefined,
        value: action.value,
        ttl: action.ttl,
        owner: ports.owner,
        epoch: action.epoch,
      }),
    );
    const answers = await ports.verifier.query(action.record, await ports.verifyServers());
    const want = action.value.replace(/\.$/, '').toLowerCase();
    const answered =
      answers.length > 0 &&
      answers.every((a) => a.values?.some((v) => v.replace(/\.$/, '').toLowerCase() === want));
    const detail = answers
      .map((a) => `${a.server}: ${a.error ?? a.values?.join(',') ?? 'no answer'}`)
      .join('; ');
    return { kind: 'Present', answered, detail };
  } catch (err) {
    const f = failure(err);
    return { kind: 'Failed', reason: f.reason, message: f.message, retryable: f.retryable };
  }
}
