/**
 * The local environment behind `make up` and `make demo`: everything the operator talks to,
 * started on loopback on this one machine. Later parts (PostgreSQL regions, BIND, moto) join here.
 */
import { ControlPlane } from '../harness/control-plane.ts';

export interface LocalEnvironment {
  controlPlane: ControlPlane;
  /** Shell exports for `.local/env.sh`. */
  exports: Record<string, string>;
  stop(): Promise<void>;
}

export async function startLocalEnvironment(log: (line: string) => void): Promise<LocalEnvironment> {
  log('starting the Kubernetes control plane (etcd + kube-apiserver) on loopback');
  const t0 = Date.now();
  const controlPlane = await ControlPlane.start({ name: 'failover-local' });
  log(`control plane ready at ${controlPlane.server} in ${((Date.now() - t0) / 1000).toFixed(1)}s`);
  return {
    controlPlane,
    exports: { KUBECONFIG: controlPlane.kubeconfigPath },
    stop: () => controlPlane.stop(),
  };
}
