/**
 * The names of a primary's WAL senders, remembered between probes.
 *
 * pg_stat_replication joins pg_stat_get_wal_senders() with pg_stat_get_activity(), and the
 * first call of the latter in a transaction (even for one pid) copies every backend's entry into
 * the calling session, query text included, freed at the transaction's end: O(max_connections)
 * work and allocation on the primary, every probe. With 1,000 sessions on one server that made
 * its probes ten times dearer than a standby's (which skips it), and each prober's backend grew
 * to 3–7 MiB more than a standby's (what the allocator kept of those copies). A sender's application name and address do
 * not change while its pid lives, so the probe asks pg_stat_get_wal_senders() alone, passes
 * the pids whose names it knows, and reads pg_stat_get_activity() only for a sender it has not
 * seen: once per standby connection, not once per probe.
 *
 * A pid is only the same sender on the same server: the server is told apart by its start
 * time (a restart, or a host name now resolving to another server, reads every name again),
 * and all names are read again every REFRESH_MS, so a pid reused by a later sender is named
 * right within that.
 */

import { byCodeUnits } from '../../runtime/order.ts';

/** A sender as the probe statement returns it; `activity` only where its name was read. */
export interface WalSenderRow {
  pid: number;
  /** Null: named from memory. Without application_name: its backend ended meanwhile (a sender gone). */
  activity: { application_name?: string | null; client_addr?: string | null } | null;
  state: string | null;
  sent_lsn: string | null;
  replay_lsn: string | null;
  replay_lag_seconds: number | null;
  sync_state: string | null;
}

/** A sender with its name, as pg_stat_replication showed it. */
export interface NamedWalSender extends Omit<WalSenderRow, 'activity'> {
  application_name: string;
  client_addr: string | null;
}

type Names = { application_name: string; client_addr: string | null };

/** How often every name is read again, whatever is remembered. */
export const REFRESH_MS = 5 * 60_000;

export class WalSenderNames {
  private names = new Map<number, Names>();
  /** The server the names were read from: its start time, as the probe statement gives it. */
  private server: string | null = null;
  private readAt = Number.NEGATIVE_INFINITY;

  /** The statement's parameters: the pids whose names are known, and of which server. */
  known(nowMs: number): [pids: number[], server: string | null] {
    if (nowMs - this.readAt >= REFRESH_MS || this.server === null) return [[], null];
    return [[...this.names.keys()], this.server];
  }

  /**
   * The senders a probe saw, named from the statement or from memory, by name (in code-unit
   * order, not the server's collation) then pid; memory keeps exactly these senders. A sender
   * whose backend ended between the statement's two reads is left out, as pg_stat_replication's
   * join left it out. A sender named neither way (two probes of one provider at once, one
   * forgetting what the other passed) shows with an empty name and is not remembered, so the
   * next probe reads it.
   */
  name(rows: readonly WalSenderRow[], server: string, nowMs: number): NamedWalSender[] {
    // The statement leaves a name out only for a pid passed with this server's start time.
    const remembered = server === this.server ? this.names : undefined;
    const names = new Map<number, Names>();
    const named = rows.flatMap(({ activity, ...sender }) => {
      if (activity && !('application_name' in activity)) return [];
      const known = activity
        ? { application_name: activity.application_name ?? '', client_addr: activity.client_addr ?? null }
        : remembered?.get(sender.pid);
      if (known) names.set(sender.pid, known);
      return [{ ...sender, ...(known ?? { application_name: '', client_addr: null }) }];
    });
    // Read everything when the statement named every sender: it was asked to (no pids passed).
    if (rows.every((r) => r.activity)) this.readAt = nowMs;
    this.names = names;
    this.server = server;
    return named.sort((a, b) => byCodeUnits(a.application_name, b.application_name) || a.pid - b.pid);
  }
}
