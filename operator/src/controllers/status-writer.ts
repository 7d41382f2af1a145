/**
 * Writes status through the status subresource with a JSON merge patch that carries the
 * resourceVersion it was computed from: if the object changed since (another writer, or our own
 * cache lagging behind our last write), the API server refuses with 409 and the reconcile runs
 * again on fresh data. Nothing is written when nothing changed, which keeps an idle operator idle.
 */
import { isDeepStrictEqual } from 'node:util';
import type { Informer } from '../runtime/informer.ts';
import type { KubeClient, KubeObject, ResourceType } from '../runtime/kube-client.ts';

export async function writeStatus<S extends object>(
  client: KubeClient,
  type: ResourceType,
  object: KubeObject,
  current: S | undefined,
  next: S,
  cache?: Informer<KubeObject>,
): Promise<KubeObject | undefined> {
  const clean = JSON.parse(JSON.stringify(next)) as S;
  if (isDeepStrictEqual(current ?? {}, clean)) return undefined;
  // Merge patch: fields absent from `next` but present now must be nulled to be removed.
  const removed = Object.fromEntries(
    Object.keys(current ?? {})
      .filter((k) => !(k in clean))
      .map((k) => [k, null]),
  );
  const written = await client.mergePatch(
    type,
    object.metadata.namespace,
    object.metadata.name,
    { metadata: { resourceVersion: object.metadata.resourceVersion }, status: { ...removed, ...clean } },
    'status',
  );
  cache?.upsert(written);
  return written;
}
