/**
 * Picks the database adapter for a ReplicaCluster's provider. Every provider here is PostgreSQL
 * reachable by SQL, so each managed adapter is built around the self-managed SQL adapter for the
 * same endpoint, adding the provider API for what SQL cannot do (promotion of a managed replica).
 */
import type { ReplicaClusterSpec } from '../../api/v1alpha1/index.ts';
import { parseAwsCredentials } from '../aws.ts';
import { AuroraGlobalDatabase } from './aurora-global.ts';
import { AwsRdsDatabase } from './aws-rds.ts';
import { DigitalOceanDatabaseProvider } from './digitalocean.ts';
import type { DatabaseConnection, DatabaseProvider } from './port.ts';
import { SelfManagedPostgres } from './self-managed.ts';

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
  };
  const provider = spec.provider;
  switch (provider.type) {
    case 'SelfManaged':
      return new SelfManagedPostgres(connection, sqlOptions);
    case 'DigitalOcean':
      return new DigitalOceanDatabaseProvider({
        sql: new SelfManagedPostgres(connection, { ...sqlOptions, maintenanceDatabase: 'defaultdb' }),
        databaseId: provider.digitalOcean.databaseId,
        replicaName: provider.digitalOcean.replicaName,
        api: {
          token: secrets.providerApi ?? '',
          ...(provider.digitalOcean.apiUrl ? { apiUrl: provider.digitalOcean.apiUrl } : {}),
        },
      });
    case 'AwsRds': {
      const { region, dbInstanceIdentifier, endpointUrl } = provider.awsRds;
      return new AwsRdsDatabase({
        region,
        dbInstanceIdentifier,
        ...(endpointUrl ? { endpointUrl } : {}),
        ...(secrets.providerApi
          ? { credentials: parseAwsCredentials(secrets.providerApi, 'awsRds.credentialsSecretRef') }
          : {}),
        sql: new SelfManagedPostgres(connection, sqlOptions),
      });
    }
    case 'AuroraGlobal': {
      const { region, globalClusterIdentifier, dbClusterIdentifier, endpointUrl } = provider.auroraGlobal;
      return new AuroraGlobalDatabase({
        region,
        globalClusterIdentifier,
        dbClusterIdentifier,
        ...(endpointUrl ? { endpointUrl } : {}),
        ...(secrets.providerApi
          ? { credentials: parseAwsCredentials(secrets.providerApi, 'auroraGlobal.credentialsSecretRef') }
          : {}),
        sql: new SelfManagedPostgres(connection, sqlOptions),
      });
    }
  }
}

/** Which Secret key holds the provider API credential, if the provider needs one. */
export function providerApiSecret(spec: ReplicaClusterSpec): { name: string; key: string } | undefined {
  const p = spec.provider;
  if (p.type === 'DigitalOcean') return p.digitalOcean.tokenSecretRef;
  if (p.type === 'AwsRds') return p.awsRds.credentialsSecretRef;
  if (p.type === 'AuroraGlobal') return p.auroraGlobal.credentialsSecretRef;
  return undefined;
}
