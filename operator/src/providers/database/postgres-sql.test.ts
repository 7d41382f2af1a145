import { createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { PostgresSql } from './postgres-sql.ts';

const servers: Server[] = [];
const sockets: Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))));
});

/** A server that accepts TCP connections and never answers: a session that never finishes starting. */
async function silentServer(): Promise<{ port: number; accepted: () => number }> {
  let accepted = 0;
  const server = createServer((s) => {
    accepted++;
    sockets.push(s);
    s.on('error', () => undefined);
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return { port, accepted: () => accepted };
}

const connection = (port: number) => ({
  host: '127.0.0.1',
  port,
  database: 'app',
  user: 'failover',
  password: 'secret',
  sslMode: 'disable' as const,
});

/** Probes that stop waiting for a session after 200 ms, and keep one still starting for 5 s. */
const impatient = (port: number) =>
  new PostgresSql(connection(port), { connectTimeoutMs: 200, sessionStartTimeoutMs: 5_000 });

describe('PostgresSql sessions that do not finish starting', () => {
  it('a probe takes the one kept for the probe before it once, then opens another', async () => {
    const server = await silentServer();
    const sql = impatient(server.port);
    try {
      expect(await sql.observe()).toMatchObject({ reachable: false, failure: { reason: 'Timeout' } });
      // The bare socket asked first, then the session.
      expect(server.accepted()).toBe(2);
      expect(await sql.observe()).toMatchObject({ reachable: false, failure: { reason: 'Timeout' } });
      expect(server.accepted()).toBe(2);
      // No session has opened yet, so the new one is asked with a bare socket first again.
      expect(await sql.observe()).toMatchObject({ reachable: false, failure: { reason: 'Timeout' } });
      expect(server.accepted()).toBe(4);
    } finally {
      await sql.close();
    }
  });

  it('an action opens its own session, not the one kept for probes', async () => {
    const server = await silentServer();
    const sql = impatient(server.port);
    try {
      await sql.observe();
      const before = server.accepted();
      await expect(sql.isInRecovery()).rejects.toMatchObject({ reason: 'Timeout' });
      // A bare socket, then its own session.
      expect(server.accepted()).toBe(before + 2);
    } finally {
      await sql.close();
    }
  });

  it('close does not wait for a session still starting, and a second close does nothing', async () => {
    const server = await silentServer();
    const sql = impatient(server.port);
    await sql.observe();
    const started = performance.now();
    await sql.close();
    await sql.close();
    expect(performance.now() - started).toBeLessThan(1_000);
  });

  it('refuses a connect timeout that is not positive', () => {
    expect(() => new PostgresSql(connection(1), { connectTimeoutMs: 0 })).toThrow(/positive/);
  });
});
