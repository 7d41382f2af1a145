/**
 * The permissions the operator needs, and no more: the one list the Helm chart's ClusterRole
 * and the RBAC tests are built from. Add a rule here when the operator starts calling something new.
 */
import { GROUP } from './api/v1alpha1/common.ts';

export interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}

export const operatorRules: PolicyRule[] = [
  {
    apiGroups: [GROUP],
    resources: ['failoverpolicies', 'replicaclusters'],
    verbs: ['get', 'list', 'watch', 'patch'],
  },
  {
    apiGroups: [GROUP],
    resources: ['failoverpolicies/status', 'replicaclusters/status'],
    verbs: ['get', 'patch'],
  },
  // The observers' votes.
  { apiGroups: [GROUP], resources: ['failoverobservations'], verbs: ['get', 'list', 'watch'] },
  { apiGroups: ['events.k8s.io'], resources: ['events'], verbs: ['create', 'patch'] },
  // Database, DNS and provider credentials named by the resources' secretRefs.
  { apiGroups: [''], resources: ['secrets'], verbs: ['get'] },
  { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'create', 'update'] },
];

/** The observer (one per region) reads policies and clusters, probes, and publishes observations. */
export const observerRules: PolicyRule[] = [
  { apiGroups: [GROUP], resources: ['failoverpolicies', 'replicaclusters'], verbs: ['get', 'list', 'watch'] },
  { apiGroups: [GROUP], resources: ['failoverobservations'], verbs: ['get', 'create', 'patch'] },
  { apiGroups: [''], resources: ['secrets'], verbs: ['get'] },
];
