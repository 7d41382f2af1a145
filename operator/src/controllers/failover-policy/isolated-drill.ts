/**
 * Isolated drills (spec.drills.mode: Isolated): prove the standby can become a primary without
 * moving traffic, the way AWS Elastic Disaster Recovery runs its drills. Nothing in production
 * changes: the primary, the policy's DNS record and the standby itself are left alone.
 *
 *   Copying   the agent beside the standby copies it (pg_basebackup from the standby), starts
 *             the copy on a spare port and promotes it; it reports the figures.
 *   Pointing  the operator writes the drill record (drill.<record>) → the standby's dnsTarget,
 *             with its own ownership TXT, and waits for the authoritative servers to answer it.
 *   Writing   the canary writes numbered rows through the drill record to the copy (only to a
 *             server whose cluster_name names the drill: drill-<id>).
 *   Removing  the drill record is deleted.
 *   Cleaning  the agent stops the copy and deletes its directory; the report is filed.
 *
 * Any early end (a cancel, maxDurationSeconds, a failed step, a real failover, the primary down)
 * records the verdict and goes through Removing and Cleaning, so neither the record nor the copy
 * outlives the drill.
 */
import { agentAlive } from '../../agent/liveness.ts';
import { drillCopyName } from '../../agent/local-postgres.ts';
import type {
  DrillState,
  FailoverPolicySpec,
  IsolatedDrillReport,
  IsolatedDrillState,
} from '../../api/v1alpha1/index.ts';
import type { DrillCopyState } from '../../providers/database/port.ts';
import type { DnsRecordRef } from '../../providers/dns/port.ts';
import { timestamp } from '../../runtime/time.ts';
import { standbysOf } from './candidates.ts';
import { type ClusterFacts, type DecideInput, seconds } from './facts.ts';
import { STEP_RETRY } from './operation.ts';

/** A provider's copy of the standby (an RDS read replica, promoted), one step toward `want`. */
export interface DrillCopyAction {
  kind: 'DrillCopy';
  cluster: string;
  drillId: string;
  want: 'Serving' | 'Removed';
}

export type DrillCopyOutcome =
  | DrillCopyState
  | { phase: 'Error'; reason: string; message: string; retryable: boolean };

export type IsolatedDrillAction = DrillRecordAction | DrillCopyAction;

/** The action an isolated drill asks of act: the drill record written (and verified) or deleted. */
export interface DrillRecordAction {
  kind: 'DrillRecord';
  want: 'Present' | 'Absent';
  record: DnsRecordRef;
  /** Present: the standby's dnsTarget. */
  value: string;
  ttl: number;
  epoch: number;
}

export type DrillRecordOutcome =
  /** Written (or already there); `answered`: every authoritative server answers the value. */
  | {
      kind: 'Present';
      answered: boolean;
      detail: string;
      /** From the write accepted to the servers' answers, within this call. */
      answeredAfterMs?: number;
    }
  /** Deleted, or there was nothing to delete. */
  | { kind: 'Absent' }
  | {
      kind: 'Failed';
      reason: string;
      message: string;
      retryable: boolean;
      /** How long the provider asked to be left alone (Retry-After), if it said. */
      retryAfterMs?: number;
    };

/** How long the canary gets to land its writes on the copy. */
export const ISOLATED_WRITE_WAIT_MS = 30_000;
/** How long a silent agent may leave a copy in place before the drill is filed without it. */
export const ISOLATED_CLEANUP_WAIT_MS = 2 * 60_000;
/** How long a provider may take to delete its copy (RDS takes minutes) before the same. */
export const PROVIDER_CLEANUP_WAIT_MS = 30 * 60_000;
/** How long past maxDurationSeconds the drill record's deletion is tried before the copy goes anyway. */
export const REMOVE_GRACE_MS = 5 * 60_000;
/** How long the drill record may take to be answered before the drill fails. */
export const ISOLATED_VERIFY_WAIT_MS = 60_000;

