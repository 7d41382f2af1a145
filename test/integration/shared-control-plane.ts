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
