/**
 * The canary writers of the policies this operator leads, one per policy while a drill runs. The
 * writer itself (providers/canary) writes in the background; the reconciler only makes sure the
 * right one runs and reads what it saw, so no reconcile ever waits on a canary write.
 *
 * What a writer saw lives in memory: after an operator restart the new writer starts from
 * nothing, and a leg it did not see both ends of is measured by the operator instead (drill.ts).
 */
import type {
  CanarySnapshot,
  CanaryTarget,
  CanaryWriter,
  CanaryWriterFactory,
} from '../../providers/canary/port.ts';

export class CanaryWriters {
  private readonly factory: CanaryWriterFactory;
  private readonly running = new Map<string, CanaryWriter>();
  /** Writers told to stop, finishing their last write and closing their session. */
  private readonly stopping = new Set<Promise<unknown>>();

  constructor(factory: CanaryWriterFactory) {
    this.factory = factory;
  }

  /** What the policy's writer saw, if one runs. */
  snapshot(policyKey: string): CanarySnapshot | undefined {
    return this.running.get(policyKey)?.snapshot();
  }

  /** Starts the writer for `target.drillId` unless it runs; one of another drill is stopped first. */
  async ensure(policyKey: string, target: () => Promise<CanaryTarget>, drillId: string): Promise<void> {
    const current = this.running.get(policyKey);
    if (current?.snapshot().drillId === drillId) return;
    if (current) this.stop(policyKey);
    this.running.set(policyKey, this.factory(await target()));
  }

  /** Stops the policy's writer in the background: a reconcile never waits for its last write. */
  stop(policyKey: string): void {
    const writer = this.running.get(policyKey);
    if (!writer) return;
    this.running.delete(policyKey);
    const done = writer.stop().catch(() => undefined);
    this.stopping.add(done);
    void done.finally(() => this.stopping.delete(done));
  }

  /** Stops every writer and waits until each has closed its session (the operator shutting down). */
  async stopAll(): Promise<void> {
    for (const key of [...this.running.keys()]) this.stop(key);
    await Promise.all([...this.stopping]);
  }
}
