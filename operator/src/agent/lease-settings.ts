/**
 * The primary Lease's timings, as both ends use them: the agent beside the primary fences its
 * database at `lastConfirmed + duration - margin` by its monotonic clock, and the operator
 * promotes no earlier than `lastSeen + duration + margin` by its own; each measures from a moment
 * on its own side of the renewal (the agent from before it sent it, the operator from after it
 * saw it), so no clocks need to agree, and the two margins absorb drift in their rates.
 */
import type { FailoverPolicySpec } from '../api/v1alpha1/index.ts';

export interface LeaseSettings {
  enabled: boolean;
  durationMs: number;
  renewMs: number;
  marginMs: number;
}

/** The Lease object of a policy (coordination.k8s.io/v1, in the policy's namespace). */
export const primaryLeaseName = (policy: string) => `${policy}-primary`;

/** `cluster@epoch`: a holder is a primary at one epoch, never the cluster alone. */
export const leaseHolder = (cluster: string, epoch: number) => `${cluster}@${epoch}`;

export function parseLeaseHolder(holder: string | undefined): { cluster: string; epoch: number } | undefined {
  const m = /^(.+)@(\d+)$/.exec(holder ?? '');
  return m?.[1] && m[2] ? { cluster: m[1], epoch: Number(m[2]) } : undefined;
}

/**
 * Explicit values as given (the CRD's rules checked them); the rest derived from the detection
 * window so that, by default, waiting for the Lease fits inside detection and adds nothing.
 */
export function leaseSettings(spec: FailoverPolicySpec): LeaseSettings {
  const lease = spec.primaryLease;
  const { probeIntervalSeconds: interval, failureThreshold: threshold } = spec.detection;
  // Standbys stop vouching at the observers' first failed probes, about (threshold − 1) intervals
  // before the verdict: a Lease plus margin that fits there costs a failover nothing. Where that
  // leaves under 3 s (1 s probes), the whole window, so renewals need not be too frequent.
  const earlyMs = interval * Math.max(1, threshold - 1) * 1000;
  const baseMs = earlyMs >= 3_000 ? earlyMs : interval * threshold * 1000;
  const renewMs = ms(lease.renewIntervalSeconds) ?? Math.min(2_000, Math.max(200, baseMs / 6));
  const marginMs = Math.max(ms(lease.safetyMarginSeconds) ?? renewMs, renewMs);
  const durationMs = Math.max(ms(lease.durationSeconds) ?? baseMs - marginMs, 2 * renewMs + marginMs);
  return { enabled: lease.enabled, durationMs, renewMs, marginMs };
}

const ms = (seconds: number | undefined) => (seconds === undefined ? undefined : Math.round(seconds * 1000));
