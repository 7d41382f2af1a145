/**
 * The application's side of a failover test: a writer that goes through the DNS name and
 * remembers what the database acknowledged, and a sampler that asks both databases which takes
 * writes, so a test can say "nothing acknowledged was lost" and "never two writers".
 */
import pg from 'pg';
import type { FailoverStack } from './failover-stack.ts';
import type { PostgresNodeName } from './postgres.ts';

/** See FailoverStack.startDnsWriteLoad. */
export class DnsWriteLoad {
  readonly acknowledged: number[] = [];
  failed = 0;
  private running = true;
  private readonly loop: Promise<void>;
  private readonly stack: FailoverStack;

  constructor(stack: FailoverStack, ratePerSecond: number) {
    this.stack = stack;
    const pause = 1000 / ratePerSecond;
    this.loop = (async () => {
      let client: pg.Client | undefined;
      let seq = 0;
      while (this.running) {
        const started = performance.now();
        try {
          if (!client) {
            const [address] = await stack.dnsAnswer();
            const fresh = new pg.Client({
              host: address,
              port: stack.pair.primary.port,
              user: stack.pair.user,
              password: stack.pair.password,
              database: stack.pair.database,
              connectionTimeoutMillis: 1000,
              query_timeout: 2000,
            });
            fresh.on('error', () => undefined);
            client = fresh;
            await fresh.connect();
          }
          seq++;
          await client.query('INSERT INTO dns_load (seq) VALUES ($1)', [seq]);
          this.acknowledged.push(seq);
        } catch {
          this.failed++;
          void client?.end().catch(() => undefined);
          client = undefined;
        }
        await new Promise((r) => setTimeout(r, Math.max(0, pause - (performance.now() - started))));
      }
      await client?.end().catch(() => undefined);
    })();
  }

  async stop(): Promise<{ acknowledged: number[]; failed: number }> {
    this.running = false;
    await this.loop;
    return { acknowledged: this.acknowledged, failed: this.failed };
  }

  /** How many acknowledged inserts `node`'s dns_load table lacks: acknowledged writes lost there. */
  async missingOn(node: PostgresNodeName): Promise<number> {
    const rows = await this.stack.pair.sql<{ seq: string }>(node, 'SELECT seq::text FROM dns_load');
    const present = new Set(rows.map((r) => Number(r.seq)));
    return this.acknowledged.filter((n) => !present.has(n)).length;
  }
}

/**
 * Asks both servers every `intervalMs` (default 200) which takes writes, until stopped: at no
 * sampled moment may both. A server that does not answer within `timeoutMs` (default 1000) does
 * not count as a writer, so a frozen one cannot stall the sampling.
 */
export class WriterSampler {
  /** What each sample found: the writable servers, 'primary' (region A) and/or 'standby'. */
  readonly samples: string[][] = [];
  private running = true;
  private readonly loop: Promise<void>;

  constructor(stack: FailoverStack, opts: { intervalMs?: number; timeoutMs?: number } = {}) {
    const { intervalMs = 200, timeoutMs = 1000 } = opts;
    this.loop = (async () => {
      while (this.running) {
        this.samples.push(await stack.writablePrimaries({ timeoutMs, settleMs: 0 }));
        await new Promise((r) => setTimeout(r, intervalMs));
      }
    })();
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }

  /** How many samples found two writable servers (must be 0). */
  get twoWriters(): number {
    return this.samples.filter((s) => s.length > 1).length;
  }
}
