/**
 * Replication lag of a standby, from two observations taken close together: the active primary's
 * (its current WAL position and the heartbeat the operator last wrote there) and the standby's
 * (what it has replayed). Bytes: how much WAL the standby has yet to replay. Seconds: how old the
 * newest heartbeat it has replayed is, compared with the primary's newest one — so an idle primary
 * is not mistaken for a lagging standby, because a caught-up standby is zero seconds behind however
 * long ago the last write was.
 */
import { compareLsn, replicationLagBytes } from '../../providers/database/lsn.ts';
import type { DatabaseObservation } from '../../providers/database/port.ts';

export interface Lag {
  bytes: number;
  seconds: number;
}

export function standbyLag(primary: DatabaseObservation, standby: DatabaseObservation): Lag | undefined {
  if (!primary.reachable || primary.role !== 'Primary' || !primary.lsn) return undefined;
  if (!standby.reachable || standby.role !== 'Standby' || !standby.lsn) return undefined;
  // Caught up: nothing missing, in bytes. In seconds only once the standby holds the operator's
  // heartbeat: before the first one replays (a new pair, a new policy) the same zero bytes are
  // about to become "behind by the heartbeat just written", and a policy called ready in between
  // would be ready for a moment only.
  if (compareLsn(standby.lsn, primary.lsn) >= 0)
    return { bytes: 0, seconds: standby.heartbeat ? 0 : Number.NaN };
  const bytes = replicationLagBytes(primary.lsn, standby.lsn);
  const written = primary.heartbeat?.writtenAt.getTime();
  const replayed = standby.heartbeat?.writtenAt.getTime();
  // Without heartbeats on both sides the age cannot be told; bytes alone still are.
  const seconds =
    written !== undefined && replayed !== undefined ? Math.max(0, (written - replayed) / 1000) : Number.NaN;
  return { bytes, seconds };
}

/**
 * How far a lag in seconds must move before a status shows the new figure. The seconds are told
 * by heartbeats written once a probe interval, so a caught-up standby reads 0 or about one
 * interval (a little more when a probe runs late), depending on which was read first: the
 * primary's read gives the heartbeat before the one it writes. Moves within one and a half
 * intervals are the measure's resolution, not news. At least 1 s. Not capped: capped at 15 s, an
 * interval of about 15 s or more made each drift in the two reads' order a status write (every
 * status write of 400 healthy policies probed every 20 s, once they had settled).
 */
export function lagStepSeconds(probeIntervalSeconds: number): number {
  return Math.max(1, 1.5 * probeIntervalSeconds);
}

/**
 * How far a lag in bytes must move before a status shows the new figure. The primary's position
 * and the standby's replay are read by different probes up to an interval apart, so on a primary
 * that writes the figure moves by what it writes in that time (~100 KiB every probe with 100 busy
 * heartbeats on one server): a fixed small step made a busy fleet a status write per probe. An
 * eighth of the RPO byte budget, between 64 KiB and 1 MiB: people read the figure (`kubectl get`,
 * the promote preview), and a caught-up standby must not show much more than nothing for long.
 * More on a primary that writes faster: what it writes in one and a half probe intervals
 * (`walBytesPerInterval`, as lagStepSeconds), the figure's resolution there; at 1 MB/s and 5 s
 * the 1 MiB step was a status write per probe for every standby of a busy database. Once the
 * primary calms down the step shrinks back, and the next figure is written. Not capped by the
 * budget: a primary that writes the budget in an interval leaves the figure a coarse one, which
 * LagWithinBudget says better. A crossing of the budget is news at once, and the metric has every
 * figure.
 */
export function lagStepBytes(maxLagBytes: number | undefined, walBytesPerInterval = 0): number {
  const budgetStep = Math.min(
    MAX_STEP_BYTES,
    Math.max(65536, Math.floor((maxLagBytes ?? Number.POSITIVE_INFINITY) / 8)),
  );
  return Math.max(budgetStep, Math.ceil(1.5 * walBytesPerInterval));
}

const MAX_STEP_BYTES = 1024 * 1024;
