/** Installs the project's generated CRDs into a control plane and waits until they are served. */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  ApiextensionsV1Api,
  type KubeConfig,
  KubernetesObjectApi,
  loadYaml,
  PatchStrategy,
  type V1CustomResourceDefinition,
} from '@kubernetes/client-node';
import { waitFor } from './wait.ts';

export const crdDir = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'crds');

export function readCrds(): V1CustomResourceDefinition[] {
  return (
    readdirSync(crdDir)
      .filter((f) => f.endsWith('.yaml'))
      // client-node's loadYaml maps JSON names (enum, x-kubernetes-validations) to its model's
      // names, which its serializer maps back; a plain YAML object would lose those fields.
      .map((f) => loadYaml<V1CustomResourceDefinition>(readFileSync(join(crdDir, f), 'utf8')))
  );
}

export async function installCrds(kc: KubeConfig): Promise<void> {
  const objects = KubernetesObjectApi.makeApiClient(kc);
  const crds = readCrds();
  for (const crd of crds) {
    // Server-side apply: idempotent, and safe when several test files install at once.
    await objects.patch(crd, undefined, undefined, 'failover-tests', true, PatchStrategy.ServerSideApply);
  }
  const api = kc.makeApiClient(ApiextensionsV1Api);
  for (const crd of crds) {
    const name = crd.metadata?.name ?? '';
    await waitFor(
      async () => {
        const got = await api.readCustomResourceDefinition({ name });
        return got.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True');
      },
      { description: `CRD ${name} to be established` },
    );
  }
}
