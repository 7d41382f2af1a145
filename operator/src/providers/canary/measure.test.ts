import { describe, expect, it } from 'vitest';
import { measureSwitch } from './measure.ts';
import type { CanaryRun, CanarySnapshot } from './port.ts';

const at = (seconds: number) => new Date(Date.UTC(2025, 0, 1, 12, 0, 0) + seconds * 1000).toISOString();

/** A run of acknowledged writes on `cluster` from second `first` to second `last`. */
const run = (cluster: string, first: number, last: number, over: Partial<CanaryRun> = {}): CanaryRun => ({
  cluster,
  firstSeq: first * 10,
  lastSeq: last * 10,
  acknowledged: (last - first) * 10 + 1,
  firstAt: at(first),
  lastAt: at(last),
  ...over,
});

const snapshot = (runs: CanaryRun[]): CanarySnapshot => ({
  drillId: 'drill-1',
  writer: 'operator-0@1',
  startedAt: at(0),
  failed: 4,
  runs,
});

describe('measureSwitch', () => {
  it('measures a clean switch: the gap between the last write on one and the first on the other', () => {
    const m = measureSwitch(snapshot([run('a', 0, 10, { missing: 0 }), run('b', 11.25, 20)]), 'a', 'b');
    expect(m).toEqual({
      writesStoppedAt: at(10),
      writesResumedAt: at(11.25),
      rtoSeconds: 1.25,
      rpoTransactions: 0,
      acknowledged: 101,
    });
  });

  it('reports acknowledged writes the new primary lacks', () => {
    const m = measureSwitch(snapshot([run('a', 0, 5, { missing: 7 }), run('b', 9, 12)]), 'a', 'b');
    expect(m.rpoTransactions).toBe(7);
    expect(m.rtoSeconds).toBe(4);
  });

  it('says when writes stopped but nothing about a resumption that has not happened', () => {
    const m = measureSwitch(snapshot([run('a', 0, 5)]), 'a', 'b');
    expect(m).toEqual({ writesStoppedAt: at(5), acknowledged: 51 });
  });

  it('measures nothing without a run on the old primary', () => {
    expect(measureSwitch(snapshot([run('b', 0, 5)]), 'a', 'b')).toEqual({ acknowledged: 0 });
    expect(measureSwitch(snapshot([]), 'a', 'b')).toEqual({ acknowledged: 0 });
  });

  it('leaves the RPO out while the new run has not counted it yet', () => {
    const m = measureSwitch(snapshot([run('a', 0, 5), run('b', 6, 7)]), 'a', 'b');
    expect(m.rtoSeconds).toBe(1);
    expect(m).not.toHaveProperty('rpoTransactions');
  });

  it('takes the last run on the old primary: a new server identity there splits its runs', () => {
    const m = measureSwitch(
      snapshot([run('a', 0, 5, { missing: 0 }), run('a', 6, 8, { missing: 2 }), run('b', 10, 12)]),
      'a',
      'b',
    );
    expect(m).toMatchObject({ writesStoppedAt: at(8), rtoSeconds: 2, rpoTransactions: 2, acknowledged: 21 });
  });

  it('tells the way out from the way back in a round trip', () => {
    const trip = snapshot([
      run('a', 0, 10, { missing: 0 }),
      run('b', 12, 30, { missing: 1 }),
      run('a', 33.5, 40),
    ]);
    expect(measureSwitch(trip, 'a', 'b')).toMatchObject({ rtoSeconds: 2, rpoTransactions: 0 });
    expect(measureSwitch(trip, 'b', 'a')).toMatchObject({
      writesStoppedAt: at(30),
      writesResumedAt: at(33.5),
      rtoSeconds: 3.5,
      rpoTransactions: 1,
      acknowledged: 181,
    });
  });

  it('gives no RPO when writes landed on a third server in between: the count was made there', () => {
    const m = measureSwitch(
      snapshot([run('a', 0, 5, { missing: 0 }), run('10.0.0.9', 6, 7, { missing: 0 }), run('b', 9, 10)]),
      'a',
      'b',
    );
    expect(m.rtoSeconds).toBe(4);
    expect(m).not.toHaveProperty('rpoTransactions');
  });
});
