/**
 * The agent's part of an isolated drill: a throwaway copy of the standby beside it, promoted on a
 * spare port, so the operator's canary can prove the standby would become a working primary,
 * while the standby itself, its primary and the clients are left alone. The policy's status
 * says when a copy is wanted (status.drill, mode Isolated, this cluster its `to`, legs Copying,
 * Pointing and Writing); the agent reports the copy in `status.agent.drillCopy`:
 *
 *   Copying  pg_basebackup from the local standby (no load on the primary), then the copy
 *            started as a standby with nothing to stream from, then promoted;
 *   Serving  promoted and taking writes on the spare port;
 *   Removed  its server stopped and its directory deleted, once it is no longer wanted;
 *   Failed   it could not be made (see message); what was made is removed all the same.
 *
 * Every pass re-derives where the copy stands from the world (the directories beside the data
 * directory and their markers, the copy's server), so an agent killed at any point resumes, and
 * one started after the drill ended removes what the last one left.
 */
import type { AgentReport, DrillState } from '../api/v1alpha1/index.ts';
import type { Clock } from '../runtime/clock.ts';
import type { Logger } from '../runtime/logger.ts';
import { timestamp } from '../runtime/time.ts';
import { REPORT_EVERY_MS } from './liveness.ts';
import { type DrillCopy, DrillCopyRefused, type LocalPostgres, type LocalState } from './local-postgres.ts';
import { connectionString } from './upstream.ts';

/** Disk kept free beside the standby on top of the copy's room, so its WAL always has space. */
const DRILL_SPACE_RESERVE_BYTES = 1024 ** 3;

export type DrillCopyReport = NonNullable<AgentReport['drillCopy']>;

/** The legs of an isolated drill during which its copy must exist. */
const COPY_LEGS: ReadonlySet<DrillState['leg']> = new Set(['Copying', 'Pointing', 'Writing']);
/** A step that failed this often for one drill is given up: the copy is reported Failed. */
const MAX_ATTEMPTS = 3;
/** While pg_basebackup runs, how often the agent asks whether the drill still wants the copy. */
const STILL_WANTED_EVERY_MS = 1_000;

/** The copy the policy's status wants of `cluster`'s agent, if any. */
export function wantedCopy(
  drill: DrillState | undefined,
  cluster: string,
): { drillId: string; port: number } | undefined {
  if (drill?.mode !== 'Isolated' || drill.to !== cluster || !drill.isolated) return undefined;
  if (!COPY_LEGS.has(drill.leg)) return undefined;
  return { drillId: drill.id, port: drill.isolated.port };
}

export interface DrillCopyOptions {
  /** The cluster this agent sits beside. */
  cluster: string;
  local: LocalPostgres;
  clock: Clock;
  log: Logger;
  /** The role the standby streams to others as: pg_basebackup logs in with it over the socket. */
  replication: { user: string; password: string };
  /** The agent's last report of a copy (it survives the agent: read back from status). */
  reported: () => DrillCopyReport | undefined;
  /** Writes the agent's report with this copy in it. */
  say: (copy: DrillCopyReport) => Promise<void>;
  /** Writes only the report's time, while a long step runs. */
  beat: () => Promise<void>;
  /** The drill as the policy's status says now: a copy it no longer wants is not finished. */
  currentDrill: () => Promise<DrillState | undefined>;
}

export class DrillCopyKeeper {
  private readonly opts: DrillCopyOptions;
  /** Failed steps per drill; after MAX_ATTEMPTS the copy is Failed. */
  private failures = { drillId: '', count: 0 };

  constructor(opts: DrillCopyOptions) {
    this.opts = opts;
  }

