/** The `topology` config value a stack test sets: what `kubectl failover export --pulumi` prints. */
import { type PublishedTopology, TOPOLOGY_VERSION } from '../../../operator/src/api/v1alpha1/index.ts';

export type Member = PublishedTopology['members'][number];

/** The topology of policy `policy` (namespace default), as JSON; `superseded` as [region, name]. */
export function topologyConfig(
  policy: string,
  epoch: number,
  activePrimary: string,
  members: Member[],
  superseded: [string, string][] = [],
): string {
  return JSON.stringify({
    version: TOPOLOGY_VERSION,
    policy,
    namespace: 'default',
    epoch,
    activePrimary,
    members,
    superseded: superseded.map(([region, name]) => ({ region, name })),
  } satisfies PublishedTopology);
}
