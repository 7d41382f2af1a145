/**
 * The drills' canary writer against real parts: a PostgreSQL pair (TLS, two loopback addresses
 * on one port, as two hosts behind a DNS name would be), and the whole failover stack (BIND, the
 * control plane, observers, the operator, agents) for a switchover and for a failover that loses
 * writes. What the writer reports is checked against what the databases hold.
 */
import { readFileSync } from 'node:fs';
import { getCACertificates, setDefaultCACertificates } from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { measureSwitch } from '../../operator/src/providers/canary/measure.ts';
import type { CanarySnapshot, CanaryTarget } from '../../operator/src/providers/canary/port.ts';
import {
  CANARY_APPLICATION_NAME,
  CANARY_TABLE,
  type PostgresCanaryOptions,
  PostgresCanaryWriter,
} from '../../operator/src/providers/canary/postgres-canary.ts';
import { DirectDnsVerifier } from '../../operator/src/providers/dns/verifier.ts';
import { type FailoverStack, RECORD, ZONE } from '../harness/failover-stack.ts';
import { freePort } from '../harness/ports.ts';
import { type PostgresNodeName, type PostgresPair, startPostgresPair } from '../harness/postgres.ts';
import { waitFor } from '../harness/wait.ts';
import { ROOMY_LEASE, stackStarter } from './failover-fixtures.ts';

const writers: PostgresCanaryWriter[] = [];

/** A writer that the test's cleanup stops even when an assertion fails first. */
function startWriter(target: CanaryTarget, options: PostgresCanaryOptions = {}): PostgresCanaryWriter {
  const writer = new PostgresCanaryWriter(target, options);
  writers.push(writer);
  return writer;
}

afterEach(async () => {
  await Promise.all(writers.splice(0).map((w) => w.stop()));
});

/** Waits until the writer's snapshot satisfies `check`. */
function waitForCanary<T>(
  writer: PostgresCanaryWriter,
  check: (s: CanarySnapshot) => T | undefined | false,
  description: string,
  timeoutMs = 60_000,
): Promise<T> {
  return waitFor(() => check(writer.snapshot()), { description, timeoutMs, intervalMs: 50 }).catch(
    (err: Error) => {
      throw new Error(`${err.message}\nlast snapshot: ${JSON.stringify(writer.snapshot())}`);
    },
  );
}

/** The canary's sessions `node` has open now. */
async function canarySessions(pair: PostgresPair, node: PostgresNodeName): Promise<number> {
  const [row] = await pair.sql<{ n: string }>(
    node,
    'SELECT count(*)::text AS n FROM pg_stat_activity WHERE application_name = $1',
    [CANARY_APPLICATION_NAME],
    'postgres',
  );
  return Number(row?.n);
}

/** The highest of the writer's seqs up to `upTo` that `node` holds. */
async function highestSeqOn(
  pair: PostgresPair,
  node: PostgresNodeName,
  s: CanarySnapshot,
  upTo: number,
): Promise<number> {
  const [row] = await pair.sql<{ seq: string | null }>(
    node,
    `SELECT max(seq)::text AS seq FROM ${CANARY_TABLE} WHERE drill = $1 AND writer = $2 AND seq <= $3`,
    [s.drillId, s.writer, upTo],
  );
  return Number(row?.seq ?? 0);
}

/** Rows of the writer `node` holds. */
async function rowsOn(pair: PostgresPair, node: PostgresNodeName, s: CanarySnapshot): Promise<number> {
  const [row] = await pair.sql<{ n: string }>(
    node,
    `SELECT count(*)::text AS n FROM ${CANARY_TABLE} WHERE drill = $1 AND writer = $2`,
    [s.drillId, s.writer],
  );
  return Number(row?.n);
}

