/**
 * The operator's probes of each ReplicaCluster, kept in memory: one pooled provider client per
 * cluster (rebuilt when its connection or credentials change), the latest observation, the run of
 * consecutive failures, and for a standby the last lag measured against a fresh observation of
 * the active primary. Decisions read from here; status is the summary for people.
 */
import { isDeepStrictEqual } from 'node:util';
import type { ReplicaClusterSpec } from '../../api/v1alpha1/index.ts';
import {
  createDatabaseProvider,
  type FactoryOptions,
  type ProviderSecrets,
  providerApiSecret,
} from '../../providers/database/factory.ts';
import type { DatabaseObservation, DatabaseProvider } from '../../providers/database/port.ts';
import { isProviderError, ProviderError } from '../../providers/errors.ts';
import type { Clock } from '../../runtime/clock.ts';
import type { KubeClient } from '../../runtime/kube-client.ts';
import type { Logger } from '../../runtime/logger.ts';
import type { Metrics } from '../../runtime/metrics.ts';
import { SecretReader } from '../credentials.ts';
import { standbyLag } from './lag.ts';

export interface ProbeRecord {
  observation: DatabaseObservation;
  at: Date;
  consecutiveFailures: number;
  lastReachableAt?: Date;
  /** For a standby: the last lag measured with a fresh primary observation, and when. */
  lag?: { bytes: number; seconds: number; at: Date };
}

export interface ProbeTarget {
  key: string;
  namespace: string;
  spec: ReplicaClusterSpec;
  /** Key of the active primary of this cluster's policy, for lag; undefined without a policy. */
  activePrimaryKey?: string;
  /** The operator writes its heartbeat (with the policy's epoch) only to the active primary. */
  heartbeatEpoch?: number;
  /** A primary observation older than this is too old to measure lag against. */
  primaryMaxAgeMs: number;
  /**
   * A probe sooner than this after the last one returns the last result instead. Reconciles come
   * from timers and from events; without this floor, a burst of events would count several
   * "consecutive failures" within one probe interval and shrink the detection window.
   */
  minIntervalMs?: number;
}

export type ProviderFactory = (
  spec: ReplicaClusterSpec,
  secrets: ProviderSecrets,
  options: FactoryOptions,
) => DatabaseProvider;

interface Entry {
  provider: DatabaseProvider;
  fingerprint: unknown;
}

export class ClusterProbes {
  private readonly entries = new Map<string, Entry>();
  private readonly records = new Map<string, ProbeRecord>();
  /** Cached Secret reads; the policy reconciler reads DNS credentials through it too. */
  readonly secrets: SecretReader;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly metrics: Metrics | undefined;
  private readonly factory: ProviderFactory;
  private readonly factoryOptions: FactoryOptions;

  constructor(options: {
    client: KubeClient;
    clock: Clock;
    log: Logger;
    metrics?: Metrics;
    factory?: ProviderFactory;
    factoryOptions?: Partial<FactoryOptions>;
  }) {
    this.secrets = new SecretReader(options.client);
    this.clock = options.clock;
    this.log = options.log;
    this.metrics = options.metrics;
    this.factory = options.factory ?? createDatabaseProvider;
    this.factoryOptions = {
      connectTimeoutMs: 3_000,
      statementTimeoutMs: 5_000,
      applicationName: 'failover-operator',
      ...options.factoryOptions,
    };
  }

  latest(key: string): ProbeRecord | undefined {
    return this.records.get(key);
  }

  /** The pooled client for a cluster, for actions (promote, fence) between probes. */
  async providerFor(target: Pick<ProbeTarget, 'key' | 'namespace' | 'spec'>): Promise<DatabaseProvider> {
    return this.ensureProvider(target);
  }

