/**
 * `make demo`: a regional outage and an automatic, correct promotion, on this one machine, then
 * the way back.
 *
 * Brings up two regions (PostgreSQL primary and standby with a database agent beside each, BIND,
 * observers, the operator), writes canary rows through the DNS name as an application would,
 * kills the primary region's database, and narrates what happens: detection by a quorum, fencing,
 * promotion, DNS re-pointed and verified, writes succeeding again, and RTO and RPO. Then region A
 * comes back as a standby of region B (its agent says what a rejoin discards; the operator
 * reprotects it), and a switchover under writes through DNS returns the primary to region A
 * without losing any. Last, a drill: `kubectl failover drill run` sends the primary out to region
 * B and back while the operator's canary measures each leg from the client's side. Then an
 * isolated drill: the agent beside region B copies and promotes its standby on a spare port, the
 * canary writes to the copy through a drill record, and production never moves. Then the evidence
 * a person would look at: the failover's incident report as Markdown and the status page (its
 * HTML, and a screenshot where chromium is installed), written under .local/demo/. It ends with
 * one writable primary, both regions replicating, and cleans up.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { basename, dirname, join } from 'node:path';
import { promisify } from 'node:util';
import type {
  DrillMeasure,
  DrillState,
  FailoverPolicyStatus,
} from '../../operator/src/api/v1alpha1/index.ts';
import { launchBrowser } from '../harness/browser.ts';
import { PRIMARY_ADDRESS, RECORD, STANDBY_ADDRESS } from '../harness/failover-stack.ts';
import { freePort } from '../harness/ports.ts';
import { installSignalCleanup } from '../harness/processes.ts';
import { waitFor } from '../harness/wait.ts';
import { ComebackRecorder, WriterSampler } from './comeback.ts';
import { NAMESPACE, startLocalEnvironment } from './environment.ts';
import { localPaths } from './paths.ts';

const run = promisify(execFile);
const t0 = Date.now();
const stamp = (at = Date.now()) => `+${((at - t0) / 1000).toFixed(1).padStart(5)}s`;
/** A line of the transcript, stamped with when it happened (default: now). */
const sayAt = (at: number, line: string) => process.stdout.write(`[demo ${stamp(at)}] ${line}\n`);
const say = (line: string) => sayAt(Date.now(), line);
const section = (title: string) => process.stdout.write(`\n== ${title}\n`);

section('1. Two regions on one machine');
const env = await startLocalEnvironment(say);
installSignalCleanup(() => env.stop());
const { stack } = env;
// bin/ on PATH: `kubectl failover` is the project's kubectl plugin, found there as kubectl-failover.
const kubectlEnv = {
  ...process.env,
  KUBECONFIG: env.controlPlane.kubeconfigPath,
  PATH: `${join(import.meta.dirname, '../../bin')}:${process.env.PATH}`,
};
const kubectl = async (...args: string[]) => {
  const { stdout } = await run('kubectl', args, { env: kubectlEnv });
  process.stdout.write(`${stdout.trimEnd().replace(/^/gm, '    ')}\n`);
};
/** Like kubectl, for a command that may answer no (exit 1): prints what it said, gives the exit code. */
const kubectlMayRefuse = async (...args: string[]): Promise<number> => {
  const said = await run('kubectl', args, { env: kubectlEnv }).then(
    ({ stdout, stderr }) => ({ code: 0, text: `${stdout}${stderr}` }),
    (err: { code?: number; stdout?: string; stderr?: string }) => {
      if (err.code !== 1) throw err;
      return { code: 1, text: `${err.stdout ?? ''}${err.stderr ?? ''}` };
    },
  );
  process.stdout.write(`${said.text.trimEnd().replace(/^/gm, '    ')}\n`);
  return said.code;
};

