/**
 * The side effects of an isolated drill: its record written and verified at the authoritative
 * servers, or deleted; a provider's copy made or deleted. One call each, no waiting: an answer
 * not there yet is asked for again on a later reconcile.
 */
import type { StepPorts } from './act.ts';
import { failure } from './act.ts';
import type {
  DrillCopyAction,
  DrillCopyOutcome,
  DrillRecordAction,
  DrillRecordOutcome,
} from './isolated-drill.ts';

/** One step of a provider's copy of the standby (made, promoted, or deleted through its API). */
export async function runDrillCopy(ports: StepPorts, action: DrillCopyAction): Promise<DrillCopyOutcome> {
  try {
    const db = await ports.database(action.cluster);
    if (!db.drillCopy)
      return {
        phase: 'Error',
        reason: 'Rejected',
        message: `the provider of ${action.cluster} cannot make a drill copy`,
        retryable: false,
      };
    return await db.drillCopy(action.drillId, action.want);
  } catch (err) {
    const f = failure(err);
    return { phase: 'Error', reason: f.reason, message: f.message, retryable: f.retryable };
  }
}

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
    const written = performance.now();
    const answers = await ports.verifier.query(action.record, await ports.verifyServers());
    const askedMs = performance.now() - written;
    const want = action.value.replace(/\.$/, '').toLowerCase();
    const answered =
      answers.length > 0 &&
      answers.every((a) => a.values?.some((v) => v.replace(/\.$/, '').toLowerCase() === want));
    const detail = answers
      .map((a) => `${a.server}: ${a.error ?? a.values?.join(',') ?? 'no answer'}`)
      .join('; ');
    return { kind: 'Present', answered, detail, answeredAfterMs: Math.round(askedMs) };
  } catch (err) {
    return failure(err);
  }
}
