import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { freePort } from './ports.ts';

describe('freePort', () => {
  it('never hands out a port twice in one process, even when none of them is bound yet', async () => {
    const ports = await Promise.all(Array.from({ length: 200 }, () => freePort()));
    expect(new Set(ports).size).toBe(200);
  });

  it('stays below the kernel ephemeral range, in a slice of its own per vitest worker', async () => {
    const [low] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8')
      .trim()
      .split(/\s+/)
      .map(Number);
    const pool = Number(process.env.VITEST_POOL_ID);
    expect(pool).toBeGreaterThanOrEqual(1);
    const rangeLow = Math.max(1024, (low ?? 49152) - 20_000);
    const size = Math.floor(((low ?? 49152) - rangeLow) / 8);
    const sliceLow = rangeLow + ((pool - 1) % 8) * size;
    for (let i = 0; i < 20; i++) {
      const port = await freePort();
      expect(port).toBeGreaterThanOrEqual(sliceLow);
      expect(port).toBeLessThan(sliceLow + size);
    }
  });
});
