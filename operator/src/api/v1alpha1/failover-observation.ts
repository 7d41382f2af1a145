/**
 * FailoverObservation: what one observer, running in one region, last saw of one policy's
 * clusters. Observers write these; the operator counts only fresh ones from distinct observers,
 * so one observer losing sight of the primary is never enough to fail over.
 */
import { z } from 'zod';
import { mapOf, objectName, resourceObject, shortName, timestamp } from './common.ts';
import { clusterRole } from './replica-cluster.ts';

export const clusterProbe = z
  .object({
    name: objectName('The ReplicaCluster probed.'),
    reachable: z.boolean().describe('Whether the last probe reached the database.'),
    role: clusterRole.describe('Role the database reported.'),
    consecutiveFailures: z.number().int().min(0).describe('Failed probes in a row; reset by one success.'),
    lastSuccessTime: timestamp('When a probe last succeeded.').optional(),
    failureReason: z
      .string()
      .max(64)
      .optional()
      .describe('Why the last probe failed, as a CamelCase reason.'),
    lsn: z.string().max(32).optional().describe('WAL position the database reported.'),
    appEndpointsHealthy: z
      .boolean()
      .optional()
      .describe(
        'Whether every application endpoint of the cluster answered healthy; absent without endpoints.',
      ),
    unhealthyAppEndpoints: z
      .array(shortName('An endpoint name.'))
      .max(8)
      .optional()
      .describe('The application endpoints that did not answer healthy.'),
  })
  .describe('The result of probing one cluster.');

export const failoverObservationSpec = z
  .object({
    policy: objectName('The FailoverPolicy these observations are for.'),
    observer: shortName('Name of the observer, unique among observers, e.g. the region it runs in.'),
    region: shortName('Region the observer runs in.').optional(),
    observedAt: timestamp('When this round of probes finished.'),
    probeIntervalSeconds: z.number().int().min(1).max(300).describe('How often this observer probes.'),
    clusters: mapOf(clusterProbe, 'name', 6).describe('One entry per cluster of the policy.'),
  })
  .describe('One observer view of one policy clusters.');

export const failoverObservation = resourceObject('FailoverObservation', failoverObservationSpec, undefined);

export type ClusterProbe = z.infer<typeof clusterProbe>;
export type FailoverObservationSpec = z.infer<typeof failoverObservationSpec>;
export type FailoverObservation = z.infer<typeof failoverObservation>;
