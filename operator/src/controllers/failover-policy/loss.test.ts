import { describe, expect, it } from 'vitest';
import type { FailoverPolicyStatus } from '../../api/v1alpha1/index.ts';
import {
  ago,
  baseSpec,
  down,
  evaluate,
  gone,
  type InputOver,
  outage,
  primaryUp,
  standby,
  unprobed,
  up,
} from './decide.fixtures.ts';
import { decide } from './decide.ts';
import type { ClusterFacts, Vote } from './facts.ts';
import { lossFollowsPrimary } from './loss.ts';
import { failoverReady } from './summary.ts';

/** A standby as probed: its WAL positions and timeline too. */
const at = (f: ClusterFacts, replayLsn: string, receiveLsn = '0/6000000', timeline = 1): ClusterFacts => ({
  ...f,
  position: { replayLsn, receiveLsn, timeline },
});
/** Answers, but nothing can be measured against a lost primary: no lag. */
const lagless = (name: string, replayLsn = '0/5000000', receiveLsn = '0/6000000', timeline = 1) => {
  const { lagBytes: _b, lagSeconds: _s, lagObservedAt: _a, ...rest } = standby(name);
  return at(rest, replayLsn, receiveLsn, timeline);
};
/** This process never reached it: probed, unreachable, no sighting. */
const neverReached = (name = 'a'): ClusterFacts => {
  const { lastReachableAt: _, ...rest } = gone(name);
  return rest;
};

const SINCE = ago(40).toISOString();
type Loss = NonNullable<FailoverPolicyStatus['primaryLoss']>;
const lagOfB = {
  cluster: 'b',
  bytes: 1000,
  seconds: 1,
  measuredAt: ago(44).toISOString(),
  lsn: '0/4000000',
  receiveLsn: '0/6000000',
  timeline: 1,
};
const loss = (over: Partial<Loss> = {}): Loss => ({
  primary: 'a',
  epoch: 4,
  lastSeenAt: ago(43).toISOString(),
  standbyLag: [lagOfB],
  ...over,
});
const recorded = (over: Partial<FailoverPolicyStatus> = {}): FailoverPolicyStatus => ({
  activePrimary: 'a',
  epoch: 4,
  primaryDownSince: SINCE,
  primaryLoss: loss(),
  ...over,
});

/**
 * A restarted process: it never reached `a`, and its own failures have reached the threshold; `b`
 * and `c` answer without a lag. It is the only observer (quorum 1), with a 30 s hold-down.
 */
const restarted = (status: FailoverPolicyStatus, over: InputOver = {}) =>
  outage({
    specOver: {
      detection: { probeIntervalSeconds: 1, failureThreshold: 3, quorum: 1 },
      promotion: { ...baseSpec.promotion, holdDownSeconds: 30 },
    },
    clusters: { a: neverReached(), b: lagless('b'), c: lagless('c') },
    votes: [down('operator')],
    status,
    ...over,
  });

