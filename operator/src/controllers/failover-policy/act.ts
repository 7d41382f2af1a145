/**
 * act: carries out one side effect through a port and says what happened. It decides nothing:
 * whether to advance, wait, retry or roll back is transition's (transition.ts). Every side effect
 * checks before it acts (the adapters are idempotent), because a step may run again after a crash
 * between its side effect and the status write that records it. Nothing here waits for a cloud
 * operation to finish: a side effect starts, and a later reconcile checks on it.
 */
import type {
  AgentReport,
  DatabaseReplacement,
  FailoverPolicySpec,
  Operation,
} from '../../api/v1alpha1/index.ts';
import { switchesOverNatively } from '../../providers/database/capabilities.ts';
import { compareLsn } from '../../providers/database/lsn.ts';
import type { DatabaseProvider, FencingMode, ProviderSpec } from '../../providers/database/port.ts';
import type { DnsProvider, DnsRecordRef, DnsVerifier } from '../../providers/dns/port.ts';
import type { DnsServerAddress } from '../../providers/dns/verifier.ts';
import { canonicalValue } from '../../providers/dns/verifier.ts';
import { isProviderError } from '../../providers/errors.ts';
import type { ConditionInput } from '../../runtime/conditions.ts';
import { type EventInput, eventOf } from '../../runtime/events.ts';
import { timestamp } from '../../runtime/time.ts';
import { inSyncCondition } from './dns-check.ts';
import { fencingModeFor } from './operation.ts';
import type { StepOutcome } from './transition.ts';

/** The ports act works through; the reconciler builds them from the context (ports.ts). */
export interface StepPorts {
  database(cluster: string): Promise<DatabaseProvider>;
  /** A DNS provider for the policy's record, closed once `use` is done with it. */
  withDns<T>(use: (dns: DnsProvider) => Promise<T>): Promise<T>;
  verifier: DnsVerifier;
  verifyServers(): Promise<DnsServerAddress[]>;
  /** The value the record points at when `cluster` is primary. */
  dnsTarget(cluster: string): string | undefined;
  /** Owner id in the ownership TXT record. */
  owner: string;
  /** What the database agent beside `cluster` last reported, if one does. */
  agentReport(cluster: string): AgentReport | undefined;
  /** The policy's name and a cluster's provider block, for a managed provider's reprotect. */
  policy: string;
  providerSpec(cluster: string): ProviderSpec | undefined;
}

export function recordRef(spec: FailoverPolicySpec): DnsRecordRef {
  return { zone: spec.dns.zone, name: spec.dns.name, type: spec.dns.type };
}

/** A thrown error as an outcome: provider errors keep their reason and retryability. */
export function failure(err: unknown): Extract<StepOutcome, { kind: 'Failed' }> {
  if (isProviderError(err))
    return {
      kind: 'Failed',
      reason: err.reason,
      message: err.message,
      retryable: err.retryable,
      ...(err.retryAfterMs !== undefined ? { retryAfterMs: err.retryAfterMs } : {}),
    };
  return {
    kind: 'Failed',
    reason: 'StepFailed',
    message: (err as Error).message ?? String(err),
    retryable: true,
  };
}

/** Runs the side effect of the operation's current step. Never throws. */
export async function runStep(
  ports: StepPorts,
  spec: FailoverPolicySpec,
  op: Operation,
  now: Date,
): Promise<StepOutcome> {
  try {
    switch (op.step) {
      case 'Fencing':
        return await fence(ports, spec, op);
      case 'CatchingUp':
        return op.kind === 'Reprotect' ? await checkStreaming(ports, op) : await checkCatchUp(ports, op);
      case 'Demoting':
        return await checkDemotion(ports, op, now);
      case 'Rejoining':
        return await rejoin(ports, op, now);
      case 'Promoting':
        return await promote(ports, op, now);
      case 'RepointingDns':
        return await repointDns(ports, spec, op, now);
      case 'VerifyingDns':
        return await verifyDns(ports, spec, op);
      case 'RollingBack':
        return await unfence(ports, op);
      default:
        // Detected has no side effect: the record of the intent was the step.
        return { kind: 'Done' };
    }
  } catch (err) {
    return failure(err);
  }
}

