/**
 * Faults injected into a failover: the operator killed at every step, the API server gone in the
 * middle, the DNS server refusing or not answering. Each ends with exactly one primary, DNS
 * pointing at it, the epoch raised by exactly one, and a status that says what happened.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { FailoverPolicyStatus, Operation } from '../../operator/src/api/v1alpha1/index.ts';
import { failoverPolicyType } from '../../operator/src/controllers/resources.ts';
import { Rfc2136DnsProvider } from '../../operator/src/providers/dns/rfc2136.ts';
import { ControlPlane } from '../harness/control-plane.ts';
import { FailoverStack, PRIMARY_ADDRESS, RECORD, STANDBY_ADDRESS, ZONE } from '../harness/failover-stack.ts';
import { waitFor } from '../harness/wait.ts';
import { stackStarter } from './failover-fixtures.ts';

let stack: FailoverStack | undefined;
let ownControlPlane: ControlPlane | undefined;
let n = 0;

afterEach(async () => {
  await stack?.stop();
  stack = undefined;
  await ownControlPlane?.stop();
  ownControlPlane = undefined;
});

const start = stackStarter('ff');

async function healthy(s: FailoverStack) {
  await s.waitUntilHealthy();
}

/** The end every fault must reach: one primary, DNS on it, epoch 1, the operation on record. */
async function expectCleanFailover(s: FailoverStack) {
  const report = await s.waitForPolicy(
    (st) => (st.history?.[0] && !st.currentOperation ? st.history[0] : undefined),
    'the failover to finish',
  );
  expect(report).toMatchObject({ from: 'region-a', to: 'region-b', epoch: 1, result: 'Succeeded' });
  const { status } = await s.policy();
  expect(status).toMatchObject({ activePrimary: 'region-b', epoch: 1 });
  expect(status.history).toHaveLength(1);
  expect(await s.writablePrimaries()).toEqual(['standby']);
  expect(await s.bind.dig(RECORD, 'A')).toEqual([STANDBY_ADDRESS]);
  expect(await s.bind.dig(`_failover.${RECORD}`, 'TXT')).toEqual([
    `"owner=${s.options.namespace}/orders" "epoch=1"`,
  ]);
  expect(await s.writeThroughDns()).toBe(STANDBY_ADDRESS);
}

/** Writes status as a killed operator would have left it. */
async function stageStatus(s: FailoverStack, status: FailoverPolicyStatus) {
  await s.client.mergePatch(failoverPolicyType, s.options.namespace, 'orders', { status }, 'status');
}

const iso = (d = new Date()) => d.toISOString().replace(/\.\d{3}Z$/, 'Z');

function operationAt(step: Operation['step'], extra: Partial<Operation> = {}): Operation {
  return {
    id: 'failover-e1-test',
    kind: 'Failover',
    trigger: 'Automatic',
    from: 'region-a',
    to: 'region-b',
    epoch: 1,
    step,
    startedAt: iso(),
    stepStartedAt: iso(),
    primaryLostAt: iso(),
    ...extra,
  };
}