  private async ensureProvider(
    target: Pick<ProbeTarget, 'key' | 'namespace' | 'spec'>,
  ): Promise<DatabaseProvider> {
    const { spec, namespace } = target;
    const ref = spec.connection.credentialsSecretRef;
    const user = await this.secrets.read(namespace, ref.name, ref.usernameKey);
    const password = await this.secrets.read(namespace, ref.name, ref.passwordKey);
    const apiRef = providerApiSecret(spec);
    const api = apiRef ? await this.secrets.read(namespace, apiRef.name, apiRef.key) : undefined;
    const fingerprint = {
      connection: spec.connection,
      provider: spec.provider,
      versions: [user.version, password.version, api?.version],
    };
    const existing = this.entries.get(target.key);
    if (existing && isDeepStrictEqual(existing.fingerprint, fingerprint)) return existing.provider;
    if (existing) await existing.provider.close().catch(() => undefined);
    const provider = this.factory(
      spec,
      {
        database: { user: user.value, password: password.value },
        ...(api ? { providerApi: api.value } : {}),
      },
      this.factoryOptions,
    );
    this.entries.set(target.key, { provider, fingerprint });
    return provider;
  }

  /** Probes one cluster; never throws. */
  async probe(target: ProbeTarget): Promise<ProbeRecord> {
    const now = this.clock.now();
    const last = this.records.get(target.key);
    if (last && target.minIntervalMs && now.getTime() - last.at.getTime() < target.minIntervalMs) return last;
    const started = performance.now();
    let observation: DatabaseObservation;
    try {
      const provider = await this.ensureProvider(target);
      observation = await provider.observe();
      if (target.heartbeatEpoch !== undefined && observation.reachable && observation.role === 'Primary') {
        await provider.writeHeartbeat(target.heartbeatEpoch, now).catch((err: unknown) => {
          this.log.warn(
            { cluster: target.key, err: (err as Error).message },
            'could not write the heartbeat',
          );
        });
      }
    } catch (err) {
      const e = isProviderError(err) ? err : new ProviderError('ProviderError', (err as Error).message);
      if (e.reason === 'AuthenticationFailed') this.forgetCredentials(target);
      observation = {
        reachable: false,
        role: 'Unknown',
        failure: { reason: e.reason, message: e.message },
        durationMs: performance.now() - started,
      };
    }
    if (observation.failure?.reason === 'AuthenticationFailed') this.forgetCredentials(target);
    this.metrics?.probeDuration.observe(
      { provider: target.spec.provider.type },
      (performance.now() - started) / 1000,
    );
    if (!observation.reachable)
      this.metrics?.probeFailures.inc({
        provider: target.spec.provider.type,
        reason: observation.failure?.reason ?? 'Unknown',
      });

    const previous = this.records.get(target.key);
    const record: ProbeRecord = {
      observation,
      at: now,
      consecutiveFailures: observation.reachable ? 0 : (previous?.consecutiveFailures ?? 0) + 1,
      ...(observation.reachable
        ? { lastReachableAt: now }
        : previous?.lastReachableAt
          ? { lastReachableAt: previous.lastReachableAt }
          : {}),
      ...(previous?.lag ? { lag: previous.lag } : {}),
    };
    const primary =
      target.activePrimaryKey && target.activePrimaryKey !== target.key
        ? this.records.get(target.activePrimaryKey)
        : undefined;
    if (primary && now.getTime() - primary.at.getTime() <= target.primaryMaxAgeMs) {
      const lag = standbyLag(primary.observation, observation);
      // seconds is NaN when either side has no heartbeat yet: bytes are still worth keeping.
      if (lag) record.lag = { bytes: lag.bytes, seconds: lag.seconds, at: now };
    }
    this.records.set(target.key, record);
    return record;
  }

  private forgetCredentials(target: Pick<ProbeTarget, 'namespace' | 'spec'>): void {
    this.secrets.forget(target.namespace, target.spec.connection.credentialsSecretRef.name);
    const api = providerApiSecret(target.spec);
    if (api) this.secrets.forget(target.namespace, api.name);
  }

  async forget(key: string): Promise<void> {
    const entry = this.entries.get(key);
    this.entries.delete(key);
    this.records.delete(key);
    await entry?.provider.close().catch(() => undefined);
  }

  async closeAll(): Promise<void> {
    await Promise.all([...this.entries.keys()].map((k) => this.forget(k)));
  }
}