  /**
   * One step towards what the drill wants: unwanted copies removed, then the wanted one made,
   * started, promoted or checked. `database` holds the heartbeat table (the cluster's database).
   */
  async pass(drill: DrillState | undefined, database: string, local: LocalState): Promise<void> {
    const want = wantedCopy(drill, this.opts.cluster);
    const copies = await this.opts.local.drillCopies();
    // A leftover that cannot be removed (its pid names the standby's own server) must not hold
    // the wanted copy back silently: the wanted copy's report says why.
    let leftover: string | undefined;
    for (const copy of copies)
      if (copy.drillId !== want?.drillId)
        await this.remove(copy).catch((err: Error) => {
          leftover = `the copy of drill ${copy.drillId} in ${copy.directory} could not be removed: ${err.message}`;
        });
    const reported = this.opts.reported();
    // Gone without this agent removing it (never made, or deleted by hand): nothing is left.
    if (
      reported &&
      reported.drillId !== want?.drillId &&
      reported.phase !== 'Removed' &&
      !copies.some((c) => c.drillId === reported.drillId)
    )
      await this.opts.say({
        ...reported,
        phase: 'Removed',
        message: 'no copy left to remove',
        finishedAt: reported.finishedAt ?? this.now(),
      });
    if (!want) {
      if (leftover) throw new Error(leftover);
      return;
    }
    const previous = reported?.drillId === want.drillId ? reported : undefined;
    // Failed stays failed, and a removed copy is not made again, until the drill is over.
    if (previous?.phase === 'Failed' || previous?.phase === 'Removed') return;
    const report: DrillCopyReport = previous ?? {
      drillId: want.drillId,
      phase: 'Copying',
      port: want.port,
      directory: this.opts.local.drillCopyDirectory(want.drillId),
      startedAt: this.now(),
    };
    try {
      if (leftover) throw new Error(leftover);
      await this.advance(
        report,
        want.port,
        copies.find((c) => c.drillId === want.drillId),
        database,
        local,
      );
      if (this.failures.drillId === want.drillId) this.failures.count = 0;
    } catch (err) {
      const message = (err as Error).message;
      const count = this.failures.drillId === want.drillId ? this.failures.count + 1 : 1;
      this.failures = { drillId: want.drillId, count };
      this.opts.log.warn({ drill: want.drillId, err: message, attempt: count }, 'drill copy step failed');
      const failed = err instanceof DrillCopyRefused || count >= MAX_ATTEMPTS;
      await this.opts.say({
        ...(this.opts.reported()?.drillId === want.drillId ? this.opts.reported() : report),
        ...(failed
          ? { phase: 'Failed', finishedAt: this.now(), message: message.slice(0, 1024) }
          : { message: `${message}; trying again (${count}/${MAX_ATTEMPTS})`.slice(0, 1024) }),
      } as DrillCopyReport);
    }
  }

  private async advance(
    report: DrillCopyReport,
    port: number,
    copy: DrillCopy | undefined,
    database: string,
    local: LocalState,
  ): Promise<void> {
    const pg = this.opts.local;
    const say = (update: Partial<DrillCopyReport>) => {
      report = { ...report, ...update };
      return this.opts.say(report);
    };
    if (!copy?.copied) {
      const done = await this.copy(report, port, local, say);
      if (!done) return;
      copy = done;
    }
    const measured = {
      copiedAt: copy.copied?.copiedAt ?? this.now(),
      copySeconds: round(copy.copied?.copySeconds ?? 0),
      copyBytes: copy.copied?.copyBytes ?? 0,
    };
    const server = await pg.drillCopyServer(copy);
    if (!server.running) {
      await say({ ...measured, message: `starting the copy on port ${port}` });
      await pg.startDrillCopy(copy, port, await pg.drillSource());
    }
    let promotionSeconds = report.promotionSeconds;
    if (!server.promoted) {
      await say({ message: `promoting the copy on port ${port}` });
      promotionSeconds = round(await pg.promoteDrillCopy(copy, port));
    }
    const { heartbeatAt } = await pg.drillCopyWrite(copy, port, database);
    // As copied: what the copy was promoted from, not what anyone wrote to it since.
    const newestHeartbeatAt = report.newestHeartbeatAt ?? (heartbeatAt ? timestamp(heartbeatAt) : undefined);
    const serving: Partial<DrillCopyReport> = {
      ...measured,
      phase: 'Serving',
      ...(promotionSeconds !== undefined ? { promotionSeconds } : {}),
      ...(newestHeartbeatAt ? { newestHeartbeatAt } : {}),
      message: `promoted; taking writes on port ${port}`,
    };
    const changed = JSON.stringify({ ...report, ...serving }) !== JSON.stringify(report);
    if (changed) {
      this.opts.log.info({ drill: report.drillId, ...serving }, 'drill copy serving');
      await say(serving);
    }
  }