/**
 * Whether this is a Switchover the provider does itself (both ends in one Aurora global cluster),
 * from the ReplicaClusters' provider blocks, each time: the operation records nothing about it.
 */
function nativeSwitchover(ports: StepPorts, op: Operation): boolean {
  return (
    op.kind === 'Switchover' && switchesOverNatively(ports.providerSpec(op.from), ports.providerSpec(op.to))
  );
}

/**
 * A native switchover's fence: the old writer marked with the epoch (EpochOnly), and nothing
 * more; the provider's switchover makes it read-only (Aurora refuses the SQL that would). The
 * mark tells clients that read the heartbeat to stop writing there, and it is what lets decide
 * leave the old writer be while Aurora, asked in Promoting, still keeps it writable; without it
 * every probe would send the operation back here. A first mark that fails fails the step (the
 * switchover rolls back, nothing moved: Aurora needs a healthy writer anyway); once marked, a
 * return here (the mark was lost) goes on to Promoting whatever the mark does, since Aurora may
 * be switching over already and must not be rolled back under.
 */
async function markOldWriter(
  db: DatabaseProvider,
  op: Operation,
  mode: FencingMode,
): Promise<{ detail: string }> {
  const made = `; ${op.to}'s provider switches over itself and makes ${op.from} read-only`;
  try {
    const { detail } = await db.fence({ operationId: op.id, epoch: op.epoch, mode });
    return { detail: `${detail}${made}` };
  } catch (err) {
    if (op.fenceDetail === undefined) throw err;
    return { detail: `not marked again (${failure(err).message})${made}` };
  }
}

async function fence(ports: StepPorts, spec: FailoverPolicySpec, op: Operation): Promise<StepOutcome> {
  const native = nativeSwitchover(ports, op);
  const mode = fencingModeFor(op, spec.promotion.fencing, { nativeSwitchover: native });
  // Waited for up to the adapter's own timeouts (a silent old primary costs its connect timeout):
  // cutting a slow but reachable primary's fence short would promote beside a writer.
  let fenced: { detail: string } | Extract<StepOutcome, { kind: 'Failed' }>;
  try {
    const db = await ports.database(op.from);
    fenced = native
      ? await markOldWriter(db, op, mode)
      : await db.fence({ operationId: op.id, epoch: op.epoch, mode });
  } catch (err) {
    fenced = failure(err);
  }
  // Others seen taking writes before the promotion (op.strays) go the same way, in the policy's
  // mode, whether or not the old primary answered: a failover goes on without a lost old primary,
  // and a stray left writing would send its promotion back here for as long as that one is lost.
  const others: string[] = [];
  let refused: Extract<StepOutcome, { kind: 'Failed' }> | undefined;
  for (const stray of op.strays ?? []) {
    const request = { operationId: op.id, epoch: op.epoch, mode: spec.promotion.fencing };
    try {
      others.push(`${stray}: ${(await (await ports.database(stray)).fence(request)).detail}`);
    } catch (err) {
      const f = failure(err);
      // Gone again: it takes no writes now, and is fenced as a stray the moment it is seen.
      if (f.reason === 'Unreachable' || f.reason === 'Timeout')
        others.push(`${stray}: unreachable (${f.reason}), fenced when seen again`);
      else {
        // Refused (a privilege, a missing ReplicaCluster): the others are fenced all the same, and
        // the step fails for it once they are.
        others.push(`${stray}: not fenced (${f.reason}: ${f.message})`);
        refused ??= { ...f, message: `${stray}: ${f.message}` };
      }
    }
  }
  const strays = others.length ? { learned: { fenceDetail: others.join('; ').slice(0, 1024) } } : {};
  // A refusing stray fails the step, to be tried again after a backoff: were the old primary's
  // unreachability reported instead, the failover would go on to Promoting, see the stray writing
  // and come straight back here, again and again. Then an old primary that failed (for a failover,
  // unreachable is the normal case, which transition takes as marked by the epoch).
  if (refused) return { ...refused, ...strays };
  if ('kind' in fenced) return { ...fenced, ...strays };
  const detail = [fenced.detail, ...others].join('; ');
  if (native)
    return {
      kind: 'Done',
      nativeSwitchover: true,
      detail: `${mode}: ${detail}`,
      learned: { fenceDetail: detail.slice(0, 1024) },
    };
  if (op.kind !== 'Switchover')
    return { kind: 'Done', detail: `${mode}: ${detail}`, learned: { fenceDetail: detail.slice(0, 1024) } };
  // The standby must replay up to where the fenced primary stopped.
  const seen = await (await ports.database(op.from)).observe();
  if (!seen.reachable || !seen.lsn)
    return {
      kind: 'Failed',
      reason: 'Unreachable',
      message: `${op.from} could not be observed after fencing`,
      retryable: true,
    };
  return {
    kind: 'Done',
    detail: `${mode}: ${detail}`,
    learned: { fenceDetail: detail.slice(0, 1024), fencedLsn: seen.lsn },
  };
}

