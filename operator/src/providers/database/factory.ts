/**
 * Picks the database adapter for a ReplicaCluster's provider. Every provider here is PostgreSQL
 * reachable by SQL, so a managed database is the SQL side for its endpoint plus the provider's
 * control plane for what SQL cannot do (promotion of a managed replica).
 */
import type { ReplicaClusterSpec } from '../../api/v1alpha1/index.ts';
import { parseAwsCredentials, SharedAwsClients } from '../aws.ts';
import { rdsSdk } from '../aws-sdk.ts';
import { AuroraGlobalControlPlane } from './aurora-global.ts';
import { RdsControlPlane } from './aws-rds.ts';
import { DigitalOceanControlPlane } from './digitalocean.ts';
import { ManagedDatabase } from './managed.ts';
import type { DatabaseConnection, DatabaseProvider } from './port.ts';
import { PostgresSql } from './postgres-sql.ts';
import { SelfManagedPostgres } from './self-managed.ts';

/** The RDS API clients of every RDS and Aurora member (see SharedAwsClients). */
const rdsClients = new SharedAwsClients((config) => new (rdsSdk().RDSClient)(config));

export interface ProviderSecrets {
  /** SQL login for the connection. */
  database: { user: string; password: string };
  /** Provider API credential (a DigitalOcean token, AWS keys as JSON), when the spec names one. */
  providerApi?: string;
}

export interface FactoryOptions {
  connectTimeoutMs: number;
  statementTimeoutMs: number;
  applicationName: string;
  /** Told when a newly promoted primary lifts a fence it inherited from its old primary. */
  onLeftoverFenceRestored?: (detail: string) => void;
  /** The clock for the times the adapters write (heartbeats, fence marks). */
  now?: () => Date;
}

export function createDatabaseProvider(
  spec: ReplicaClusterSpec,
  secrets: ProviderSecrets,
  options: FactoryOptions,
): DatabaseProvider {
  const connection: DatabaseConnection = {
    host: spec.connection.host,
    port: spec.connection.port,
    database: spec.connection.database,
    sslMode: spec.connection.sslMode,
    user: secrets.database.user,
    password: secrets.database.password,
  };
  const sqlOptions = {
    connectTimeoutMs: options.connectTimeoutMs,
    statementTimeoutMs: options.statementTimeoutMs,
    applicationName: options.applicationName,
    ...(options.onLeftoverFenceRestored ? { onLeftoverFenceRestored: options.onLeftoverFenceRestored } : {}),
    ...(options.now ? { now: options.now } : {}),
  };
  const clock = options.now ? { clock: { now: options.now } } : {};
  const provider = spec.provider;
  switch (provider.type) {
    case 'SelfManaged':
      return new SelfManagedPostgres(connection, sqlOptions);
    case 'DigitalOcean':
      return new ManagedDatabase({
        ...clock,
        sql: new PostgresSql(connection, { ...sqlOptions, maintenanceDatabase: 'defaultdb' }),
        controlPlane: new DigitalOceanControlPlane({
          // The whole block: a replacement replica (reprotect) keeps the fields it does not change.
          provider,
          databaseId: provider.digitalOcean.databaseId,
          ...(provider.digitalOcean.replicaName ? { replicaName: provider.digitalOcean.replicaName } : {}),
          api: {
            token: secrets.providerApi ?? '',
            ...(provider.digitalOcean.apiUrl ? { apiUrl: provider.digitalOcean.apiUrl } : {}),
          },
        }),
      });
    case 'AwsRds': {
      const { region, dbInstanceIdentifier, endpointUrl } = provider.awsRds;
      const options = awsOptions(region, endpointUrl, secrets.providerApi, 'awsRds.credentialsSecretRef');
      return new ManagedDatabase({
        ...clock,
        sql: new PostgresSql(connection, sqlOptions),
        controlPlane: new RdsControlPlane({
          provider,
          dbInstanceIdentifier,
          ...options,
          ...rdsClients.get(options),
        }),
      });
    }
    case 'AuroraGlobal': {
      const { region, globalClusterIdentifier, dbClusterIdentifier, endpointUrl } = provider.auroraGlobal;
      const where = 'auroraGlobal.credentialsSecretRef';
      const options = awsOptions(region, endpointUrl, secrets.providerApi, where);
      return new ManagedDatabase({
        ...clock,
        sql: new PostgresSql(connection, sqlOptions),
        controlPlane: new AuroraGlobalControlPlane({
          globalClusterIdentifier,
          dbClusterIdentifier,
          ...options,
          ...rdsClients.get(options),
        }),
      });
    }
  }
}

/** An AWS provider block's client settings; the credentials parsed before any client is taken. */
function awsOptions(
  region: string,
  endpointUrl: string | undefined,
  secret: string | undefined,
  where: string,
) {
  return {
    region,
    ...(endpointUrl ? { endpointUrl } : {}),
    ...(secret ? { credentials: parseAwsCredentials(secret, where) } : {}),
  };
}

/** Which Secret key holds the provider API credential, if the provider needs one. */
export function providerApiSecret(spec: ReplicaClusterSpec): { name: string; key: string } | undefined {
  const p = spec.provider;
  if (p.type === 'DigitalOcean') return p.digitalOcean.tokenSecretRef;
  if (p.type === 'AwsRds') return p.awsRds.credentialsSecretRef;
  if (p.type === 'AuroraGlobal') return p.auroraGlobal.credentialsSecretRef;
  return undefined;
}