  /** pg_basebackup of the standby, after the checks that make it safe; the copy, or undefined. */
  private async copy(
    report: DrillCopyReport,
    port: number,
    local: LocalState,
    say: (update: Partial<DrillCopyReport>) => Promise<void>,
  ): Promise<DrillCopy | undefined> {
    const pg = this.opts.local;
    if (local.running && local.inRecovery === undefined) {
      await say({ message: `the standby does not answer over ${pg.opts.socketDir}: waiting for it` });
      return undefined;
    }
    if (!local.running || !local.inRecovery)
      throw new DrillCopyRefused(
        `the server in ${pg.opts.dataDir} is ${local.running ? 'a primary' : 'not running'}: an isolated drill copies a running standby`,
      );
    if (port === pg.opts.port)
      throw new DrillCopyRefused(
        `the drill port ${port} is the standby's own: set spec.drills.isolated.port to a spare port`,
      );
    const source = await pg.drillSource();
    const free = await pg.drillSpace();
    // The copy's own WAL and the standby's WAL growth meanwhile share that disk: the standby (the
    // failover target) must never run out of room because of a drill.
    const needed = Math.ceil(source.databaseBytes * 1.2) + DRILL_SPACE_RESERVE_BYTES;
    if (free < needed)
      throw new DrillCopyRefused(
        `${free} bytes free beside ${pg.opts.dataDir}, less than the database's ${source.databaseBytes} plus 20% and 1 GiB kept free for the standby: free space there, or run drills in RoundTrip mode`,
      );
    await say({ message: `pg_basebackup from the local standby into ${report.directory}` });
    const standby = {
      conninfo: connectionString({
        host: pg.opts.socketDir,
        port: String(pg.opts.port),
        user: this.opts.replication.user,
      }),
      password: this.opts.replication.password,
    };
    // pg_basebackup can run for hours: the report's time keeps saying the agent lives, and a
    // drill cancelled meanwhile stops it rather than waiting for a copy nobody wants.
    const beat = setInterval(() => void this.opts.beat(), REPORT_EVERY_MS);
    let abandoned = false;
    const watch = setInterval(async () => {
      if (abandoned) return;
      const drill = await this.opts.currentDrill().catch(() => 'unknown' as const);
      if (drill === 'unknown' || wantedCopy(drill, this.opts.cluster)?.drillId === report.drillId) return;
      abandoned = true;
      this.opts.log.info(
        { drill: report.drillId },
        'the drill no longer wants its copy: stopping pg_basebackup',
      );
      await pg.abandonDrillCopy(report.directory).catch(() => undefined);
    }, STILL_WANTED_EVERY_MS);
    try {
      const copy = await pg.copyForDrill(report.drillId, standby, () => this.opts.clock.now());
      this.opts.log.info({ drill: report.drillId, ...copy.copied }, 'drill copy made');
      return copy;
    } catch (err) {
      // Stopped on purpose: the next pass removes what it made.
      if (abandoned) return undefined;
      if (/no pg_hba.conf entry|authentication failed/.test((err as Error).message))
        throw new Error(
          `${(err as Error).message.trim()}: let ${this.opts.replication.user} make replication connections over the local socket (a "local replication ${this.opts.replication.user} ..." line in pg_hba.conf)`,
        );
      throw err;
    } finally {
      clearInterval(beat);
      clearInterval(watch);
    }
  }

  private async remove(copy: DrillCopy): Promise<void> {
    const reported = this.opts.reported();
    this.opts.log.info({ drill: copy.drillId, directory: copy.directory }, 'removing a drill copy');
    try {
      await this.opts.local.removeDrillCopy(copy);
    } catch (err) {
      // Said where the operator looks, and tried again next pass.
      if (reported?.drillId === copy.drillId)
        await this.opts.say({
          ...reported,
          message: `could not remove the copy: ${(err as Error).message}`.slice(0, 1024),
        });
      throw err;
    }
    if (reported?.drillId === copy.drillId)
      await this.opts.say({
        ...reported,
        phase: 'Removed',
        message:
          reported.phase === 'Failed'
            ? `removed what was made (it had failed: ${reported.message ?? ''})`.slice(0, 1024)
            : 'its server stopped and its directory deleted',
        finishedAt: this.now(),
      });
  }

  private now(): string {
    return timestamp(this.opts.clock.now());
  }
}

function round(seconds: number): number {
  return Math.round(seconds * 1000) / 1000;
}
