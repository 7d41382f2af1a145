/**
 * The live topology of one FailoverPolicy as infrastructure code reads it: which region's database
 * is the primary now, at which epoch, and which database each ReplicaCluster names (or must name:
 * a reprotect's replacement not yet re-pointed). `kubectl failover export POLICY --pulumi` prints
 * it; the Pulumi stacks take it as their `topology` config value, so a `pulumi up` after a
 * failover, reprotect or failback plans no replacement and no role change of a database.
 *
 * Not a Kubernetes kind: a document with a version of its own, read by programs outside the
 * cluster. Everything in it comes from the policy's and the ReplicaClusters' status and spec, so
 * a person with read access to those (no cluster-admin) can produce it.
 */
import { z } from 'zod';

export const TOPOLOGY_VERSION = 'regionfailover.io/topology-v1';

export const topologyDatabase = z
  .object({
    name: z
      .string()
      .min(1)
      .max(253)
      .optional()
      .describe(
        'The provider name of the database: RDS DBInstanceIdentifier, Aurora DBClusterIdentifier, DigitalOcean read-only node name. Unset for a DigitalOcean cluster named by its UUID.',
      ),
    id: z
      .string()
      .min(1)
      .max(253)
      .optional()
      .describe(
        'DigitalOcean: the UUID of the cluster this is (the original cluster, or the one a read-only node was promoted into).',
      ),
    parentId: z
      .string()
      .min(1)
      .max(253)
      .optional()
      .describe(
        'DigitalOcean: for a read-only node, the UUID of the cluster it is a node of (for one since promoted: was, as its spec still names it).',
      ),
  })
  .describe('Which database, in the terms of its provider.');

export const topologyMember = z
  .object({
    cluster: z.string().min(1).max(253).describe('The ReplicaCluster.'),
    region: z.string().min(1).max(64).describe('Its spec.region.'),
    provider: z
      .enum(['SelfManaged', 'AwsRds', 'AuroraGlobal', 'DigitalOcean'])
      .describe('Its spec.provider.type.'),
    role: z
      .enum(['Primary', 'Standby', 'FormerPrimary', 'Unknown'])
      .describe('As the operator last saw it: the policy status topology.'),
    database: topologyDatabase,
    host: z
      .string()
      .min(1)
      .max(253)
      .describe('Its spec.connection.host (the replacement one, when pending).'),
    replaces: z
      .string()
      .min(1)
      .max(253)
      .optional()
      .describe(
        'This database was made by a reprotect in place of that one (superseded: left for a person to delete).',
      ),
    repointPending: z
      .boolean()
      .optional()
      .describe('The ReplicaCluster does not name this database yet: the export re-points it.'),
  })
  .describe('One member of the policy.');

export const publishedTopology = z
  .object({
    version: z.literal(TOPOLOGY_VERSION),
    policy: z.string().min(1).max(253).describe('The FailoverPolicy.'),
    namespace: z.string().min(1).max(63).describe('Its namespace.'),
    epoch: z.number().int().min(0).describe('The failover epoch: one more per promotion.'),
    activePrimary: z.string().min(1).max(253).describe('The ReplicaCluster that is primary now.'),
    members: z.array(topologyMember).min(1).max(6).describe('Every member, the primary first.'),
    superseded: z
      .array(
        z.object({
          region: z.string().min(1).max(64).describe('Where it is.'),
          name: z.string().min(1).max(253).describe('Its provider name.'),
        }),
      )
      .max(40)
      .default([])
      .describe(
        'Databases reprotects replaced, as far as the policy history remembers (its last 20 operations): infrastructure code keeps them until a person retires them.',
      ),
  })
  .superRefine((t, ctx) => {
    const primaries = t.members.filter((m) => m.cluster === t.activePrimary);
    if (primaries.length !== 1)
      ctx.addIssue({ code: 'custom', path: ['activePrimary'], message: `must be one of the members, once` });
    const regions = t.members.map((m) => m.region);
    if (new Set(regions).size !== regions.length)
      ctx.addIssue({ code: 'custom', path: ['members'], message: 'each region must appear once' });
  })
  .describe("A policy's live topology, for infrastructure code.");

export type TopologyDatabase = z.infer<typeof topologyDatabase>;
export type TopologyMember = z.infer<typeof topologyMember>;
export type PublishedTopology = z.infer<typeof publishedTopology>;
