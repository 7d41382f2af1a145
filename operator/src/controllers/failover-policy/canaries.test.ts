import { describe, expect, it } from 'vitest';
import type { CanarySnapshot, CanaryTarget, CanaryWriter } from '../../providers/canary/port.ts';
import { CanaryWriters } from './canaries.ts';

/** A writer that records its target and whether it was stopped; it writes nothing. */
class FakeWriter implements CanaryWriter {
  stopped = false;
  readonly target: CanaryTarget;
  constructor(target: CanaryTarget) {
    this.target = target;
  }
  snapshot(): CanarySnapshot {
    return { drillId: this.target.drillId, writer: this.target.writer, startedAt: '', failed: 0, runs: [] };
  }
  async stop(): Promise<CanarySnapshot> {
    this.stopped = true;
    return this.snapshot();
  }
}

const target = (drillId: string) => async () => ({ drillId, writer: `w-${drillId}` }) as CanaryTarget;

function writers() {
  const made: FakeWriter[] = [];
  const all = new CanaryWriters((t) => {
    const w = new FakeWriter(t);
    made.push(w);
    return w;
  });
  return { all, made };
}

describe('CanaryWriters', () => {
  it("runs a drill's writer and the continuous one side by side, each read and stopped on its own", async () => {
    const { all, made } = writers();
    await all.ensure('ns/p', target('continuous'), 'settings-1', 'Continuous');
    await all.ensure('ns/p', target('drill-1'), 'drill-1', 'Drill');
    expect(all.snapshot('ns/p')?.drillId).toBe('drill-1');
    expect(all.snapshot('ns/p', 'Continuous')?.drillId).toBe('continuous');
    all.stop('ns/p', 'Drill');
    expect(all.snapshot('ns/p')).toBeUndefined();
    expect(all.snapshot('ns/p', 'Continuous')?.drillId).toBe('continuous');
    expect(made.map((w) => w.stopped)).toEqual([false, true]);
  });

  it('keeps a writer while its token holds, and replaces it when the token changes', async () => {
    const { all, made } = writers();
    await all.ensure('ns/p', target('continuous'), 'settings-1', 'Continuous');
    await all.ensure('ns/p', target('continuous'), 'settings-1', 'Continuous');
    expect(made).toHaveLength(1);
    await all.ensure('ns/p', target('continuous'), 'settings-2', 'Continuous');
    expect(made).toHaveLength(2);
    expect(made[0]?.stopped).toBe(true);
  });

  it("stops all of a policy's writers without a purpose, and every writer at shutdown", async () => {
    const { all, made } = writers();
    await all.ensure('ns/p', target('continuous'), 't', 'Continuous');
    await all.ensure('ns/p', target('drill-1'), 'drill-1', 'Drill');
    await all.ensure('ns/q', target('continuous'), 't', 'Continuous');
    all.stop('ns/p');
    expect(all.snapshot('ns/p', 'Continuous')).toBeUndefined();
    expect(made.map((w) => w.stopped)).toEqual([true, true, false]);
    await all.stopAll();
    expect(made.every((w) => w.stopped)).toBe(true);
  });

  it('tells a cause of failing to start once, until the writer starts or the cause changes', async () => {
    const { all } = writers();
    expect(all.failedAnew('ns/p', 'Continuous', 'no secret')).toBe(true);
    expect(all.failedAnew('ns/p', 'Continuous', 'no secret')).toBe(false);
    expect(all.failedAnew('ns/p', 'Continuous', 'no answer')).toBe(true);
    await all.ensure('ns/p', target('continuous'), 't', 'Continuous');
    expect(all.failedAnew('ns/p', 'Continuous', 'no answer')).toBe(true);
  });
});
