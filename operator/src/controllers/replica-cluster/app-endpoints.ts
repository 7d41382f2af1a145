/**
 * The last check of each cluster's application endpoints, kept in memory beside the database
 * probes (the operator and each observer keep their own). Every endpoint of a cluster is checked
 * at once, bounded by the probe's deadline, so a hung application never holds a probe up.
 */
import type { AppEndpointCheck, AppEndpointChecker } from '../../providers/app/port.ts';
import type { Clock } from '../../runtime/clock.ts';

export interface AppEndpointsRecord {
  at: Date;
  checks: AppEndpointCheck[];
}

/** The health of a cluster's application as decisions read it. */
export type AppHealth = 'Healthy' | 'Unhealthy';

export function appHealth(record: AppEndpointsRecord | undefined): AppHealth | undefined {
  if (!record || record.checks.length === 0) return undefined;
  return record.checks.every((c) => c.healthy) ? 'Healthy' : 'Unhealthy';
}

export class AppEndpointChecks {
  private readonly records = new Map<string, AppEndpointsRecord>();
  /** Checks under way: a reconcile that comes meanwhile shares the one in flight. */
  private readonly running = new Map<
    string,
    { of: string; check: Promise<AppEndpointsRecord | undefined> }
  >();
  private readonly checker: AppEndpointChecker;
  private readonly clock: Clock;

  constructor(checker: AppEndpointChecker, clock: Clock) {
    this.checker = checker;
    this.clock = clock;
  }

  latest(key: string): AppEndpointsRecord | undefined {
    return this.records.get(key);
  }

  /**
   * Checks every endpoint of one cluster, or shares the check of it already under way; none
   * configured forgets what was there.
   */
  check(
    key: string,
    endpoints: { name: string; url: string }[] | undefined,
    timeoutMs: number,
  ): Promise<AppEndpointsRecord | undefined> {
    if (!endpoints?.length) {
      this.records.delete(key);
      this.running.delete(key);
      return Promise.resolve(undefined);
    }
    // Shared only when it checks the same endpoints the same way.
    const of = JSON.stringify([endpoints, timeoutMs]);
    const under = this.running.get(key);
    if (under?.of === of) return under.check;
    const at = this.clock.now();
    const check: Promise<AppEndpointsRecord | undefined> = Promise.all(
      endpoints.map((e) => this.checker.check(e, timeoutMs)),
    )
      .then((checks) => {
        const record = { at, checks };
        if (this.running.get(key)?.check === check) this.records.set(key, record);
        return record;
      })
      .finally(() => {
        if (this.running.get(key)?.check === check) this.running.delete(key);
      });
    this.running.set(key, { of, check });
    return check;
  }

  forget(key: string): void {
    this.records.delete(key);
    this.running.delete(key);
  }
}

/** How long an endpoint may take: within the probe interval, and never more than five seconds. */
export function appCheckTimeoutMs(intervalSeconds: number): number {
  return Math.min(5_000, Math.max(200, intervalSeconds * 800));
}
