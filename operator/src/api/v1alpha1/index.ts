/** regionfailover.io/v1alpha1: the two kinds and their CRD definitions. */
import type { KindDefinition } from '../crd.ts';
import { GROUP, VERSION } from './common.ts';
import { failoverObservationSpec } from './failover-observation.ts';
import { failoverPolicySpec, failoverPolicyStatus } from './failover-policy.ts';
import { failoverReportSpec } from './failover-report.ts';
import { replicaClusterSpec, replicaClusterStatus } from './replica-cluster.ts';

export * from './common.ts';
export * from './failover-observation.ts';
export * from './failover-policy.ts';
export * from './failover-report.ts';
export * from './replica-cluster.ts';
export * from './topology.ts';

export const replicaClusterKind: KindDefinition = {
  group: GROUP,
  version: VERSION,
  kind: 'ReplicaCluster',
  plural: 'replicaclusters',
  singular: 'replicacluster',
  shortNames: ['rcl', 'replica'],
  categories: ['failover'],
  description:
    'ReplicaCluster is one PostgreSQL database in one region: how to reach it, how its provider names it, and the DNS value clients use when it is primary.',
  spec: replicaClusterSpec,
  status: replicaClusterStatus,
  printerColumns: [
    { name: 'Region', type: 'string', jsonPath: '.spec.region', description: 'Region of the cluster.' },
    { name: 'Provider', type: 'string', jsonPath: '.spec.provider.type', description: 'Database provider.' },
    { name: 'Role', type: 'string', jsonPath: '.status.role', description: 'Observed role.' },
    { name: 'Health', type: 'string', jsonPath: '.status.health', description: 'Observed health.' },
    {
      name: 'Lag(s)',
      type: 'number',
      jsonPath: '.status.replicationLagSeconds',
      description: 'Replication lag in seconds.',
    },
    {
      name: 'Lag(bytes)',
      type: 'integer',
      jsonPath: '.status.replicationLagBytes',
      description: 'Replication lag in WAL bytes.',
      priority: 1,
    },
  ],
};

export const failoverPolicyKind: KindDefinition = {
  group: GROUP,
  version: VERSION,
  kind: 'FailoverPolicy',
  plural: 'failoverpolicies',
  singular: 'failoverpolicy',
  shortNames: ['fpol'],
  categories: ['failover'],
  description:
    'FailoverPolicy binds a primary and its standby ReplicaClusters to a DNS record, and says when the operator may promote a standby and move the record.',
  spec: failoverPolicySpec,
  status: failoverPolicyStatus,
  printerColumns: [
    { name: 'Primary', type: 'string', jsonPath: '.status.activePrimary', description: 'The primary now.' },
    { name: 'Phase', type: 'string', jsonPath: '.status.phase', description: 'Phase of the policy.' },
    {
      name: 'Lag(s)',
      type: 'number',
      jsonPath: '.status.standbyLagSeconds',
      description: 'Lag of the preferred standby.',
    },
    { name: 'Epoch', type: 'integer', jsonPath: '.status.epoch', description: 'Failover epoch.' },
    {
      name: 'Last-Drill',
      type: 'string',
      jsonPath: '.status.drills[0].result',
      description: 'Result of the last drill.',
    },
    {
      name: 'Drilled',
      type: 'date',
      jsonPath: '.status.drills[0].completedAt',
      description: 'When the last drill finished.',
    },
  ],
};

export const failoverObservationKind: KindDefinition = {
  group: GROUP,
  version: VERSION,
  kind: 'FailoverObservation',
  plural: 'failoverobservations',
  singular: 'failoverobservation',
  shortNames: ['fobs'],
  categories: ['failover'],
  description:
    'FailoverObservation is what one observer, in one region, last saw of the clusters of one FailoverPolicy. Observers write them; the operator counts fresh ones from distinct observers.',
  spec: failoverObservationSpec,
  status: undefined,
  printerColumns: [
    { name: 'Policy', type: 'string', jsonPath: '.spec.policy', description: 'The policy observed.' },
    { name: 'Observer', type: 'string', jsonPath: '.spec.observer', description: 'Who observed.' },
    { name: 'Observed', type: 'date', jsonPath: '.spec.observedAt', description: 'When.' },
  ],
};

export const failoverReportKind: KindDefinition = {
  group: GROUP,
  version: VERSION,
  kind: 'FailoverReport',
  plural: 'failoverreports',
  singular: 'failoverreport',
  shortNames: ['frep'],
  categories: ['failover'],
  description:
    'FailoverReport is the incident record of one finished failover, switchover, fence, reprotect, drill or refused request: its timeline and figures, written once by the operator. `kubectl failover report` prints it for a postmortem.',
  spec: failoverReportSpec,
  status: undefined,
  printerColumns: [
    { name: 'Policy', type: 'string', jsonPath: '.spec.policy', description: 'The policy.' },
    { name: 'Kind', type: 'string', jsonPath: '.spec.kind', description: 'What it records.' },
    { name: 'Result', type: 'string', jsonPath: '.spec.result', description: 'How it ended.' },
    { name: 'From', type: 'string', jsonPath: '.spec.operation.from', description: 'The former primary.' },
    { name: 'To', type: 'string', jsonPath: '.spec.operation.to', description: 'The promoted cluster.' },
    {
      name: 'RTO(s)',
      type: 'number',
      jsonPath: '.spec.operation.rtoSeconds',
      description: 'Seconds until DNS answered the new primary.',
    },
    { name: 'Completed', type: 'date', jsonPath: '.spec.completedAt', description: 'When it ended.' },
  ],
};

export const kinds = [failoverPolicyKind, replicaClusterKind, failoverObservationKind, failoverReportKind];
