/**
 * The FailoverPolicy reconciler: validates the policy, resolves its clusters and initialises the
 * state that later promotions build on (active primary, epoch 0). The failover state machine
 * itself (observe, decide, act) arrives with the failover work.
 */
import {
  type FailoverPolicyStatus,
  failoverPolicySpec,
  failoverPolicyStatus,
} from '../../api/v1alpha1/index.ts';
import { type ConditionInput, changedConditions, setCondition } from '../../runtime/conditions.ts';
import { objectKey } from '../../runtime/informer.ts';
import { done, type ReconcileResult } from '../../runtime/reconcile.ts';
import type { OperatorContext } from '../context.ts';
import { readSpec, readStatus } from '../read-object.ts';
import { failoverPolicyType } from '../resources.ts';
import { writeStatus } from '../status-writer.ts';

export function reconcileFailoverPolicy(ctx: OperatorContext): (key: string) => Promise<ReconcileResult> {
  return async (key) => {
    const object = ctx.policies.get(key);
    if (!object) return done();
    const now = ctx.clock.now();
    const generation = object.metadata.generation;
    const { status: previous, problem } = readStatus(failoverPolicyStatus, object);
    if (problem) {
      await ctx.events.record(object, {
        type: 'Warning',
        reason: 'StatusReset',
        action: 'ReadStatus',
        note: `status was unreadable and is rebuilt: ${problem}`,
      });
    }
    const spec = readSpec(failoverPolicySpec, object);
    const conditions: ConditionInput[] = [];
    let resolved = false;
    if (!spec.ok) {
      conditions.push({ type: 'SpecValid', status: 'False', reason: 'InvalidSpec', message: spec.message });
    } else {
      conditions.push({ type: 'SpecValid', status: 'True', reason: 'Valid', message: 'spec is valid' });
      const ns = object.metadata.namespace;
      const missing = [spec.spec.primary, ...spec.spec.standbys].filter(
        (name) => !ctx.clusters.get(objectKey({ metadata: { name, namespace: ns } })),
      );
      resolved = missing.length === 0;
      conditions.push(
        resolved
          ? {
              type: 'ClustersResolved',
              status: 'True',
              reason: 'AllFound',
              message: 'every ReplicaCluster exists',
            }
          : {
              type: 'ClustersResolved',
              status: 'False',
              reason: 'ClusterNotFound',
              message: `ReplicaCluster ${missing.join(', ')} not found in namespace ${ns}`,
            },
      );
    }
    let next: FailoverPolicyStatus = {
      ...previous,
      observedGeneration: generation,
      // The starting point of the state machine: the spec's primary at epoch 0, written once.
      activePrimary: previous.activePrimary ?? (spec.ok ? spec.spec.primary : undefined),
      epoch: previous.epoch ?? 0,
      phase: previous.currentOperation ? previous.phase : 'Pending',
    };
    for (const c of conditions)
      next = { ...next, conditions: setCondition(next.conditions, c, generation, now) };
    for (const c of changedConditions(previous.conditions, next.conditions ?? [])) {
      if (c.status === 'False') {
        await ctx.events.record(object, {
          type: 'Warning',
          reason: c.reason,
          action: 'Validate',
          note: c.message,
        });
      }
    }
    await writeStatus(
      ctx.client,
      failoverPolicyType,
      object,
      object.status as FailoverPolicyStatus | undefined,
      next,
      ctx.policies,
    );
    return done();
  };
}
