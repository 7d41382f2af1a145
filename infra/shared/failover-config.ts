/**
 * Stack settings both clouds share: the names of the objects the operator will manage, the DNS
 * record between the regions, and the policy's detection, promotion and drill settings. The
 * policy settings are checked with the operator's own schemas, so a stack never holds a value the
 * API server would refuse later.
 */
import { z } from 'zod';
import { detection, dnsName, drills, objectName, promotion } from '../../operator/src/api/v1alpha1/index.ts';
import type { FailoverPolicySpecInput } from './outputs.ts';
import { configJson, configText } from './stack-config.ts';

/** The base of every name the stack gives: RDS identifiers, cluster names, object names. */
export const baseName = z
  .string()
  .max(30, 'must be at most 30 characters, so that "<name>-<region>" fits every identifier')
  .regex(
    /^[a-z](-?[a-z0-9])*$/,
    'must start with a letter and hold lowercase letters, digits and single dashes, like payments',
  );

/** Keys every stack reads; each stack adds its own. */
export const failoverConfigShape = {
  name: configText(baseName),
  namespace: configText(
    z
      .string()
      .max(63)
      .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'must be a Kubernetes namespace name, like failover-system'),
  ).default('default'),
  policyName: configText(objectName('FailoverPolicy name.')).optional(),
  credentialsSecretName: configText(objectName('Secret with the database login.')).optional(),
  zoneName: configText(dnsName('DNS zone.')),
  recordName: configText(dnsName('DNS record.')),
  detection: configJson(detection).optional(),
  promotion: configJson(promotion).optional(),
  drills: configJson(drills).optional(),
};

/** Examples for the "is required" message of the shared keys. */
export const failoverConfigExamples = {
  name: 'payments',
  zoneName: 'example.com',
  recordName: 'payments-db.example.com',
} as const;

type SharedConfig = {
  name: string;
  namespace: string;
  policyName?: string | undefined;
  credentialsSecretName?: string | undefined;
  zoneName: string;
  recordName: string;
  detection?: z.output<typeof detection> | undefined;
  promotion?: z.output<typeof promotion> | undefined;
  drills?: z.output<typeof drills> | undefined;
};

/**
 * The record must sit strictly inside the zone: outside it the operator could not change it,
 * and at the apex a CNAME is not allowed at all.
 */
export function checkRecordInZone(
  config: { zoneName: string; recordName: string },
  ctx: z.RefinementCtx,
): void {
  const { zoneName, recordName } = config;
  if (recordName === zoneName) {
    ctx.addIssue({
      code: 'custom',
      path: ['recordName'],
      message: `must be a name below zoneName ${zoneName}, such as db.${zoneName}: a CNAME cannot sit at the zone apex`,
    });
  } else if (!recordName.endsWith(`.${zoneName}`)) {
    ctx.addIssue({
      code: 'custom',
      path: ['recordName'],
      message: `must be inside zoneName ${zoneName}, such as db.${zoneName}; got ${recordName}`,
    });
  }
}

/** Names derived from the shared settings. */
export function failoverNames(config: SharedConfig) {
  const policyName = config.policyName ?? config.name;
  return {
    policyName,
    /** The ownership TXT record's owner; pinned in the spec so the namespace cannot drift from it. */
    ownerId: `${config.namespace}/${policyName}`,
    credentialsSecretName: config.credentialsSecretName ?? `${config.name}-db-credentials`,
    /** The ReplicaCluster in a region. */
    clusterName: (region: string) => `${config.name}-${region}`,
  };
}

/** The FailoverPolicy spec for a primary and its standbys behind the configured record. */
export function failoverPolicySpecFrom(
  config: SharedConfig,
  clusters: { primary: string; standbys: string[] },
  dns: { provider: FailoverPolicySpecInput['dns']['provider']; ttlSeconds: number },
): FailoverPolicySpecInput {
  const { ownerId } = failoverNames(config);
  return {
    primary: clusters.primary,
    standbys: clusters.standbys,
    dns: {
      provider: dns.provider,
      zone: config.zoneName,
      name: config.recordName,
      type: 'CNAME',
      ttlSeconds: dns.ttlSeconds,
      ownerId,
    },
    ...(config.detection ? { detection: config.detection } : {}),
    ...(config.promotion ? { promotion: config.promotion } : {}),
    // Weekly drills unless the stack says otherwise: a failover path that is never exercised
    // is a failover path that does not work.
    drills: config.drills ?? drills.parse({}),
  };
}
