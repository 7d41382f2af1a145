/**
 * The DigitalOcean stack's configuration: every key, its default and its checks. Keys live in
 * the project's namespace (`failover-digitalocean:primaryRegion`); `digitalocean:token` stays the
 * provider's own setting.
 */
import { z } from 'zod';
import { objectName } from '../../operator/src/api/v1alpha1/index.ts';
import {
  checkRecordInZone,
  failoverConfigExamples,
  failoverConfigShape,
  failoverNames,
} from '../shared/failover-config.ts';
import { DIGITALOCEAN_DATABASE_REGIONS } from '../shared/regions.ts';
import {
  type ConfigSource,
  configJson,
  configText,
  pulumiConfigSource,
  readStackConfig,
} from '../shared/stack-config.ts';
import { checkTopology, topologyConfigShape } from '../shared/topology.ts';
import { trustedSource } from './components/trusted-source.ts';

/** The Pulumi project name, which is also the config namespace. */
export const DIGITALOCEAN_PROJECT = 'failover-digitalocean';

const region = z.enum(DIGITALOCEAN_DATABASE_REGIONS, {
  error: (issue) =>
    `${JSON.stringify(issue.input)} is not a DigitalOcean region with managed databases; use one like ams3 or nyc3 (the list is in infra/shared/regions.ts)`,
});

const sizeSlug = z
  .string()
  .regex(/^[a-z0-9][a-z0-9_-]*$/, 'must be a database size slug, like db-s-1vcpu-2gb');

export const digitalOceanStackConfig = z
  .object({
    ...failoverConfigShape,
    ...topologyConfigShape,
    primaryRegion: configText(region),
    standbyRegion: configText(region),
    size: configText(sizeSlug).default('db-s-1vcpu-2gb'),
    replicaSize: configText(sizeSlug).optional(),
    nodeCount: configJson(z.number().int().min(1).max(3)).default(1),
    engineVersion: configText(
      z.string().regex(/^\d+$/, 'must be a PostgreSQL major version, like 16'),
    ).default('16'),
    trustedSources: configJson(
      z
        .array(trustedSource)
        .min(
          1,
          'must list at least one trusted source: without one the database accepts connections from anywhere',
        )
        .max(100),
    ),
    createDomain: configJson(z.boolean()).default(true),
    ttlSeconds: configJson(
      z.number().int().min(30, 'must be at least 30: DigitalOcean refuses shorter TTLs').max(3600),
    ).default(30),
    operatorDbUsername: configText(
      z.string().regex(/^[a-z][a-z0-9_]{0,62}$/, 'must be a lowercase letter, then letters, digits or _'),
    ).default('failover_operator'),
    tokenSecretName: configText(objectName('Secret with the DigitalOcean API token.')).default('do-api'),
    tokenSecretKey: configText(
      z.string().regex(/^[-._a-zA-Z0-9]+$/, 'must be a Secret data key, like token'),
    ).default('token'),
  })
  .superRefine((c, ctx) => {
    if (c.standbyRegion === c.primaryRegion) {
      ctx.addIssue({
        code: 'custom',
        path: ['standbyRegion'],
        message: `must differ from ${DIGITALOCEAN_PROJECT}:primaryRegion (both are ${c.primaryRegion}): the standby has to survive the loss of the primary's region`,
      });
    }
    checkRecordInZone(c, ctx);
    checkTopology(c, failoverNames(c), ctx);
  });

export type DigitalOceanStackConfig = z.output<typeof digitalOceanStackConfig>;

/** Reads and checks the stack configuration; throws StackConfigError naming each bad key. */
export function readDigitalOceanStackConfig(
  source: ConfigSource = pulumiConfigSource(),
): DigitalOceanStackConfig {
  return readStackConfig(
    {
      namespace: DIGITALOCEAN_PROJECT,
      schema: digitalOceanStackConfig,
      examples: {
        ...failoverConfigExamples,
        name: 'shop',
        recordName: 'shop-db.example.com',
        primaryRegion: 'ams3',
        standbyRegion: 'nyc3',
        trustedSources: `'[{"type":"k8s","value":"<kubernetes cluster UUID>"}]'`,
      },
    },
    source,
  );
}
