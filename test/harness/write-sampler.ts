/**
 * A client inside each region: it tries one committed write every ~50 ms into the database of its
 * region, over that server's Unix socket (which no network cut reaches, as a client on the same
 * host or in the same region would), and remembers when each write was acknowledged.
 *
 * From both regions' records a test tells whether two databases ever took writes at once: the
 * last write the old primary acknowledged must come before the first the new one acknowledged,
 * and none of the old primary's may come after the new one's last refusal (when it may already
 * have been promoted).
 */
import pg from 'pg';

export interface Attempt {
  /** performance.now() when the write was sent, and when it was answered. */
  sentAt: number;
  answeredAt: number;
  ok: boolean;
  error?: string;
}

export class WriteSampler {
  readonly attempts: Attempt[] = [];
  private stopping = false;
  private loop: Promise<void> | undefined;
  private readonly target: { socketDir: string; port: number; database: string; user: string };
  private readonly label: string;

  constructor(label: string, target: { socketDir: string; port: number; database: string; user: string }) {
    this.label = label;
    this.target = target;
  }

  start(): this {
    this.loop ??= this.run();
    return this;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.loop;
  }

  get acknowledged(): Attempt[] {
    return this.attempts.filter((a) => a.ok);
  }

  private async run(): Promise<void> {
    let client: pg.Client | undefined;
    let ready = false;
    while (!this.stopping) {
      const sentAt = performance.now();
      try {
        if (!client) {
          client = new pg.Client({
            host: this.target.socketDir,
            port: this.target.port,
            database: this.target.database,
            user: this.target.user,
            connectionTimeoutMillis: 1_000,
            query_timeout: 1_000,
            application_name: `sampler-${this.label}`,
          });
          client.on('error', () => undefined);
          await client.connect();
          ready = false;
        }
        if (!ready) {
          await client.query(
            'CREATE TABLE IF NOT EXISTS split_brain_samples (at timestamptz DEFAULT clock_timestamp(), region text)',
          );
          ready = true;
        }
        await client.query('INSERT INTO split_brain_samples (region) VALUES ($1)', [this.label]);
        this.attempts.push({ sentAt, answeredAt: performance.now(), ok: true });
      } catch (err) {
        this.attempts.push({
          sentAt,
          answeredAt: performance.now(),
          ok: false,
          error: (err as Error).message,
        });
        // A read-only refusal keeps the session; anything else starts over.
        if (!/read-only transaction/.test((err as Error).message)) {
          void client?.end().catch(() => undefined);
          client = undefined;
        }
      }
      const wait = 50 - (performance.now() - sentAt);
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
    void client?.end().catch(() => undefined);
  }
}

export interface SplitBrainVerdict {
  /** The old primary's last acknowledged write after `since`, and the new one's first. */
  oldLastAckAt?: number;
  newFirstAckAt?: number;
  /** When the new primary may first have taken writes: the start of its last refused write before its first acknowledged one. */
  newPossiblyWritableFrom?: number;
  /** Writes the old primary acknowledged from then on: must be 0. */
  oldAcksAfterPromotion: number;
  /** Moments both acknowledged a write (overlapping send→answer windows): must be 0. */
  overlaps: number;
}

export function judgeSplitBrain(
  oldPrimary: WriteSampler,
  newPrimary: WriteSampler,
  since: number,
): SplitBrainVerdict {
  const oldAcks = oldPrimary.acknowledged.filter((a) => a.answeredAt >= since);
  const newAttempts = newPrimary.attempts.filter((a) => a.sentAt >= since);
  const firstOk = newAttempts.findIndex((a) => a.ok);
  const newFirstAckAt = firstOk >= 0 ? newAttempts[firstOk]?.answeredAt : undefined;
  const lastRefused = firstOk > 0 ? newAttempts[firstOk - 1] : undefined;
  const newPossiblyWritableFrom = lastRefused?.sentAt ?? newAttempts[firstOk]?.sentAt;
  const newAcks = newAttempts.filter((a) => a.ok);
  const overlaps = oldAcks.filter((o) =>
    newAcks.some((n) => n.sentAt <= o.answeredAt && o.sentAt <= n.answeredAt),
  ).length;
  return {
    ...(oldAcks.length ? { oldLastAckAt: oldAcks[oldAcks.length - 1]?.answeredAt } : {}),
    ...(newFirstAckAt !== undefined ? { newFirstAckAt } : {}),
    ...(newPossiblyWritableFrom !== undefined ? { newPossiblyWritableFrom } : {}),
    oldAcksAfterPromotion:
      newPossiblyWritableFrom === undefined
        ? 0
        : oldAcks.filter((a) => a.answeredAt >= newPossiblyWritableFrom).length,
    overlaps,
  };
}
