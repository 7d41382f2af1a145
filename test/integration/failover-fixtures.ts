/** Starting failover stacks on the shared control plane, one namespace per stack. */
import { inject } from 'vitest';
import { FailoverStack, type FailoverStackOptions } from '../harness/failover-stack.ts';
import { sharedKubeConfig } from './shared-control-plane.ts';

export function stackStarter(
  prefix: string,
): (options?: Partial<FailoverStackOptions>) => Promise<FailoverStack> {
  let n = 0;
  return (options = {}) => {
    n++;
    return FailoverStack.start({
      name: `${prefix}${n}`,
      kubeConfig: sharedKubeConfig(),
      kubeconfigPath: inject('controlPlane').kubeconfigPath,
      namespace: `${prefix}-${process.pid}-${n}`,
      ...options,
    });
  };
}
