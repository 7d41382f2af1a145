import { describe, expect, it } from 'vitest';
import type { OperationReport } from '../../api/v1alpha1/index.ts';
import type { CanaryRun, CanarySnapshot } from '../../providers/canary/port.ts';
import { CANARY_MEASURE_WAIT_MS } from './drill.ts';
import { CLIENT_MEASURE_HORIZON_MS, measureOperation, measureOperations } from './operation-canary.ts';

const T0 = Date.UTC(2025, 0, 1, 12, 0, 0);
const at = (seconds: number) => new Date(T0 + seconds * 1000).toISOString();
const time = (seconds: number) => new Date(T0 + seconds * 1000);

const run = (cluster: string, first: number, last: number, over: Partial<CanaryRun> = {}): CanaryRun => ({
  cluster,
  firstSeq: first,
  lastSeq: last,
  acknowledged: last - first + 1,
  firstAt: at(first),
  lastAt: at(last),
  ...over,
});

const continuous = (runs: CanaryRun[], startedAt = 0): CanarySnapshot => ({
  drillId: 'continuous',
  writer: 'operator-0@1',
  startedAt: at(startedAt),
  failed: 3,
  runs,
});

/** A failover of a-to-b that started at second `start` and completed at `end`. */
const report = (over: Partial<OperationReport> = {}, start = 100, end = 110): OperationReport => ({
  id: 'op-1',
  kind: 'Failover',
  trigger: 'Automatic',
  from: 'a',
  to: 'b',
  epoch: 1,
  result: 'Succeeded',
  startedAt: at(start),
  completedAt: at(end),
  rtoSeconds: 20,
  ...over,
});

describe('measureOperation: a real failover from the continuous canary', () => {
  it('measures from the last write the old primary acknowledged to the first on the new one', () => {
    // Writes on a until the crash at 90; detection and promotion; the first write on b at 111.5.
    const canary = continuous([run('a', 0, 90, { missing: 2, missingOf: 91 }), run('b', 111.5, 115)]);
    expect(measureOperation(report(), canary, time(116))).toEqual({
      operationId: 'op-1',
      measuredBy: 'Canary',
      rtoSeconds: 21.5,
      rpoTransactions: 2,
      acknowledged: 91,
      writesStoppedAt: at(90),
      writesResumedAt: at(111.5),
    });
  });

  it('waits for the first write on the new primary, up to CANARY_MEASURE_WAIT_MS after completion', () => {
    const canary = continuous([run('a', 0, 90)]);
    expect(measureOperation(report(), canary, time(111))).toBeUndefined();
    const late = time(110 + CANARY_MEASURE_WAIT_MS / 1000);
    expect(measureOperation(report(), canary, late)).toMatchObject({
      measuredBy: 'Operator',
      writesStoppedAt: at(90),
      message: expect.stringMatching(/landed no write on b within 30 s/),
    });
  });

  it('waits while the new run has not counted the missing rows yet, then keeps the RTO without them', () => {
    const canary = continuous([run('a', 0, 90), run('b', 111, 112)]);
    expect(measureOperation(report(), canary, time(112))).toBeUndefined();
    const late = measureOperation(report(), canary, time(145));
    expect(late).toMatchObject({ measuredBy: 'Canary', rtoSeconds: 21 });
    expect(late).not.toHaveProperty('rpoTransactions');
    expect(late?.message).toMatch(/could not count/);
  });

  it('picks this move out of a writer that has seen earlier ones', () => {
    // a → b (an earlier failover), b → a (a switchover back), and now a → b again.
    const canary = continuous([
      run('a', 0, 10, { missing: 0 }),
      run('b', 12, 50, { missing: 0 }),
      run('a', 53, 95, { missing: 4, missingOf: 43 }),
      run('b', 113, 120),
    ]);
    expect(measureOperation(report(), canary, time(121))).toMatchObject({
      rtoSeconds: 18,
      rpoTransactions: 4,
      writesStoppedAt: at(95),
      writesResumedAt: at(113),
    });
  });

  it('counts lostWrites out of the rows it could count, when the run outgrew the writer memory', () => {
    const canary = continuous([
      run('a', 0, 90, { acknowledged: 500_000, missing: 1, missingOf: 100_000 }),
      run('b', 111, 112),
    ]);
    expect(measureOperation(report(), canary, time(113))).toMatchObject({
      rpoTransactions: 1,
      acknowledged: 100_000,
    });
  });

  it('says why when the writer started after the operation (an operator restarted mid-failover)', () => {
    const canary = continuous([run('b', 111, 115)], 105);
    expect(measureOperation(report(), canary, time(141))).toEqual({
      operationId: 'op-1',
      measuredBy: 'Operator',
      message: expect.stringMatching(/started after the failover did/),
    });
  });

  it('says why when no writer ran', () => {
    expect(measureOperation(report(), undefined, time(141))?.message).toMatch(
      /no continuous canary writer ran/,
    );
  });
});