describe('the record of a primary loss', () => {
  it('is made when a quorum first agrees: the primary and epoch, when it was last reached, each standby lag and position', () => {
    const first = decide(
      outage({
        clusters: { a: gone(), b: at(standby('b'), '0/4000000'), c: standby('c') },
        votes: [down('operator', 3, 1, 6), down('region-b', 3, 1, 5)],
      }),
    );
    expect(first.status.primaryDownSince).toBe(ago(0).toISOString());
    expect(first.status.primaryLoss).toEqual({
      primary: 'a',
      epoch: 4,
      lastSeenAt: ago(5).toISOString(),
      standbyLag: [
        { ...lagOfB, measuredAt: ago(4).toISOString() },
        { cluster: 'c', bytes: 1000, seconds: 1, measuredAt: ago(4).toISOString() },
      ],
    });
  });

  it('is kept while the quorum agrees, also when a vote reports a sighting from before the agreement', () => {
    const late = outage({ status: recorded(), votes: [down('operator', 3, 1, 41), down('region-b')] });
    expect(decide(late).status).toMatchObject({ primaryDownSince: SINCE, primaryLoss: loss() });
  });

  it('starts over after a flap: an observer of the down quorum reached the primary after the agreement', () => {
    const flapped = outage({ status: recorded(), votes: [down('operator', 3, 1, 10), down('region-b')] });
    expect(decide(flapped).status).toMatchObject({
      primaryDownSince: ago(0).toISOString(),
      primaryLoss: { lastSeenAt: ago(10).toISOString() },
    });
    // An observer of the minority that still reaches it and just missed a probe restarts nothing.
    const minority = outage({
      status: recorded(),
      votes: [down('operator'), down('region-b'), down('region-c', 1, 1, 2)],
    });
    expect(decide(minority).status.primaryDownSince).toBe(SINCE);
  });

  it('stands while a restarted process counts its own failures, and only then', () => {
    const kept = (over: InputOver) => decide(restarted(recorded(), over)).status.primaryDownSince;
    // Not probed yet, no vote at all; then its failures below the threshold.
    const fresh = { b: lagless('b'), c: lagless('c') };
    expect(kept({ clusters: { a: unprobed('a'), ...fresh }, votes: [] })).toBe(SINCE);
    expect(kept({ votes: [down('operator', 1)] })).toBe(SINCE);
    // Controls. A process that has reached the primary: one observer losing sight is not an outage.
    expect(
      kept({ clusters: { a: gone('a', 60), ...fresh }, votes: [down('operator', 1, 1, 60)] }),
    ).toBeUndefined();
    // Its failures up to the threshold without a quorum (quorum 2 here).
    const quorum2 = { detection: { probeIntervalSeconds: 1, failureThreshold: 3, quorum: 2 } };
    expect(kept({ specOver: quorum2 })).toBeUndefined();
    // An observer reaches it; one that lost it again had reached it after the agreement.
    expect(kept({ votes: [down('operator', 1), up('region-b')] })).toBeUndefined();
    expect(kept({ votes: [down('operator', 1), down('region-b', 1, 1, 3)] })).toBeUndefined();
  });

  it('stands against a minority that still reaches the primary, as the quorum it had did', () => {
    const quorum2 = { detection: { probeIntervalSeconds: 1, failureThreshold: 3, quorum: 2 } };
    const kept = (votes: Vote[]) =>
      decide(restarted(recorded(), { specOver: quorum2, votes })).status.primaryDownSince;
    // region-c, cut off with the primary, reaches it; region-b and (once counted up) this process do not.
    expect(kept([down('operator', 1), down('region-b'), up('region-c')])).toBe(SINCE);
    // Control: a majority reaches it.
    expect(kept([down('operator', 1), up('region-b'), up('region-c')])).toBeUndefined();
  });

  it('belongs to its primary and epoch: a record of another is dropped, and a new loss starts now', () => {
    const promoted = recorded({ activePrimary: 'b', epoch: 5 });
    expect(lossFollowsPrimary(promoted)).toEqual({ activePrimary: 'b', epoch: 5 });
    expect(lossFollowsPrimary(recorded())).toEqual(recorded());
    // b found down by quorum at once: its hold-down counts from now, not from a's loss.
    const bDown = outage({ status: promoted, clusters: { a: gone('a'), b: gone('b'), c: standby('c') } });
    expect(decide(bDown).status).toMatchObject({
      primaryDownSince: ago(0).toISOString(),
      primaryLoss: { primary: 'b', epoch: 5, standbyLag: [{ cluster: 'c' }] },
    });
    // b seen up: nothing of a's loss is left.
    const bUp = outage({ status: promoted, clusters: { a: gone('a'), b: primaryUp('b'), c: standby('c') } });
    expect(decide({ ...bUp, votes: [up('operator')] }).status.primaryLoss).toBeUndefined();
  });

  it('from a version without the record: its primaryDownSince stands as the record would', () => {
    const legacy = { activePrimary: 'a', epoch: 4, primaryDownSince: SINCE };
    expect(decide(restarted(legacy)).status.primaryDownSince).toBe(SINCE);
    expect(decide(restarted(legacy, { votes: [down('operator', 1)] })).status.primaryDownSince).toBe(SINCE);
    expect(decide(restarted(legacy, { votes: [up('operator')] })).status.primaryDownSince).toBeUndefined();
    // One from before the last failover was of another primary: a loss found now starts now.
    const promoted = { ...legacy, lastFailoverTime: ago(30).toISOString() };
    expect(decide(restarted(promoted)).status.primaryDownSince).toBe(ago(0).toISOString());
    expect(
      decide(restarted(promoted, { votes: [down('operator', 1)] })).status.primaryDownSince,
    ).toBeUndefined();
  });
});

