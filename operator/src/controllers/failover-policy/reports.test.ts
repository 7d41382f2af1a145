import { describe, expect, it } from 'vitest';
import {
  type DrillReport,
  type FailoverPolicyStatus,
  failoverPolicySpec,
  failoverReportSpec,
  type OperationReport,
  TIMELINE_LENGTH,
} from '../../api/v1alpha1/index.ts';
import { reportMarkdown, reportText } from '../../cli/report.ts';
import { evaluate, NOW, outage, spec } from './decide.fixtures.ts';
import { advance, failedAttempt, finish, moment, withMoments } from './operation.ts';
import {
  CLIENT_MEASURE_WAIT_MS,
  markReported,
  reportName,
  reportObject,
  reportsToFile,
  reportsToPrune,
} from './reports.ts';

const at = (s: number) => new Date(NOW.getTime() + s * 1000);

/** An automatic failover run through its steps from the decision that starts it. */
function failoverRun() {
  const started = evaluate(
    outage({ status: { activePrimary: 'a', epoch: 4, primaryDownSince: at(-2).toISOString() } }),
  ).started;
  if (!started) throw new Error('no failover started');
  let op = advance(started, at(0.1)); // Fencing
  op = failedAttempt(op, 'connection timed out', at(1), () => 0);
  op = failedAttempt(op, 'connection timed out', at(2), () => 0);
  op = advance(op, at(3)); // Promoting
  op = advance(op, at(4)); // RepointingDns
  op = advance(op, at(5), { dnsChangedAt: at(4.5).toISOString() }); // VerifyingDns
  op = advance(op, at(7)); // Completed
  return finish({ activePrimary: 'b', epoch: 5 }, op, at(7));
}

describe("an operation's timeline", () => {
  it('tells the outage from the observers to DNS: each observer losing the primary, the quorum, each step, the DNS change and its verification', () => {
    const status = failoverRun();
    const report = status.history?.[0];
    const events = report?.timeline?.map((m) => m.event);
    expect(events).toEqual([
      'ObserverLostPrimary',
      'ObserverLostPrimary',
      'ObserverLostPrimary',
      'QuorumLostPrimary',
      'Started',
      'Fencing',
      'StepFailed',
      'Promoting',
      'RepointingDns',
      'DnsChanged',
      'VerifyingDns',
      'DnsVerified',
      'Completed',
    ]);
    // One failure of a step is the story; its retries are not moments of their own.
    expect(report?.timeline?.find((m) => m.event === 'StepFailed')?.detail).toBe(
      'Fencing: connection timed out',
    );
    expect(report?.timeline?.find((m) => m.event === 'DnsChanged')?.at).toBe(at(4.5).toISOString());
    expect(report?.timeline?.[0]?.detail).toMatch(/^observer \w+: first failed probe of a/);
  });

  it('keeps its first and last moments when an operation runs long', () => {
    let tl = withMoments(undefined, moment(NOW, 'Started'));
    for (let i = 1; i <= 100; i++) tl = withMoments(tl, moment(at(i), `Step${i}`));
    expect(tl).toHaveLength(TIMELINE_LENGTH);
    expect(tl[0]?.event).toBe('Started');
    expect(tl.at(-1)?.event).toBe('Step100');
    expect(tl[TIMELINE_LENGTH / 2 - 1]?.event).toBe(`Step${TIMELINE_LENGTH / 2 - 1}`);
  });
});

