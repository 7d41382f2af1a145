import { describe, expect, it } from 'vitest';
import { onlyStatusChanged } from './manager.ts';
import type { KubeObject } from './runtime/kube-client.ts';

const policy = (over: Partial<KubeObject> = {}, meta: Record<string, unknown> = {}): KubeObject => ({
  apiVersion: 'regionfailover.io/v1alpha1',
  kind: 'FailoverPolicy',
  metadata: { name: 'orders', namespace: 'db', generation: 1, resourceVersion: '10', ...meta },
  spec: { primary: 'a' },
  status: { phase: 'Healthy' },
  ...over,
});

describe('onlyStatusChanged (our own status writes do not wake the policy again)', () => {
  it('is true for a new status, resourceVersion or managedFields', () => {
    expect(
      onlyStatusChanged(
        policy(),
        policy({ status: { phase: 'Blocked' } }, { resourceVersion: '11', managedFields: [] }),
      ),
    ).toBe(true);
  });

  it('is false for a spec change, a label, an annotation or a deletion', () => {
    expect(onlyStatusChanged(policy(), policy({ spec: { primary: 'b' } }, { generation: 2 }))).toBe(false);
    expect(onlyStatusChanged(policy(), policy({}, { labels: { team: 'x' } }))).toBe(false);
    expect(onlyStatusChanged(policy(), policy({}, { annotations: { note: 'x' } }))).toBe(false);
    expect(onlyStatusChanged(policy(), policy({}, { deletionTimestamp: '2026-03-02T10:00:00Z' }))).toBe(
      false,
    );
  });
});
