import { describe, expect, it } from 'vitest';
import type { AgentReport, DrillState, FailoverPolicyStatus } from '../../api/v1alpha1/index.ts';
import type { CanarySnapshot } from '../../providers/canary/port.ts';
import { ago, evaluate, NOW, spec as policySpec } from './decide.fixtures.ts';
import type { ClusterFacts, DecideInput, Vote } from './facts.ts';
import {
  afterDrillCopy,
  afterDrillRecord,
  ISOLATED_CLEANUP_WAIT_MS,
  ISOLATED_WRITE_WAIT_MS,
} from './isolated-drill.ts';

const drills = {
  schedule: '0 3 * * 1',
  holdSeconds: 60,
  maxDurationSeconds: 600,
  abortIfLagSecondsAbove: 5,
  ttlSeconds: 30,
  mode: 'Isolated' as const,
  isolated: { port: 5433, minCanaryWrites: 20 },
};
const spec = () => policySpec({ standbys: ['b'], drills });
const ID = 'drill-20260302095950000';

type Copy = NonNullable<AgentReport['drillCopy']>;
const agent = (copy?: Partial<Copy>, reportedSecondsAgo = 2): AgentReport => ({
  name: 'b-0',
  reportedAt: ago(reportedSecondsAgo).toISOString(),
  dataDirectory: '/d',
  server: 'Standby',
  ...(copy
    ? {
        drillCopy: {
          drillId: ID,
          phase: 'Copying',
          port: 5433,
          directory: '/d.drill-x',
          startedAt: ago(60).toISOString(),
          ...copy,
        },
      }
    : {}),
});
const primary: ClusterFacts = { name: 'a', exists: true, reachable: true, role: 'Primary' };
const standby = (report?: AgentReport): ClusterFacts => ({
  name: 'b',
  exists: true,
  reachable: true,
  role: 'Standby',
  lagSeconds: 0.5,
  lagBytes: 100,
  lagObservedAt: ago(1),
  ...(report ? { agent: report } : {}),
});
const vote = (observer: string, reachable = true): Vote => ({
  observer,
  observedAt: ago(1),
  reachable,
  consecutiveFailures: reachable ? 0 : 5,
});

const running = (
  leg: DrillState['leg'],
  isolated: Partial<NonNullable<DrillState['isolated']>> = {},
): DrillState => ({
  id: ID,
  from: 'a',
  to: 'b',
  startedAt: ago(120).toISOString(),
  mode: 'Isolated',
  leg,
  isolated: { recordName: 'drill.db.example.com', port: 5433, value: 'b.example.com', ...isolated },
});

function input(status: FailoverPolicyStatus, b: ClusterFacts, over: Partial<DecideInput> = {}): DecideInput {
  return {
    spec: spec(),
    status,
    clusters: { a: primary, b },
    votes: [vote('operator'), vote('region-b'), vote('region-c')],
    now: NOW,
    dnsTargets: { a: 'a.example.com', b: 'b.example.com' },
    ...over,
  };
}

const canary = (acknowledged: number): CanarySnapshot => ({
  drillId: ID,
  writer: 'w',
  startedAt: ago(10).toISOString(),
  failed: 0,
  runs: [
    {
      cluster: 'b',
      firstSeq: 1,
      lastSeq: acknowledged,
      acknowledged,
      firstAt: ago(5).toISOString(),
      lastAt: ago(1).toISOString(),
    },
  ],
});

