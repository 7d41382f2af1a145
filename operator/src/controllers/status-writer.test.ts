import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { KubeClient, KubeObject } from '../runtime/kube-client.ts';
import { replicaClusterType } from './resources.ts';
import { changedFields, mergePatchOf, writeStatus } from './status-writer.ts';

/** RFC 7386 as the API server applies it. */
function applyMergePatch(target: unknown, patch: unknown): unknown {
  if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) return patch;
  const out: Record<string, unknown> =
    typeof target === 'object' && target !== null && !Array.isArray(target) ? { ...(target as object) } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = applyMergePatch(out[k], v);
  }
  return out;
}

/** `v` with some fields dropped at any depth, chosen by `seed`: a status after something ended. */
function prune(v: unknown, seed: number, path = ''): unknown {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) {
    const h = [...`${seed}${path}/${k}`].reduce((a, c) => (a * 31 + c.charCodeAt(0)) >>> 0, 7) % 3;
    if (h === 1) out[k] = prune(x, seed, `${path}/${k}`);
    else if (h === 2) out[k] = x;
  }
  return out;
}

/** The deepest null in a patch: 1 for a top-level field removed, 2 for one inside an object. */
function nullDepth(v: unknown, depth = 0): number {
  if (v === null) return depth;
  if (typeof v !== 'object' || Array.isArray(v)) return 0;
  return Math.max(0, ...Object.values(v as object).map((x) => nullDepth(x, depth + 1)));
}

describe('the status merge patch', () => {
  it('removes a field gone at any depth (an outage closed, a retry error cleared)', () => {
    const current = {
      availability: { trackedSince: 't', downSince: 'd' },
      currentOperation: { step: 'Fencing', lastError: 'x' },
    };
    const next = { availability: { trackedSince: 't' }, currentOperation: { step: 'Promoting' } };
    expect(mergePatchOf(current, next)).toEqual({
      availability: { trackedSince: 't', downSince: null },
      currentOperation: { step: 'Promoting', lastError: null },
    });
  });

  it('turns any stored status into the next one when the API server applies it', () => {
    // Status-like values: nested objects, arrays, no nulls (status never stores null).
    const leaf = fc.oneof(fc.string({ maxLength: 3 }), fc.integer(), fc.boolean());
    const value = fc.letrec((tie) => ({
      node: fc.oneof(
        { depthSize: 'small' },
        leaf,
        fc.array(tie('node'), { maxLength: 2 }),
        fc.dictionary(fc.constantFrom('a', 'b', 'c', 'd'), tie('node'), { maxKeys: 4 }),
      ),
    })).node;
    // Top-level fields mostly objects, as status's are (availability, currentOperation, drill).
    const field = fc.oneof(
      {
        arbitrary: fc.dictionary(fc.constantFrom('a', 'b', 'c', 'd'), value, { minKeys: 1, maxKeys: 4 }),
        weight: 3,
      },
      { arbitrary: value, weight: 1 },
    );
    const status = fc.dictionary(fc.constantFrom('a', 'b', 'c', 'd'), field, { maxKeys: 4 });
    // Biased to what matters: the next status is mostly the stored one with fields dropped at
    // some depth, else an unrelated one.
    const related = fc
      .tuple(status, fc.integer({ min: 1, max: 1_000_000 }))
      .map(([current, seed]) => [current, prune(current, seed)] as const);
    const pairs = fc.oneof(
      { arbitrary: related, weight: 3 },
      { arbitrary: fc.tuple(status, status), weight: 1 },
    );
    let nestedRemovals = 0;
    fc.assert(
      fc.property(pairs, ([current, next]) => {
        const patch = mergePatchOf(current, next);
        if (nullDepth(patch) >= 2) nestedRemovals++;
        expect(applyMergePatch(current, patch)).toEqual(next);
      }),
      { numRuns: 1000 },
    );
    // The generator reached what the fix is for: fields removed below the top level.
    expect(nestedRemovals).toBeGreaterThan(200);
  });
});

describe('writeStatus', () => {
  const patches: unknown[] = [];
  const client = {
    mergePatch: async (_t: unknown, _ns: unknown, _name: unknown, body: { status: unknown }) => {
      patches.push(body.status);
      return { metadata: { name: 'a', resourceVersion: '2' }, status: body.status };
    },
  } as unknown as KubeClient;
  const object: KubeObject = { metadata: { name: 'a', namespace: 'ns', resourceVersion: '1' } };

  it('writes only what differs from the status read, however often the same status comes back', async () => {
    // As read from the API server: keys sorted, no undefined fields.
    const current = { health: 'Healthy', lastObservedTime: 't1', role: 'Primary' };
    const same = () => ({ role: 'Primary', health: 'Healthy', lastObservedTime: 't1', lsn: undefined });
    for (let i = 0; i < 3; i++)
      expect(await writeStatus(client, replicaClusterType, object, current, same())).toBe(undefined);
    expect(patches).toEqual([]);
    await writeStatus(client, replicaClusterType, object, current, { ...same(), lastObservedTime: 't2' });
    expect(patches).toEqual([{ health: 'Healthy', lastObservedTime: 't2', role: 'Primary' }]);
    // Another status read (a new object) is compared afresh, even with a JSON seen before.
    const other = { health: 'Degraded', lastObservedTime: 't1', role: 'Primary' };
    await writeStatus(client, replicaClusterType, object, other, same());
    expect(patches).toHaveLength(2);
    expect(await writeStatus(client, replicaClusterType, object, current, same())).toBe(undefined);
    expect(patches).toHaveLength(2);
    await writeStatus(client, replicaClusterType, object, undefined, same());
    expect(patches).toHaveLength(3);
  });
});

describe('what a status write changed (the debug log)', () => {
  it('names top-level fields and conditions by type, not their times', () => {
    const ready = {
      type: 'Ready',
      status: 'True',
      reason: 'Protected',
      message: 'ok',
      lastTransitionTime: 'a',
    };
    const dns = { type: 'DnsReady', status: 'True', reason: 'InSync', message: 'x', lastTransitionTime: 'a' };
    const before = { phase: 'Protected', standbyLagSeconds: 20, conditions: [ready, dns] };
    const after = {
      phase: 'Protected',
      standbyLagSeconds: 40,
      topology: [],
      conditions: [
        { ...ready, lastTransitionTime: 'b' },
        { ...dns, message: 'y' },
      ],
    };
    expect(changedFields(before, after)).toEqual(['standbyLagSeconds', 'conditions.DnsReady', 'topology']);
    expect(changedFields(undefined, { phase: 'Pending' })).toEqual(['phase']);
    // Only a time moved: the list as a whole; a field set to undefined is not written.
    expect(
      changedFields(before, { ...before, conditions: [{ ...ready, lastTransitionTime: 'b' }, dns] }),
    ).toEqual(['conditions']);
    expect(changedFields(before, { ...before, drill: undefined })).toEqual([]);
  });
});
