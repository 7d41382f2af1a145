/**
 * act: carries out one step of the plan through the ports, and returns the status to write next.
 * At most one side effect per call; the next reconcile picks up the next step. Every step checks
 * before it acts (the adapters are idempotent), because a step may run again after a crash between
 * its side effect and the status write that records it.
 */
import type { FailoverPolicySpec, FailoverPolicyStatus, Operation } from '../../api/v1alpha1/index.ts';
import { compareLsn } from '../../providers/database/lsn.ts';
import type { DatabaseObservation, DatabaseProvider, FencingMode } from '../../providers/database/port.ts';
import type { DnsProvider, DnsRecordRef, DnsVerifier } from '../../providers/dns/port.ts';
import type { DnsServerAddress } from '../../providers/dns/verifier.ts';
import { canonicalValue } from '../../providers/dns/verifier.ts';
import { isProviderError } from '../../providers/errors.ts';
import type { EventInput } from '../../runtime/events.ts';
import { timestamp } from '../../runtime/time.ts';
import type { Action } from './decide.ts';
import { advance, failedAttempt, finish, hasTouchedDatabases, isTerminal, withStep } from './operation.ts';

/** How long a switchover waits for the standby to replay what the fenced primary wrote. */
export const CATCH_UP_TIMEOUT_MS = 120_000;
/** Failed attempts to fence the old primary after which a switchover rolls back. */
export const SWITCHOVER_FENCE_ATTEMPTS = 3;
/** How long to keep asking the authoritative servers before completing with a warning. */
export const DNS_VERIFY_TIMEOUT_MS = 300_000;
const POLL_MS = 500;

/** The ports act works through; the reconciler builds them from the context. */
export interface StepPorts {
  database(cluster: string): Promise<DatabaseProvider>;
  dns(): Promise<DnsProvider>;
  verifier: DnsVerifier;
  verifyServers(): Promise<DnsServerAddress[]>;
  /** The value the record points at when `cluster` is primary. */
  dnsTarget(cluster: string): string | undefined;
  /** Owner id in the ownership TXT record. */
  owner: string;
}

export interface ActResult {
  status: FailoverPolicyStatus;
  /** Look again this soon (a wait inside a step, or the next step right away). */
  requeueMs?: number;
  events: EventInput[];
  /** The step failed: its attempt is recorded in `status`; the reconcile should retry with backoff. */
  error?: unknown;
}

const ev = (type: EventInput['type'], reason: string, action: string, note: string): EventInput => ({
  type,
  reason,
  action,
  note,
});

export function recordRef(spec: FailoverPolicySpec): DnsRecordRef {
  return { zone: spec.dns.zone, name: spec.dns.name, type: spec.dns.type };
}

export async function act(
  ports: StepPorts,
  spec: FailoverPolicySpec,
  status: FailoverPolicyStatus,
  action: Action,
  now: Date,
): Promise<ActResult> {
  switch (action.kind) {
    case 'Observe':
      return { status, events: [] };
    case 'StartOperation': {
      const op = action.operation;
      // Write-ahead: the intent goes to status before anything is touched.
      return {
        status: {
          ...status,
          currentOperation: op,
          ...(op.requestId
            ? {
                lastHandledRequestId: op.requestId,
                lastRequest: {
                  id: op.requestId,
                  outcome: 'Accepted',
                  reason: 'Accepted',
                  message: `${op.kind} to ${op.to} started`,
                  time: timestamp(now),
                },
              }
            : {}),
        },
        requeueMs: 0,
        events: [
          ev(
            op.trigger === 'Automatic' ? 'Warning' : 'Normal',
            `${op.kind}Started`,
            op.kind,
            `${op.kind} of ${op.from} to ${op.to} at epoch ${op.epoch}: ${op.reason ?? op.trigger}`,
          ),
        ],
      };
    }
    case 'RejectRequest':
      return {
        status: {
          ...status,
          lastHandledRequestId: action.requestId,
          lastRequest: {
            id: action.requestId,
            outcome: 'Rejected',
            reason: action.reason,
            message: action.message,
            time: timestamp(now),
          },
        },
        events: [
          ev('Warning', 'PromotionRejected', 'Promote', `request ${action.requestId}: ${action.message}`),
        ],
      };
    case 'FenceStrayPrimary': {
      const db = await ports.database(action.cluster);
      const { detail } = await db.fence({
        operationId: `stray-${action.cluster}-e${action.epoch}`,
        epoch: action.epoch,
        mode: 'ReadOnly',
      });
      return {
        status,
        requeueMs: 0,
        events: [
          ev(
            'Warning',
            'StrayPrimaryFenced',
            'Fence',
            `${action.cluster} accepted writes but is not the primary (${status.activePrimary}); fenced: ${detail}`,
          ),
        ],
      };
    }
    case 'RunStep':
      return runStep(ports, spec, status, action.operation, now);
  }
}