describe('PostgresCanaryWriter on a PostgreSQL pair', () => {
  const hosts = { primary: '127.0.0.21', standby: '127.0.0.22' };
  let pair: PostgresPair;
  /** Where the test's "DNS name" leads now. */
  let answer: string | undefined;
  let n = 0;

  beforeAll(async () => {
    const port = await freePort();
    pair = await startPostgresPair({
      name: 'canary',
      tls: true,
      hosts,
      ports: { primary: port, standby: port },
    });
    // Trust the pair's self-signed certificate (made for 127.0.0.1) like a system CA.
    setDefaultCACertificates([...getCACertificates('default'), readFileSync(pair.caPath ?? '', 'utf8')]);
  });
  afterAll(async () => {
    await pair?.stop();
  });

  const target = (over: Partial<CanaryTarget> = {}): CanaryTarget => ({
    resolve: async () => answer,
    clusterOf: (address) => ({ [hosts.primary]: 'region-a', [hosts.standby]: 'region-b' })[address],
    port: pair.primary.port,
    database: pair.database,
    user: pair.user,
    password: pair.password,
    sslMode: 'require',
    drillId: `drill-${++n}`,
    writer: `test-${process.pid}@${new Date().toISOString()}`,
    intervalMs: 50,
    retentionDays: 7,
    ...over,
  });

  it('verifies the certificate against the DNS record’s name, not the address it resolved to', async () => {
    answer = hosts.primary;
    // The certificate names 127.0.0.1; the server is reached at 127.0.0.21.
    const byRecord = startWriter(target({ sslMode: 'verify-full', serverName: '127.0.0.1' }));
    const byAddress = startWriter(target({ sslMode: 'verify-full' }));
    const otherName = startWriter(target({ sslMode: 'verify-full', serverName: 'db.canary.test' }));
    await waitForCanary(byRecord, (s) => (s.runs[0]?.acknowledged ?? 0) >= 5, '5 writes verified by name');
    await waitForCanary(byAddress, (s) => s.failed >= 5, 'writes refused for the address');
    await waitForCanary(otherName, (s) => s.failed >= 5, 'writes refused for another name');
    const [ssl] = await pair.sql<{ ssl: boolean }>(
      'primary',
      'SELECT bool_and(s.ssl) AS ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.application_name = $1',
      [CANARY_APPLICATION_NAME],
      'postgres',
    );
    expect(ssl?.ssl).toBe(true);
    expect(byRecord.snapshot()).toMatchObject({ failed: 0, runs: [{ cluster: 'region-a', firstSeq: 1 }] });
    expect(byAddress.snapshot().runs).toEqual([]);
    expect(otherName.snapshot().runs).toEqual([]);
  });

  it('backs off while the server refuses its login, instead of trying every interval', async () => {
    answer = hosts.primary;
    const started = performance.now();
    const writer = startWriter(target({ password: 'not-the-password' }));
    await waitForCanary(writer, (s) => s.failed >= 5, '5 refused logins');
    // Every 50 ms this would take a quarter of a second; doubling from 50 ms it takes 1.5 s or more.
    expect(performance.now() - started).toBeGreaterThan(1_400);
    expect(writer.snapshot().runs).toEqual([]);
  });

  it('counts a standby’s refusal as failed writes and never as a run', async () => {
    answer = hosts.standby;
    const writer = startWriter(target());
    await waitForCanary(writer, (s) => s.failed >= 5, '5 refused writes');
    const final = await writer.stop();
    expect(final.runs).toEqual([]);
    expect(await canarySessions(pair, 'standby')).toBe(0);
  });

  it('deletes rows past retention, whoever wrote them, and keeps the rest', async () => {
    answer = hosts.primary;
    const first = startWriter(target());
    await waitForCanary(first, (s) => s.runs.length > 0, 'the table in place');
    await first.stop();
    await pair.sql(
      'primary',
      `INSERT INTO ${CANARY_TABLE} (drill, writer, seq, written_at) VALUES
         ('old', 'someone', 1, now() - interval '8 days'), ('old', 'someone', 2, now() - interval '6 days')`,
    );
    const writer = startWriter(target());
    await waitForCanary(writer, (s) => s.runs.length > 0, 'a write');
    const left = await waitFor(
      async () => {
        const rows = await pair.sql<{ seq: string }>(
          'primary',
          `SELECT seq::text FROM ${CANARY_TABLE} WHERE drill = 'old' ORDER BY seq`,
        );
        return rows.length === 1 ? rows.map((r) => r.seq) : undefined;
      },
      { description: 'the 8-day-old row deleted' },
    );
    expect(left).toEqual(['2']);
  });

  it('follows the name to a server that missed writes: a new run, and the rows it lacks counted there', async () => {
    answer = hosts.primary;
    // One cluster name for both: the run splits because the server (its timeline) changed.
    const writer = startWriter(target({ clusterOf: () => 'db', recheckDnsMs: 100 }));
    // Beside it, one that keeps only its newest 5 acknowledged seqs per run.
    const bounded = startWriter(target({ clusterOf: () => 'db', recheckDnsMs: 100 }), { maxSeqsPerRun: 5 });
    await waitForCanary(writer, (s) => (s.runs[0]?.acknowledged ?? 0) >= 10, '10 writes on the primary');
    // The standby becomes a second primary; writes the old one acknowledges from now on are
    // not on it. (Some acknowledged just before may not have reached it either.)
    await pair.sql('standby', 'SELECT pg_promote()', [], 'postgres');
    const atPromotion = writer.snapshot().runs[0]?.acknowledged ?? 0;
    const boundedAtPromotion = bounded.snapshot().runs[0]?.acknowledged ?? 0;
    await waitForCanary(
      writer,
      (s) => (s.runs[0]?.acknowledged ?? 0) >= atPromotion + 10,
      '10 more writes on the old primary',
    );
    await waitForCanary(
      bounded,
      (s) => (s.runs[0]?.acknowledged ?? 0) >= boundedAtPromotion + 10,
      '10 more writes of the bounded writer on the old primary',
    );
    answer = hosts.standby;
    const moved = await waitForCanary(
      writer,
      (s) => (s.runs[0]?.missing !== undefined ? s : undefined),
      'the first write on the promoted standby and the missing count',
    );
    const [before, after] = moved.runs;
    expect(moved.runs).toHaveLength(2);
    expect(after).toMatchObject({
      cluster: 'db',
      address: hosts.standby,
      firstSeq: (before?.lastSeq ?? 0) + 1,
    });
    // No write failed on the way: the old primary's acknowledged seqs are contiguous, and the
    // promoted standby holds exactly those up to its highest.
    expect(moved.failed).toBe(0);
    expect(before?.acknowledged).toBe((before?.lastSeq ?? 0) - (before?.firstSeq ?? 0) + 1);
    const received = await highestSeqOn(pair, 'standby', moved, before?.lastSeq ?? 0);
    expect(before?.missing).toBe((before?.lastSeq ?? 0) - received);
    expect(before?.missing).toBeGreaterThanOrEqual(10);
    expect(before?.missingOf).toBe(before?.acknowledged);

    // The bounded writer counts over its newest 5, where the loss is.
    const short = await waitForCanary(
      bounded,
      (s) => (s.runs[0]?.missing !== undefined ? s : undefined),
      'the bounded writer on the promoted standby',
    );
    expect(short.runs[0]?.acknowledged).toBeGreaterThan(5);
    expect(short.runs[0]).toMatchObject({ missingOf: 5, missing: 5 });

    const final = await writer.stop();
    await bounded.stop();
    expect(final.runs[1]?.acknowledged).toBeGreaterThanOrEqual(1);
    expect(await canarySessions(pair, 'primary')).toBe(0);
    expect(await canarySessions(pair, 'standby')).toBe(0);
  });
});

