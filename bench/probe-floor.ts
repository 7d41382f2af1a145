/**
 * Benchmark: the floor under a probe's cost, whatever the operator does around it.
 *
 * Issue 17's idle goal for 2,000 healthy policies (4,000 clusters probed every 5 s: 800 round
 * trips a second, under 5 % of a core) leaves 62 µs of CPU a round trip; its memory goal (under
 * 200 MiB) leaves what the rest of the operator does not take for 4,000 pooled sessions. This
 * measures the least a Node.js process pays for each, against a real PostgreSQL server:
 *
 * 1. BENCH_FLOOR_RATE (800) round trips a second over BENCH_FLOOR_SESSIONS (1,000) pooled sessions
 *    of one server, spread evenly as the operator's per-cluster timers spread them, for
 *    BENCH_FLOOR_SECONDS (20): by pg.Client.query with a prepared statement, then on the same
 *    sockets as the bytes pg writes for it, the answers framed and counted, nothing parsed (a
 *    Node.js client can hardly do less). CPU of this process per round trip.
 * 2. RSS per idle session of a bare pg.Client, after a full GC: the slope from a quarter of the
 *    same sessions to all of them (a statement run on each), measured before part 1.
 *
 * The statement is smaller than the operator's probe (bench/probe-cost.ts measures that one).
 */
import type { Socket } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import pg from 'pg';
import { startPostgresPair } from '../test/harness/postgres.ts';
import { installSignalCleanup } from '../test/harness/processes.ts';
import { waitFor } from '../test/harness/wait.ts';

const SESSIONS = Number(process.env.BENCH_FLOOR_SESSIONS ?? 1000);
const RATE = Number(process.env.BENCH_FLOOR_RATE ?? 800);
const SECONDS = Number(process.env.BENCH_FLOOR_SECONDS ?? 20);
const STATEMENT =
  'SELECT pg_is_in_recovery() AS in_recovery, pg_last_wal_replay_lsn()::text AS replayed, $1::text AS db';
const say = (s: string) => process.stdout.write(`[bench floor] ${s}\n`);

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const pair = await startPostgresPair({
  name: 'bench-floor',
  settings: { max_connections: SESSIONS * 2 + 50 },
});
installSignalCleanup(() => pair.stop());
const c = pair.connection('primary');
const config = { host: c.host, port: c.port, user: c.user, password: c.password, database: c.database };

/** Opens `n` sessions, 20 at a time (the server forks a backend for each). */
async function sessions(n: number): Promise<pg.Client[]> {
  const clients: pg.Client[] = [];
  while (clients.length < n) {
    const batch = Array.from({ length: Math.min(20, n - clients.length) }, async () => {
      const client = new pg.Client(config);
      // Sessions this bench takes from pg end without pg knowing; nobody is waiting on them.
      client.on('error', () => undefined);
      await client.connect();
      return client;
    });
    clients.push(...(await Promise.all(batch)));
  }
  return clients;
}

const ask = (client: pg.Client) => client.query({ name: 'floor', text: STATEMENT, values: [c.database] });

/** Bind, Describe, Execute and Sync of the prepared statement `floor` with one text value: as pg sends them. */
function boundExecution(database: string): Buffer {
  const message = (type: string, body: Buffer) => {
    const head = Buffer.alloc(5);
    head.write(type);
    head.writeInt32BE(body.length + 4, 1);
    return Buffer.concat([head, body]);
  };
  const cstring = (s: string) => Buffer.from(`${s}\0`);
  const value = Buffer.from(database);
  const int = (n: number, bytes: 2 | 4) => {
    const b = Buffer.alloc(bytes);
    if (bytes === 2) b.writeInt16BE(n);
    else b.writeInt32BE(n);
    return b;
  };
  const bind = Buffer.concat([
    cstring(''), // unnamed portal
    cstring('floor'),
    int(0, 2), // parameter formats: all text
    int(1, 2),
    int(value.length, 4),
    value,
    int(0, 2), // result formats: all text
  ]);
  return Buffer.concat([
    message('B', bind),
    message('D', Buffer.concat([Buffer.from('P'), cstring('')])),
    message('E', Buffer.concat([cstring(''), int(0, 4)])),
    message('S', Buffer.alloc(0)),
  ]);
}

/** What came back on the sockets taken from pg. */
const seenRaw = { rows: 0, errors: 0, answers: 0 };

/** The socket under a pg.Client: pg does not expose it. */
const socketOf = (client: pg.Client) =>
  (client as unknown as { connection: { stream: Socket } }).connection.stream;

/** Frames the messages on a socket taken from pg by their length: rows, errors and answers (ReadyForQuery). */
function countAnswers(socket: Socket, onAnswer: () => void): void {
  let pending: Buffer = Buffer.alloc(0);
  socket.removeAllListeners('data');
  socket.on('data', (chunk: Buffer) => {
    pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
    let at = 0;
    while (pending.length - at >= 5) {
      const length = pending.readInt32BE(at + 1);
      if (pending.length - at < length + 1) break;
      const type = pending[at];
      if (type === 0x44)
        seenRaw.rows++; // DataRow
      else if (type === 0x45)
        seenRaw.errors++; // ErrorResponse
      else if (type === 0x5a) {
        seenRaw.answers++;
        onAnswer();
      }
      at += length + 1;
    }
    pending = pending.subarray(at);
  });
}