let exitCode = 0;
try {
  say('waiting for the operator to see a healthy primary and standby and to create the DNS record');
  await stack.waitUntilHealthy();
  say(`${RECORD} → ${(await stack.dnsAnswer()).join(', ')} (region A)`);
  await kubectl('get', 'replicaclusters,failoverpolicies', '-n', NAMESPACE);

  section('2. An application writes through the DNS name');
  say(`every 100 ms: resolve ${RECORD} at the authoritative server, connect, insert the next canary row`);
  const acknowledged: { seq: number; address: string }[] = [];
  let failures = 0;
  let writing = true;
  let firstWriteAfterKill: { at: number; address: string } | undefined;
  let killedAt = 0;
  const writer = (async () => {
    for (let seq = 1; writing; seq++) {
      try {
        const address = await stack.writeThroughDns('canary', seq);
        acknowledged.push({ seq, address });
        if (killedAt && !firstWriteAfterKill && address === STANDBY_ADDRESS)
          firstWriteAfterKill = { at: Date.now(), address };
      } catch {
        failures++;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  await waitFor(() => acknowledged.length >= 30, { description: '30 acknowledged canary writes' });
  say(`${acknowledged.length} canary rows acknowledged by region A so far`);

  section('3. Region A fails');
  killedAt = Date.now();
  await stack.pair.killPrimary();
  say("SIGKILL to region A's PostgreSQL (postmaster and every backend): the primary region is gone");

  let lastLine = '';
  const seenEvents = new Set<string>();
  // From here on, what happens to region A on its way back is recorded for act 5.
  const comeback = new ComebackRecorder(stack, sayAt);
  const narrate = async () => {
    const { status } = await stack.policy();
    const available = status.conditions?.find((c) => c.type === 'PrimaryAvailable');
    const op = status.currentOperation?.kind === 'Failover' ? status.currentOperation : undefined;
    const line = `phase ${status.phase}; primary available: ${available?.status} (${available?.message}); ${op ? `operation ${op.id}: ${op.step}` : 'no operation'}`;
    if (line !== lastLine) {
      say(line);
      lastLine = line;
    }
    for (const e of await stack.events()) {
      const key = `${e.reason}|${e.note}`;
      if (
        seenEvents.has(key) ||
        !/^Failover|Fenced|NotFenced|Promoted|Repointed|Blocked|QuorumLost/.test(e.reason)
      )
        continue;
      seenEvents.add(key);
      say(`event ${e.type} ${e.reason}: ${e.note}`);
    }
    return status;
  };
  const finished = await waitFor(
    async () => {
      const status: FailoverPolicyStatus = await narrate();
      const failover = status.history?.find((r) => r.kind === 'Failover');
      return failover && status.currentOperation?.kind !== 'Failover' ? status : undefined;
    },
    { description: 'the failover to complete', timeoutMs: 180_000, intervalMs: 100 },
  );
  await waitFor(() => firstWriteAfterKill, {
    description: 'a write through DNS to succeed again',
    timeoutMs: 60_000,
  });
  writing = false;
  await writer;
  await narrate();

  section('4. What it cost');
  const report = finished.history?.find((r) => r.kind === 'Failover');
  const rtoThroughDns = ((firstWriteAfterKill?.at ?? 0) - killedAt) / 1000;
  const ackedBeforeKill = acknowledged.filter((a) => a.address === PRIMARY_ADDRESS).map((a) => a.seq);
  const present = new Set(
    (
      await stack.pair.standby.query<{ seq: string }>('SELECT seq::text FROM canary', [], stack.pair.database)
    ).map((r) => Number(r.seq)),
  );
  const lost = ackedBeforeKill.filter((s) => !present.has(s));
  say(`DNS now answers: ${RECORD} → ${(await stack.dnsAnswer()).join(', ')} (region B)`);
  say(`RTO: writes through ${RECORD} succeeded again ${rtoThroughDns.toFixed(1)} s after the primary died`);
  say(
    `     (detection window: ${stack.options.failureThreshold} probes × ${stack.options.probeIntervalSeconds} s; operator's own measure, from when the primary was last seen alive: ${report?.rtoSeconds} s; DNS verified ${report?.dnsVerifySeconds} s after the change)`,
  );
  say(
    `RPO: ${lost.length} of ${ackedBeforeKill.length} writes acknowledged by region A are missing from region B${lost.length ? ` (seq ${lost.join(', ')})` : ''}; the policy's budget was ${stack.options.maxLagSeconds} s, the standby lagged ${report?.rpoSeconds ?? 0} s / ${report?.rpoBytes ?? 0} bytes when promoted`,
  );
  say(`${failures} canary writes failed while there was no writable primary behind the name`);
  say(
    `epoch ${finished.epoch} (was 0): in the TXT record _failover.${RECORD} and in region B's heartbeat row`,
  );
  await kubectl('get', 'failoverpolicies', '-n', NAMESPACE);
  const writable = await stack.writablePrimaries();
  say(`databases accepting writes now: ${writable.join(', ')} — exactly one`);
  if (writable.length !== 1 || writable[0] !== 'standby') exitCode = 1;

  section('5. Region A comes back');
  if (!(await regionAComesBack(comeback))) exitCode = 1;

  section('6. Failback: a switchover to region A under writes');
  if (!(await failback())) exitCode = 1;

  section('7. A drill out and back');
  if (!(await drillOutAndBack())) exitCode = 1;

  section('8. An isolated drill: a copy of region B, production untouched');
  if (!(await isolatedDrill())) exitCode = 1;

  section('9. The evidence: the incident report and the status page');
  if (!(await evidence(report?.id))) exitCode = 1;
} catch (err) {
  say(`demo failed: ${(err as Error).message}`);
  exitCode = 1;
} finally {
  section('10. Cleaning up');
  await env.stop();
  say('everything the demo started is stopped');
}
process.exit(exitCode);

/**
 * Region A's agent has run beside it since the start: once region B is the primary it compares
 * region A's data directory with region B's and reports the diverged range. The operator then
 * reprotects region A by itself when that discards no committed transaction; otherwise it waits
 * for a person, whose request this demo makes, saying so. Resolves to whether region A ends as a
 * caught-up standby of region B.
 */
async function regionAComesBack(recorder: ComebackRecorder): Promise<boolean> {
  say(
    "region A's PostgreSQL is still down; its agent, running beside it since the start, compares its data directory with region B's",
  );
  const assessed = await waitFor(() => recorder.assessment, {
    description: 'the agent beside region A to compare it with region B',
    timeoutMs: 60_000,
  });
  say('recorded since region A died (each line stamped when it was seen):');
  recorder.flush();
  const d = assessed.divergence;
  say(
    `agent beside region-a (server ${assessed.server}, pg_rewind ${assessed.rewindable ? 'possible' : 'impossible'}): ${d.relation} from ${d.primary}; fork at ${d.forkLsn ?? '-'}, its WAL ends at ${d.localEndLsn ?? '-'} on timeline ${d.localTimeline ?? '-'}; ${d.divergedBytes} bytes, ${d.divergedTransactions ?? (d.relation === 'Diverged' ? 'an unknown number of' : 'no')} committed transaction(s) past the fork`,
  );
  if (d.message) say(`  "${d.message}"`);

  // What the operator made of it: started by itself, or waiting for a person.
  const verdict = await waitFor(
    async () => {
      const { status } = await stack.policy();
      if (recorder.reprotectTrigger) return { automatic: true, status };
      const redundant = status.conditions?.find((c) => c.type === 'Redundant');
      if (redundant?.reason === 'ReprotectNeedsRequest') return { automatic: false, status, redundant };
      return undefined;
    },
    { description: 'the operator to start the reprotect or to ask for a request', timeoutMs: 60_000 },
  );
  recorder.flush();
  if (verdict.automatic) {
    say(
      `nothing committed would be discarded: the operator started the reprotect by itself (spec.reprotect.mode RequireRequest, trigger ${recorder.reprotectTrigger})`,
    );
  } else {
    say(`the operator waits for a person: ${verdict.redundant?.message}`);
    say(
      'the kill left committed transactions on region A that never reached region B; accepting their loss, as a person would:',
    );
    await kubectl(
      'failover',
      'reprotect',
      'orders',
      'region-a',
      '--allow-data-loss',
      '-n',
      NAMESPACE,
      '--reason',
      'demo: bring region A back as a standby',
    );
  }
  const done = await waitFor(
    async () => {
      recorder.flush();
      const { status } = await stack.policy();
      const report = status.history?.find((r) => r.kind === 'Reprotect' && r.from === 'region-a');
      const redundant = status.conditions?.find((c) => c.type === 'Redundant');
      return report && !status.currentOperation && redundant?.status === 'True'
        ? { report, redundant }
        : undefined;
    },
    {
      description: 'the reprotect of region A and the Redundant condition True',
      timeoutMs: 180_000,
      intervalMs: 250,
    },
  );
  recorder.flush();
  await recorder.stop();
  const { report } = done;
  const task = (await stack.agentReport('region-a'))?.task;
  const took = (Date.parse(report.completedAt) - Date.parse(report.startedAt)) / 1000;
  say(
    `reprotect ${report.result} in ${took.toFixed(1)} s (${task?.method ?? '?'}): discarded ${report.discardedBytes ?? 0} bytes, ${report.discardedTransactions ?? 0} committed transaction(s)`,
  );
  say(`Redundant ${done.redundant.status} (${done.redundant.reason}): ${done.redundant.message ?? ''}`);
  const streaming = await replication('standby', 'region-a');
  say(
    `region B's pg_stat_replication: region-a ${streaming?.state ?? 'absent'}, replay lag ${streaming?.lag ?? '?'} bytes`,
  );
  await showTopology();
  return report.result === 'Succeeded' && streaming?.state === 'streaming';
}

/**
 * A switchover back to region A while an application writes 100 rows/s through the DNS name: the
 * agent beside region B stops it cleanly once region A has all its WAL and restarts it as a
 * standby of region A. Resolves to whether nothing acknowledged was lost, exactly one database
 * takes writes, and both regions replicate.
 */
async function failback(): Promise<boolean> {
  const sampler = new WriterSampler(stack);
  const load = await stack.startDnsWriteLoad(100);
  say(
    `an application writes 100 rows/s through ${RECORD} (one session, reconnecting through DNS on any error)`,
  );
  await waitFor(() => load.acknowledged.length >= 200 || undefined, {
    description: '200 acknowledged writes',
  });
  say(`${load.acknowledged.length} rows acknowledged by region B so far; asking for the switchover:`);
  // Events from before the request are the earlier acts' story.
  const seen = new Set((await stack.events()).map((e) => `${e.reason}|${e.note}`));
  const requestedAt = Date.now();
  await kubectl(
    'failover',
    'switchover',
    'orders',
    '--to',
    'region-a',
    '-n',
    NAMESPACE,
    '--reason',
    'demo: failback to region A',
  );
  const requestWritten = Date.now();
  let lastStep = '';
  let lastMessage = '';
  const back = await waitFor(
    async () => {
      const { status } = await stack.policy();
      const op = status.currentOperation;
      if (op && op.step !== lastStep) {
        say(`operation ${op.id}: ${op.step}`);
        lastStep = op.step;
      }
      if (op?.message && op.message !== lastMessage) {
        say(`  ${op.message}`);
        lastMessage = op.message;
      }
      for (const e of await stack.events()) {
        const key = `${e.reason}|${e.note}`;
        if (seen.has(key) || !/^Switchover|Demoted|Promoted|Repointed/.test(e.reason)) continue;
        seen.add(key);
        say(`event ${e.type} ${e.reason}: ${e.note}`);
      }
      const report = status.history?.[0];
      return report?.kind === 'Switchover' && report.to === 'region-a' && !op ? report : undefined;
    },
    { description: 'the switchover to region A', timeoutMs: 120_000, intervalMs: 100 },
  );
  const tookSeconds = (Date.now() - requestedAt) / 1000;
  const operationSeconds = (Date.parse(back.completedAt) - Date.parse(back.startedAt)) / 1000;
  const afterBack = load.acknowledged.length;
  await waitFor(() => load.acknowledged.length >= afterBack + 100 || undefined, {
    description: 'writes through DNS to region A',
  });
  const written = await load.stop();
  await sampler.stop();
  const present = new Set(
    (await stack.pair.sql<{ seq: string }>('primary', 'SELECT seq::text FROM dns_load')).map((r) =>
      Number(r.seq),
    ),
  );
  const lost = written.acknowledged.filter((n) => !present.has(n));
  const redundant = await stack.waitForPolicy(
    (st) => st.conditions?.find((c) => c.type === 'Redundant' && c.status === 'True'),
    'region B a replicating standby of region A',
  );
  const writable = await stack.writablePrimaries();
  const streaming = await replication('primary', 'region-b');

  section('What the failback cost');
  say(`DNS now answers: ${RECORD} → ${(await stack.dnsAnswer()).join(', ')} (region A)`);
  say(
    `switchover ${back.result}: ${operationSeconds.toFixed(1)} s from the operation's start to completed (${tookSeconds.toFixed(1)} s from running kubectl failover switchover, ${((requestWritten - requestedAt) / 1000).toFixed(1)} s of it the command itself; operator's own RTO: ${back.rtoSeconds ?? '?'} s to DNS verified)`,
  );
  say(
    `writes lost: ${lost.length} of ${written.acknowledged.length} acknowledged through ${RECORD}${lost.length ? ` (seq ${lost.slice(0, 10).join(', ')})` : ''}; ${written.failed} attempts failed while the primary changed hands (not acknowledged, so not lost)`,
  );
  say(
    `databases accepting writes: ${writable.join(', ')} — exactly one; at no moment of ${sampler.samples.length} sampled every 200 ms did two (${sampler.twoWriters})`,
  );
  say(`Redundant ${redundant.status} (${redundant.reason}): ${redundant.message ?? ''}`);
  say(
    `region A's pg_stat_replication: region-b ${streaming?.state ?? 'absent'}, replay lag ${streaming?.lag ?? '?'} bytes`,
  );
  await showTopology();
  return (
    back.result === 'Succeeded' &&
    lost.length === 0 &&
    sampler.twoWriters === 0 &&
    writable.length === 1 &&
    writable[0] === 'primary' &&
    streaming?.state === 'streaming'
  );
}

/**
 * A drill, as a person would start one between scheduled ones: `kubectl failover drill run`. The
 * operator's canary writes numbered rows through the DNS name, a switchover takes the primary to
 * region B, it serves there for holdSeconds, and a switchover brings it home; the canary measures
 * both legs from the client's side. An application writes through the name all along. Resolves
 * to whether the drill succeeded, nothing acknowledged was lost, never two writers, and region A
 * is the one writable primary again with region B replicating from it.
 */
async function drillOutAndBack(): Promise<boolean> {
  const holdSeconds = 5;
  const drills = { schedule: '0 3 * * 1', timeZone: 'UTC', holdSeconds, abortIfLagSecondsAbove: 5 };
  say(
    `drills on the policy: weekly (${drills.schedule} ${drills.timeZone}), ${holdSeconds} s on the standby, none while it lags more than ${drills.abortIfLagSecondsAbove} s`,
  );
  await kubectl(
    'patch',
    'failoverpolicy',
    'orders',
    '-n',
    NAMESPACE,
    '--type',
    'merge',
    '-p',
    JSON.stringify({ spec: { drills } }),
  );
  say(
    'would the operator run one now? (kubectl failover drill run --dry-run runs its own decision, changes nothing)',
  );
  const wouldRun = await kubectlMayRefuse('failover', 'drill', 'run', 'orders', '-n', NAMESPACE, '--dry-run');
  const { status: before } = await stack.policy();
  const cooldown = stack.options.cooldownSeconds;
  if (wouldRun !== 0 && before.lastFailoverTime) {
    // The cool-down after a real failover holds drills back too: the region just proved itself.
    const shortened = 30;
    say(
      `refused: the failover of act 3 ended ${Math.round((Date.now() - Date.parse(before.lastFailoverTime)) / 1000)} s ago, within the ${cooldown} s cool-down; a real region waits it out, the demo shortens spec.promotion.cooldownSeconds to ${shortened} s`,
    );
    await kubectl(
      'patch',
      'failoverpolicy',
      'orders',
      '-n',
      NAMESPACE,
      '--type',
      'merge',
      '-p',
      JSON.stringify({ spec: { promotion: { cooldownSeconds: shortened } } }),
    );
    const cooledAt = Date.parse(before.lastFailoverTime) + shortened * 1000;
    if (cooledAt > Date.now()) {
      say(`waiting ${Math.ceil((cooledAt - Date.now()) / 1000)} s for the shortened cool-down to pass`);
      await new Promise((r) => setTimeout(r, cooledAt - Date.now() + 500));
    }
  }
  await stack.waitForPolicy(
    (st) => st.conditions?.find((c) => c.type === 'Redundant' && c.status === 'True'),
    'region B a replicating standby of region A',
  );

  // A fresh table: the failback's rows would collide with this load's sequence numbers.
  await stack.pair.sql('primary', 'DROP TABLE IF EXISTS dns_load');
  const sampler = new WriterSampler(stack);
  const load = await stack.startDnsWriteLoad(50);
  say(`an application writes 50 rows/s through ${RECORD} throughout the drill`);
  await waitFor(() => load.acknowledged.length >= 100 || undefined, {
    description: '100 acknowledged writes',
  });
  const seen = new Set((await stack.events()).map((e) => `${e.reason}|${e.note}`));
  const reason = 'demo: prove region B can take over';
  say(
    `${load.acknowledged.length} rows acknowledged by region A so far; kubectl failover drill run orders --reason '${reason}':`,
  );
  const requestedAt = Date.now();
  const answer = await kubectlMayRefuse(
    'failover',
    'drill',
    'run',
    'orders',
    '-n',
    NAMESPACE,
    '--reason',
    reason,
  );
  if (answer !== 0) {
    await load.stop();
    await sampler.stop();
    say('the operator refused the drill (above); nothing moved');
    return false;
  }

  // The legs as status.drill shows them, each leg's operation steps, and the Events.
  let lastLeg = '';
  let lastStep = '';
  let outTold = false;
  const narrate = async (): Promise<FailoverPolicyStatus> => {
    const { status } = await stack.policy();
    const drill = status.drill;
    if (drill && drill.leg !== lastLeg) {
      lastLeg = drill.leg;
      say(`drill ${drill.id}: ${legStory(drill)}`);
    }
    if (drill?.out && !outTold) {
      outTold = true;
      say(`  the out leg, as the canary saw it: ${measureStory(drill.out)}`);
    }
    const op = status.currentOperation;
    if (op && `${op.id}|${op.step}` !== lastStep) {
      lastStep = `${op.id}|${op.step}`;
      say(`  operation ${op.id} (${op.from} → ${op.to}): ${op.step}`);
    }
    for (const e of await stack.events()) {
      const key = `${e.reason}|${e.note}`;
      if (seen.has(key) || !/^Drill|Switchover|Demoted|Promoted/.test(e.reason)) continue;
      seen.add(key);
      say(`event ${e.type} ${e.reason}: ${e.note}`);
    }
    return status;
  };
  const report = await waitFor(
    async () => {
      const status = await narrate();
      const filed = status.drills?.[0];
      return !status.drill && filed && Date.parse(filed.startedAt) >= requestedAt - 1000 ? filed : undefined;
    },
    { description: 'the drill out and back', timeoutMs: 240_000, intervalMs: 100 },
  );
  say(`drill ${report.id} filed: ${report.result}`);
  await narrate();
  const afterDrill = load.acknowledged.length;
  await waitFor(() => load.acknowledged.length >= afterDrill + 50 || undefined, {
    description: 'writes through DNS to region A after the drill',
  });
  const written = await load.stop();
  await sampler.stop();
  const lost = await load.missingOn('primary');
  const redundant = await stack.waitForPolicy(
    (st) => st.conditions?.find((c) => c.type === 'Redundant' && c.status === 'True'),
    'region B a replicating standby of region A after the drill',
  );
  const writable = await stack.writablePrimaries();
  // The last rows written reach region B within moments: show it caught up, or how far it is.
  const streaming = await waitFor(
    async () => {
      const row = await replication('primary', 'region-b');
      return row?.state === 'streaming' && row.lag === '0' ? row : undefined;
    },
    { description: 'region B to replay all of region A', timeoutMs: 15_000 },
  ).catch(() => replication('primary', 'region-b'));
  const { status } = await stack.policy();
  const backDns = status.history?.find((h) => h.id === report.back?.operationId)?.dnsVerifySeconds;

  section('What the drill measured');
  await kubectl('failover', 'drill', 'history', 'orders', '-n', NAMESPACE);
  const took = (Date.parse(report.completedAt) - Date.parse(report.startedAt)) / 1000;
  say(
    `drill ${report.id} ${report.result} in ${took.toFixed(1)} s, ${holdSeconds} s of it held on ${report.to}`,
  );
  say(`out to ${report.to}: ${report.out ? measureStory(report.out) : 'not measured'}`);
  say(`back to ${report.from}: ${report.back ? measureStory(report.back) : 'not measured'}`);
  say(
    `DNS: the authoritative servers answered the new primary ${report.dnsVerifySeconds ?? '?'} s after the change on the way out, ${backDns ?? '?'} s on the way back`,
  );
  say(
    `application writes lost: ${lost} of ${written.acknowledged.length} acknowledged through ${RECORD}; ${written.failed} attempts failed while the primary moved (not acknowledged, so not lost)`,
  );
  say(
    `databases accepting writes: ${writable.join(', ')} — exactly one; at no moment of ${sampler.samples.length} sampled every 200 ms did two (${sampler.twoWriters})`,
  );
  say(`Redundant ${redundant.status} (${redundant.reason}): ${redundant.message ?? ''}`);
  say(
    `region A's pg_stat_replication: region-b ${streaming?.state ?? 'absent'}, replay lag ${streaming?.lag ?? '?'} bytes`,
  );
  await showTopology();
  return (
    report.result === 'Succeeded' &&
    report.lostWrites === 0 &&
    lost === 0 &&
    sampler.twoWriters === 0 &&
    writable.length === 1 &&
    writable[0] === 'primary' &&
    streaming?.state === 'streaming'
  );
}

/**
 * An isolated drill, as a person would ask for one: `kubectl failover drill run --mode Isolated`.
 * The agent beside region B copies its standby with pg_basebackup and promotes the copy on a
 * spare port; the operator points a drill record at region B and its canary writes rows to the
 * copy through it; then the record and the copy are removed. An application writes through the
 * policy's record all along. Resolves to whether the drill succeeded and cleaned up, production
 * kept its primary, epoch, record and TTL, no acknowledged write was lost, never two writers, and
 * nothing of the copy is left (record, server, directory).
 */
async function isolatedDrill(): Promise<boolean> {
  const isolated = { port: await freePort(), minCanaryWrites: 20 };
  const { port } = isolated;
  say(
    `spec.drills.isolated: the copy listens on spare port ${port} beside region B, and must acknowledge ${isolated.minCanaryWrites} canary rows`,
  );
  await kubectl(
    'patch',
    'failoverpolicy',
    'orders',
    '-n',
    NAMESPACE,
    '--type',
    'merge',
    '-p',
    JSON.stringify({ spec: { drills: { isolated } } }),
  );
  const { status: before } = await stack.policy();
  const recordBefore = await stack.dnsAnswer();
  const ttlBefore = await stack.dnsTtl();
  say(
    `production before: primary ${before.activePrimary} at epoch ${before.epoch ?? 0}; ${RECORD} → ${recordBefore.join(', ')} (region A), TTL ${ttlBefore} s`,
  );

  // A fresh table: act 7's rows would collide with this load's sequence numbers.
  await stack.pair.sql('primary', 'DROP TABLE IF EXISTS dns_load');
  const sampler = new WriterSampler(stack);
  const load = await stack.startDnsWriteLoad(50);
  say(`an application writes 50 rows/s through ${RECORD} throughout the drill`);
  await waitFor(() => load.acknowledged.length >= 100 || undefined, {
    description: '100 acknowledged writes',
  });
  const seen = new Set((await stack.events()).map((e) => `${e.reason}|${e.note}`));
  const reason = 'demo: prove region B can be promoted without moving production';
  say(
    `${load.acknowledged.length} rows acknowledged by region A so far; kubectl failover drill run orders --mode Isolated --reason '${reason}':`,
  );
  // The legs as status.drill shows them, watched from the request on: an isolated drill can be
  // over within seconds, before kubectl has printed its answer. What is seen meanwhile is held and
  // told after that answer, stamped when it was seen. While the canary writes: what a client of
  // each record sees.
  let held: [number, string][] | undefined = [];
  const tell = (line: string, at = Date.now()) => {
    if (held) held.push([at, line]);
    else sayAt(at, line);
  };
  // In the order an isolated drill goes through them; local, as the acts run at the module's top
  // level before any constant declared below them exists.
  const legs: DrillState['leg'][] = ['Copying', 'Pointing', 'Writing', 'Removing', 'Cleaning'];
  let lastLeg = '';
  let told = 0;
  let whileWriting:
    | { drillRecord: string[]; record: string[]; ttl?: number; copyServes: boolean }
    | undefined;
  const narrate = async (): Promise<FailoverPolicyStatus> => {
    const { status } = await stack.policy();
    const drill = status.drill;
    if (drill && drill.leg !== lastLeg) {
      // A short leg can pass between two looks: told too, stamped when status.drill says it began.
      const from = legs.indexOf(lastLeg as DrillState['leg']) + 1;
      for (const leg of legs.slice(from, legs.indexOf(drill.leg))) {
        const began = isolatedLegBegan({ ...drill, leg });
        tell(
          `isolated drill ${drill.id}: ${legStory({ ...drill, leg })} (passed between two looks)`,
          began ? Date.parse(began) : Date.now(),
        );
      }
      lastLeg = drill.leg;
      tell(`isolated drill ${drill.id}: ${legStory(drill)}`);
    }
    if (drill?.leg === 'Writing' && drill.isolated && !whileWriting) {
      const name = drill.isolated.recordName;
      whileWriting = {
        drillRecord: await answerOrNone('A', name),
        record: await stack.dnsAnswer(),
        ttl: await stack.dnsTtl(),
        copyServes: await acceptsConnections(port),
      };
      tell(
        `  meanwhile: ${name} → ${whileWriting.drillRecord.join(', ') || 'nothing'}; ${RECORD} → ${whileWriting.record.join(', ')}, TTL ${whileWriting.ttl} s; the copy ${whileWriting.copyServes ? 'accepts' : 'refuses'} connections at ${STANDBY_ADDRESS}:${port}`,
      );
    }
    for (const e of await stack.events()) {
      const key = `${e.reason}|${e.note}`;
      if (seen.has(key) || !/^Drill|Switchover|Promoted|Repointed/.test(e.reason)) continue;
      seen.add(key);
      told++;
      tell(`event ${e.type} ${e.reason}: ${e.note}`);
    }
    return status;
  };
  let refused = false;
  const requestedAt = Date.now();
  const watching = waitFor(
    async () => {
      if (refused) return undefined;
      const status = await narrate();
      const filed = status.drills?.[0];
      return !status.drill && filed?.mode === 'Isolated' && Date.parse(filed.startedAt) >= requestedAt - 1000
        ? filed
        : undefined;
    },
    { description: 'the isolated drill', timeoutMs: 300_000, intervalMs: 100 },
  );
  // Awaited below once the drill is accepted; not left unhandled if it is not.
  watching.catch(() => undefined);
  let answer = 1;
  try {
    answer = await kubectlMayRefuse(
      'failover',
      'drill',
      'run',
      'orders',
      '-n',
      NAMESPACE,
      '--mode',
      'Isolated',
      '--reason',
      reason,
    );
  } finally {
    for (const [at, line] of held.sort((a, b) => a[0] - b[0])) sayAt(at, line);
    held = undefined;
    if (answer !== 0) refused = true;
  }
  if (answer !== 0) {
    await load.stop();
    await sampler.stop();
    say('the operator refused the isolated drill (above); nothing moved');
    return false;
  }
  const report = await watching;
  say(`isolated drill ${report.id} filed: ${report.result}`);
  if (!whileWriting)
    say('  (the Writing leg passed between two looks: the records were not seen while the copy took writes)');
  await narrate();
  if (!told) {
    // Acts 3 to 7 may have spent the policy's Event budget (client-go's manners: a burst, refilled slowly).
    const dropped = await stack.operator?.metric('failover_events_dropped_total', { reason: 'RateLimited' });
    say(
      dropped
        ? `no Events for this drill: the operator's Event budget for the policy is spent by now (failover_events_dropped_total{reason="RateLimited"} ${dropped}); status.drill and the report say it all`
        : 'no Drill Events were seen for this drill',
    );
  }
  const afterDrill = load.acknowledged.length;
  await waitFor(() => load.acknowledged.length >= afterDrill + 50 || undefined, {
    description: 'writes through DNS to region A after the isolated drill',
  });
  const written = await load.stop();
  await sampler.stop();
  const lost = await load.missingOn('primary');

  // What production looks like now, and what is left of the copy.
  const { status: after } = await stack.policy();
  const recordAfter = await stack.dnsAnswer();
  const ttlAfter = await stack.dnsTtl();
  const figures = report.isolated;
  const drillRecord = figures?.recordName ?? `drill.${RECORD}`;
  const drillRecordAfter = await answerOrNone('A', drillRecord);
  const ownershipAfter = await answerOrNone('TXT', `_failover.${drillRecord}`);
  const copyListens = await acceptsConnections(port);
  const dataDir = stack.pair.standby.dataDir;
  const copyDirs = readdirSync(dirname(dataDir)).filter((n) => n.startsWith(`${basename(dataDir)}.drill-`));
  // The canary wrote only to the copy: production has none of this drill's rows.
  const onProduction = await canaryRowsOnPrimary(report.id);
  const writable = await stack.writablePrimaries();
  const regionB = (await stack.clusterStatus('region-b')).role;
  const mib = figures?.copyBytes === undefined ? '?' : (figures.copyBytes / 1048576).toFixed(1);

  section('What the isolated drill proved');
  say(
    `copy: pg_basebackup of region B's standby in ${figures?.copySeconds ?? '?'} s (copyBytes ${figures?.copyBytes ?? '?'}, ${mib} MiB); promoted in ${figures?.promotionSeconds ?? '?'} s (promotionSeconds)`,
  );
  say(
    `freshness: the copy's newest heartbeat was ${figures?.freshnessSeconds ?? '?'} s old (freshnessSeconds: how far behind a real promotion of region B would have started)`,
  );
  say(
    `${drillRecord} → ${STANDBY_ADDRESS} answered at BIND ${figures?.dnsVerifySeconds ?? '?'} s after it was written (dnsVerifySeconds); the copy acknowledged ${figures?.canaryWrites ?? '?'} canary rows through it (canaryWrites, ${isolated.minCanaryWrites} wanted)`,
  );
  say(
    `${report.result} in ${figures?.durationSeconds ?? '?'} s (durationSeconds) from the start to the copy and record removed; cleanedUp ${figures?.cleanedUp ?? '?'}`,
  );
  say(
    `production did not move: primary ${after.activePrimary} at epoch ${after.epoch ?? 0} (was ${before.activePrimary} at ${before.epoch ?? 0}); ${after.history?.length ?? 0} operations in status.history (was ${before.history?.length ?? 0}); region-b still a ${regionB}`,
  );
  say(`${RECORD} → ${recordAfter.join(', ')} (region A), TTL ${ttlAfter} s (was ${ttlBefore} s)`);
  say(
    `application writes lost: ${lost} of ${written.acknowledged.length} acknowledged through ${RECORD}; ${written.failed} attempts failed`,
  );
  say(`canary rows of drill ${report.id} in region A's database: ${onProduction} (they went to the copy)`);
  say(
    `databases accepting writes: ${writable.join(', ')} — exactly one; at no moment of ${sampler.samples.length} sampled every 200 ms did two (${sampler.twoWriters})`,
  );
  say(
    `left behind: ${drillRecord} → ${drillRecordAfter.join(', ') || 'no record'}; _failover.${drillRecord} → ${ownershipAfter.join(', ') || 'no record'}; ${STANDBY_ADDRESS}:${port} → ${copyListens ? 'still listening' : 'nothing listening'}; ${copyDirs.length ? copyDirs.join(', ') : `no ${basename(dataDir)}.drill-* directory`} beside ${dataDir}`,
  );
  await kubectl('failover', 'drill', 'history', 'orders', '-n', NAMESPACE);
  const samePlace = (a: string[], b: string[]) => a.join() === b.join();
  return (
    report.result === 'Succeeded' &&
    report.mode === 'Isolated' &&
    figures?.cleanedUp === true &&
    (figures.canaryWrites ?? 0) >= isolated.minCanaryWrites &&
    // Seen while the canary wrote, unless that leg passed between two looks (the report has it).
    (!whileWriting ||
      (whileWriting.drillRecord.join() === STANDBY_ADDRESS &&
        samePlace(whileWriting.record, recordBefore) &&
        whileWriting.ttl === ttlBefore)) &&
    after.activePrimary === before.activePrimary &&
    (after.epoch ?? 0) === (before.epoch ?? 0) &&
    (after.history?.length ?? 0) === (before.history?.length ?? 0) &&
    samePlace(recordAfter, [PRIMARY_ADDRESS]) &&
    samePlace(recordBefore, [PRIMARY_ADDRESS]) &&
    ttlAfter === ttlBefore &&
    lost === 0 &&
    onProduction === 0 &&
    sampler.twoWriters === 0 &&
    samePlace(writable, ['primary']) &&
    drillRecordAfter.length === 0 &&
    ownershipAfter.length === 0 &&
    !copyListens &&
    copyDirs.length === 0
  );
}

/** How many of `drill`'s canary rows region A's database holds (none if it has no canary table). */
async function canaryRowsOnPrimary(drill: string): Promise<number> {
  const [table] = await stack.pair.sql<{ t: string | null }>(
    'primary',
    "SELECT to_regclass('regionfailover.canary')::text AS t",
  );
  if (!table?.t) return 0;
  const [rows] = await stack.pair.sql<{ n: string }>(
    'primary',
    'SELECT count(*)::text AS n FROM regionfailover.canary WHERE drill = $1',
    [drill],
  );
  return Number(rows?.n);
}

/** Whether something accepts TCP connections on region B's address at `port`. */
function acceptsConnections(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: STANDBY_ADDRESS, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** What BIND answers for a name that may not exist: nothing, whether empty or NXDOMAIN. */
async function answerOrNone(type: 'A' | 'TXT', name: string): Promise<string[]> {
  try {
    return await stack.dnsAnswer(type, name);
  } catch (err) {
    if (/NXDOMAIN|no such name|not found/i.test((err as Error).message)) return [];
    throw err;
  }
}

/** When status.drill says an isolated leg began, where it keeps that. */
function isolatedLegBegan(drill: DrillState): string | undefined {
  const i = drill.isolated;
  switch (drill.leg) {
    case 'Copying':
      return drill.startedAt;
    case 'Pointing':
      return i?.copyReadyAt;
    case 'Writing':
      return i?.writingSince;
    case 'Cleaning':
      return i?.cleaningSince ?? i?.removedAt;
    default:
      return undefined;
  }
}

/** What a drill's leg means, as it starts. */
function legStory(drill: DrillState): string {
  switch (drill.leg) {
    case 'Starting':
      return `Starting: the operator's canary writes numbered rows through ${RECORD} into regionfailover.canary, as a client would; nothing has moved yet`;
    case 'Out':
      return `Out: switchover ${drill.outboundOperationId ?? ''} to ${drill.to} (${drill.from} fenced, ${drill.to} catches up and is promoted, DNS re-pointed, ${drill.from}'s agent makes it a standby)`;
    case 'Holding':
      return `Holding: ${drill.to} is the primary until ${drill.returnAfter ?? '?'}`;
    case 'Back':
      return `Back: switchover ${drill.backOperationId ?? ''} home to ${drill.from}`;
    case 'Copying':
      return `Copying: the agent beside ${drill.to} pg_basebackups its standby and promotes the copy on spare port ${drill.isolated?.port ?? '?'}; ${drill.to} itself keeps replicating`;
    case 'Pointing':
      return `Pointing: ${drill.isolated?.recordName ?? 'the drill record'} → ${drill.isolated?.value ?? `${drill.to}'s address`} (${drill.to}'s address), verified at BIND; ${RECORD} is not touched`;
    case 'Writing':
      return `Writing: the operator's canary writes numbered rows to the copy through ${drill.isolated?.recordName ?? 'the drill record'}`;
    case 'Removing':
      return `Removing: ${drill.isolated?.recordName ?? 'the drill record'} and its ownership TXT are deleted${drill.isolated?.verdict ? ` (to be filed ${drill.isolated.verdict.result}: ${drill.isolated.verdict.reason})` : ''}`;
    case 'Cleaning':
      return `Cleaning: the agent beside ${drill.to} stops the copy and deletes its directory`;
  }
}

/** One leg's figures, as the canary (or, when it could not, the operator) measured them. */
function measureStory(m: DrillMeasure): string {
  if (m.measuredBy !== 'Canary')
    return `RTO ${m.rtoSeconds ?? '?'} s by the operator's own clock (the canary could not measure: ${m.message ?? '?'})`;
  return `RTO ${m.rtoSeconds} s from the canary's last write acknowledged by the old primary (${m.writesStoppedAt?.slice(11, 23)}) to its first on the new one (${m.writesResumedAt?.slice(11, 23)}); RPO ${m.rpoTransactions} of ${m.acknowledged} canary rows lost`;
}

/** `standby`'s row in `on`'s pg_stat_replication, with its replay lag in bytes. */
async function replication(on: 'primary' | 'standby', standby: string) {
  const [row] = await stack.pair.sql<{ state: string; lag: string }>(
    on,
    'SELECT state, (pg_current_wal_lsn() - replay_lsn)::text AS lag FROM pg_stat_replication WHERE application_name = $1',
    [standby],
    'postgres',
  );
  return row;
}

async function showTopology(): Promise<void> {
  await kubectl('get', 'failoverpolicies', '-n', NAMESPACE, '-o', 'wide');
  await kubectl('failover', 'status', '-n', NAMESPACE);
  const { status } = await stack.policy();
  // The phase is Healthy only with FailoverReady too, which the cool-down after a failover holds False.
  say('conditions:');
  for (const c of status.conditions ?? [])
    if (['PrimaryAvailable', 'FailoverReady', 'Redundant'].includes(c.type))
      process.stdout.write(`    ${c.type} ${c.status} (${c.reason})${c.message ? `: ${c.message}` : ''}\n`);
  say('status.topology:');
  for (const member of status.topology ?? []) process.stdout.write(`    ${JSON.stringify(member)}\n`);
}

/**
 * What a person looks at afterwards: the failover's FailoverReport as Markdown (kubectl failover
 * report), and the operator's status page, saved as HTML and, where chromium is installed, as a
 * screenshot.
 */
async function evidence(failoverId: string | undefined): Promise<boolean> {
  const out = join(localPaths.dir, 'demo');
  mkdirSync(out, { recursive: true });
  if (!failoverId) {
    say('no failover in history: no report to write');
    return false;
  }
  const reportPath = join(out, 'failover-report.md');
  const { stdout: markdown } = await run(
    'kubectl',
    ['failover', 'report', 'orders', failoverId, '-o', 'markdown', '-n', NAMESPACE],
    {
      env: kubectlEnv,
    },
  );
  writeFileSync(reportPath, markdown);
  say(`the failover's incident report (kubectl failover report orders ${failoverId} -o markdown):`);
  process.stdout.write(`${markdown.split('\n').slice(0, 14).join('\n').replace(/^/gm, '    ')}\n    …\n`);
  const pageUrl = `${env.statusPageUrl}policies/${NAMESPACE}/orders`;
  const html = await (await fetch(pageUrl)).text();
  const htmlPath = join(out, 'status-page.html');
  writeFileSync(htmlPath, html);
  let screenshot = '';
  try {
    const browser = await launchBrowser();
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      await page.goto(pageUrl);
      screenshot = join(out, 'status-page.png');
      await page.screenshot({ path: screenshot, fullPage: true });
    } finally {
      await browser.close();
    }
  } catch (err) {
    say(`no screenshot (${(err as Error).message.split('\n')[0]}); the HTML is there`);
  }
  say(`written: ${reportPath}`);
  say(
    `written: ${htmlPath}${screenshot ? ` and ${screenshot}` : ''} (the status page served at ${env.statusPageUrl})`,
  );
  return markdown.startsWith('# Failover') && html.includes('Recent incidents');
}