describe('the operator killed at every step of a failover', () => {
  // What the world looks like when the operator died: status says `step`; `effectDone` says
  // whether that step's side effect had already happened (it may or may not have, at a crash).
  const cases: { step: Operation['step']; effectDone: boolean }[] = [
    { step: 'Detected', effectDone: false },
    { step: 'Fencing', effectDone: false },
    { step: 'Promoting', effectDone: false },
    { step: 'Promoting', effectDone: true },
    { step: 'RepointingDns', effectDone: false },
    { step: 'RepointingDns', effectDone: true },
    { step: 'VerifyingDns', effectDone: true },
  ];

  it.each(cases)(
    'resumes at $step (side effect done: $effectDone) and ends with exactly one primary',
    async ({ step, effectDone }) => {
      stack = await start();
      await healthy(stack);
      await stack.operator?.kill();
      await stack.pair.killPrimary();

      const promoted =
        step === 'RepointingDns' || step === 'VerifyingDns' || (step === 'Promoting' && effectDone);
      if (promoted) {
        await stack.pair.standby.query('SELECT pg_promote(true, 60)');
        // As the killed operator's promote step would have: the heartbeat carries the new epoch.
        await stack.pair.standby.query(
          'UPDATE regionfailover.heartbeat SET epoch = 1, written_at = now()',
          [],
          'app',
        );
      }
      const dnsMoved = step === 'VerifyingDns' || (step === 'RepointingDns' && effectDone);
      if (dnsMoved) {
        const dns = new Rfc2136DnsProvider({
          host: stack.bind.host,
          port: stack.bind.port,
          key: stack.bind.key,
        });
        await dns.apply({
          record: { zone: ZONE, name: RECORD, type: 'A' },
          expected: PRIMARY_ADDRESS,
          value: STANDBY_ADDRESS,
          ttl: 5,
          owner: `${stack.options.namespace}/orders`,
          epoch: 1,
        });
      }
      // Status as the killed operator left it: written ahead of the step.
      const afterPromotion = step === 'RepointingDns' || step === 'VerifyingDns';
      const status: FailoverPolicyStatus = {
        ...(await stack.policy()).status,
        activePrimary: afterPromotion ? 'region-b' : 'region-a',
        epoch: afterPromotion ? 1 : 0,
        currentOperation: operationAt(step, dnsMoved ? { dnsChangedAt: iso() } : {}),
      };
      await stageStatus(stack, status);

      await stack.startOperator();
      await expectCleanFailover(stack);
    },
  );

  it('resumes after a SIGKILL in the middle of a real failover', async () => {
    stack = await start();
    await healthy(stack);
    await stack.pair.killPrimary();
    await stack.waitForPolicy((st) => st.currentOperation, 'the failover to start');
    await stack.operator?.kill();
    await stack.startOperator();
    await expectCleanFailover(stack);
  });
});

describe('the operator restarted in the middle of a hold-down', () => {
  it('counts the hold-down from when the loss was first agreed, and judges the RPO budget by the lag recorded then', async () => {
    // The operator is the only observer, so its restarted process has no vote of its own at first
    // and then only failures below the threshold; and it can measure no lag against a lost primary.
    stack = await start({ observers: [], quorum: 1 });
    const holdDownSeconds = 20;
    await stack.client.mergePatch(failoverPolicyType, stack.options.namespace, 'orders', {
      spec: { promotion: { holdDownSeconds } },
    });
    const { object } = await stack.policy();
    await stack.waitForPolicy(
      (st) =>
        st.observedGeneration === object.metadata.generation &&
        st.conditions?.some((c) => c.type === 'FailoverReady' && c.status === 'True'),
      'the hold-down applied, and a standby ready to be promoted',
    );
    await stack.pair.killPrimary();
    const lost = await stack.waitForPolicy(
      (st) => (st.primaryDownSince && st.primaryLoss ? st : undefined),
      'the quorum to find the primary down',
    );
    const since = lost.primaryDownSince ?? '';
    expect(lost.primaryLoss).toMatchObject({ primary: 'region-a', epoch: 0 });
    expect(lost.primaryLoss?.standbyLag.map((l) => l.cluster)).toEqual(['region-b']);
    const operator = stack.operator;
    expect(operator).toBeDefined();
    await operator?.kill();
    // Control: the restart comes before the hold-down is over, with no failover under way yet.
    expect((await stack.policy()).status.currentOperation).toBeUndefined();
    expect(Date.now()).toBeLessThan(Date.parse(since) + holdDownSeconds * 1000);
    await stack.startOperator();

    const op = await stack.waitForPolicy((st) => st.currentOperation, 'the failover to start');
    // Waited out from the first agreement, and timed from the recorded sighting.
    expect(Date.parse(op.startedAt)).toBeGreaterThanOrEqual(Date.parse(since) + holdDownSeconds * 1000);
    expect(op.primaryLostAt).toBe(lost.primaryLoss?.lastSeenAt);
    expect(op.estimatedLossBytes).toBe(lost.primaryLoss?.standbyLag[0]?.bytes);
    const agreed = op.timeline?.find((m) => m.event === 'QuorumLostPrimary')?.at;
    expect(Date.parse(agreed ?? '')).toBe(Date.parse(since));
    await expectCleanFailover(stack);
    // The loss belonged to region-a: gone with its promotion.
    const after = (await stack.policy()).status;
    expect(after.primaryDownSince).toBeUndefined();
    expect(after.primaryLoss).toBeUndefined();
  });
});