/**
 * `fire(i)` for every session every SESSIONS / RATE s, staggered; CPU per answer over SECONDS,
 * once every session has answered. Returns when no round trip is still out.
 */
async function measure(
  label: string,
  fire: (i: number, answered: () => void, failed: () => void) => void,
): Promise<string> {
  let answers = 0;
  let out = 0;
  let failures = 0;
  const heard = new Set<number>();
  const send = (i: number) => {
    out++;
    fire(
      i,
      () => {
        out--;
        answers++;
        heard.add(i);
      },
      () => {
        out--;
        failures++;
      },
    );
  };
  const periodMs = (SESSIONS / RATE) * 1000;
  const timers: NodeJS.Timeout[] = [];
  for (let i = 0; i < SESSIONS; i++) {
    timers.push(
      setTimeout(
        () => {
          send(i);
          timers[i] = setInterval(() => send(i), periodMs);
        },
        (i * periodMs) / SESSIONS,
      ),
    );
  }
  let figures: string;
  try {
    await waitFor(async () => heard.size === SESSIONS, {
      description: `${label}: every session answered`,
      timeoutMs: 60_000,
    });
    const before = answers;
    const cpu = process.cpuUsage();
    const started = performance.now();
    await new Promise((resolve) => setTimeout(resolve, SECONDS * 1000));
    const used = process.cpuUsage(cpu);
    const wall = (performance.now() - started) / 1000;
    const done = answers - before;
    const share = (us: number) => ((us / 1e6 / wall) * 100).toFixed(1);
    figures = `${label.padEnd(34)} ${(done / wall).toFixed(0).padStart(5)}/s  ${share(used.user + used.system).padStart(5)} % of a core (user ${share(used.user)}, system ${share(used.system)})  ${((used.user + used.system) / Math.max(1, done)).toFixed(0).padStart(4)} µs a round trip`;
  } finally {
    for (const t of timers) clearInterval(t);
  }
  // The sessions change hands next: nothing of this run may still be on them.
  await waitFor(async () => out === 0, { description: `${label}: every round trip back`, timeoutMs: 30_000 });
  if (failures > 0) throw new Error(`${label}: ${failures} round trips failed`);
  return figures;
}

const clients: pg.Client[] = [];
try {
  say(`${SESSIONS} sessions of one server, ${RATE} round trips a second, ${SECONDS} s each`);
  // 2 first, on a fresh heap: what idle sessions hold, as the slope from a quarter of them to all
  // (so the young generation's growth and pg's first use are not counted as sessions).
  const heldAt = async (n: number) => {
    const opened = await sessions(n - clients.length);
    for (const client of opened) await ask(client);
    clients.push(...opened);
    gc();
    gc();
    return process.memoryUsage();
  };
  const quarter = Math.ceil(SESSIONS / 4);
  const fewer = await heldAt(quarter);
  const all = await heldAt(SESSIONS);
  const perSession = (bytes: number) => (bytes / (SESSIONS - quarter) / 1024).toFixed(1);
  const idle = `an idle pg.Client session: ${perSession(all.rss - fewer.rss)} KiB RSS, of it ${perSession(all.heapUsed - fewer.heapUsed)} KiB JS heap in use and ${perSession(all.heapTotal - fewer.heapTotal)} KiB heap committed (${quarter} → ${SESSIONS} sessions, after a full GC)`;

  const byPg = await measure('pg.Client.query', (i, answered, failed) => {
    ask(clients[i] as pg.Client).then(answered, failed);
  });
  // The same sessions, pg's reader taken off: bytes out, messages framed and counted, nothing parsed.
  const bytes = boundExecution(c.database);
  const sockets = clients.map(socketOf);
  const answerers: Array<() => void> = [];
  for (const [i, socket] of sockets.entries()) countAnswers(socket, () => answerers[i]?.());
  const raw = await measure('raw bytes, answers only framed', (i, answered) => {
    answerers[i] = answered;
    sockets[i]?.write(bytes);
  });
  if (seenRaw.errors > 0 || seenRaw.rows !== seenRaw.answers)
    throw new Error(
      `raw round trips: ${seenRaw.errors} errors, ${seenRaw.rows} rows for ${seenRaw.answers} answers`,
    );

  const goalUs = (0.05 * 1e6) / 800;
  process.stdout.write(
    [
      '',
      `  round trips over pooled sessions (CPU of this process; the goal's 800/s under 5 % is ${goalUs.toFixed(0)} µs each):`,
      `    ${raw}`,
      `    ${byPg}`,
      `  ${idle}`,
      '',
    ].join('\n'),
  );
} finally {
  // pg's reader is gone from some: their ends are not waited for.
  for (const client of clients) socketOf(client).destroy();
  await pair.stop();
}