async function checkCatchUp(ports: StepPorts, op: Operation): Promise<StepOutcome> {
  const seen = await (await ports.database(op.to)).observe();
  if (seen.reachable && seen.lsn && op.fencedLsn && compareLsn(seen.lsn, op.fencedLsn) >= 0)
    return { kind: 'Done', learned: { estimatedLossBytes: 0, estimatedLossSeconds: 0 } };
  return { kind: 'Pending', detail: `${op.to} replayed ${seen.lsn ?? '?'} of ${op.fencedLsn ?? '?'}` };
}

/** How long a switchover waits for the agent to demote the old primary before going on without. */
export const DEMOTE_TIMEOUT_MS = 90_000;
/** How long a reprotect waits for an agent that has not taken the step up. */
export const AGENT_START_TIMEOUT_MS = 120_000;
/**
 * How long a rejoin waits for an agent that took it up and then went silent (it reports every 10 s,
 * even while pg_rewind or pg_basebackup runs). The operation ends; the agent, back, finds the world
 * as its kill left it, and the next reprotect takes it from there.
 */
export const AGENT_SILENT_TIMEOUT_MS = 120_000;

const since = (at: string, now: Date) => now.getTime() - new Date(at).getTime();

/**
 * The agent beside the old primary stops it cleanly (the target then receives its shutdown
 * checkpoint) and restarts it as the target's standby. Done once the target replayed past that
 * checkpoint: promoting it then forks nothing off the old primary, which follows without a rewind.
 * A demotion that does not happen in time is not waited for: the old primary stays fenced, the
 * switchover goes on, and a reprotect rejoins it later.
 */
async function checkDemotion(ports: StepPorts, op: Operation, now: Date): Promise<StepOutcome> {
  const task = ports.agentReport(op.from)?.task;
  const mine = task?.operationId === op.id ? task : undefined;
  const late = since(op.stepStartedAt, now) > DEMOTE_TIMEOUT_MS;
  if (
    mine?.phase === 'Failed' ||
    (mine?.phase === 'Succeeded' && !mine.stoppedLsn) ||
    (late && mine?.phase !== 'Succeeded' && !mine?.stoppedLsn)
  )
    return {
      kind: 'Done',
      detail: `${op.from} not demoted (${mine?.message ?? `no agent took the step up in ${DEMOTE_TIMEOUT_MS / 1000} s`}); it stays fenced, and a reprotect rejoins it`,
      learned: { demoted: false },
    };
  if (!mine?.stoppedLsn)
    return {
      kind: 'Pending',
      detail: `waiting for the agent beside ${op.from} to stop it cleanly${mine?.message ? `: ${mine.message}` : ''}`,
    };
  const seen = await (await ports.database(op.to)).observe();
  if (seen.reachable && seen.lsn && compareLsn(seen.lsn, mine.stoppedLsn) > 0)
    return {
      kind: 'Done',
      detail: `${op.from} stopped cleanly at ${mine.stoppedLsn}; ${op.to} replayed past it (${seen.lsn})`,
      learned: { stoppedLsn: mine.stoppedLsn },
    };
  // Fenced, it committed nothing after the catch-up: only the shutdown checkpoint is missing, and
  // without it the old primary needs a rewind (a reprotect) instead of a restart.
  if (since(op.stepStartedAt, now) > 2 * DEMOTE_TIMEOUT_MS)
    return {
      kind: 'Done',
      detail: `${op.to} did not replay past ${op.from}'s shutdown checkpoint ${mine.stoppedLsn} (at ${seen.lsn ?? '?'}); a reprotect rejoins ${op.from}`,
      learned: { demoted: false },
    };
  return {
    kind: 'Pending',
    detail: `${op.from} stopped at ${mine.stoppedLsn}; waiting for ${op.to} to replay past it (at ${seen.lsn ?? '?'})`,
  };
}

