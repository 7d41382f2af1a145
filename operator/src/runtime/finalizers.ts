/**
 * The finalizer helper, with the four cases kube-rs spells out (has finalizer × is deleting):
 * add the finalizer before any side effect; on deletion run cleanup, then remove it. Cleanup must
 * tolerate apply never having run (the object may be deleted before its first reconcile).
 */
import type { KubeClient, KubeObject, ResourceType } from './kube-client.ts';

export type FinalizerStep<R> =
  | { kind: 'apply'; result: R }
  | { kind: 'cleanedUp' }
  | { kind: 'added' }
  | { kind: 'gone' };

export async function withFinalizer<T extends KubeObject, R>(
  client: KubeClient,
  type: ResourceType,
  object: T,
  finalizer: string,
  handlers: { apply: (object: T) => Promise<R>; cleanup: (object: T) => Promise<void> },
): Promise<FinalizerStep<R>> {
  const { namespace, name, finalizers = [], deletionTimestamp, resourceVersion } = object.metadata;
  const has = finalizers.includes(finalizer);
  if (deletionTimestamp) {
    if (!has) return { kind: 'gone' };
    await handlers.cleanup(object);
    // Conditional on resourceVersion: if someone changed the list meanwhile, retry with a fresh read.
    await client.mergePatch(type, namespace, name, {
      metadata: { resourceVersion, finalizers: finalizers.filter((f) => f !== finalizer) },
    });
    return { kind: 'cleanedUp' };
  }
  if (!has) {
    await client.mergePatch(type, namespace, name, {
      metadata: { resourceVersion, finalizers: [...finalizers, finalizer] },
    });
    return { kind: 'added' };
  }
  return { kind: 'apply', result: await handlers.apply(object) };
}