/**
 * The drill record's name: configured, or `drill.` before the policy's record (a hostname: BIND
 * refuses A records with an underscore under its default check-names).
 */
export function drillRecordName(spec: FailoverPolicySpec): string {
  return spec.drills?.isolated.recordName ?? `drill.${spec.dns.name}`;
}

export function drillRecordRef(spec: FailoverPolicySpec, drill: Pick<DrillState, 'isolated'>): DnsRecordRef {
  return {
    zone: spec.dns.zone,
    name: drill.isolated?.recordName ?? drillRecordName(spec),
    type: spec.dns.type,
  };
}

/** The cluster_name the agent starts a drill copy with; the canary writes only there. */
export const drillCopyClusterName = (drillId: string) => `drill-${drillCopyName(drillId)}`;

/** Why no isolated drill can start now, or the standby to copy. */
export function isolatedDrillPlan(
  input: DecideInput,
  active: string,
  eligible: (f: ClusterFacts | undefined) => boolean,
): { target: ClusterFacts; isolated: IsolatedDrillState } | { problem: string } {
  const { spec, clusters, now } = input;
  const name = drillRecordName(spec);
  if (name === spec.dns.name || !`.${name}`.endsWith(`.${spec.dns.zone}`))
    return {
      problem: `the drill record ${name} must be in the zone ${spec.dns.zone} and differ from ${spec.dns.name}: fix spec.drills.isolated.recordName`,
    };
  const standbys = standbysOf(spec, active).map((n) => clusters[n]);
  const copier = (f: ClusterFacts | undefined) =>
    agentAlive(f?.agent, now) || f?.drillCopiesByProvider === true;
  const target = standbys.find((f) => eligible(f) && copier(f));
  const base = { recordName: name, port: spec.drills?.isolated.port ?? 5433 };
  if (target && !agentAlive(target.agent, now))
    return { target, isolated: { ...base, copiedBy: 'Provider' } };
  const value = target ? input.dnsTargets?.[target.name] : undefined;
  if (target && value) return { target, isolated: { ...base, value, copiedBy: 'Agent' } };
  if (target) return { problem: `${target.name} has no dnsTarget for the drill record to point at` };
  const seen = standbys
    .map((f) =>
      !f
        ? 'a standby is missing'
        : !eligible(f)
          ? `${f.name} is not a standby replicating within ${spec.drills?.abortIfLagSecondsAbove ?? 0} s`
          : `no database agent reports for ${f.name}, and its provider cannot make a drill copy (isolated drills need the agent beside a self-managed standby, docs/agent.md, or an RDS standby)`,
    )
    .join('; ');
  return { problem: `no standby to copy: ${seen || 'none'}` };
}

type Verdict = NonNullable<IsolatedDrillState['verdict']>;

/** What to do next in an isolated drill. */
export type IsolatedStep =
  | { kind: 'Wait'; why: string; requeueMs: number; drill?: DrillState }
  | { kind: 'Change'; why: string; drill: DrillState }
  | { kind: 'Act'; why: string; action: IsolatedDrillAction }
  | { kind: 'End'; why: string; verdict: Verdict; report: IsolatedDrillReport };

/** Ends what the drill does with the copy and the record: the verdict stands, cleanup follows. */
export function stopIsolated(drill: DrillState, verdict: Verdict): DrillState {
  const isolated = drill.isolated as IsolatedDrillState;
  if (drill.leg === 'Removing' || drill.leg === 'Cleaning')
    return isolated.verdict ? drill : { ...drill, isolated: { ...isolated, verdict } };
  return { ...drill, leg: 'Removing', isolated: { ...isolated, verdict } };
}

/** The copy the agent beside the drill's standby reports for this drill. */
function copyOf(input: DecideInput, drill: DrillState) {
  const copy = input.clusters[drill.to]?.agent?.drillCopy;
  return copy?.drillId === drill.id ? copy : undefined;
}

const secondsBetween = (from: string | undefined, to: Date) =>
  from === undefined
    ? undefined
    : Math.max(0, Math.round((to.getTime() - new Date(from).getTime()) / 10) / 100);

