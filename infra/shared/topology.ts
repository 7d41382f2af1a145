/**
 * The live topology as a stack input. The operator moves the primary between regions and, on
 * managed providers, makes new replicas in place of former primaries; the stack only ever made the
 * first pair. Without knowing what happened since, a `pulumi up` would plan the world back to
 * that pair. So a stack takes the policy's topology (`kubectl failover export POLICY --pulumi`,
 * set as the `topology` config value) and declares each region's database as it is now: the one
 * it made, or one the operator made (imported), with the superseded ones kept until a person
 * retires them (`retiredDatabases`).
 *
 * Without a topology the stack describes the pair as first made: the primary region's database
 * is the primary, the standby region's replicates from it.
 */
import { z } from 'zod';
import {
  publishedTopology,
  type TopologyDatabase,
  type TopologyMember,
} from '../../operator/src/api/v1alpha1/index.ts';
import { configJson } from './stack-config.ts';

/** Config keys every stack reads for the topology. */
export const topologyConfigShape = {
  /** `kubectl failover export POLICY --pulumi`: the topology after failovers and reprotects. */
  topology: configJson(publishedTopology).optional(),
  /**
   * Databases superseded by a reprotect that the stack should forget (they are never deleted by
   * Pulumi: a person deletes them, after a final snapshot, with the commands infra/README.md gives).
   */
  retiredDatabases: configJson(z.array(z.string().min(1).max(253)).max(20)).default([]),
};

/** One region's database as the stack must declare it. */
export interface RegionDatabase {
  region: string;
  /** The ReplicaCluster's role as the operator last saw it. */
  role: TopologyMember['role'];
  database: TopologyDatabase;
  /** A database the operator made in place of `replaces` (to import, not to create). */
  replaces?: string;
}

export interface LiveTopology {
  /** The region whose database is the primary now. */
  primaryRegion: string;
  epoch: number;
  /** The databases of the primary and standby regions (of the stack's first pair, by region). */
  byRegion: Map<string, RegionDatabase>;
  /** Names a reprotect superseded (with their region), to keep declared unless retired. */
  superseded: Map<string, string>;
}

interface TopologyConfig {
  namespace: string;
  primaryRegion: string;
  standbyRegion: string;
  topology?: z.output<typeof publishedTopology> | undefined;
}

/**
 * The topology as the stack reads it. `first` gives each region's database as the stack first
 * made it (used when the config has no topology).
 */
export function liveTopology(
  config: TopologyConfig,
  first: { primary: TopologyDatabase; standby: TopologyDatabase },
): LiveTopology {
  const t = config.topology;
  if (!t) {
    return {
      primaryRegion: config.primaryRegion,
      epoch: 0,
      byRegion: new Map([
        [config.primaryRegion, { region: config.primaryRegion, role: 'Primary', database: first.primary }],
        [config.standbyRegion, { region: config.standbyRegion, role: 'Standby', database: first.standby }],
      ]),
      superseded: new Map(),
    };
  }
  const primary = t.members.find((m) => m.cluster === t.activePrimary);
  return {
    primaryRegion: primary?.region ?? config.primaryRegion,
    epoch: t.epoch,
    byRegion: new Map(
      t.members.map((m) => [
        m.region,
        {
          region: m.region,
          role: m.role,
          database: m.database,
          ...(m.replaces ? { replaces: m.replaces } : {}),
        },
      ]),
    ),
    superseded: new Map([
      ...t.superseded.map((x) => [x.name, x.region] as const),
      ...t.members.flatMap((m) => (m.replaces ? [[m.replaces, m.region] as const] : [])),
    ]),
  };
}

/**
 * The checks a topology must pass against the stack's own settings: it is this stack's policy,
 * in this namespace, over exactly the stack's two regions, with ReplicaClusters named as the
 * stack names them; and nothing retired is still in use.
 */
export function checkTopology(
  c: TopologyConfig & { retiredDatabases: string[] },
  names: { policyName: string; clusterName: (region: string) => string },
  ctx: z.RefinementCtx,
): void {
  const t = c.topology;
  const issue = (path: (string | number)[], message: string) =>
    ctx.addIssue({ code: 'custom', path, message });
  if (t) {
    if (t.policy !== names.policyName)
      issue(['topology', 'policy'], `is ${t.policy}, but this stack's policy is ${names.policyName}`);
    if (t.namespace !== c.namespace)
      issue(['topology', 'namespace'], `is ${t.namespace}, but this stack's namespace is ${c.namespace}`);
    const regions = t.members.map((m) => m.region).sort();
    const mine = [c.primaryRegion, c.standbyRegion].sort();
    if (regions.join() !== mine.join())
      issue(
        ['topology', 'members'],
        `cover the regions ${regions.join(', ')}, but this stack's are ${mine.join(', ')}; export the topology of this stack's policy`,
      );
    t.members.forEach((m, i) => {
      if (m.cluster !== names.clusterName(m.region))
        issue(
          ['topology', 'members', i, 'cluster'],
          `is ${m.cluster}, but this stack names the ReplicaCluster in ${m.region} ${names.clusterName(m.region)}`,
        );
    });
  }
  // A DigitalOcean cluster the stack made is named by UUID in the topology, and `<name>-<region>`
  // (the ReplicaCluster's name) by the stack.
  const inUse = new Set((t?.members ?? []).map((m) => m.database.name ?? names.clusterName(m.region)));
  const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
  c.retiredDatabases.forEach((name, i) => {
    if (uuid.test(name))
      issue(
        ['retiredDatabases', i],
        `${name} is a UUID: name the database (RDS identifier, DigitalOcean name)`,
      );
    else if (inUse.has(name))
      issue(
        ['retiredDatabases', i],
        `${name} is a database of the policy now; only a superseded one can be retired`,
      );
    else if (!t)
      issue(
        ['retiredDatabases', i],
        'needs the topology config value: without it the stack cannot tell a superseded database from one in use',
      );
  });
}
