/**
 * The canary writers of the policies this operator leads: per policy, one while a drill runs and,
 * with spec.canary.mode Always, one that runs continuously so a real failover or switchover is
 * measured from the client's side too. The two are separate writers with separate rows: an
 * isolated drill's writes into its copy, never production, while the continuous one must go on
 * writing production; and a drill is measured from a writer that started with it.
 *
 * The writer itself (providers/canary) writes in the background; the reconciler only makes sure
 * the right ones run and reads what they saw, so no reconcile ever waits on a canary write. What a
 * writer saw lives in memory: after an operator restart the new writer starts from nothing, and a
 * move it did not see both ends of is measured by the operator instead (drill.ts,
 * operation-canary.ts).
 */
import type {
  CanarySnapshot,
  CanaryTarget,
  CanaryWriter,
  CanaryWriterFactory,
} from '../../providers/canary/port.ts';

/** What a writer is for: a drill's, or the continuous one of spec.canary.mode Always. */
export type CanaryPurpose = 'Drill' | 'Continuous';

interface Running {
  writer: CanaryWriter;
  /** What the writer was started for (a drill id, the continuous writer's settings): another one replaces it. */
  token: string;
}

export class CanaryWriters {
  private readonly factory: CanaryWriterFactory;
  /** policy key → purpose → writer */
  private readonly running = new Map<string, Map<CanaryPurpose, Running>>();
  /** Writers told to stop, finishing their last write and closing their session. */
  private readonly stopping = new Set<Promise<unknown>>();
  /** Why a writer last failed to start, by policy and purpose: a cause is told once. */
  private readonly failures = new Map<string, string>();

  constructor(factory: CanaryWriterFactory) {
    this.factory = factory;
  }

  /** What the policy's writer for `purpose` saw, if one runs. */
  snapshot(policyKey: string, purpose: CanaryPurpose = 'Drill'): CanarySnapshot | undefined {
    return this.running.get(policyKey)?.get(purpose)?.writer.snapshot();
  }

  /**
   * Starts the policy's writer for `purpose` unless one started for `token` (a drill id, or the
   * continuous writer's settings) runs; one started for another token is stopped first.
   */
  async ensure(
    policyKey: string,
    target: () => Promise<CanaryTarget>,
    token: string,
    purpose: CanaryPurpose = 'Drill',
  ): Promise<void> {
    const current = this.running.get(policyKey)?.get(purpose);
    if (current?.token === token) return;
    if (current) this.stop(policyKey, purpose);
    const writer = this.factory(await target());
    this.failures.delete(`${policyKey}|${purpose}`);
    const writers = this.running.get(policyKey) ?? new Map<CanaryPurpose, Running>();
    writers.set(purpose, { writer, token });
    this.running.set(policyKey, writers);
  }

  /** Records why a writer could not start; true when the cause is new (worth a log line). */
  failedAnew(policyKey: string, purpose: CanaryPurpose, message: string): boolean {
    const key = `${policyKey}|${purpose}`;
    if (this.failures.get(key) === message) return false;
    this.failures.set(key, message);
    return true;
  }

  /**
   * Stops the policy's writer for `purpose`, or all its writers without one, in the background: a
   * reconcile never waits for a last write.
   */
  stop(policyKey: string, purpose?: CanaryPurpose): void {
    const writers = this.running.get(policyKey);
    if (!writers) return;
    for (const [p, { writer }] of [...writers]) {
      if (purpose !== undefined && p !== purpose) continue;
      writers.delete(p);
      const done = writer.stop().catch(() => undefined);
      this.stopping.add(done);
      void done.finally(() => this.stopping.delete(done));
    }
    if (writers.size === 0) this.running.delete(policyKey);
    for (const p of purpose ? [purpose] : (['Drill', 'Continuous'] as const))
      this.failures.delete(`${policyKey}|${p}`);
  }

  /** Resolves once every writer stopped so far has closed its session (its last write done). */
  async stopped(): Promise<void> {
    await Promise.all([...this.stopping]);
  }

  /** Stops every writer and waits until each has closed its session (the operator shutting down). */
  async stopAll(): Promise<void> {
    for (const key of [...this.running.keys()]) this.stop(key);
    await Promise.all([...this.stopping]);
  }
}
