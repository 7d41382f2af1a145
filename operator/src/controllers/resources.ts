/** The API resources the operator reads and writes. */
import { GROUP, VERSION } from '../api/v1alpha1/common.ts';
import type { ResourceType } from '../runtime/kube-client.ts';

export const failoverPolicyType: ResourceType = {
  group: GROUP,
  version: VERSION,
  plural: 'failoverpolicies',
  kind: 'FailoverPolicy',
};
export const replicaClusterType: ResourceType = {
  group: GROUP,
  version: VERSION,
  plural: 'replicaclusters',
  kind: 'ReplicaCluster',
};
export const secretType: ResourceType = { group: '', version: 'v1', plural: 'secrets', kind: 'Secret' };
export const failoverObservationType: ResourceType = {
  group: GROUP,
  version: VERSION,
  plural: 'failoverobservations',
  kind: 'FailoverObservation',
};
export const failoverReportType: ResourceType = {
  group: GROUP,
  version: VERSION,
  plural: 'failoverreports',
  kind: 'FailoverReport',
};
