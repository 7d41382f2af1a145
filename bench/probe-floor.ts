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
 *    BENCH_FLOOR_SECONDS (20): first as the bytes pg writes for a prepared statement, answers
 *    counted by their ReadyForQuery and nothing parsed (no client does less), then by
 *    pg.Client.query with the same statement. CPU of this process per round trip.
 * 2. RSS per idle session of a bare pg.Client, after a full GC: the same sessions, measured as
 *    they are opened (a statement run on each), before part 1.
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

/** Bind, Execute and Sync of the prepared statement `floor` with the database's name: as pg sends them. */
function boundExecution(database: string): Buffer {
  const message = (type: string, body: Buffer) => {
    const head = Buffer.alloc(5);
    head.write(type);
    head.writeInt32BE(body.length + 4, 1);
    return Buffer.concat([head, body]);
  };
  const cstring = (s: string) => Buffer.from(`${s}\0`);
  const value = Buffer.from(database);
  const count = (n: number, bytes = 2) => {
    const b = Buffer.alloc(bytes);
    if (bytes === 2) b.writeInt16BE(n);
    else b.writeInt32BE(n);
    return b;
  };
  const bind = Buffer.concat([
    cstring(''), // unnamed portal
    cstring('floor'),
    count(0), // parameter formats: all text
    count(1),
    count(value.length, 4),
    value,
    count(0), // result formats: all text
  ]);
  return Buffer.concat([
    message('B', bind),
    message('E', Buffer.concat([cstring(''), count(0, 4)])),
    message('S', Buffer.alloc(0)),
  ]);
}

/** Counts ReadyForQuery messages on a socket taken from pg, framing messages by their length. */
function countAnswers(socket: Socket, onAnswer: () => void): void {
  let pending: Buffer = Buffer.alloc(0);
  socket.removeAllListeners('data');
  socket.on('data', (chunk: Buffer) => {
    pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
    let at = 0;
    while (pending.length - at >= 5) {
      const length = pending.readInt32BE(at + 1);
      if (pending.length - at < length + 1) break;
      if (pending[at] === 0x5a) onAnswer();
      at += length + 1;
    }
    pending = pending.subarray(at);
  });
}

/** `fire(i)` for every session every SESSIONS / RATE s, staggered; CPU per answer over SECONDS. */
async function measure(label: string, fire: (i: number, answered: () => void) => void): Promise<string> {
  let answers = 0;
  const answered = () => {
    answers++;
  };
  const periodMs = (SESSIONS / RATE) * 1000;
  const timers: NodeJS.Timeout[] = [];
  for (let i = 0; i < SESSIONS; i++) {
    timers.push(
      setTimeout(
        () => {
          fire(i, answered);
          timers[i] = setInterval(() => fire(i, answered), periodMs);
        },
        (i * periodMs) / SESSIONS,
      ),
    );
  }
  try {
    // Every session asked once, and answered, before the window opens.
    await waitFor(async () => answers >= SESSIONS, {
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
    return `${label.padEnd(34)} ${(done / wall).toFixed(0).padStart(5)}/s  ${share(used.user + used.system).padStart(5)} % of a core (user ${share(used.user)}, system ${share(used.system)})  ${((used.user + used.system) / Math.max(1, done)).toFixed(0).padStart(4)} µs a round trip`;
  } finally {
    for (const t of timers) clearInterval(t);
  }
}

try {
  say(`${SESSIONS} sessions of one server, ${RATE} round trips a second, ${SECONDS} s each`);
  // 2 first, on a fresh heap: what the sessions the round trips use hold while idle. One session
  // first, so pg's code and the statement's first run are not counted.
  const [warm] = await sessions(1);
  if (warm) await ask(warm);
  gc();
  gc();
  const before = process.memoryUsage();
  const pool = await sessions(SESSIONS);
  for (const client of pool) await ask(client);
  gc();
  gc();
  const after = process.memoryUsage();
  const perSession = (bytes: number) => (bytes / SESSIONS / 1024).toFixed(1);
  const idle = `an idle pg.Client session: ${perSession(after.rss - before.rss)} KiB RSS, of it ${perSession(after.heapUsed - before.heapUsed)} KiB JS heap (${SESSIONS} sessions, after a full GC)`;

  const byPg = await measure(
    'pg.Client.query',
    (i, answered) => void ask(pool[i] as pg.Client).then(answered),
  );
  // The same sessions, pg's reader taken off: bytes out, ReadyForQuery counted.
  const bytes = boundExecution(c.database);
  const sockets = pool.map(
    (client) => (client as unknown as { connection: { stream: Socket } }).connection.stream,
  );
  const answerers: Array<() => void> = [];
  for (const [i, socket] of sockets.entries()) countAnswers(socket, () => answerers[i]?.());
  const raw = await measure('raw bytes, answers only counted', (i, answered) => {
    answerers[i] = answered;
    sockets[i]?.write(bytes);
  });
  for (const socket of sockets) socket.destroy();

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
  await pair.stop();
}
