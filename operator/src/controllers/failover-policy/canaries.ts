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
    if (current) await this.stop(policyKey);
    this.running.set(policyKey, this.factory(await target()));
  }

  async stop(policyKey: string): Promise<void> {
    const writer = this.running.get(policyKey);
    this.running.delete(policyKey);
    await writer?.stop();
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.running.keys()].map((k) => this.stop(k)));
  }
}