/**
 * Reprotect's local part: a managed provider makes (or finds) a replica in the former primary's
 * region; for self-managed PostgreSQL, the agent beside it rejoins it (the intent is the step
 * itself, in status) and reports how it went.
 */
async function rejoin(ports: StepPorts, op: Operation, now: Date): Promise<StepOutcome> {
  const db = await ports.database(op.from);
  if (db.reprotect) {
    const primary = ports.providerSpec(op.to);
    if (!primary)
      return {
        kind: 'Failed',
        reason: 'NoTarget',
        message: `ReplicaCluster ${op.to} is missing`,
        retryable: true,
      };
    const result = await db.reprotect({
      operationId: op.id,
      epoch: op.epoch,
      policy: ports.policy,
      primary: { cluster: op.to, provider: primary },
    });
    if (result.state === 'Pending') return { kind: 'Pending', detail: result.detail };
    // The operator never changes a spec: a replica made in the former primary's place protects the
    // policy once its ReplicaCluster names it, which a person (or their Git) does.
    if (result.replacement) {
      const r = result.replacement;
      return {
        kind: 'Failed',
        reason: 'RepointNeeded',
        message: `${result.detail}; point ReplicaCluster ${op.from} at it: spec.provider ${JSON.stringify(r.provider)}, spec.connection.host ${r.host}${r.port ? `, port ${r.port}` : ''} (${r.superseded} is superseded: delete it when you no longer need it); kubectl failover export ${ports.policy} writes the ReplicaCluster re-pointed, and --pulumi the topology a Pulumi stack imports it with`,
        retryable: false,
        learned: {
          replacement: {
            cluster: op.from,
            provider: replacementIdentifiers(r.provider),
            host: r.host,
            ...(r.port !== undefined ? { port: r.port } : {}),
            superseded: r.superseded,
          },
        },
      };
    }
    return { kind: 'Done', detail: result.detail };
  }
  const report = ports.agentReport(op.from);
  const task = report?.task;
  const mine = task?.operationId === op.id ? task : undefined;
  if (mine?.phase === 'Succeeded')
    return {
      kind: 'Done',
      detail: `${op.from}: ${mine.message ?? 'rejoined'} (${mine.method ?? 'Restart'})${mine.keptDataDirectory ? `; the old data directory is kept at ${mine.keptDataDirectory}` : ''}`,
      // What was really discarded (measured with the server stopped) replaces the assessment.
      ...(mine.discarded ? { learned: { discarded: mine.discarded } } : {}),
    };
  if (mine?.phase === 'Failed')
    return {
      kind: 'Failed',
      reason: 'AgentRefused',
      message: `${op.from}: ${mine.message ?? 'the agent failed'}`,
      retryable: false,
    };
  if (mine && report && since(report.reportedAt, now) > AGENT_SILENT_TIMEOUT_MS)
    return {
      kind: 'Failed',
      reason: 'AgentSilent',
      message: `the agent beside ${op.from} took the rejoin up and has not reported for ${Math.round(since(report.reportedAt, now) / 1000)} s (last: ${mine.message ?? 'started'})`,
      retryable: false,
    };
  if (!mine && since(op.stepStartedAt, now) > AGENT_START_TIMEOUT_MS)
    return {
      kind: 'Failed',
      reason: 'NoAgent',
      message: `no agent beside ${op.from} took the rejoin up in ${AGENT_START_TIMEOUT_MS / 1000} s`,
      retryable: false,
    };
  return { kind: 'Pending', detail: `the agent beside ${op.from}: ${mine?.message ?? 'not started yet'}` };
}

