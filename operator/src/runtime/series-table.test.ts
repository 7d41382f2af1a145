import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { SeriesTable } from './series-table.ts';

const lines = async (registry: Registry) =>
  (await registry.metrics()).split('\n').filter((l) => l && !l.startsWith('#'));

describe('SeriesTable', () => {
  it('keeps one series per object and gauge, formats them when scraped, and drops what is removed', async () => {
    const registry = new Registry();
    const table = new SeriesTable(registry, ['namespace', 'policy'] as const);
    const ready = table.gauge('t_ready', 'ready');
    const epoch = table.gauge('t_epoch', 'epoch');
    ready.set({ namespace: 'a', policy: 'p' }, 1);
    ready.set({ namespace: 'a', policy: 'q' }, 0);
    epoch.set({ namespace: 'a', policy: 'p' }, 3);
    epoch.set({ namespace: 'a', policy: 'p' }, 4);
    expect(await lines(registry)).toEqual([
      't_ready{namespace="a",policy="p"} 1',
      't_ready{namespace="a",policy="q"} 0',
      't_epoch{namespace="a",policy="p"} 4',
    ]);
    epoch.remove({ namespace: 'a', policy: 'p' });
    ready.remove({ namespace: 'a', policy: 'nobody' });
    epoch.set({ namespace: 'a', policy: 'q' }, Number.NaN);
    epoch.set({ namespace: 'a', policy: 'new' }, Number.NaN);
    expect(await lines(registry)).toEqual([
      't_ready{namespace="a",policy="p"} 1',
      't_ready{namespace="a",policy="q"} 0',
    ]);
    table.forget({ namespace: 'a', policy: 'p' });
    expect(await lines(registry)).toEqual(['t_ready{namespace="a",policy="q"} 0']);
    registry.resetMetrics();
    expect(await lines(registry)).toEqual([]);
  });

  it('writes enumerated and info gauges kube-state-metrics style, and a gauge made later starts empty', async () => {
    const registry = new Registry();
    const table = new SeriesTable(registry, ['namespace', 'policy'] as const);
    const phase = table.enumGauge('t_phase', 'phase', 'phase', ['Healthy', 'Degraded']);
    const primary = table.infoGauge('t_primary', 'primary', 'cluster');
    const labels = { namespace: 'a', policy: 'p' };
    phase.set(labels, 'Degraded');
    primary.set(labels, 'east');
    primary.set(labels, 'west');
    const later = table.gauge('t_later', 'later');
    expect(await lines(registry)).toEqual([
      't_phase{namespace="a",policy="p",phase="Healthy"} 0',
      't_phase{namespace="a",policy="p",phase="Degraded"} 1',
      't_primary{namespace="a",policy="p",cluster="west"} 1',
    ]);
    later.set(labels, 7);
    primary.remove(labels);
    expect(await lines(registry)).toContain('t_later{namespace="a",policy="p"} 7');
    expect((await lines(registry)).some((l) => l.startsWith('t_primary'))).toBe(false);
  });

  it("writes each family's text as prom-client does, in pieces of about the size asked", async () => {
    const registry = new Registry();
    const table = new SeriesTable(registry, ['namespace', 'policy'] as const);
    const ready = table.gauge('t_ready', 'ready, with a \\ and a\nnewline');
    const phase = table.enumGauge('t_phase', 'phase', 'phase', ['Healthy', 'Degraded']);
    const primary = table.infoGauge('t_primary', 'primary', 'cluster');
    const empty = table.gauge('t_empty', 'nothing');
    for (let i = 0; i < 200; i++) {
      const labels = { namespace: 'a', policy: i === 7 ? 'q"uote\\d\nline' : `p${i}` };
      ready.set(labels, [0, 1, 0.25, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY][i % 5] as number);
      phase.set(labels, i % 3 ? 'Healthy' : 'Degraded');
      primary.set(labels, `east-${i}`);
    }
    for (const family of [ready, phase, primary, empty]) {
      const pieces = [...family.text(1_000)];
      expect(pieces.join('')).toBe(await registry.getSingleMetricAsString(family.name));
      if (family !== empty) expect(pieces.length).toBeGreaterThan(3);
      for (const piece of pieces.slice(0, -1)) expect(piece.length).toBeLessThan(1_200);
    }
  });

  it("moves an object's series when a label that does not name it changes", async () => {
    const registry = new Registry();
    const table = new SeriesTable(
      registry,
      ['namespace', 'policy', 'cluster'] as const,
      ['namespace', 'cluster'] as const,
    );
    const up = table.gauge('t_up', 'up');
    up.set({ namespace: 'a', policy: 'old', cluster: 'c' }, 1);
    // Extra labels in the caller's object are not exported.
    up.set({ namespace: 'a', policy: 'new', cluster: 'c', extra: 'x' } as never, 0);
    expect(await lines(registry)).toEqual(['t_up{namespace="a",policy="new",cluster="c"} 0']);
    table.forget({ namespace: 'a', cluster: 'c' });
    expect(await lines(registry)).toEqual([]);
  });
});
