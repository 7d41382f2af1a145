import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { bindable, freePort, portRange } from './ports.ts';

describe('freePort', () => {
  it('never hands out a port twice in one process, even when none of them is bound yet', async () => {
    const ports = await Promise.all(Array.from({ length: 200 }, () => freePort()));
    expect(new Set(ports).size).toBe(200);
  });

  it('takes a port that a server listens on at another loopback address as taken', async () => {
    const port = await freePort();
    expect(await bindable(port)).toBe(true);
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.12', resolve));
    try {
      expect(await bindable(port)).toBe(false);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
    expect(await bindable(port)).toBe(true);
  });

  it('stays below the kernel ephemeral range, in a slice of its own per vitest worker', async () => {
    const [ephemeralLow] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8')
      .trim()
      .split(/\s+/)
      .map(Number);
    const { low, high } = portRange();
    expect(Number(process.env.VITEST_POOL_ID)).toBeGreaterThanOrEqual(1);
    expect(high).toBeLessThan(ephemeralLow ?? 0);
    // One of sixteen slices of the 20,000 ports below it.
    expect(high - low + 1).toBe(1250);
    for (let i = 0; i < 20; i++) {
      const port = await freePort();
      expect(port).toBeGreaterThanOrEqual(low);
      expect(port).toBeLessThanOrEqual(high);
    }
  });
});
