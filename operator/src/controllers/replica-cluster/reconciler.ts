/**
 * The ReplicaCluster reconciler: validates what it reads and records what it observed.
 * (Probing the database arrives with the replication-health work; today it reports spec validity.)
 */
import {
  type ReplicaClusterStatus,
  replicaClusterSpec,
  replicaClusterStatus,
} from '../../api/v1alpha1/index.ts';
import { changedConditions, setCondition } from '../../runtime/conditions.ts';
import { done, type ReconcileResult } from '../../runtime/reconcile.ts';
import type { OperatorContext } from '../context.ts';
import { readSpec, readStatus } from '../read-object.ts';
import { replicaClusterType } from '../resources.ts';
import { writeStatus } from '../status-writer.ts';

export function reconcileReplicaCluster(ctx: OperatorContext): (key: string) => Promise<ReconcileResult> {
  return async (key) => {
    const object = ctx.clusters.get(key);
    if (!object) return done();
    const now = ctx.clock.now();
    const generation = object.metadata.generation;
    const { status: previous, problem } = readStatus(replicaClusterStatus, object);
    if (problem) {
      await ctx.events.record(object, {
        type: 'Warning',
        reason: 'StatusReset',
        action: 'ReadStatus',
        note: `status was unreadable and is rebuilt: ${problem}`,
      });
    }
    const spec = readSpec(replicaClusterSpec, object);
    const status: ReplicaClusterStatus = {
      ...previous,
      observedGeneration: generation,
      conditions: setCondition(
        previous.conditions,
        spec.ok
          ? { type: 'SpecValid', status: 'True', reason: 'Valid', message: 'spec is valid' }
          : { type: 'SpecValid', status: 'False', reason: 'InvalidSpec', message: spec.message },
        generation,
        now,
      ),
    };
    for (const c of changedConditions(previous.conditions, status.conditions ?? [])) {
      if (c.type === 'SpecValid' && c.status === 'False') {
        await ctx.events.record(object, {
          type: 'Warning',
          reason: 'InvalidSpec',
          action: 'Validate',
          note: c.message,
        });
      }
    }
    await writeStatus(
      ctx.client,
      replicaClusterType,
      object,
      object.status as ReplicaClusterStatus | undefined,
      status,
    );
    return done();
  };
}