/** One isolated drill leg. `primaryDown`: the failover rules are about to act; the drill steps aside. */
export function continueIsolated(input: DecideInput, drill: DrillState, primaryDown: boolean): IsolatedStep {
  const { spec, clusters, now } = input;
  const isolated = drill.isolated as IsolatedDrillState;
  const target = clusters[drill.to];
  const change = (next: DrillState, why: string): IsolatedStep => ({ kind: 'Change', why, drill: next });
  const fail = (result: Verdict['result'], reason: string) =>
    change(stopIsolated(drill, { result, reason: reason.slice(0, 1024) }), `drill ${drill.id}: ${reason}`);
  const working = drill.leg === 'Copying' || drill.leg === 'Pointing' || drill.leg === 'Writing';
  if (working && primaryDown)
    return fail(
      'Interrupted',
      `the primary ${drill.from} is down: the drill steps aside for the failover rules`,
    );
  const byProvider = isolated.copiedBy === 'Provider';
  if (working && !byProvider && !agentAlive(target?.agent, now))
    return fail('Failed', `the agent beside ${drill.to} stopped reporting`);
  const copy = copyOf(input, drill);
  if (working && copy?.phase === 'Failed')
    return fail('Failed', `the agent could not make the copy: ${copy.message ?? 'no reason given'}`);
  if (!byProvider && (drill.leg === 'Pointing' || drill.leg === 'Writing') && copy?.phase !== 'Serving')
    return fail('Failed', `the copy of ${drill.to} stopped serving (${copy?.phase ?? 'no report'})`);
  const record = drillRecordRef(spec, drill);
  const copyStep = (want: DrillCopyAction['want'], why: string): IsolatedStep => ({
    kind: 'Act',
    why,
    action: { kind: 'DrillCopy', cluster: drill.to, drillId: drill.id, want },
  });
  const retryInMs = isolated.retryAt ? new Date(isolated.retryAt).getTime() - now.getTime() : 0;
  const act = (want: DrillRecordAction['want'], why: string): IsolatedStep =>
    // A throttled provider is not asked again before it said (its Retry-After, kept in status).
    retryInMs > 0
      ? {
          kind: 'Wait',
          why: `drill ${drill.id}: the DNS provider asked to be left alone until ${isolated.retryAt} (${isolated.problem ?? 'throttled'})`,
          requeueMs: retryInMs,
        }
      : {
          kind: 'Act',
          why,
          action: {
            kind: 'DrillRecord',
            want,
            record,
            value: isolated.value ?? '',
            ttl: spec.drills?.ttlSeconds ?? spec.dns.ttlSeconds,
            epoch: input.status.epoch ?? 0,
          },
        };
  switch (drill.leg) {
    case 'Copying': {
      if (byProvider)
        return copyStep(
          'Serving',
          `drill ${drill.id}: the provider copies ${drill.to} (${isolated.problem ?? 'asking'})`,
        );
      if (copy?.phase !== 'Serving')
        return {
          kind: 'Wait',
          why: `drill ${drill.id}: the agent beside ${drill.to} is copying it (${copy?.message ?? copy?.phase ?? 'not started'})`,
          requeueMs: 1000,
        };
      const freshness =
        copy.copiedAt && copy.newestHeartbeatAt
          ? Math.max(
              0,
              (new Date(copy.copiedAt).getTime() - new Date(copy.newestHeartbeatAt).getTime()) / 1000,
            )
          : undefined;
      return change(
        {
          ...drill,
          leg: 'Pointing',
          isolated: {
            ...isolated,
            copyReadyAt: timestamp(now),
            ...(copy.copySeconds !== undefined ? { copySeconds: copy.copySeconds } : {}),
            ...(copy.copyBytes !== undefined ? { copyBytes: copy.copyBytes } : {}),
            ...(copy.promotionSeconds !== undefined ? { promotionSeconds: copy.promotionSeconds } : {}),
            ...(freshness !== undefined ? { freshnessSeconds: Math.round(freshness * 1000) / 1000 } : {}),
          },
        },
        `drill ${drill.id}: the copy of ${drill.to} serves on port ${isolated.port}; pointing ${record.name} at it`,
      );
    }
    case 'Pointing': {
      const since = isolated.pointedAt ?? isolated.copyReadyAt;
      if (since && now.getTime() - new Date(since).getTime() > ISOLATED_VERIFY_WAIT_MS)
        return fail(
          'Failed',
          isolated.problem
            ? `the drill record ${record.name} could not be written within ${ISOLATED_VERIFY_WAIT_MS / 1000} s: ${isolated.problem}`
            : `the authoritative servers did not answer ${record.name} → ${isolated.value} within ${ISOLATED_VERIFY_WAIT_MS / 1000} s`,
        );
      return act('Present', `drill ${drill.id}: ${record.name} → ${isolated.value}`);
    }
    case 'Writing': {
      const canary = input.canary?.drillId === drill.id ? input.canary : undefined;
      // The writer writes only through the drill record: every run is on the copy.
      const acknowledged = (canary?.runs ?? []).reduce((n, r) => n + r.acknowledged, 0);
      const wanted = spec.drills?.isolated.minCanaryWrites ?? 20;
      const withWrites = { ...isolated, canaryWrites: acknowledged };
      if (acknowledged >= wanted)
        return change(
          stopIsolated(
            { ...drill, isolated: withWrites },
            { result: 'Succeeded', reason: isolatedFigures(withWrites, drill.to) },
          ),
          `drill ${drill.id}: the copy took ${acknowledged} canary rows through ${record.name}`,
        );
      const writing = now.getTime() - new Date(isolated.writingSince ?? now).getTime();
      if (writing > ISOLATED_WRITE_WAIT_MS)
        return change(
          stopIsolated(
            { ...drill, isolated: withWrites },
            {
              result: 'Failed',
              reason: `the copy acknowledged ${acknowledged} of ${wanted} canary rows through ${record.name} in ${ISOLATED_WRITE_WAIT_MS / 1000} s${canary?.lastError ? ` (last error: ${canary.lastError})` : canary ? '' : ' (no canary writer ran)'}`,
            },
          ),
          `drill ${drill.id}: the canary could not write to the copy`,
        );
      return {
        kind: 'Wait',
        why: `drill ${drill.id}: the canary writes to the copy through ${record.name} (${acknowledged} of ${wanted})`,
        requeueMs: 250,
        drill: acknowledged !== isolated.canaryWrites ? { ...drill, isolated: withWrites } : drill,
      };
    }
    case 'Removing': {
      // A record the provider keeps refusing to delete does not hold the copy's removal forever.
      const limit = seconds(spec.drills?.maxDurationSeconds ?? 1800) + REMOVE_GRACE_MS;
      if (now.getTime() - new Date(drill.startedAt).getTime() > limit)
        return change(
          {
            ...drill,
            leg: 'Cleaning',
            isolated: {
              ...isolated,
              problem:
                `not deleted within ${REMOVE_GRACE_MS / 60_000} min past maxDurationSeconds: ${isolated.problem ?? 'no answer'}`.slice(
                  0,
                  512,
                ),
              cleaningSince: timestamp(now),
            },
          },
          `drill ${drill.id}: giving up deleting ${record.name}; removing the copy`,
        );
      return act('Absent', `drill ${drill.id}: deleting ${record.name}`);
    }
    case 'Cleaning': {
      // The agent removes any copy of a drill that is no longer copying; Removed closes it. An
      // agent that made no copy for this drill has nothing to remove. A provider's copy is deleted
      // through its API.
      // An agent that made no copy for this drill: only a pass of it after the cleanup began says
      // none is being started (a cancel can land before its first report of the copy).
      const since = new Date(isolated.cleaningSince ?? now).getTime();
      const passedSince =
        agentAlive(target?.agent, now) && new Date(target?.agent?.reportedAt ?? 0).getTime() > since;
      const gone = byProvider
        ? isolated.copyRemovedAt !== undefined
        : copy
          ? copy.phase === 'Removed'
          : passedSince;
      const waitMs = byProvider ? PROVIDER_CLEANUP_WAIT_MS : ISOLATED_CLEANUP_WAIT_MS;
      if (!gone && now.getTime() - since < waitMs)
        return byProvider
          ? copyStep('Removed', `drill ${drill.id}: the provider deletes the copy of ${drill.to}`)
          : {
              kind: 'Wait',
              why: `drill ${drill.id}: waiting for the agent beside ${drill.to} to remove the copy`,
              requeueMs: 1000,
            };
      const verdict = isolated.verdict ?? { result: 'Failed', reason: 'the drill ended without a verdict' };
      const left = [
        ...(isolated.removedAt
          ? []
          : [
              `the drill record ${record.name} may be left (${isolated.problem ?? 'not deleted'}): delete it by hand`,
            ]),
        ...(gone
          ? []
          : byProvider
            ? [
                `the provider did not delete the copy of ${drill.to} within ${waitMs / 60_000} min (${isolated.problem ?? 'no answer'}): delete it by hand (its name ends in -drill-…)`,
              ]
            : [
                `the agent beside ${drill.to} did not report the copy removed within ${waitMs / 60_000} min: look for ${copy?.directory ?? 'a <data directory>.drill-* directory'} and a server on port ${isolated.port}`,
              ]),
      ];
      const reason = [verdict.reason, ...left].join('; ');
      return {
        kind: 'End',
        why: `drill ${drill.id} ${verdict.result.toLowerCase()}`,
        verdict: {
          result: left.length && verdict.result === 'Succeeded' ? 'Failed' : verdict.result,
          reason,
        },
        report: {
          cluster: drill.to,
          recordName: record.name,
          durationSeconds: secondsBetween(drill.startedAt, now) ?? 0,
          cleanedUp: left.length === 0,
          ...measuresOf(isolated),
        },
      };
    }
    default:
      return { kind: 'Wait', why: `drill ${drill.id}: unknown leg ${drill.leg}`, requeueMs: 1000 };
  }
}