/** Done when the former primary streams from the primary and has replayed what it had a moment ago. */
async function checkStreaming(ports: StepPorts, op: Operation): Promise<StepOutcome> {
  const primary = await (await ports.database(op.to)).observe();
  const standby = await (await ports.database(op.from)).observe();
  const streaming = standby.walReceiver?.streaming ?? standby.role === 'Standby';
  if (
    primary.reachable &&
    primary.lsn &&
    standby.reachable &&
    standby.role === 'Standby' &&
    streaming &&
    standby.lsn &&
    compareLsn(standby.lsn, primary.lsn) >= 0
  )
    return { kind: 'Done', detail: `${op.from} streams from ${op.to} and replayed ${standby.lsn}` };
  return {
    kind: 'Pending',
    detail: `${op.from} is ${standby.reachable ? `${standby.role}${streaming ? ', streaming' : ', not streaming'}, at ${standby.lsn ?? '?'}` : 'unreachable'}; ${op.to} at ${primary.lsn ?? '?'}`,
  };
}

/**
 * Starts the promotion or checks on it. A Switchover asks for the provider's switchover (kind
 * Switchover): for a native one (Aurora global's SwitchoverGlobalCluster) that is the switchover
 * itself, with the catch-up and the old writer's demotion.
 */
async function promote(ports: StepPorts, op: Operation, now: Date): Promise<StepOutcome> {
  const native = nativeSwitchover(ports, op);
  const target = await ports.database(op.to);
  const result = await target.promote({
    operationId: op.id,
    epoch: op.epoch,
    kind: op.kind === 'Switchover' ? 'Switchover' : 'Failover',
  });
  if (result.state === 'Pending') return { kind: 'Pending', detail: `promoting ${op.to}: ${result.detail}` };
  // After an interrupted promotion the heartbeat with the new epoch may still be owed.
  await target.writeHeartbeat(op.epoch, now);
  const resumed = result.alreadyPrimary ? 'it already was: an interrupted step resumed' : undefined;
  if (!native) return { kind: 'Done', ...(resumed ? { detail: resumed } : {}) };
  // The provider waited for the target to catch up before it switched: nothing was lost.
  return {
    kind: 'Done',
    detail: `the provider switched over from ${op.from}, which it made a read-only secondary${resumed ? `; ${resumed}` : ''}`,
    learned: { estimatedLossBytes: 0, estimatedLossSeconds: 0 },
  };
}

async function repointDns(
  ports: StepPorts,
  spec: FailoverPolicySpec,
  op: Operation,
  now: Date,
): Promise<StepOutcome> {
  const value = ports.dnsTarget(op.to);
  if (!value)
    return {
      kind: 'Failed',
      reason: 'NoTarget',
      message: `ReplicaCluster ${op.to} has no dnsTarget`,
      retryable: true,
    };
  // Compare-and-swap on the record as it is now, not as it should have been: after a lost status
  // or an interrupted operation it may still name an earlier primary. The providers refuse a
  // record someone else owns and an epoch lower than the one it carries, so no older decider can win.
  const { changed } = await ports.withDns(async (dns) => {
    const current = await dns.read(recordRef(spec));
    return dns.apply({
      record: recordRef(spec),
      expected: current.value,
      value,
      ttl: op.dnsTtlSeconds ?? spec.dns.ttlSeconds,
      owner: ports.owner,
      epoch: op.epoch,
    });
  });
  return {
    kind: 'Done',
    detail: `${spec.dns.name} ${changed ? 'now points' : 'already pointed'} at ${value} (epoch ${op.epoch})`,
    learned: { dnsChangedAt: op.dnsChangedAt ?? timestamp(now) },
  };
}

async function verifyDns(ports: StepPorts, spec: FailoverPolicySpec, op: Operation): Promise<StepOutcome> {
  const value = ports.dnsTarget(op.to) ?? '';
  const servers = await ports.verifyServers();
  const answers = await ports.verifier.query(recordRef(spec), servers);
  const want = canonicalValue(spec.dns.type, value);
  const agreeing = answers.filter(
    (a) => a.values?.length === 1 && canonicalValue(spec.dns.type, a.values[0] ?? '') === want,
  );
  if (servers.length > 0 && agreeing.length === servers.length) return { kind: 'Done' };
  const summary = answers
    .map((a) => `${a.server}: ${a.error ?? (a.values?.join(',') || 'no answer')}`)
    .join('; ');
  return {
    kind: 'Pending',
    detail: `waiting for ${servers.length} authoritative server(s) to answer ${value}: ${summary}`,
  };
}

