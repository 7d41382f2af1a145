/**
 * Entry point of the `failover-digitalocean` Pulumi project: `pulumi up` runs this file (Node.js 24
 * runs the TypeScript directly). Each export is a stack output; `replicaClusters`, `failoverPolicy`
 * and `namespace` are what `infra/shared/to-manifests.ts` turns into manifests for `kubectl apply`.
 */
import { provisionDigitalOceanRegions } from './program.ts';

const stack = provisionDigitalOceanRegions();

export const namespace = stack.namespace;
export const replicaClusters = stack.replicaClusters;
export const failoverPolicy = stack.failoverPolicy;
export const primaryRegion = stack.primaryRegion;
export const standbyRegion = stack.standbyRegion;
export const databaseId = stack.databaseId;
export const replicaUuid = stack.replicaUuid;
export const operatorDbUsername = stack.operatorDbUsername;
export const operatorDbPassword = stack.operatorDbPassword;