describe('a switchover whose old primary cannot be fenced', () => {
  it('rolls back (at once: the role lacks a privilege), leaves the primary taking writes, and says why', async () => {
    stack = await start({ startOperator: false });
    // As on RDS: a role with what probing and promotion need, but not ALTER SYSTEM.
    const pair = stack.pair;
    for (const statement of [
      `CREATE ROLE limited LOGIN PASSWORD 'limited-pw' IN ROLE pg_monitor, pg_signal_backend`,
      'GRANT EXECUTE ON FUNCTION pg_promote(boolean, integer) TO limited',
      'GRANT EXECUTE ON FUNCTION pg_reload_conf() TO limited',
      `GRANT CREATE ON DATABASE "${pair.database}" TO limited`,
    ])
      await pair.primary.query(statement);
    await pair.waitForReplayCatchUp();
    const secrets = { group: '', version: 'v1', plural: 'secrets', kind: 'Secret' };
    await stack.client.mergePatch(secrets, stack.options.namespace, 'db-credentials', {
      stringData: { username: 'limited', password: 'limited-pw' },
    });
    await stack.startOperator();
    await healthy(stack);

    await stack.requestPromotion({ id: 'switch-limited', target: 'region-b', kind: 'Switchover' });
    const report = await stack.waitForPolicy((st) => st.history?.[0], 'the switchover to end');
    expect(report).toMatchObject({ kind: 'Switchover', trigger: 'Manual', result: 'Aborted' });
    // The person's reason stays; how it ended is in message. A missing privilege is not retried:
    // the fence names the grants it needs before changing anything.
    expect(report.reason).toBe('requested by a person');
    expect(report.message).toMatch(
      /could not fence region-a read-only \(1 attempt\(s\)\): .*(GRANT|privilege)/,
    );
    const { status } = await stack.policy();
    expect(status).toMatchObject({ activePrimary: 'region-a', epoch: 0 });
    expect(status.currentOperation).toBeUndefined();
    expect(status.lastRequest).toMatchObject({ id: 'switch-limited', outcome: 'Aborted' });
    expect(await stack.writablePrimaries()).toEqual(['primary']);
    expect(await stack.writeThroughDns()).toBe(PRIMARY_ADDRESS);
    await stack.eventsWith(['FencingFailed', 'SwitchoverRolledBack', 'SwitchoverAborted']);
    // Not a retry storm fed by the operator's own status writes (which once ran this step
    // hundreds of times a minute).
    expect(
      await stack.operator?.metric('controller_runtime_reconcile_errors_total', {
        controller: 'failoverpolicy',
      }),
    ).toBeLessThan(10);
  });
});

describe('a switchover whose primary dies before the promotion', () => {
  it('stands down instead of retrying for ever, and the failover rules take over (RPO gate included)', async () => {
    stack = await start();
    await healthy(stack);
    await stack.operator?.kill();
    // As a person's switchover left it when the operator died: fencing the primary, which is now gone.
    await stack.pair.killPrimary();
    const status: FailoverPolicyStatus = {
      ...(await stack.policy()).status,
      currentOperation: operationAt('Fencing', {
        id: 'switchover-e1-test',
        kind: 'Switchover',
        trigger: 'Manual',
        primaryLostAt: undefined,
      }),
    };
    await stageStatus(stack, status);
    await stack.startOperator();

    const stoodDown = await stack.waitForPolicy(
      (st) => (st.history?.[0]?.result === 'Aborted' && !st.currentOperation ? st : undefined),
      'the switchover to stand down',
    );
    expect(stoodDown.history?.[0]).toMatchObject({ id: 'switchover-e1-test', kind: 'Switchover' });
    expect(stoodDown.history?.[0]?.message).toMatch(/region-a was lost .* before region-b was promoted/);
    expect(stoodDown.epoch).toBe(0);
    // The failover rules decide now. This restarted operator never measured the lag while the
    // primary lived, so the RPO gate holds an automatic promotion back, as it must. (Right after
    // the restart the standby is not probed yet and the block says so first: NoHealthyStandby.)
    const blocked = await stack.waitForPolicy(
      (st) =>
        st.conditions?.find(
          (c) => c.type === 'FailoverBlocked' && c.status === 'True' && c.reason === 'LagUnknown',
        ),
      'the failover blocked by the RPO gate (LagUnknown)',
    );
    expect(blocked.reason).toBe('LagUnknown');
    expect((await stack.policy()).status.epoch).toBe(0);
    // ...and a person's failover that accepts the loss goes through: nothing is left stuck.
    await stack.requestPromotion({
      id: 'after-switchover',
      target: 'region-b',
      kind: 'Failover',
      allowDataLoss: true,
    });
    const after = await stack.waitForPolicy(
      (st) => (st.history?.length === 2 && !st.currentOperation ? st : undefined),
      'the requested failover to finish',
    );
    expect(after.history?.[0]).toMatchObject({
      kind: 'Failover',
      trigger: 'Manual',
      result: 'Succeeded',
      epoch: 1,
    });
    expect(after).toMatchObject({ activePrimary: 'region-b', epoch: 1 });
    expect(await stack.writablePrimaries()).toEqual(['standby']);
    expect(await stack.writeThroughDns()).toBe(STANDBY_ADDRESS);
  });
});

