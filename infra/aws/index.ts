/**
 * Entry point of the `failover-aws` Pulumi project: `pulumi up` runs this file (Node.js 24 runs the
 * TypeScript directly). Each export is a stack output; `replicaClusters`, `failoverPolicy` and
 * `namespace` are what `infra/shared/to-manifests.ts` turns into manifests for `kubectl apply`.
 */
import { provisionAwsRegions } from './program.ts';

const stack = provisionAwsRegions();

export const namespace = stack.namespace;
export const replicaClusters = stack.replicaClusters;
export const failoverPolicy = stack.failoverPolicy;
export const primaryRegion = stack.primaryRegion;
export const standbyRegion = stack.standbyRegion;
export const databaseKind = stack.databaseKind;
export const hostedZoneId = stack.hostedZoneId;
export const nameServers = stack.nameServers;
export const operatorPolicyArn = stack.operatorPolicyArn;
export const operatorRoleArn = stack.operatorRoleArn;
export const operatorUserName = stack.operatorUserName;
export const masterCredentialsSecretArn = stack.masterCredentialsSecretArn;
export const operatorCredentialsSecretArn = stack.operatorCredentialsSecretArn;
