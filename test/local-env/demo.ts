/**
 * `make demo`: a regional outage and an automatic, correct promotion, on this one machine.
 *
 * Brings up two regions (PostgreSQL primary and standby, BIND, observers, the operator), writes
 * canary rows through the DNS name as an application would, kills the primary region's database,
 * and narrates what happens: detection by a quorum, fencing, promotion, DNS re-pointed and
 * verified, writes succeeding again. Then it measures RTO and RPO and cleans everything up.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { FailoverPolicyStatus } from '../../operator/src/api/v1alpha1/index.ts';
import { PRIMARY_ADDRESS, RECORD, STANDBY_ADDRESS } from '../harness/failover-stack.ts';
import { installSignalCleanup } from '../harness/processes.ts';
import { waitFor } from '../harness/wait.ts';
import { NAMESPACE, startLocalEnvironment } from './environment.ts';

const run = promisify(execFile);
const t0 = Date.now();
const stamp = () => `+${((Date.now() - t0) / 1000).toFixed(1).padStart(5)}s`;
const say = (line: string) => process.stdout.write(`[demo ${stamp()}] ${line}\n`);
const section = (title: string) => process.stdout.write(`\n== ${title}\n`);

section('1. Two regions on one machine');
const env = await startLocalEnvironment(say);
installSignalCleanup(() => env.stop());
const { stack } = env;
const kubectl = async (...args: string[]) => {
  const { stdout } = await run('kubectl', args, {
    env: { ...process.env, KUBECONFIG: env.controlPlane.kubeconfigPath },
  });
  process.stdout.write(`${stdout.trimEnd().replace(/^/gm, '    ')}\n`);
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
  const narrate = async () => {
    const { status } = await stack.policy();
    const available = status.conditions?.find((c) => c.type === 'PrimaryAvailable');
    const op = status.currentOperation;
    const line = `phase ${status.phase}; primary available: ${available?.status} (${available?.message}); ${op ? `operation ${op.id}: ${op.step}` : 'no operation'}`;
    if (line !== lastLine) {
      say(line);
      lastLine = line;
    }
    for (const e of await stack.events()) {
      const key = `${e.reason}|${e.note}`;
      if (
        seenEvents.has(key) ||
        !/Started|Fenced|NotFenced|Promoted|Repointed|Completed|Blocked|QuorumLost/.test(e.reason)
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
      return status.history?.[0] && !status.currentOperation ? status : undefined;
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
  const report = finished.history?.[0];
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
} catch (err) {
  say(`demo failed: ${(err as Error).message}`);
  exitCode = 1;
} finally {
  section('5. Cleaning up');
  await env.stop();
  say('everything the demo started is stopped');
}
process.exit(exitCode);