describe('the API server down mid-failover', () => {
  it('a leader that cannot renew its lease stops acting; the next one resumes from status and finishes', async () => {
    n++;
    ownControlPlane = await ControlPlane.start({ name: `faults-api-${n}` });
    stack = await FailoverStack.start({
      name: `ffapi${n}`,
      kubeConfig: ownControlPlane.kubeConfig(),
      kubeconfigPath: ownControlPlane.kubeconfigPath,
      namespace: 'faults-api',
    });
    await healthy(stack);
    await stack.pair.killPrimary();
    await stack.waitForPolicy((st) => st.currentOperation, 'the failover to start');
    await ownControlPlane.stopApiServer();
    // Longer than the renew deadline: the leader must step down (exit), as controller-runtime's
    // managers do, so that a replica with stale leadership never keeps acting.
    const operator = stack.operator;
    await operator?.waitForExit();
    expect(operator?.logs()).toContain('leader lease lost');
    await ownControlPlane.startApiServer();
    // The Deployment would restart it; the new leader resumes from status.
    await stack.startOperator();
    await expectCleanFailover(stack);
  });
});

describe('the DNS server refusing updates when the operator starts', () => {
  it('is retried with backoff, visible in status and metrics, and in sync soon after it accepts', async () => {
    stack = await start({ startOperator: false });
    await stack.bind.restart({ updates: 'refuse' });
    const operator = await stack.startOperator();
    const refused = await stack.waitForPolicy(
      (st) =>
        st.conditions?.find(
          (c) => c.type === 'DnsReady' && c.status === 'False' && /REFUSED/.test(c.message),
        ),
      'DnsReady False, REFUSED, while updates are refused',
    );
    expect(refused.reason).toMatch(/Rejected|ProviderError|Refused/);
    // Retried, not left for the five-minute check: the first record must not wait that long.
    await waitFor(async () => (await operator.metric('failover_dns_check_failures_total')) >= 2, {
      description: 'a second failed DNS check',
    });
    expect(await stack.bind.dig(RECORD, 'A')).toEqual([]);
    await stack.bind.restart({ updates: 'allow' });
    await stack.waitForPolicy(
      (st) => st.conditions?.some((c) => c.type === 'DnsReady' && c.status === 'True'),
      'DnsReady True once updates are accepted',
      60_000,
    );
    expect(await stack.bind.dig(RECORD, 'A')).toEqual([PRIMARY_ADDRESS]);
    expect(await stack.writeThroughDns()).toBe(PRIMARY_ADDRESS);
  });
});