async function runStep(
  ports: StepPorts,
  spec: FailoverPolicySpec,
  status: FailoverPolicyStatus,
  op: Operation,
  now: Date,
): Promise<ActResult> {
  // decide may have moved the operation (back to Fencing, or to Aborted): record that first.
  const recorded = status.currentOperation;
  if (!recorded || recorded.id !== op.id || recorded.step !== op.step) {
    return { status: { ...status, currentOperation: op }, requeueMs: 0, events: [] };
  }
  if (isTerminal(op.step)) return complete(status, op, now);
  // A failed step waits out its backoff, however often the policy is reconciled meanwhile.
  const wait = op.retryAfter ? new Date(op.retryAfter).getTime() - now.getTime() : 0;
  if (wait > 0) return { status, requeueMs: wait, events: [] };
  try {
    return await stepAction(ports, spec, status, op, now);
  } catch (err) {
    const message = isProviderError(err) ? `${err.reason}: ${err.message}` : (err as Error).message;
    // Before any database was touched, a permanent refusal ends the operation cleanly.
    if (!hasTouchedDatabases(op.step) && isProviderError(err) && !err.retryable) {
      return {
        status: { ...status, currentOperation: withStep(op, 'Aborted', now, message) },
        requeueMs: 0,
        events: [],
      };
    }
    return {
      status: { ...status, currentOperation: failedAttempt(op, message, now) },
      events: [],
      error: err,
    };
  }
}

function complete(status: FailoverPolicyStatus, op: Operation, now: Date): ActResult {
  const next = finish(status, op, now);
  const report = next.history?.[0];
  const succeeded = op.step === 'Completed';
  const figures =
    report && succeeded
      ? ` RTO ${report.rtoSeconds ?? '?'} s, expected loss ${report.rpoSeconds ?? 0} s / ${report.rpoBytes ?? 0} bytes, DNS verified in ${report.dnsVerifySeconds ?? '?'} s`
      : '';
  return {
    status: {
      ...next,
      ...(op.requestId
        ? {
            lastRequest: {
              id: op.requestId,
              outcome: succeeded ? 'Succeeded' : 'Aborted',
              reason: succeeded ? 'Completed' : 'Aborted',
              message: op.reason ?? '',
              time: timestamp(now),
            },
          }
        : {}),
    },
    events: [
      ev(
        succeeded ? 'Normal' : 'Warning',
        succeeded ? `${op.kind}Completed` : `${op.kind}Aborted`,
        op.kind,
        `${op.kind} ${op.from} → ${op.to} at epoch ${op.epoch} ${succeeded ? 'completed' : `aborted: ${op.reason ?? ''}`}.${figures}`,
      ),
    ],
  };
}