describe('incident records', () => {
  const policySpec = spec();

  it('files a finished operation once, as a record the API schema accepts; status keeps the timelines of the newest three only', () => {
    const status = failoverRun();
    const files = reportsToFile('orders', policySpec, status, at(8));
    expect(files.map((f) => [f.source, f.spec.kind, f.spec.result])).toEqual([
      ['history', 'Failover', 'Succeeded'],
    ]);
    const [file] = files;
    if (!file) throw new Error('nothing to file');
    expect(failoverReportSpec.safeParse(file.spec).success).toBe(true);
    expect(file.spec.timeline?.length).toBeGreaterThan(10);
    expect(file.spec.operation).not.toHaveProperty('timeline');
    const marked = markReported(status, files);
    expect(marked.history?.[0]).toMatchObject({ reported: true });
    expect(marked.history?.[0]?.timeline?.length).toBeGreaterThan(10);
    expect(reportsToFile('orders', policySpec, marked, at(9))).toEqual([]);
    // Three more operations later, its timeline is the FailoverReport's alone.
    const older = (n: number) => ({
      ...(marked.history?.[0] as OperationReport),
      id: `later-${n}`,
      reported: undefined,
    });
    let later = marked;
    for (let n = 1; n <= 3; n++) {
      later = { ...later, history: [older(n), ...(later.history ?? [])] };
      later = markReported(later, reportsToFile('orders', policySpec, later, at(9)));
    }
    expect(later.history?.map((r) => r.timeline !== undefined)).toEqual([true, true, true, false]);
    // A drill's switchovers are shown through the drill: theirs go once filed, and do not count.
    const leg = {
      ...(marked.history?.[0] as OperationReport),
      id: 'leg',
      trigger: 'Drill' as const,
      reported: undefined,
    };
    const drilled = markReported(
      { ...later, history: [leg, ...(later.history ?? [])] },
      reportsToFile('orders', policySpec, { ...later, history: [leg, ...(later.history ?? [])] }, at(9)),
    );
    expect(drilled.history?.map((r) => r.timeline !== undefined)).toEqual([false, true, true, true, false]);
  });

  it("waits for the continuous canary's figures of a move, but not for ever", () => {
    const always = failoverPolicySpec.parse({ ...spec(), canary: { mode: 'Always' } });
    const status = failoverRun();
    expect(reportsToFile('orders', always, status, at(8))).toEqual([]);
    const late = reportsToFile('orders', always, status, new Date(at(7).getTime() + CLIENT_MEASURE_WAIT_MS));
    expect(late).toHaveLength(1);
    const measured: FailoverPolicyStatus = {
      ...status,
      history: status.history?.map((r) => ({
        ...r,
        client: {
          operationId: r.id,
          measuredBy: 'Canary',
          rtoSeconds: 3.2,
          rpoTransactions: 0,
          acknowledged: 40,
          writesStoppedAt: at(-1).toISOString(),
          writesResumedAt: at(6).toISOString(),
        },
      })),
    };
    const [file] = reportsToFile('orders', always, measured, at(8));
    const events = file?.spec.timeline?.map((m) => m.event) ?? [];
    // In time order among the rest.
    expect(events.indexOf('LastWriteOnOldPrimary')).toBeLessThan(events.indexOf('Started'));
    expect(events.indexOf('FirstWriteOnNewPrimary')).toBeGreaterThan(events.indexOf('VerifyingDns'));
    expect(events.indexOf('FirstWriteOnNewPrimary')).toBeLessThan(events.indexOf('Completed'));
  });

  it('files a refused request with who asked and why it was refused, and a drill with its legs', () => {
    const withRequest = failoverPolicySpec.parse({
      ...spec(),
      promotionRequest: {
        id: 'req-1',
        kind: 'Failover',
        target: 'b',
        requestedBy: 'alice',
        reason: 'region a is on fire',
      },
    });
    const drill: DrillReport = {
      id: 'drill-20260302',
      kind: 'Switchover',
      trigger: 'Drill',
      from: 'a',
      to: 'b',
      epoch: 6,
      result: 'Succeeded',
      startedAt: at(-600).toISOString(),
      completedAt: at(-300).toISOString(),
      rtoSeconds: 2.1,
      out: {
        operationId: 'switchover-e5-1',
        measuredBy: 'Canary',
        rtoSeconds: 2.1,
        rpoTransactions: 0,
        writesStoppedAt: at(-590).toISOString(),
        writesResumedAt: at(-588).toISOString(),
      },
    };
    const status: FailoverPolicyStatus = {
      activePrimary: 'a',
      epoch: 6,
      drills: [drill],
      lastRequest: {
        id: 'req-1',
        outcome: 'Rejected',
        reason: 'PrimaryAvailable',
        message: 'the primary a is reachable',
        time: NOW.toISOString(),
      },
    };
    const files = reportsToFile('orders', withRequest, status, NOW);
    const request = files.find((f) => f.source === 'lastRequest');
    expect(request?.spec.request).toMatchObject({
      requestedBy: 'alice',
      refusal: 'PrimaryAvailable',
      target: 'b',
    });
    expect(request?.name).toBe('orders-promotion-request-req-1');
    const drilled = files.find((f) => f.source === 'drills');
    expect(drilled?.spec.timeline?.map((m) => m.event)).toEqual([
      'Started',
      'LastWriteOnOldPrimary',
      'FirstWriteOnNewPrimary',
      'Succeeded',
    ]);
    for (const f of files) expect(failoverReportSpec.safeParse(f.spec).success).toBe(true);
    const marked = markReported(status, files);
    expect(marked.lastRequest?.reported).toBe(true);
    expect(reportsToFile('orders', withRequest, marked, NOW)).toEqual([]);
  });

  it('names records validly and stably whatever the id, owned by and labelled with the policy', () => {
    expect(reportName('orders', 'failover-e5-20260302100000000')).toBe(
      'orders-failover-e5-20260302100000000',
    );
    const odd = reportName('orders', 'Req_1 from Alice!');
    expect(odd).toMatch(/^orders-req-1-from-alice-[0-9a-f]{10}$/);
    expect(reportName('orders', 'Req_1 from Alice!')).toBe(odd);
    const long = reportName('p'.repeat(250), 'x'.repeat(100));
    expect(long.length).toBeLessThanOrEqual(253);
    const object = reportObject(
      { metadata: { name: 'orders', namespace: 'ns', uid: 'u-1' } },
      { source: 'history', id: 'x', name: 'orders-x', spec: {} as never },
    );
    expect(object.metadata).toMatchObject({
      labels: { 'regionfailover.io/policy-uid': 'u-1', 'regionfailover.io/policy': 'orders' },
      ownerReferences: [{ kind: 'FailoverPolicy', name: 'orders', uid: 'u-1' }],
    });
  });

  it('keeps the newest `keep` records, none older than maxAgeDays', () => {
    const day = (d: number) => new Date(NOW.getTime() - d * 86_400_000).toISOString();
    const reports = [
      { name: 'r1', completedAt: day(1) },
      { name: 'r2', completedAt: day(2) },
      { name: 'r3', completedAt: day(3) },
      { name: 'old', completedAt: day(500) },
    ];
    expect(reportsToPrune(reports, { keep: 2, maxAgeDays: 400 }, NOW).sort()).toEqual(['old', 'r3']);
    expect(reportsToPrune(reports, { keep: 10, maxAgeDays: 400 }, NOW)).toEqual(['old']);
  });
});

describe('a record printed for a postmortem', () => {
  const status = failoverRun();
  const [file] = reportsToFile('orders', spec(), status, at(8));
  if (!file) throw new Error('nothing to file');
  const odd: OperationReport = { ...(file.spec.operation as OperationReport), reason: 'a | b\nc' };

  it('gives the figures and the timeline as text, and as Markdown that a table cannot break', () => {
    const text = reportText(file.spec, 'ns');
    expect(text).toMatch(/^Failover a → b at epoch 5: Succeeded/);
    expect(text).toMatch(/RTO:\s+\S+s \(until every authoritative DNS server answered/);
    expect(text).toContain('QuorumLostPrimary');
    const md = reportMarkdown({ ...file.spec, operation: odd }, 'ns');
    expect(md).toContain('| Reason | a \\| b c |');
    expect(md).toContain('## Timeline');
    expect(md).toMatch(/\| \+0\.0s \| ObserverLostPrimary \|/);
  });
});