/** Folds what act did with the drill record into the drill. */
export function afterDrillRecord(drill: DrillState, outcome: DrillRecordOutcome, now: Date): DrillState {
  const isolated = drill.isolated as IsolatedDrillState;
  const { problem: _p, retryAt: _r, ...settled } = isolated;
  if (outcome.kind === 'Absent')
    return {
      ...drill,
      leg: 'Cleaning',
      isolated: { ...settled, removedAt: timestamp(now), cleaningSince: timestamp(now) },
    };
  if (outcome.kind === 'Present') {
    const pointedAt = isolated.pointedAt ?? timestamp(now);
    if (!outcome.answered) return { ...drill, isolated: { ...settled, pointedAt } };
    return {
      ...drill,
      leg: 'Writing',
      isolated: {
        ...settled,
        pointedAt,
        verifiedAt: timestamp(now),
        writingSince: timestamp(now),
        // Answered in the call that wrote it: the time measured inside that call, not 0.
        dnsVerifySeconds: isolated.pointedAt
          ? (secondsBetween(pointedAt, now) ?? 0)
          : Math.round(outcome.answeredAfterMs ?? 0) / 1000,
      },
    };
  }
  const reason = `${outcome.reason}: ${outcome.message}`;
  if (outcome.retryable) {
    // At most a minute, as an operation's step waits (STEP_RETRY): a provider's reset an hour
    // away must not hold a drill past its legs' time limits, nor its copy's removal.
    const retryAt =
      outcome.retryAfterMs !== undefined && outcome.retryAfterMs > 0
        ? timestamp(new Date(now.getTime() + Math.min(outcome.retryAfterMs, STEP_RETRY.maxMs)))
        : undefined;
    return {
      ...drill,
      isolated: { ...settled, problem: reason.slice(0, 512), ...(retryAt ? { retryAt } : {}) },
    };
  }
  // The record cannot be deleted (someone else owns it now): the copy still goes.
  if (drill.leg === 'Removing')
    return {
      ...drill,
      leg: 'Cleaning',
      isolated: { ...isolated, problem: reason.slice(0, 512), cleaningSince: timestamp(now) },
    };
  return stopIsolated(drill, {
    result: 'Failed',
    reason: `the drill record could not be written: ${reason}`,
  });
}

