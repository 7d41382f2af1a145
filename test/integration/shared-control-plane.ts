import { writeFileSync } from 'node:fs';
import { KubeConfig } from '@kubernetes/client-node';
import { inject } from 'vitest';

/** A client configuration for the shared control plane, as `token` (the admin by default). */
export function sharedKubeConfig(token?: string, user = 'admin'): KubeConfig {
  const cp = inject('controlPlane');
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'shared', server: cp.server, caFile: cp.caPath }],
    users: [{ name: user, token: token ?? cp.adminToken }],
    contexts: [{ name: 'shared', cluster: 'shared', user, namespace: 'default' }],
    currentContext: 'shared',
  });
  return kc;
}

/** A kubeconfig file for a process the test starts, authenticating to the shared control plane as `token`. */
export function sharedKubeconfigFile(
  path: string,
  user: string,
  token: string,
  opts: { namespace?: string; server?: string } = {},
): string {
  const cp = inject('controlPlane');
  const namespace = opts.namespace ? `, namespace: ${opts.namespace}` : '';
  writeFileSync(
    path,
    [
      'apiVersion: v1',
      'kind: Config',
      `clusters: [{name: shared, cluster: {server: "${opts.server ?? cp.server}", certificate-authority: "${cp.caPath}"}}]`,
      `users: [{name: ${user}, user: {token: "${token}"}}]`,
      `contexts: [{name: shared, context: {cluster: shared, user: ${user}${namespace}}}]`,
      'current-context: shared',
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  return path;
}
