import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { AvailabilityLedger, FailoverPolicyStatus, Operation } from '../../api/v1alpha1/index.ts';
import { failoverPolicyStatus } from '../../api/v1alpha1/index.ts';
import { dailyDowntime, monthlyAvailability, nextLedger, spans } from './availability.ts';

const t = (iso: string) => new Date(iso);
const failover = (step: Operation['step']): Operation => ({
  id: 'failover-e2-x',
  kind: 'Failover',
  trigger: 'Automatic',
  from: 'a',
  to: 'b',
  epoch: 2,
  step,
  startedAt: '2026-11-30T23:59:50Z',
  stepStartedAt: '2026-11-30T23:59:55Z',
});

describe('the availability ledger', () => {
  it('counts an outage from the quorum until DNS answers the new primary, split across months and days', () => {
    let ledger = nextLedger(undefined, { activePrimary: 'a' }, t('2026-11-01T00:00:00Z'));
    expect(ledger).toEqual({ trackedSince: '2026-11-01T00:00:00.000Z' });
    // The quorum finds it down just before midnight at the month's end.
    const down: FailoverPolicyStatus = { activePrimary: 'a', primaryDownSince: '2026-11-30T23:59:30Z' };
    ledger = nextLedger(ledger, down, t('2026-11-30T23:59:31Z'));
    expect(ledger.downSince).toBe('2026-11-30T23:59:30Z');
    // Promoted: the new primary is up, the quorum has it, but the name still names the old one.
    const repointing: FailoverPolicyStatus = {
      activePrimary: 'b',
      currentOperation: failover('VerifyingDns'),
    };
    expect(nextLedger(ledger, repointing, t('2026-12-01T00:00:10Z'))).toBe(ledger);
    const after: FailoverPolicyStatus = {
      activePrimary: 'b',
      history: [
        {
          ...failover('Completed'),
          result: 'Succeeded',
          completedAt: '2026-12-01T00:00:30Z',
        },
      ],
    };
    ledger = nextLedger(ledger, after, t('2026-12-01T00:00:30Z'));
    expect(ledger.downSince).toBeUndefined();
    expect(ledger.outages).toEqual([
      {
        start: '2026-11-30T23:59:30Z',
        end: '2026-12-01T00:00:30.000Z',
        seconds: 60,
        operationId: 'failover-e2-x',
      },
    ]);
    expect(ledger.months).toEqual([
      { month: '2026-12', downSeconds: 30, outages: 0 },
      { month: '2026-11', downSeconds: 30, outages: 1 },
    ]);
    expect(ledger.days).toEqual([
      { day: '2026-12-01', downSeconds: 30 },
      { day: '2026-11-30', downSeconds: 30 },
    ]);
    expect(failoverPolicyStatus.safeParse({ availability: ledger }).success).toBe(true);

    const [dec, nov] = monthlyAvailability(ledger, t('2026-12-01T00:01:30Z'), 99.95);
    // December so far: 30 s down of 90 s tracked.
    expect(dec).toMatchObject({ month: '2026-12', downSeconds: 30, trackedSeconds: 90, met: false });
    expect(dec?.percent).toBeCloseTo(66.667, 2);
    expect(nov).toMatchObject({ month: '2026-11', downSeconds: 30, trackedSeconds: 30 * 86400, met: true });
    expect(nov?.percent).toBeCloseTo(100 * (1 - 30 / (30 * 86400)), 6);
  });

  it('counts no outage without a quorum, nor a failover the quorum never found down', () => {
    const ledger = nextLedger(undefined, { activePrimary: 'a' }, t('2026-11-01T00:00:00Z'));
    expect(
      nextLedger(
        ledger,
        { activePrimary: 'b', currentOperation: failover('RepointingDns') },
        t('2026-11-02T00:00:00Z'),
      ),
    ).toBe(ledger);
  });

  it('keeps the newest days and months of an outage longer than the ledger, and blames no old failover', () => {
    const ledger = nextLedger(undefined, { activePrimary: 'a' }, t('2026-01-01T00:00:00Z'));
    const open = nextLedger(
      ledger,
      { activePrimary: 'a', primaryDownSince: '2026-02-01T00:00:00Z' },
      t('2026-02-01T00:00:01Z'),
    );
    const oldFailover = {
      ...failover('Completed'),
      result: 'Succeeded' as const,
      startedAt: '2026-01-10T00:00:00Z',
      completedAt: '2026-01-10T00:00:30Z',
    };
    const closed = nextLedger(
      open,
      { activePrimary: 'a', history: [oldFailover] },
      t('2026-06-15T12:00:00Z'),
    );
    expect(closed.outages?.[0]).not.toHaveProperty('operationId');
    // The last 90 days all down, the newest one half.
    expect(closed.days).toHaveLength(90);
    expect(closed.days?.[0]).toEqual({ day: '2026-06-15', downSeconds: 43200 });
    expect(closed.days?.[1]).toEqual({ day: '2026-06-14', downSeconds: 86400 });
    // February to June, the outage counted once, in the month it began.
    expect(closed.months?.map((m) => [m.month, m.outages])).toEqual([
      ['2026-06', 0],
      ['2026-05', 0],
      ['2026-04', 0],
      ['2026-03', 0],
      ['2026-02', 1],
    ]);
    const days = dailyDowntime(
      { trackedSince: '2026-01-01T00:00:00Z', downSince: '2026-02-01T00:00:00Z' },
      t('2026-06-15T12:00:00Z'),
    );
    expect(days.at(-1)).toEqual({ day: '2026-06-15', downSeconds: 43200, tracked: true });
    expect(days.every((d) => d.downSeconds > 0)).toBe(true);
  });

  it('counts the outage in progress when read, without writing it', () => {
    const ledger: AvailabilityLedger = {
      trackedSince: '2026-12-01T00:00:00Z',
      downSince: '2026-12-02T10:00:00Z',
    };
    const [month] = monthlyAvailability(ledger, t('2026-12-02T10:01:00Z'), undefined, 1);
    expect(month).toMatchObject({ downSeconds: 60, outages: 1 });
    const days = dailyDowntime(ledger, t('2026-12-02T10:01:00Z'), 3);
    expect(days).toEqual([
      { day: '2026-11-30', downSeconds: 0, tracked: false },
      { day: '2026-12-01', downSeconds: 0, tracked: true },
      { day: '2026-12-02', downSeconds: 60, tracked: true },
    ]);
  });

  it('splits any interval into spans that add up to it, each inside one day or month', () => {
    let crossing = 0;
    fc.assert(
      fc.property(
        // Biased to the edges: near midnight and month ends, and long outages.
        fc.date({ min: t('2026-01-01T00:00:00Z'), max: t('2027-12-31T00:00:00Z'), noInvalidDate: true }),
        fc.oneof(fc.integer({ min: 0, max: 120 }), fc.integer({ min: 0, max: 40 * 86400 })),
        fc.constantFrom<'day' | 'month'>('day', 'month'),
        (from, seconds, unit) => {
          const to = new Date(from.getTime() + seconds * 1000);
          const parts = spans(from, to, unit);
          if (parts.length > 1) crossing++;
          const total = parts.reduce((s, p) => s + p.seconds, 0);
          expect(total).toBeCloseTo(seconds, 3);
          expect(new Set(parts.map((p) => p.key)).size).toBe(parts.length);
        },
      ),
      { numRuns: 500 },
    );
    // The generator reached intervals that cross a boundary, where splitting matters.
    expect(crossing).toBeGreaterThan(100);
  });
});
