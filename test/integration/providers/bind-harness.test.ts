/**
 * The BIND harness itself: independent servers, freezing and thawing, clear failures that name
 * the step and the log, and nothing left running or on disk afterwards.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { dirname } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type BindServer, startBind } from '../../harness/bind.ts';
import { HarnessError, isAlive } from '../../harness/processes.ts';

const started: BindServer[] = [];
afterAll(async () => {
  await Promise.all(started.map((server) => server.stop()));
});

describe('the BIND harness', () => {
  it('starts independent servers with their own port, key and zone, and removes them on stop', async () => {
    const [a, b] = await Promise.all([
      startBind({ name: 'a' }),
      startBind({ name: 'b', zone: 'other.test' }),
    ]);
    started.push(a, b);
    expect(a.port).not.toBe(b.port);
    expect(a.key.secret).not.toBe(b.key.secret);
    expect(await a.dig('failover.test', 'SOA')).toEqual([expect.stringMatching(/^ns1\.failover\.test\. /)]);
    expect(await b.dig('ns1.other.test', 'A')).toEqual(['127.0.0.1']);
    // Authoritative only: no recursion for names outside the zone.
    expect(await a.dig('other.test', 'SOA')).toEqual([]);

    const pid = Number(readFileSync(`${a.dir}/named.pid`, 'utf8').trim());
    expect(isAlive(pid)).toBe(true);
    await a.stop();
    expect(isAlive(pid)).toBe(false);
    expect(existsSync(a.dir)).toBe(false);
  });

  it('freezes a server so that it stops answering, and thaws it', async () => {
    const dns = await startBind({ name: 'freeze' });
    started.push(dns);
    const serial = await dns.soaSerial();
    expect(serial).toBe(1);
    await dns.freeze();
    expect(await dns.soaSerial(500)).toBeUndefined();
    dns.thaw();
    expect(await dns.soaSerial()).toBe(serial);
    // Stopping a frozen server must not wait for the SIGKILL grace period.
    await dns.freeze();
    const t0 = Date.now();
    await dns.stop();
    expect(Date.now() - t0).toBeLessThan(5_000);
  });

  it('fails with the step when the port is taken', async () => {
    const holder: Server = createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    const address = holder.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    try {
      await expect(startBind({ name: 'taken', port })).rejects.toThrow(
        /^start named \(taken\): port \d+ on 127\.0\.0\.1 is already in use/,
      );
    } finally {
      holder.close();
    }
  });

  it('fails with the step and the log when the zone does not load', async () => {
    const failure = startBind({
      name: 'broken',
      records: ['this line is not a record'],
      readyTimeoutMs: 3_000,
    });
    const err = await failure.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HarnessError);
    const { message, logPath } = err as HarnessError;
    expect(message).toMatch(/^start named \(broken\): never became ready[\s\S]*\(log: .*named\.log\)$/);
    // The log says what is wrong with the zone.
    expect(readFileSync(logPath ?? '', 'utf8')).toMatch(/failover\.test\/IN: not loaded due to errors/);
    rmSync(dirname(logPath ?? ''), { recursive: true, force: true });
  });
});
