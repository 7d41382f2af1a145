/**
 * What the RDS and Aurora adapter tests share: moto_server for the AWS API, a real PostgreSQL
 * primary and standby for the SQL side (moto runs no database), and cleanup of every client and
 * adapter a test makes.
 */
import { RDSClient } from '@aws-sdk/client-rds';
import { SelfManagedPostgres } from '../../../operator/src/providers/database/self-managed.ts';
import { MotoServer } from '../../harness/moto.ts';
import { type PostgresNodeName, type PostgresPair, startPostgresPair } from '../../harness/postgres.ts';

export class AwsDatabaseFixture {
  readonly moto: MotoServer;
  readonly pair: PostgresPair;
  private readonly clients: RDSClient[] = [];
  private readonly closables: { close(): Promise<void> }[] = [];

  private constructor(moto: MotoServer, pair: PostgresPair) {
    this.moto = moto;
    this.pair = pair;
  }

  static async start(name: string): Promise<AwsDatabaseFixture> {
    const [moto, pair] = await Promise.all([MotoServer.start({ name }), startPostgresPair({ name })]);
    return new AwsDatabaseFixture(moto, pair);
  }

  /** A real SDK client for `region`, pointed at moto. */
  rdsClient(region: string): RDSClient {
    const client = new RDSClient({
      region,
      endpoint: this.moto.endpoint,
      credentials: this.moto.credentials,
    });
    this.clients.push(client);
    return client;
  }

  /** The real SQL adapter for a node of the pair, or a port where nothing listens; the adapter given it closes it. */
  sqlSide(node: PostgresNodeName | { unreachablePort: number }): SelfManagedPostgres {
    const connection =
      typeof node === 'string'
        ? this.pair.connection(node)
        : this.pair.connection('primary', { port: node.unreachablePort });
    return new SelfManagedPostgres(connection, { connectTimeoutMs: 3_000 });
  }

  /** Closes `adapter` when the fixture stops. */
  track<T extends { close(): Promise<void> }>(adapter: T): T {
    this.closables.push(adapter);
    return adapter;
  }

  async stop(): Promise<void> {
    await Promise.all(this.closables.map((c) => c.close()));
    for (const c of this.clients) c.destroy();
    await Promise.all([this.moto.stop(), this.pair.stop()]);
  }
}
