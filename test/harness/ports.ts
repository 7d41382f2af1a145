import { readFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { HarnessError } from './processes.ts';

/**
 * The ports the kernel hands out itself (for port 0 and for every outgoing connection's source
 * port): a port picked from there and listened on a moment later may meanwhile be the source port
 * of some test's connection, and the server then fails to bind. Test servers take theirs below.
 */
function ephemeralRange(): [number, number] {
  try {
    const [low, high] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8')
      .trim()
      .split(/\s+/)
      .map(Number);
    if (low && high && low > 2048) return [low, high];
  } catch {
    // Not Linux: the IANA dynamic range.
  }
  return [49152, 65535];
}
const [EPHEMERAL_LOW] = ephemeralRange();
/** Where test servers' ports come from: below the ephemeral range, above the well-known ones. */
const RANGE = slice({ low: Math.max(1024, EPHEMERAL_LOW - 20_000), high: EPHEMERAL_LOW - 1 });

/** The ports freePort picks from in this process. */
export function portRange(): { low: number; high: number } {
  return { ...RANGE };
}

/**
 * Parallel test files run in vitest workers numbered 1..maxWorkers (VITEST_POOL_ID). A port is
 * checked free when picked but bound only later (a PostgreSQL pair's primary after initdb, seconds
 * on), so two workers picking at random could both pick it; each worker picks from its own slice.
 * Processes outside vitest workers (global setup, the demo) pick from the whole range, where the
 * servers they start are bound at once and stay bound.
 */
function slice(range: { low: number; high: number }): { low: number; high: number } {
  const SLICES = 16;
  const pool = Number(process.env.VITEST_POOL_ID);
  if (!Number.isInteger(pool) || pool < 1) return range;
  if (pool > SLICES)
    throw new HarnessError(
      'pick a free port',
      `vitest worker ${pool} has no port slice: raise SLICES above ${pool}`,
    );
  const size = Math.floor((range.high - range.low + 1) / SLICES);
  const low = range.low + (pool - 1) * size;
  return { low, high: low + size - 1 };
}

/** Ports this process handed out: not handed out again, since many are bound only later. */
const handedOut = new Set<number>();

/**
 * A TCP port on 127.0.0.1 that nothing listens on now, outside the kernel's ephemeral range (so no
 * outgoing connection takes it before the server binds), in this worker's slice, never one this
 * process handed out before.
 */
export async function freePort(): Promise<number> {
  // A worker that runs file after file would run out: the ports of files long finished are free
  // again (at worst one in flight is handed out twice, with three quarters of a slice used).
  if (handedOut.size > ((RANGE.high - RANGE.low) * 3) / 4) handedOut.clear();
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = RANGE.low + Math.floor(Math.random() * (RANGE.high - RANGE.low + 1));
    if (handedOut.has(port)) continue;
    // Taken before the check, which awaits: calls made together (Promise.all) must not share one.
    handedOut.add(port);
    if (await bindable(port)) return port;
  }
  throw new HarnessError(
    'pick a free port',
    `no free TCP port found in ${RANGE.low}-${RANGE.high} on 127.0.0.1`,
  );
}

/**
 * Whether nothing listens on `port` on any IPv4 address. Test servers listen on other loopback
 * addresses too (a stack's standby on 127.0.0.12): one there leaves 127.0.0.1's port free, and
 * after this process's handed-out set is cleared the port could be handed out again while that
 * server still runs. Binding the wildcard address fails on any of them.
 */
export function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen(port, '0.0.0.0', () => server.close(() => resolve(true)));
  });
}

/** Fails with a clear message when something already listens on `port`. */
export function assertPortFree(port: number, step: string, host = '127.0.0.1'): Promise<void> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', (err: NodeJS.ErrnoException) => {
      reject(
        new HarnessError(
          step,
          err.code === 'EADDRINUSE'
            ? `port ${port} on ${host} is already in use; stop what holds it (ss -ltnp 'sport = :${port}') or choose another port`
            : `cannot bind ${host}:${port}: ${err.message}`,
        ),
      );
    });
    server.listen(port, host, () => server.close(() => resolve()));
  });
}

/** Whether anything accepts TCP connections at host:port now. */
export function acceptsConnections(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