describe('measureOperations: history entries filled in', () => {
  const canary = continuous([run('a', 0, 90, { missing: 0, missingOf: 91 }), run('b', 111.5, 115)]);

  it('fills a real failover with client and lostWrites, and says so in a Normal Event', () => {
    const m = measureOperations([report()], canary, time(116));
    expect(m.waiting).toBe(false);
    expect(m.history?.[0]).toMatchObject({
      lostWrites: 0,
      client: { measuredBy: 'Canary', rtoSeconds: 21.5 },
    });
    expect(m.measured).toHaveLength(1);
    expect(m.events).toEqual([
      expect.objectContaining({ type: 'Normal', reason: 'ClientMeasured', action: 'Measure' }),
    ]);
    expect(m.events[0]?.note).toMatch(
      /writes stopped for 21.5 s .*0 of 91 writes a acknowledged missing on b/,
    );
  });

  it('makes a switchover that lost acknowledged writes a Warning', () => {
    const lossy = continuous([run('a', 0, 90, { missing: 3 }), run('b', 92, 95)]);
    const m = measureOperations([report({ kind: 'Switchover', trigger: 'Manual' })], lossy, time(96));
    expect(m.history?.[0]?.lostWrites).toBe(3);
    expect(m.events[0]).toMatchObject({ type: 'Warning', reason: 'SwitchoverLostWrites' });
  });

  it('a failover that lost writes is its measured RPO: a Normal Event with the figures', () => {
    const lossy = continuous([run('a', 0, 90, { missing: 3 }), run('b', 112, 115)]);
    const m = measureOperations([report()], lossy, time(116));
    expect(m.events[0]).toMatchObject({ type: 'Normal', reason: 'ClientMeasured' });
    expect(m.events[0]?.note).toMatch(/3 of 91 writes/);
  });

  it('waits without changing anything while the canary has not written to the new primary', () => {
    const history = [report()];
    const m = measureOperations(history, continuous([run('a', 0, 90)]), time(112));
    expect(m).toMatchObject({ waiting: true, measured: [], events: [] });
    expect(m.history).toEqual(history);
  });

  it('leaves alone drill legs, fences, reprotects, aborted operations, measured ones, and old history', () => {
    const history = [
      report({ id: 'drill-leg', kind: 'Switchover', trigger: 'Drill' }),
      report({ id: 'reprotect', kind: 'Reprotect' }),
      report({ id: 'fence', kind: 'Fence' }),
      report({ id: 'aborted', result: 'Aborted' }),
      report({ id: 'done', client: { operationId: 'done', measuredBy: 'Operator', message: 'x' } }),
      report(
        { id: 'old' },
        100 - CLIENT_MEASURE_HORIZON_MS / 1000,
        110 - CLIENT_MEASURE_HORIZON_MS / 1000 - 1,
      ),
    ];
    const m = measureOperations(history, canary, time(116));
    expect(m).toMatchObject({ waiting: false, measured: [], events: [] });
    expect(m.history).toEqual(history);
  });

  it('files an operation the canary could not see as not measured, once the wait is over', () => {
    const m = measureOperations([report()], undefined, time(141));
    expect(m.history?.[0]?.client).toMatchObject({ measuredBy: 'Operator' });
    expect(m.history?.[0]).not.toHaveProperty('lostWrites');
    expect(m.events[0]).toMatchObject({ type: 'Normal', reason: 'ClientNotMeasured' });
  });
});