describe('DNS reads past the read budget', () => {
  it("a failing check's retries wait for the budget (--dns-reads-per-second), and the record is put right after", async () => {
    // One read every 10 s: without the budget, a failing check is retried after 1, 2, 4 s...
    stack = await start({ startOperator: false, operatorArgs: ['--dns-reads-per-second=RFC2136=0.1'] });
    await stack.bind.restart({ updates: 'refuse' });
    const operator = await stack.startOperator();
    const checks = () => operator.metric('failover_dns_reads_total', { purpose: 'Check' });
    const deferred = () => operator.metric('failover_dns_reads_deferred_total', { purpose: 'Check' });
    // Positive control: the record was found absent (by discovery's first read, which does not
    // wait) and the repair, at the next read the budget allowed, refused.
    await stack.waitForPolicy(
      (st) =>
        st.conditions?.find(
          (c) => c.type === 'DnsReady' && c.status === 'False' && /REFUSED/.test(c.message),
        ),
      'DnsReady False, REFUSED, while updates are refused',
    );
    expect(await checks()).toBe(1);
    // Its retry, due a second later, is put off: the read and the refused change spent the budget.
    const before = await deferred();
    await waitFor(async () => (await deferred()) >= before + 3 || undefined, {
      description: 'the retry put off three times',
    });
    expect(await checks()).toBe(1);
    await stack.bind.restart({ updates: 'allow' });
    await stack.waitForPolicy(
      (st) => st.conditions?.some((c) => c.type === 'DnsReady' && c.status === 'True'),
      'DnsReady True at the next read the budget allows',
      90_000,
    );
    expect(await stack.bind.dig(RECORD, 'A')).toEqual([PRIMARY_ADDRESS]);
    expect(await checks()).toBe(2);
  });
});

describe('the DNS server failing during the re-point', () => {
  it('refusing updates: retried with backoff and visible in status, then completed when it accepts again', async () => {
    stack = await start();
    await healthy(stack);
    await stack.bind.restart({ updates: 'refuse' });
    await stack.pair.killPrimary();
    const stuck = await stack.waitForPolicy(
      (st) =>
        st.currentOperation?.step === 'RepointingDns' && (st.currentOperation.attempts ?? 0) >= 2
          ? st
          : undefined,
      'repeated failed attempts to re-point DNS',
    );
    expect(stuck.currentOperation?.lastError).toMatch(/REFUSED/);
    // Retried after a backoff, not at once: each failed attempt writes status, and reacting to
    // that write, or to every observer's vote, once re-ran the step back to back (six attempts in
    // about 0.6 s here). The backoff in status (retryAfter) puts at least 0.5 + 1 + 2 s between
    // the starts of the first and the fourth (less the first attempt's own time, hence 2.5 s);
    // a slower machine only spreads them further.
    const ns = stack.options.namespace;
    const failures = await waitFor(
      () => {
        const times = (stack?.operator?.logEntries() ?? [])
          .filter(
            (e) =>
              e.msg === 'reconcile failed; retrying after the backoff it recorded' &&
              e.key === `${ns}/orders`,
          )
          .map((e) => new Date(String(e.time)).getTime());
        return times.length >= 4 ? times : undefined;
      },
      { description: 'four failed attempts in the log' },
    );
    expect((failures[3] ?? 0) - (failures[0] ?? 0)).toBeGreaterThanOrEqual(2500);
    expect(stuck.currentOperation?.retryAfter).toBeDefined();
    expect(stuck.conditions?.find((c) => c.type === 'Progressing')).toMatchObject({ status: 'False' });
    // The promotion already happened: exactly one writable primary even while DNS lags behind.
    expect(await stack.writablePrimaries()).toEqual(['standby']);
    await stack.bind.restart({ updates: 'allow' });
    await expectCleanFailover(stack);
    expect(
      await stack.operator?.metric('controller_runtime_reconcile_errors_total', {
        controller: 'failoverpolicy',
      }),
    ).toBeGreaterThanOrEqual(2);
  });

  it('not answering: each attempt times out, then the failover completes when it answers', async () => {
    stack = await start();
    await healthy(stack);
    await stack.pair.killPrimary();
    await stack.waitForPolicy(
      (st) =>
        st.currentOperation?.step === 'RepointingDns' || st.currentOperation?.step === 'Promoting'
          ? st
          : undefined,
      'the promotion',
      60_000,
    );
    await stack.bind.freeze();
    const stuck = await stack.waitForPolicy(
      (st) => (/Timeout/.test(st.currentOperation?.lastError ?? '') ? st : undefined),
      'a timed-out attempt in status',
    );
    expect(stuck.currentOperation?.step).toMatch(/RepointingDns|VerifyingDns/);
    stack.bind.thaw();
    await expectCleanFailover(stack);
  });
});