function measuresOf(i: IsolatedDrillState) {
  return {
    ...(i.copySeconds !== undefined ? { copySeconds: i.copySeconds } : {}),
    ...(i.copyBytes !== undefined ? { copyBytes: i.copyBytes } : {}),
    ...(i.promotionSeconds !== undefined ? { promotionSeconds: i.promotionSeconds } : {}),
    ...(i.freshnessSeconds !== undefined ? { freshnessSeconds: i.freshnessSeconds } : {}),
    ...(i.dnsVerifySeconds !== undefined ? { dnsVerifySeconds: i.dnsVerifySeconds } : {}),
    ...(i.canaryWrites !== undefined ? { canaryWrites: i.canaryWrites } : {}),
  };
}

const fmt = (n: number | undefined, unit = ' s') =>
  n === undefined ? '?' : `${Math.round(n * 1000) / 1000}${unit}`;

function isolatedFigures(i: IsolatedDrillState, cluster: string): string {
  return `a copy of ${cluster} became a primary and took ${i.canaryWrites ?? 0} canary rows through ${i.recordName}: copied in ${fmt(i.copySeconds)} (${fmt(i.copyBytes === undefined ? undefined : i.copyBytes / 1048576, ' MiB')}), promoted in ${fmt(i.promotionSeconds)}, its data ${fmt(i.freshnessSeconds)} old, the record answered in ${fmt(i.dnsVerifySeconds)}`;
}