async function stepAction(
  ports: StepPorts,
  spec: FailoverPolicySpec,
  status: FailoverPolicyStatus,
  op: Operation,
  now: Date,
): Promise<ActResult> {
  const next = (
    learned: Partial<Operation> = {},
    extra: Partial<FailoverPolicyStatus> = {},
    events: EventInput[] = [],
  ): ActResult => ({
    status: { ...status, ...extra, currentOperation: advance(op, now, learned) },
    requeueMs: 0,
    events,
  });
  const wait = (lastError?: string): ActResult => ({
    status: { ...status, currentOperation: lastError ? { ...op, lastError } : op },
    requeueMs: POLL_MS,
    events: [],
  });
  const elapsed = now.getTime() - new Date(op.stepStartedAt).getTime();

  switch (op.step) {
    case 'Detected':
      return next();

    case 'Fencing': {
      // A switchover fences read-only only: a catalog change (Shutdown) would replicate to the
      // standby that is about to become the primary.
      const mode: FencingMode = op.kind === 'Switchover' ? 'ReadOnly' : spec.promotion.fencing;
      const old = await ports.database(op.from);
      try {
        const { detail } = await old.fence({ operationId: op.id, epoch: op.epoch, mode });
        let fencedLsn: string | undefined;
        if (op.kind === 'Switchover') {
          const seen = await old.observe();
          if (!seen.reachable || !seen.lsn) throw new Error(`${op.from} could not be observed after fencing`);
          fencedLsn = seen.lsn;
        }
        return next({ fenceDetail: detail.slice(0, 1024), ...(fencedLsn ? { fencedLsn } : {}) }, {}, [
          ev('Normal', 'PrimaryFenced', 'Fence', `${op.from} fenced (${mode}): ${detail}`),
        ]);
      } catch (err) {
        // A primary that is gone cannot be fenced; for a failover that is the expected case. It is
        // marked instead by the new epoch: in the DNS TXT record and in the new primary's heartbeat.
        if (
          op.kind === 'Failover' &&
          isProviderError(err) &&
          (err.reason === 'Unreachable' || err.reason === 'Timeout')
        ) {
          const detail = `${op.from} unreachable (${err.reason}); marked by epoch ${op.epoch} in DNS and the new primary heartbeat`;
          return next({ fenceDetail: detail }, {}, [ev('Warning', 'PrimaryNotFenced', 'Fence', detail)]);
        }
        // A switchover needs the old primary read-only first. A role or a managed service that
        // refuses that (RDS, Aurora and DigitalOcean refuse ALTER SYSTEM) would fail here for ever:
        // after a few attempts the switchover rolls back instead (unfencing is a no-op where
        // nothing was fenced), and the person can fail over, or fix the role and ask again.
        if (op.kind === 'Switchover' && (op.attempts ?? 0) + 1 >= SWITCHOVER_FENCE_ATTEMPTS) {
          const why = `could not fence ${op.from} read-only (${SWITCHOVER_FENCE_ATTEMPTS} attempts): ${(err as Error).message}`;
          return {
            status: { ...status, currentOperation: withStep(op, 'RollingBack', now, why.slice(0, 1024)) },
            requeueMs: 0,
            events: [ev('Warning', 'FencingFailed', 'Fence', why)],
          };
        }
        throw err;
      }
    }

    case 'CatchingUp': {
      const target = await ports.database(op.to);
      const seen: DatabaseObservation = await target.observe();
      if (seen.reachable && seen.lsn && op.fencedLsn && compareLsn(seen.lsn, op.fencedLsn) >= 0) {
        return next({ estimatedLossBytes: 0, estimatedLossSeconds: 0 });
      }
      if (elapsed > CATCH_UP_TIMEOUT_MS) {
        return {
          status: {
            ...status,
            currentOperation: withStep(
              op,
              'RollingBack',
              now,
              `${op.to} did not replay up to ${op.fencedLsn} within ${CATCH_UP_TIMEOUT_MS / 1000} s`,
            ),
          },
          requeueMs: 0,
          events: [],
        };
      }
      return wait(`${op.to} replayed ${seen.lsn ?? '?'} of ${op.fencedLsn}`);
    }

    case 'Promoting': {
      const target = await ports.database(op.to);
      const { alreadyPrimary } = await target.promote({ operationId: op.id, epoch: op.epoch, kind: op.kind });
      // After an interrupted promotion the heartbeat with the new epoch may still be owed.
      await target.writeHeartbeat(op.epoch, now);
      // A drill is planned: it must not start the cool-down that would hold back a real failover.
      const cooldown = op.trigger === 'Drill' ? {} : { lastFailoverTime: timestamp(now) };
      return next({}, { activePrimary: op.to, epoch: op.epoch, ...cooldown }, [
        ev(
          'Normal',
          'StandbyPromoted',
          'Promote',
          `${op.to} is the primary at epoch ${op.epoch}${alreadyPrimary ? ' (it already was: an interrupted step resumed)' : ''}`,
        ),
      ]);
    }

    case 'RepointingDns': {
      const value = ports.dnsTarget(op.to);
      if (!value) throw new Error(`ReplicaCluster ${op.to} has no dnsTarget`);
      const dns = await ports.dns();
      const { changed } = await dns.apply({
        record: recordRef(spec),
        expected: ports.dnsTarget(op.from),
        value,
        ttl: spec.dns.ttlSeconds,
        owner: ports.owner,
        epoch: op.epoch,
      });
      return next({ dnsChangedAt: op.dnsChangedAt ?? timestamp(now) }, {}, [
        ev(
          'Normal',
          'DnsRepointed',
          'UpdateDns',
          `${spec.dns.name} ${changed ? 'now points' : 'already pointed'} at ${value} (epoch ${op.epoch})`,
        ),
      ]);
    }

    case 'VerifyingDns': {
      const value = ports.dnsTarget(op.to) ?? '';
      const servers = await ports.verifyServers();
      const answers = await ports.verifier.query(recordRef(spec), servers);
      const want = canonicalValue(spec.dns.type, value);
      const agreeing = answers.filter(
        (a) => a.values?.length === 1 && canonicalValue(spec.dns.type, a.values[0] ?? '') === want,
      );
      if (servers.length > 0 && agreeing.length === servers.length) return next();
      const summary = answers
        .map((a) => `${a.server}: ${a.error ?? (a.values?.join(',') || 'no answer')}`)
        .join('; ');
      if (elapsed > DNS_VERIFY_TIMEOUT_MS) {
        return next({ reason: `DNS not verified within ${DNS_VERIFY_TIMEOUT_MS / 1000} s: ${summary}` }, {}, [
          ev('Warning', 'DnsNotVerified', 'VerifyDns', `authoritative servers still disagree: ${summary}`),
        ]);
      }
      return wait(`waiting for ${servers.length} authoritative server(s) to answer ${value}: ${summary}`);
    }

    case 'RollingBack': {
      const old = await ports.database(op.from);
      if (!old.unfence) {
        throw new Error(
          `${op.from} cannot be unfenced by this provider; make it writable by hand, then the operation ends`,
        );
      }
      const { detail } = await old.unfence();
      return next({}, {}, [
        ev('Warning', 'SwitchoverRolledBack', 'Unfence', `${op.from} takes writes again: ${detail}`),
      ]);
    }

    default:
      return { status, events: [] };
  }
}