describe('isolated drills', () => {
  it('start on request at Copying: nothing moves, no operation, the record named after the policy record', () => {
    const e = evaluate(
      input({ activePrimary: 'a', epoch: 4 }, standby(agent()), {
        spec: { ...spec(), drillRequest: { id: 'r1', action: 'Run' } },
      }),
    );
    expect(e.status.drill).toMatchObject({
      mode: 'Isolated',
      leg: 'Copying',
      to: 'b',
      isolated: { recordName: 'drill.db.example.com', port: 5433, value: 'b.example.com' },
    });
    expect(e.status.currentOperation).toBeUndefined();
    expect(e.status.lastDrillRequest?.outcome).toBe('Accepted');
  });

  it('a request for a round trip on an isolated policy runs one (drillRequest.mode wins)', () => {
    const e = evaluate(
      input(
        { activePrimary: 'a', epoch: 4 },
        { ...standby(agent()), rejoinsAfterSwitchover: true },
        {
          spec: { ...spec(), drillRequest: { id: 'r1', action: 'Run', mode: 'RoundTrip' } },
          clusters: {
            a: { ...primary, rejoinsAfterSwitchover: true },
            b: { ...standby(agent()), rejoinsAfterSwitchover: true },
          },
        },
      ),
    );
    expect(e.status.drill?.mode).toBeUndefined();
    expect(e.status.drill?.leg).toBe('Starting');
  });

  it('is refused without an agent beside the standby, saying why', () => {
    const e = evaluate(
      input({ activePrimary: 'a', epoch: 4 }, standby(), {
        spec: { ...spec(), drillRequest: { id: 'r1', action: 'Run' } },
      }),
    );
    expect(e.status.drill).toBeUndefined();
    expect(e.status.lastDrillRequest).toMatchObject({ outcome: 'Rejected' });
    expect(e.status.lastDrillRequest?.message).toMatch(/no database agent reports for b/);
  });

  it('waits for the copy, then points the record once it serves, with its figures', () => {
    const waiting = evaluate(
      input({ activePrimary: 'a', epoch: 4, drill: running('Copying') }, standby(agent({}))),
    );
    expect(waiting.status.drill?.leg).toBe('Copying');
    expect(waiting.plan.action.kind).toBe('Observe');
    const serving = evaluate(
      input(
        { activePrimary: 'a', epoch: 4, drill: running('Copying') },
        standby(
          agent({
            phase: 'Serving',
            copySeconds: 3.5,
            copyBytes: 40_000_000,
            promotionSeconds: 0.4,
            copiedAt: ago(5).toISOString(),
            newestHeartbeatAt: ago(6).toISOString(),
          }),
        ),
      ),
    );
    expect(serving.status.drill).toMatchObject({
      leg: 'Pointing',
      isolated: { copySeconds: 3.5, copyBytes: 40_000_000, promotionSeconds: 0.4, freshnessSeconds: 1 },
    });
  });

  it('writes the drill record (never the policy record) and goes on once every server answers', () => {
    const pointing = running('Pointing', { copyReadyAt: ago(2).toISOString() });
    const e = evaluate(
      input({ activePrimary: 'a', epoch: 4, drill: pointing }, standby(agent({ phase: 'Serving' }))),
    );
    expect(e.plan.action).toMatchObject({
      kind: 'DrillRecord',
      want: 'Present',
      record: { name: 'drill.db.example.com', zone: 'example.com' },
      value: 'b.example.com',
    });
    const notYet = afterDrillRecord(pointing, { kind: 'Present', answered: false, detail: '' }, NOW);
    expect(notYet.leg).toBe('Pointing');
    expect(notYet.isolated?.pointedAt).toBe(NOW.toISOString());
    const later = new Date(NOW.getTime() + 1500);
    const answered = afterDrillRecord(notYet, { kind: 'Present', answered: true, detail: '' }, later);
    expect(answered).toMatchObject({ leg: 'Writing', isolated: { dnsVerifySeconds: 1.5 } });
  });

  it('leaves a throttled DNS provider alone until its Retry-After, then writes the record again', () => {
    const pointing = running('Pointing', { copyReadyAt: ago(2).toISOString() });
    const throttled = afterDrillRecord(
      pointing,
      { kind: 'Failed', reason: 'Throttled', message: '429', retryable: true, retryAfterMs: 20_000 },
      NOW,
    );
    expect(throttled.isolated).toMatchObject({
      problem: 'Throttled: 429',
      retryAt: new Date(NOW.getTime() + 20_000).toISOString(),
    });
    const at = (s: number) => new Date(NOW.getTime() + s * 1000);
    const look = (s: number) =>
      evaluate(
        input({ activePrimary: 'a', epoch: 4, drill: throttled }, standby(agent({ phase: 'Serving' })), {
          now: at(s),
        }),
      );
    const waiting = look(5);
    expect(waiting.plan.action.kind).not.toBe('DrillRecord');
    expect(waiting.plan.requeueMs).toBe(15_000);
    expect(waiting.plan.why).toMatch(/asked to be left alone until/);
    expect(look(20).plan.action).toMatchObject({ kind: 'DrillRecord', want: 'Present' });
    // A failure without a hint is retried at the usual pace; a success forgets the hint.
    const plain = afterDrillRecord(
      throttled,
      { kind: 'Failed', reason: 'Unavailable', message: 'reset', retryable: true },
      at(20),
    );
    expect(plain.isolated?.retryAt).toBeUndefined();
    // An hour's reset is waited a minute at most, as an operation's step: the legs' limits hold.
    const hour = afterDrillRecord(
      pointing,
      { kind: 'Failed', reason: 'Throttled', message: '429', retryable: true, retryAfterMs: 3_600_000 },
      NOW,
    );
    expect(hour.isolated?.retryAt).toBe(new Date(NOW.getTime() + 60_000).toISOString());
    const written = afterDrillRecord(throttled, { kind: 'Present', answered: true, detail: '' }, at(21));
    expect(written.isolated).not.toHaveProperty('retryAt');
    expect(written.isolated).not.toHaveProperty('problem');
  });

  it('passes once the copy acknowledged minCanaryWrites through the record, then removes the record', () => {
    const writing = running('Writing', { writingSince: ago(3).toISOString() });
    const few = evaluate(
      input({ activePrimary: 'a', epoch: 4, drill: writing }, standby(agent({ phase: 'Serving' })), {
        canary: canary(5),
      }),
    );
    expect(few.status.drill?.leg).toBe('Writing');
    const enough = evaluate(
      input({ activePrimary: 'a', epoch: 4, drill: writing }, standby(agent({ phase: 'Serving' })), {
        canary: canary(20),
      }),
    );
    expect(enough.status.drill).toMatchObject({
      leg: 'Removing',
      isolated: { canaryWrites: 20, verdict: { result: 'Succeeded' } },
    });
  });

  it('fails when the copy takes too few canary writes in time, and still cleans up', () => {
    const writing = running('Writing', {
      writingSince: ago(ISOLATED_WRITE_WAIT_MS / 1000 + 1).toISOString(),
    });
    const e = evaluate(
      input({ activePrimary: 'a', epoch: 4, drill: writing }, standby(agent({ phase: 'Serving' })), {
        canary: { ...canary(3), lastError: 'connection refused' },
      }),
    );
    expect(e.status.drill).toMatchObject({ leg: 'Removing', isolated: { verdict: { result: 'Failed' } } });
    expect(e.status.drill?.isolated?.verdict?.reason).toMatch(/3 of 20 .*connection refused/);
  });

  it('files the report once the agent removed the copy; the copy left in place fails a passed drill after the wait', () => {
    const verdict = { result: 'Succeeded' as const, reason: 'ok' };
    const cleaning = running('Cleaning', {
      verdict,
      removedAt: ago(1).toISOString(),
      cleaningSince: ago(1).toISOString(),
      canaryWrites: 20,
    });
    const still = evaluate(
      input({ activePrimary: 'a', epoch: 4, drill: cleaning }, standby(agent({ phase: 'Serving' }))),
    );
    expect(still.status.drill?.leg).toBe('Cleaning');
    const removed = evaluate(
      input({ activePrimary: 'a', epoch: 4, drill: cleaning }, standby(agent({ phase: 'Removed' }))),
    );
    expect(removed.status.drill).toBeUndefined();
    expect(removed.status.drills?.[0]).toMatchObject({
      id: ID,
      mode: 'Isolated',
      result: 'Succeeded',
      epoch: 4,
      isolated: { cluster: 'b', recordName: 'drill.db.example.com', cleanedUp: true, canaryWrites: 20 },
    });
    const stale = running('Cleaning', {
      verdict,
      removedAt: ago(1).toISOString(),
      cleaningSince: ago(ISOLATED_CLEANUP_WAIT_MS / 1000 + 1).toISOString(),
    });
    const gone = evaluate(
      input({ activePrimary: 'a', epoch: 4, drill: stale }, standby(agent({ phase: 'Serving' }, 300))),
    );
    expect(gone.status.drills?.[0]).toMatchObject({ result: 'Failed', isolated: { cleanedUp: false } });
    expect(gone.status.drills?.[0]?.reason).toMatch(/did not report the copy removed/);
  });

  it('a cancel, a real failover, maxDuration, or the primary down each stop it through Removing', () => {
    const writing = running('Writing', { writingSince: ago(1).toISOString() });
    const b = standby(agent({ phase: 'Serving' }));
    const cancelled = evaluate(
      input({ activePrimary: 'a', epoch: 4, drill: writing }, b, {
        spec: { ...spec(), drillRequest: { id: 'c1', action: 'Cancel' } },
      }),
    );
    expect(cancelled.status.drill).toMatchObject({
      leg: 'Removing',
      isolated: { verdict: { result: 'Cancelled' } },
    });
    const over = evaluate(
      input({ activePrimary: 'a', epoch: 4, drill: { ...writing, startedAt: ago(601).toISOString() } }, b),
    );
    expect(over.status.drill).toMatchObject({
      leg: 'Removing',
      isolated: { verdict: { result: 'Aborted' } },
    });
    const down = evaluate(
      input({ activePrimary: 'a', epoch: 4, drill: writing }, b, {
        clusters: { a: { ...primary, reachable: false, role: 'Unknown' }, b },
        votes: [vote('operator', false), vote('region-b', false), vote('region-c', false)],
      }),
    );
    // Automatic: the failover starts first; the drill ends Interrupted once it completed.
    expect(down.status.currentOperation?.kind).toBe('Failover');
    expect(down.status.drill?.leg).toBe('Writing');
    // Manual (no failover starts): the drill steps aside at once and cleans up meanwhile.
    const downManual = (drill: DrillState) =>
      evaluate(
        input({ activePrimary: 'a', epoch: 4, drill }, b, {
          spec: { ...spec(), promotion: { ...spec().promotion, mode: 'Manual' } },
          clusters: { a: { ...primary, reachable: false, role: 'Unknown' }, b },
          votes: [vote('operator', false), vote('region-b', false), vote('region-c', false)],
        }),
      );
    const aside = downManual(writing);
    expect(aside.status.drill).toMatchObject({
      leg: 'Removing',
      isolated: { verdict: { result: 'Interrupted' } },
    });
    expect(aside.plan.blocked?.reason).toBe('ManualMode');
    const removing = downManual(aside.status.drill as DrillState);
    expect(removing.plan.action).toMatchObject({ kind: 'DrillRecord', want: 'Absent' });
    // Once stopping, a cancel is answered without changing the verdict.
    const again = evaluate(
      input({ activePrimary: 'a', epoch: 4, drill: cancelled.status.drill as DrillState }, b, {
        spec: { ...spec(), drillRequest: { id: 'c2', action: 'Cancel' } },
      }),
    );
    expect(again.status.drill?.isolated?.verdict?.result).toBe('Cancelled');
    expect(again.status.lastDrillRequest?.message).toMatch(/already stopping/);
  });

  it('deletes the record in Removing, and goes to Cleaning when it is gone or cannot be deleted', () => {
    const removing = running('Removing', { verdict: { result: 'Cancelled', reason: 'x' } });
    const e = evaluate(
      input({ activePrimary: 'a', epoch: 4, drill: removing }, standby(agent({ phase: 'Serving' }))),
    );
    expect(e.plan.action).toMatchObject({ kind: 'DrillRecord', want: 'Absent' });
    expect(afterDrillRecord(removing, { kind: 'Absent' }, NOW)).toMatchObject({
      leg: 'Cleaning',
      isolated: { removedAt: NOW.toISOString() },
    });
    const conflict = afterDrillRecord(
      removing,
      { kind: 'Failed', reason: 'OwnershipConflict', message: 'x', retryable: false },
      NOW,
    );
    expect(conflict.leg).toBe('Cleaning');
    expect(conflict.isolated?.removedAt).toBeUndefined();
    expect(
      afterDrillRecord(removing, { kind: 'Failed', reason: 'Timeout', message: 'x', retryable: true }, NOW),
    ).toMatchObject({ leg: 'Removing', isolated: { problem: 'Timeout: x' } });
  });

  it('a copy the agent could not make fails the drill, which still cleans up', () => {
    const e = evaluate(
      input(
        { activePrimary: 'a', epoch: 4, drill: running('Copying') },
        standby(agent({ phase: 'Failed', message: 'not enough disk space' })),
      ),
    );
    expect(e.status.drill).toMatchObject({ leg: 'Removing', isolated: { verdict: { result: 'Failed' } } });
    expect(e.status.drill?.isolated?.verdict?.reason).toMatch(/not enough disk space/);
  });

  describe('on RDS, the provider makes the copy (a read replica of the standby, promoted)', () => {
    const rds: ClusterFacts = { ...standby(), drillCopiesByProvider: true };
    const providerDrill = (
      leg: DrillState['leg'],
      over: Partial<NonNullable<DrillState['isolated']>> = {},
    ) => {
      const d = running(leg, over);
      const { value: _v, ...isolated } = d.isolated as NonNullable<DrillState['isolated']>;
      return { ...d, isolated: { ...isolated, copiedBy: 'Provider' as const, ...over } };
    };

    it('starts without an agent, asks the provider step by step, and points the record at the endpoint', () => {
      const e = evaluate(
        input({ activePrimary: 'a', epoch: 4 }, rds, {
          spec: { ...spec(), drillRequest: { id: 'r1', action: 'Run' } },
        }),
      );
      expect(e.status.drill).toMatchObject({ leg: 'Copying', isolated: { copiedBy: 'Provider' } });
      const copying = providerDrill('Copying');
      const step = evaluate(input({ activePrimary: 'a', epoch: 4, drill: copying }, rds));
      expect(step.plan.action).toEqual({ kind: 'DrillCopy', cluster: 'b', drillId: ID, want: 'Serving' });
      const pending = afterDrillCopy(copying, 'Serving', { phase: 'Copying', message: 'creating' }, NOW);
      expect(pending).toMatchObject({ leg: 'Copying', isolated: { problem: 'creating' } });
      const serving = afterDrillCopy(
        copying,
        'Serving',
        {
          phase: 'Serving',
          endpoint: { host: 'b-drill-1.rds.example', port: 5432 },
          createdAt: ago(300).toISOString(),
          promotedAt: ago(60).toISOString(),
        },
        NOW,
      );
      expect(serving).toMatchObject({
        leg: 'Pointing',
        isolated: { value: 'b-drill-1.rds.example', port: 5432, copySeconds: 240 },
      });
      expect(serving.isolated?.problem).toBeUndefined();
    });

    it('a provider failure fails the drill and still deletes the copy, then files it', () => {
      const copying = providerDrill('Copying');
      const failed = afterDrillCopy(
        copying,
        'Serving',
        { phase: 'Failed', message: 'incompatible-parameters' },
        NOW,
      );
      expect(failed).toMatchObject({ leg: 'Removing', isolated: { verdict: { result: 'Failed' } } });
      const cleaning = providerDrill('Cleaning', {
        verdict: { result: 'Failed', reason: 'x' },
        removedAt: ago(1).toISOString(),
        cleaningSince: ago(1).toISOString(),
      });
      const step = evaluate(input({ activePrimary: 'a', epoch: 4, drill: cleaning }, rds));
      expect(step.plan.action).toMatchObject({ kind: 'DrillCopy', want: 'Removed' });
      const deleting = afterDrillCopy(cleaning, 'Removed', { phase: 'Copying', message: 'deleting: x' }, NOW);
      expect(deleting.isolated?.copyRemovedAt).toBeUndefined();
      const gone = afterDrillCopy(cleaning, 'Removed', { phase: 'Removed' }, NOW);
      const ended = evaluate(input({ activePrimary: 'a', epoch: 4, drill: gone }, rds));
      expect(ended.status.drills?.[0]).toMatchObject({ result: 'Failed', isolated: { cleanedUp: true } });
    });

    it('Aurora global and DigitalOcean standbys without an agent cannot be copied: the request is refused', () => {
      const e = evaluate(
        input({ activePrimary: 'a', epoch: 4 }, standby(), {
          spec: { ...spec(), drillRequest: { id: 'r1', action: 'Run' } },
        }),
      );
      expect(e.status.lastDrillRequest?.message).toMatch(/its provider cannot make a drill copy/);
    });
  });
});

describe('DrillsScheduled for isolated drills', () => {
  it('is False (IsolatedUnsupported) when every standby is managed by a provider that cannot copy it', () => {
    const aurora: ClusterFacts = { ...standby(), reprotectsItself: true };
    const e = evaluate(input({ activePrimary: 'a', epoch: 4 }, aurora));
    expect(e.condition('DrillsScheduled')).toMatchObject({ status: 'False', reason: 'IsolatedUnsupported' });
    const rds = evaluate(input({ activePrimary: 'a', epoch: 4 }, { ...aurora, drillCopiesByProvider: true }));
    expect(rds.condition('DrillsScheduled')?.status).toBe('True');
    const selfManaged = evaluate(input({ activePrimary: 'a', epoch: 4 }, standby()));
    expect(selfManaged.condition('DrillsScheduled')?.status).toBe('True');
  });
});