/** Folds a provider's step with its copy into the drill. */
export function afterDrillCopy(
  drill: DrillState,
  want: DrillCopyAction['want'],
  outcome: DrillCopyOutcome,
  now: Date,
): DrillState {
  const isolated = drill.isolated as IsolatedDrillState;
  const { problem: _p, retryAt: _r, ...settled } = isolated;
  if (outcome.phase === 'Error') {
    const reason = `${outcome.reason}: ${outcome.message}`.slice(0, 512);
    if (outcome.retryable || want === 'Removed')
      return { ...drill, isolated: { ...isolated, problem: reason } };
    return stopIsolated(drill, {
      result: 'Failed',
      reason: `the provider could not make the copy: ${reason}`,
    });
  }
  if (want === 'Removed')
    return outcome.phase === 'Removed'
      ? { ...drill, isolated: { ...settled, copyRemovedAt: timestamp(now) } }
      : { ...drill, isolated: { ...isolated, problem: (outcome.message ?? outcome.phase).slice(0, 512) } };
  if (outcome.phase === 'Failed')
    return stopIsolated(drill, {
      result: 'Failed',
      reason: `the provider could not make the copy: ${outcome.message ?? 'no reason given'}`.slice(0, 1024),
    });
  if (outcome.phase !== 'Serving' || !outcome.endpoint) {
    const note = outcome.message ?? outcome.phase;
    return note === isolated.problem
      ? drill
      : { ...drill, isolated: { ...isolated, problem: note.slice(0, 512) } };
  }
  const copySeconds =
    outcome.createdAt && outcome.promotedAt
      ? secondsBetween(outcome.createdAt, new Date(outcome.promotedAt))
      : undefined;
  return {
    ...drill,
    leg: 'Pointing',
    isolated: {
      ...settled,
      value: outcome.endpoint.host,
      port: outcome.endpoint.port,
      copyReadyAt: timestamp(now),
      ...(copySeconds !== undefined ? { copySeconds } : {}),
    },
  };
}