async function unfence(ports: StepPorts, op: Operation): Promise<StepOutcome> {
  const old = await ports.database(op.from);
  if (!old.unfence)
    return {
      kind: 'Failed',
      reason: 'Rejected',
      message: `${op.from} cannot be unfenced by this provider; make it writable by hand, then the operation ends`,
      retryable: true,
    };
  const { detail } = await old.unfence();
  return { kind: 'Done', detail };
}

/**
 * Puts the record back on the primary: a compare-and-swap on the value last read. Written, the
 * record is in sync, and DnsReady says so as the next read will (InSync, the same message): a
 * reason of its own for the write would change to InSync five minutes later, a status write
 * and an Event per new policy for nothing. The write itself is the Event.
 */
export async function repairDns(
  ports: StepPorts,
  spec: FailoverPolicySpec,
  change: { expected: string | undefined; value: string; epoch: number; ttl?: number },
): Promise<{ condition: ConditionInput; event?: EventInput }> {
  try {
    const { changed } = await ports.withDns((dns) =>
      dns.apply({
        record: recordRef(spec),
        expected: change.expected,
        value: change.value,
        ttl: change.ttl ?? spec.dns.ttlSeconds,
        owner: ports.owner,
        epoch: change.epoch,
      }),
    );
    const condition = inSyncCondition(spec.dns.name, change.value, change.epoch);
    // Nothing written (the provider found it there already, as its canonical form): no news.
    if (!changed) return { condition };
    // The same value: its epoch or TTL was behind (a drill lowers the TTL and puts it back).
    const sameValue = change.expected?.toLowerCase() === change.value.toLowerCase();
    return {
      condition,
      event: eventOf(
        'Normal',
        change.expected === undefined
          ? 'DnsRecordCreated'
          : sameValue
            ? 'DnsRecordUpdated'
            : 'DnsRecordRepaired',
        'RepairDns',
        sameValue
          ? `${spec.dns.name} points at ${change.value}, now at epoch ${change.epoch} with TTL ${change.ttl ?? spec.dns.ttlSeconds} s`
          : `${spec.dns.name} set to ${change.value} (was ${change.expected ?? 'absent'}), epoch ${change.epoch}`,
      ),
    };
  } catch (err) {
    const f = failure(err);
    return {
      condition: {
        type: 'DnsReady',
        status: 'False',
        reason: f.reason === 'StepFailed' ? 'DnsError' : f.reason,
        message: f.message.slice(0, 1000),
      },
    };
  }
}

/** Reads the record and its ownership TXT, for discovery and the periodic check. */
export async function readDns(ports: StepPorts, spec: FailoverPolicySpec, now: Date) {
  try {
    const state = await ports.withDns((dns) => dns.read(recordRef(spec)));
    return { readAt: now, ...state };
  } catch (err) {
    const f = failure(err);
    return {
      readAt: now,
      error: { reason: f.reason === 'StepFailed' ? 'DnsError' : f.reason, message: f.message },
    };
  }
}

/** The identifiers of a replacement's provider block, as status keeps them (no credentials). */
function replacementIdentifiers(provider: ProviderSpec): DatabaseReplacement['provider'] {
  const block = (key: string) => (provider[key] ?? {}) as Record<string, unknown>;
  const text = (value: unknown) => (typeof value === 'string' ? value : '');
  if (provider.type === 'AwsRds') {
    const b = block('awsRds');
    return {
      type: 'AwsRds',
      awsRds: { region: text(b.region), dbInstanceIdentifier: text(b.dbInstanceIdentifier) },
    };
  }
  const b = block('digitalOcean');
  return {
    type: 'DigitalOcean',
    digitalOcean: {
      databaseId: text(b.databaseId),
      ...(typeof b.replicaName === 'string' ? { replicaName: b.replicaName } : {}),
    },
  };
}