describe('a failover by an operator restarted during the outage', () => {
  it('starts after the hold-down counted from the recorded agreement, within the recorded budget, with RTO from the recorded sighting', () => {
    expect(
      evaluate(restarted(recorded({ primaryDownSince: ago(20).toISOString() }))).started,
    ).toBeUndefined();
    expect(evaluate(restarted(recorded())).started).toMatchObject({
      to: 'b',
      epoch: 5,
      primaryLostAt: ago(43).toISOString(),
      estimatedLossBytes: 1000,
      estimatedLossSeconds: 1,
    });
  });

  it('is held back where the record cannot vouch for the standby', () => {
    const blockedBy = (status: FailoverPolicyStatus, b: ClusterFacts = lagless('b')) => {
      const e = evaluate(restarted(status, { clusters: { a: neverReached(), b, c: lagless('c') } }));
      expect(e.started).toBeUndefined();
      return e.plan.blocked?.reason;
    };
    // Control: no record, no lag.
    const { primaryLoss: _, ...unrecorded } = recorded();
    expect(blockedBy(unrecorded)).toBe('LagUnknown');
    // The recorded lag was above the budget.
    expect(
      blockedBy(recorded({ primaryLoss: loss({ standbyLag: [{ ...lagOfB, bytes: 5_000_000 }] }) })),
    ).toBe('LagAboveBudget');
    // b received more since (the primary came back unseen and streamed), was rebuilt from an
    // older copy (replayed less than then), is on another timeline, or reports no receiver.
    expect(blockedBy(recorded(), lagless('b', '0/5000000', '0/7000000'))).toBe('LagUnknown');
    expect(blockedBy(recorded(), lagless('b', '0/3000000'))).toBe('LagUnknown');
    expect(blockedBy(recorded(), lagless('b', '0/5000000', '0/6000000', 2))).toBe('LagUnknown');
    // Replayed past what it had received then: WAL from an archive the primary kept writing to.
    expect(blockedBy(recorded(), lagless('b', '0/7000000', '0/6000000'))).toBe('LagUnknown');
    const { position: _p, ...unplaced } = lagless('b');
    expect(blockedBy(recorded(), unplaced)).toBe('LagUnknown');
    // A record without the positions cannot vouch for anything.
    const { lsn: _l, receiveLsn: _r, timeline: _t, ...noPosition } = lagOfB;
    expect(blockedBy(recorded({ primaryLoss: loss({ standbyLag: [noPosition] }) }))).toBe('LagUnknown');
  });

  it('FailoverReady judges the standby as the failover will: by the recorded lag', () => {
    const ready = (status: FailoverPolicyStatus) => {
      const input = restarted(status);
      const plan = decide(input);
      return failoverReady(input, plan, plan.status);
    };
    // Inside the hold-down: ready, with the lag recorded; without the record nothing vouches for b.
    expect(ready(recorded({ primaryDownSince: ago(20).toISOString() }))).toMatchObject({
      status: 'True',
      reason: 'StandbyReady',
    });
    const { primaryLoss: _, ...unrecorded } = recorded({ primaryDownSince: ago(20).toISOString() });
    expect(ready(unrecorded)).toMatchObject({ status: 'False', reason: 'LagUnknown' });
  });

  it('a record of another epoch says nothing: the loss starts now, with no lag this process could measure', () => {
    const other = evaluate(restarted(recorded({ primaryLoss: loss({ epoch: 3 }) })));
    expect(other.started).toBeUndefined();
    expect(other.status).toMatchObject({
      primaryDownSince: ago(0).toISOString(),
      primaryLoss: { primary: 'a', epoch: 4, standbyLag: [] },
    });
  });

  it('a person’s failover request is judged by the record too', () => {
    const request = { promotionRequest: { id: 'r1', target: 'b', kind: 'Failover' } };
    const e = evaluate(
      restarted(recorded({ primaryDownSince: ago(5).toISOString() }), { specOver: request }),
    );
    expect(e.started).toMatchObject({
      to: 'b',
      trigger: 'Manual',
      primaryLostAt: ago(43).toISOString(),
      estimatedLossBytes: 1000,
      estimatedLossSeconds: 1,
    });
    const { primaryLoss: _, ...unrecorded } = recorded();
    const refused = evaluate(restarted(unrecorded, { specOver: request }));
    expect(refused.started).toBeUndefined();
    expect(refused.status.lastRequest).toMatchObject({ outcome: 'Rejected', reason: 'LagUnknown' });
  });
});