describe('PostgresCanaryWriter through the failover stack’s DNS name', () => {
  const start = stackStarter('canary', { primaryLease: ROOMY_LEASE });
  let stack: FailoverStack | undefined;
  let n = 0;

  afterEach(async () => {
    await Promise.all(writers.splice(0).map((w) => w.stop()));
    await stack?.stop();
    stack = undefined;
  });

  /** A writer's target as the operator builds it: the record asked of BIND, each cluster by its address. */
  const target = (s: FailoverStack): CanaryTarget => {
    const verifier = new DirectDnsVerifier({ timeoutMs: 1_000 });
    const clusters = new Map([
      [s.pair.primary.host, 'region-a'],
      [s.pair.standby.host, 'region-b'],
    ]);
    return {
      resolve: async () => {
        const answers = await verifier.query({ zone: ZONE, name: RECORD, type: 'A' }, [
          { host: s.bind.host, port: s.bind.port },
        ]);
        return answers.find((a) => a.values?.length)?.values?.[0];
      },
      clusterOf: (address) => clusters.get(address),
      port: s.pair.primary.port,
      database: s.pair.database,
      user: s.pair.user,
      password: s.pair.password,
      sslMode: 'disable',
      serverName: RECORD,
      policyKey: `${s.options.namespace}/orders`,
      drillId: `drill-${++n}`,
      writer: `operator-test-${process.pid}@${new Date().toISOString()}`,
      intervalMs: 100,
      retentionDays: 7,
    };
  };

  it('measures a switchover from the client side: two runs, nothing missing, writes stopped for a while', async () => {
    stack = await start({ pgSettings: { wal_log_hints: 'on', full_page_writes: 'on' } });
    const s = stack;
    await s.waitUntilHealthy();
    await Promise.all([s.startAgent('region-a'), s.startAgent('region-b')]);
    await waitFor(async () => (await s.agentReport('region-a'))?.server === 'Primary' || undefined, {
      description: 'the agent beside region-a to report',
    });
    const writer = startWriter(target(s));
    await waitForCanary(writer, (c) => (c.runs[0]?.acknowledged ?? 0) >= 20, '20 writes on region-a');

    await s.requestPromotion({ id: 'switch-b', target: 'region-b', kind: 'Switchover' });
    const done = await s.waitForPolicy(
      (st) => (st.history?.[0]?.to === 'region-b' && !st.currentOperation ? st : undefined),
      'the switchover to region-b',
    );
    expect(done.history?.[0]).toMatchObject({ kind: 'Switchover', result: 'Succeeded' });
    const moved = await waitForCanary(
      writer,
      (c) => (c.runs[0]?.missing !== undefined && (c.runs[1]?.acknowledged ?? 0) >= 10 ? c : undefined),
      'writes through the name on region-b, and the missing count',
    );
    const final = await writer.stop();

    expect(moved.runs.map((r) => r.cluster)).toEqual(['region-a', 'region-b']);
    expect(final.runs.map((r) => r.cluster)).toEqual(['region-a', 'region-b']);
    expect(final.runs[0]).toMatchObject({ missing: 0, address: s.pair.primary.host });
    const measured = measureSwitch(final, 'region-a', 'region-b');
    expect(measured.rpoTransactions).toBe(0);
    expect(measured.acknowledged).toBe(final.runs[0]?.acknowledged);
    expect(measured.rtoSeconds).toBeGreaterThan(0);
    // The switchover's own figure bounds what a client saw, give or take the writer's rhythm.
    expect(measured.rtoSeconds).toBeLessThan((done.history?.[0]?.rtoSeconds ?? 0) + 5);

    // Every acknowledged row is on the new primary; nothing is left connected.
    const acknowledged = final.runs.reduce((sum, r) => sum + r.acknowledged, 0);
    const present = await rowsOn(s.pair, 'standby', final);
    expect(present).toBeGreaterThanOrEqual(acknowledged);
    expect(present).toBeLessThanOrEqual(final.runs[1]?.lastSeq ?? 0);
    await waitFor(
      async () =>
        ((await canarySessions(s.pair, 'primary')) === 0 &&
          (await canarySessions(s.pair, 'standby')) === 0) ||
        undefined,
      { description: 'no canary session left on either server', timeoutMs: 5_000 },
    );
  });

  it('reports the writes a failover lost: exactly those region-a acknowledged after replication was cut', async () => {
    stack = await start({ mode: 'Manual' });
    const s = stack;
    await s.waitUntilHealthy();
    const writer = startWriter(target(s));
    await waitForCanary(writer, (c) => (c.runs[0]?.acknowledged ?? 0) >= 10, '10 writes on region-a');
    await s.cutReplication();
    const atCut = writer.snapshot().runs[0]?.acknowledged ?? 0;
    await waitForCanary(
      writer,
      (c) => (c.runs[0]?.acknowledged ?? 0) >= atCut + 15,
      '15 writes on region-a after the cut',
    );
    await s.killPrimaryAndFailOver();
    const moved = await waitForCanary(
      writer,
      (c) => (c.runs[0]?.missing !== undefined ? c : undefined),
      'the first write on region-b and the missing count',
    );
    const [lost, resumed] = moved.runs;
    expect(moved.runs.map((r) => r.cluster)).toEqual(['region-a', 'region-b']);
    expect(resumed?.acknowledged).toBeGreaterThanOrEqual(1);
    // Region A's acknowledged seqs are contiguous (its writes failed only once it died), and
    // region B holds them up to the cut: the rest are the loss, to the row.
    expect(lost?.acknowledged).toBe((lost?.lastSeq ?? 0) - (lost?.firstSeq ?? 0) + 1);
    const received = await highestSeqOn(s.pair, 'standby', moved, lost?.lastSeq ?? 0);
    expect(lost?.missing).toBe((lost?.lastSeq ?? 0) - received);
    expect(lost?.missing).toBeGreaterThanOrEqual((lost?.acknowledged ?? 0) - atCut);
    expect(moved.failed).toBeGreaterThan(0);
    const measured = measureSwitch(moved, 'region-a', 'region-b');
    expect(measured).toMatchObject({ rpoTransactions: lost?.missing, acknowledged: lost?.acknowledged });
    expect(measured.rtoSeconds).toBeGreaterThan(0);

    await writer.stop();
    expect(await canarySessions(s.pair, 'standby')).toBe(0);
  });
});
