/**
 * The operator's probes of each ReplicaCluster, kept in memory: one pooled provider client per
 * cluster (rebuilt when its connection or credentials change), the latest observation, the run of
 * consecutive failures, and for a standby the last lag measured when the active primary was read
 * after it (by probe start times; an upper bound: see measureLagOfStandbys). Decisions read from here; status is the summary for people.
 *
 * Failures count time, not answers. A database that goes silent (packets dropped, a server
 * frozen) answers nothing until a driver timeout many seconds later; counting completions would
 * stretch "three failures" far beyond three intervals. So a probe has until its deadline (the
 * probe interval) to answer, or it is a Timeout failure, and the database is silent from when
 * that probe started. While it stays silent — its call still pending, or given up late without
 * an answer — each later probe counts one more failure at once, and only one call to it is ever
 * pending: a new one starts (in the background) only when the last has settled. Any answer
 * ends the silence.
 */
import { isDeepStrictEqual } from 'node:util';
import type { ReplicaClusterSpec } from '../../api/v1alpha1/index.ts';
import {
  createDatabaseProvider,
  type FactoryOptions,
  type ProviderSecrets,
  providerApiSecret,
} from '../../providers/database/factory.ts';
import { compareLsn, replicationLagBytes } from '../../providers/database/lsn.ts';
import type { DatabaseObservation, DatabaseProvider } from '../../providers/database/port.ts';
import { isProviderError, ProviderError, refusedTheProber } from '../../providers/errors.ts';
import type { Clock } from '../../runtime/clock.ts';
import { sharedStrings } from '../../runtime/interning.ts';
import type { KubeClient } from '../../runtime/kube-client.ts';
import type { Logger } from '../../runtime/logger.ts';
import type { Metrics } from '../../runtime/metrics.ts';
import { settledWithin } from '../../runtime/promises.ts';
import { SecretReader } from '../credentials.ts';
import { SecretWatches } from '../secret-watches.ts';
import { standbyLag } from './lag.ts';

export interface ProbeRecord {
  observation: DatabaseObservation;
  at: Date;
  consecutiveFailures: number;
  lastReachableAt?: Date;
  /**
   * For a standby: the last lag measured with a fresh primary observation, and when.
   * walBytesPerSecond: how fast the primary was writing WAL then (between its last two reads), so
   * how much the bytes move with the two reads' skew alone; undefined when not known.
   */
  lag?: { bytes: number; seconds: number; at: Date; walBytesPerSecond?: number };
  /**
   * The observation before this one, and when: a primary read that began before this one began
   * measures lag against it (see measureLagOfStandbys).
   */
  earlier?: { observation: DatabaseObservation; at: Date };
  /**
   * The server that last answered (DatabaseObservation.server), kept through failed probes, and
   * when it first answered, by this clock: a failed probe does not make one server two
   * (failover-policy/one-server.ts). Forgotten when the connection or the provider settings change.
   */
  server?: { id: string; since: Date; timeline?: number };
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
  /**
   * How long a probe may go unanswered before it counts as a failure: the probe interval.
   * Default: the interval `minIntervalMs` was taken from (callers set it at 80 % of the
   * interval), else DEFAULT_PROBE_TIMEOUT_MS.
   */
  timeoutMs?: number;
}

/** The deadline of a probe whose caller gave neither an interval nor a timeout. */
export const DEFAULT_PROBE_TIMEOUT_MS = 10_000;

export type ProviderFactory = (
  spec: ReplicaClusterSpec,
  secrets: ProviderSecrets,
  options: FactoryOptions,
) => DatabaseProvider;

interface Entry {
  provider: DatabaseProvider;
  /** What the provider was built from: the spec's connection and provider, and the Secrets' versions. */
  connection: ReplicaClusterSpec['connection'];
  providerSpec: ReplicaClusterSpec['provider'];
  versions: [user: string, password: string, api: string | undefined];
}

/** A call to a database that has not settled yet. */
interface Call {
  /** When it started, by the injected clock. */
  since: Date;
  /**
   * The verdict of the probe that started it and waits for it (an answer, or Timeout at the
   * deadline), shared with probes that come meanwhile. None for a call started in the background.
   */
  verdict?: Promise<ProbeRecord>;
  /** Past its deadline: from then on, each probe of the cluster is one more failure. */
  overdue: boolean;
}

export class ClusterProbes {
  private readonly entries = new Map<string, Entry>();
  /** How often each key was forgotten: a provider built across a forget is not cached. */
  private readonly forgotten = new Map<string, number>();
  private readonly records = new Map<string, ProbeRecord>();
  private readonly calls = new Map<string, Call>();
  /** standby key → the primary its lag is measured against, and how far apart the two reads may be. */
  private readonly lagPairs = new Map<string, { primaryKey: string; maxAgeMs: number }>();
  /** primary key → the standbys measured against it. */
  private readonly standbysOf = new Map<string, Set<string>>();
  /** Clusters that have not answered since a probe went past its deadline, and since when. */
  private readonly silentSince = new Map<string, Date>();
  /** Cached Secret reads; the policy reconciler reads DNS credentials through it too. */
  readonly secrets: SecretReader;
  private readonly secretWatches: SecretWatches | undefined;
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
    /** Keep Secrets read until a watch shows them changed (--watch-secrets; secret-watches.ts). */
    watchSecrets?: boolean;
  }) {
    this.secretWatches = options.watchSecrets
      ? new SecretWatches({ client: options.client, log: options.log, metrics: options.metrics })
      : undefined;
    this.secrets = new SecretReader(options.client, undefined, this.secretWatches);
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
    const generation = this.forgotten.get(target.key) ?? 0;
    const ref = spec.connection.credentialsSecretRef;
    // Cached Secrets are read without waiting (every probe); others from the API server.
    const read = (name: string, key: string) =>
      this.secrets.readCached(namespace, name, key) ?? this.secrets.read(namespace, name, key);
    const user = await read(ref.name, ref.usernameKey);
    const password = await read(ref.name, ref.passwordKey);
    const apiRef = providerApiSecret(spec);
    const api = apiRef ? await read(apiRef.name, apiRef.key) : undefined;
    // From here to the cache's update nothing awaits: two callers after one Secret rotation (a
    // probe, an action) build one provider, and the old one is closed once.
    if ((this.forgotten.get(target.key) ?? 0) !== generation)
      throw new Error(`ReplicaCluster ${target.key} was removed`);
    const existing = this.entries.get(target.key);
    const sameSettings = existing !== undefined && sameSpec(existing, spec);
    if (
      existing &&
      sameSettings &&
      existing.versions[0] === user.version &&
      existing.versions[1] === password.version &&
      existing.versions[2] === api?.version
    )
      return existing.provider;
    const provider = this.factory(
      spec,
      {
        database: { user: user.value, password: password.value },
        ...(api ? { providerApi: api.value } : {}),
      },
      {
        ...this.factoryOptions,
        now: () => this.clock.now(),
        // A fence replicates with the catalog; the new primary's heartbeat write lifts it. Say so.
        onLeftoverFenceRestored: (detail) =>
          this.log.warn(
            { cluster: target.key, detail },
            'lifted a fence the new primary inherited from its old primary',
          ),
      },
    );
    this.entries.set(target.key, {
      provider,
      connection: spec.connection,
      providerSpec: spec.provider,
      versions: [user.version, password.version, api?.version],
    });
    // Another database or other credentials: the read before is of what was there before. The
    // server it answered from is forgotten only with another database: new credentials reach the
    // same one.
    const record = this.records.get(target.key);
    const moved = existing !== undefined && !sameSettings;
    if (existing && (record?.earlier || (moved && record?.server)))
      this.records.set(target.key, {
        ...record,
        earlier: undefined,
        ...(moved ? { server: undefined } : {}),
      });
    if (existing) await existing.provider.close().catch(() => undefined);
    return provider;
  }

  /**
   * Probes one cluster; never throws, and answers within `timeoutMs`. Only one call to the
   * database is pending per cluster: while it is, or while the cluster stays silent, a probe
   * counts one more failure instead of waiting.
   */
  async probe(target: ProbeTarget): Promise<ProbeRecord> {
    const now = this.clock.now();
    const last = this.records.get(target.key);
    if (last && target.minIntervalMs && now.getTime() - last.at.getTime() < target.minIntervalMs) return last;
    const call = this.calls.get(target.key);
    if (call?.verdict && !call.overdue) return call.verdict;
    const silentSince = this.silentSince.get(target.key);
    if (call) return this.stillSilent(target, now, silentSince ?? call.since, 'a probe is still pending');
    if (silentSince) {
      // The last call gave up late, without an answer: the silence goes on, and counts now.
      // Ask again in the background; the next probe counts it if it is still pending then.
      this.call(target, now, { overdue: true });
      return this.stillSilent(target, now, silentSince, 'the last probe gave up');
    }
    const timeoutMs = probeTimeoutMs(target);
    const started = performance.now();
    const fresh = this.call(target, now, { overdue: false });
    fresh.verdict = settledWithin(fresh.answer, timeoutMs).then((answer) => {
      this.metrics?.probeDuration.observe(
        { provider: target.spec.provider.type },
        (performance.now() - started) / 1000,
      );
      if (answer) {
        if (!answer.reachable) this.countFailure(target, answer.failure?.reason ?? 'Unknown');
        return this.remember(target, now, answer);
      }
      fresh.overdue = true;
      this.silentSince.set(target.key, now);
      this.countFailure(target, 'Timeout');
      // A verdict reached at the deadline: the interval floor counts from here, not from the start.
      return this.remember(target, this.clock.now(), {
        reachable: false,
        role: 'Unknown',
        failure: { reason: 'Timeout', message: `no answer within the ${seconds(timeoutMs)} probe interval` },
        durationMs: performance.now() - started,
      });
    });
    return fresh.verdict;
  }

  /** Starts the one call to the database for this cluster; it is forgotten once it settles. */
  private call(
    target: ProbeTarget,
    now: Date,
    init: { overdue: boolean },
  ): Call & { answer: Promise<DatabaseObservation> } {
    const answer = this.attempt(target, now);
    const call = { since: now, overdue: init.overdue, answer };
    this.calls.set(target.key, call);
    // attempt never rejects, so a call nobody waits for cannot become an unhandled rejection.
    void answer.then((observation) => {
      if (this.calls.get(target.key) !== call) return;
      this.calls.delete(target.key);
      // An answer after all, however late, ends the silence; giving up does not.
      if (call.overdue && observation.reachable) this.silentSince.delete(target.key);
    });
    return call;
  }

  /** One more failure of a cluster that has given no answer since `since`. */
  private stillSilent(target: ProbeTarget, now: Date, since: Date, why: string): ProbeRecord {
    this.countFailure(target, 'Timeout');
    const silentMs = now.getTime() - since.getTime();
    return this.remember(target, now, {
      reachable: false,
      role: 'Unknown',
      failure: { reason: 'Timeout', message: `no answer for ${seconds(silentMs)} (${why})` },
      durationMs: silentMs,
    });
  }

  /** One call to the database (observe, then the heartbeat on the active primary); never rejects. */
  private async attempt(target: ProbeTarget, now: Date): Promise<DatabaseObservation> {
    const started = performance.now();
    try {
      const provider = await this.ensureProvider(target);
      const epoch = target.heartbeatEpoch;
      let observation: DatabaseObservation;
      let heartbeatError: unknown;
      if (epoch !== undefined && provider.observeWithHeartbeat) {
        ({ observation, heartbeatError } = await provider.observeWithHeartbeat(epoch, now));
      } else {
        observation = await provider.observe();
        if (epoch !== undefined && observation.reachable && observation.role === 'Primary') {
          await provider.writeHeartbeat(epoch, now).catch((err: unknown) => {
            heartbeatError = err;
          });
        }
      }
      if (observation.failure?.reason === 'AuthenticationFailed') this.forgetCredentials(target);
      if (heartbeatError !== undefined) {
        this.log.warn(
          { cluster: target.key, err: (heartbeatError as Error).message },
          'could not write the heartbeat',
        );
      }
      return observation;
    } catch (err) {
      const e = isProviderError(err) ? err : new ProviderError('ProviderError', (err as Error).message);
      if (e.reason === 'AuthenticationFailed') this.forgetCredentials(target);
      return {
        reachable: false,
        role: 'Unknown',
        failure: { reason: e.reason, message: e.message },
        durationMs: performance.now() - started,
      };
    }
  }

  private countFailure(target: ProbeTarget, reason: string): void {
    this.metrics?.probeFailures.inc({ provider: target.spec.provider.type, reason });
  }

  /** Records what a probe saw at `at`, carrying the run of failures and the last lag forward. */
  private remember(target: ProbeTarget, at: Date, observed: DatabaseObservation): ProbeRecord {
    const previous = this.records.get(target.key);
    // Kept until the next probe, twice over (as `earlier`): one copy of a failure's text for every
    // cluster that fails alike, not a concatenation per cluster. Not a timeout's, which counts the
    // silence to a tenth of a second: each would be a one-off that turns the table over.
    const failure = observed.failure;
    const observation: DatabaseObservation =
      failure && failure.reason !== 'Timeout'
        ? {
            ...observed,
            failure: {
              reason: sharedStrings.intern(failure.reason),
              message: sharedStrings.intern(failure.message),
            },
          }
        : observed;
    const answered = observation.reachable ? observation.server : undefined;
    const kept = previous?.server;
    const server =
      answered === undefined
        ? kept
        : kept?.id === answered && kept.timeline === observation.timeline
          ? kept
          : {
              id: answered,
              since: kept?.id === answered ? kept.since : at,
              ...(observation.timeline !== undefined ? { timeline: observation.timeline } : {}),
            };
    const record: ProbeRecord = {
      observation,
      at,
      consecutiveFailures: observation.reachable ? 0 : failuresInARow(previous, observation),
      ...(observation.reachable
        ? { lastReachableAt: at }
        : previous?.lastReachableAt
          ? { lastReachableAt: previous.lastReachableAt }
          : {}),
      ...(previous?.lag ? { lag: previous.lag } : {}),
      ...(previous ? { earlier: { observation: previous.observation, at: previous.at } } : {}),
      ...(server ? { server } : {}),
    };
    this.records.set(target.key, record);
    this.pairForLag(target);
    this.measureLagOfStandbys(target.key, at, observation);
    if (observation.reachable) this.silentSince.delete(target.key);
    return this.records.get(target.key) ?? record;
  }

  /** Remembers which primary a standby's lag is measured against, and how old a pairing may be. */
  private pairForLag(target: ProbeTarget): void {
    const was = this.lagPairs.get(target.key);
    const primaryKey = target.activePrimaryKey !== target.key ? target.activePrimaryKey : undefined;
    // Paired as before (every probe but the first after a change): it is in standbysOf already.
    if (was && primaryKey && was.primaryKey === primaryKey && was.maxAgeMs === target.primaryMaxAgeMs) return;
    if (was && was.primaryKey !== primaryKey) this.standbysOf.get(was.primaryKey)?.delete(target.key);
    if (!primaryKey) {
      this.lagPairs.delete(target.key);
      return;
    }
    this.lagPairs.set(target.key, { primaryKey, maxAgeMs: target.primaryMaxAgeMs });
    const set = this.standbysOf.get(primaryKey) ?? new Set<string>();
    set.add(target.key);
    this.standbysOf.set(primaryKey, set);
  }

  /**
   * Lag is measured when the primary is read, against each of its standbys' latest read that
   * began no later than the primary read began (by start times, which stand for when each was
   * read): the primary's position is then not older than the standby's, so the lag is not
   * understated (measured the other way round, a standby that replays past a stale primary
   * position would read 0 while it lags by everything written since). An upper bound, by at most
   * what the primary wrote between the two reads.
   */
  private measureLagOfStandbys(primaryKey: string, at: Date, primary: DatabaseObservation): void {
    const standbys = this.standbysOf.get(primaryKey);
    if (!standbys?.size) return;
    const walBytesPerSecond = walRate(this.records.get(primaryKey)?.earlier, at, primary);
    for (const standbyKey of standbys) {
      const standby = this.records.get(standbyKey);
      const pair = this.lagPairs.get(standbyKey);
      if (!standby || !pair) continue;
      // The standby's newest read, or, when that began after this primary read began (the primary
      // answered slower: its heartbeat write), the one before: two probes of the same interval
      // may finish in either order, and an order that repeats would leave the lag unmeasured.
      const before = (r: { at: Date }) => {
        const skew = at.getTime() - r.at.getTime();
        return skew >= 0 && skew <= pair.maxAgeMs;
      };
      const read = before(standby)
        ? standby
        : standby.earlier &&
            before(standby.earlier) &&
            continues(standby.earlier.observation, standby.observation)
          ? standby.earlier
          : undefined;
      if (!read) continue;
      const lag = standbyLag(primary, read.observation);
      // seconds is NaN when either side has no heartbeat yet: bytes are still worth keeping.
      if (lag)
        this.records.set(standbyKey, {
          ...standby,
          lag: {
            bytes: lag.bytes,
            seconds: lag.seconds,
            at: read.at,
            ...(walBytesPerSecond !== undefined ? { walBytesPerSecond } : {}),
          },
        });
    }
  }

  private forgetCredentials(target: Pick<ProbeTarget, 'namespace' | 'spec'>): void {
    this.secrets.forget(target.namespace, target.spec.connection.credentialsSecretRef.name);
    const api = providerApiSecret(target.spec);
    if (api) this.secrets.forget(target.namespace, api.name);
  }

  async forget(key: string): Promise<void> {
    const pair = this.lagPairs.get(key);
    if (pair) this.standbysOf.get(pair.primaryKey)?.delete(key);
    this.lagPairs.delete(key);
    const entry = this.entries.get(key);
    this.entries.delete(key);
    this.forgotten.set(key, (this.forgotten.get(key) ?? 0) + 1);
    this.records.delete(key);
    this.calls.delete(key);
    this.silentSince.delete(key);
    await entry?.provider.close().catch(() => undefined);
  }

  async closeAll(): Promise<void> {
    await Promise.all([...this.entries.keys()].map((k) => this.forget(k)));
    await this.secretWatches?.stop();
  }
}

/**
 * Whether a provider built for `entry` serves `spec`: the same connection and provider settings.
 * The parsed spec is one object for as long as the ReplicaCluster does not change (parseOnce), so
 * a probe compares references; a changed object whose settings are equal is compared in depth
 * once, and the entry takes its values, so the next probe compares references again.
 */
function sameSpec(entry: Entry, spec: ReplicaClusterSpec): boolean {
  if (entry.connection === spec.connection && entry.providerSpec === spec.provider) return true;
  if (
    !isDeepStrictEqual(entry.connection, spec.connection) ||
    !isDeepStrictEqual(entry.providerSpec, spec.provider)
  )
    return false;
  entry.connection = spec.connection;
  entry.providerSpec = spec.provider;
  return true;
}

/**
 * Whether the newest read shows the same standby further on than the earlier one: still a
 * standby, on the same timeline, replayed no less. Only then does the earlier read stand for it
 * (an upper bound on its lag); a database replaced, restarted behind its old position or moved to
 * another timeline in between says nothing about the earlier read's lag now.
 */
function continues(earlier: DatabaseObservation, newest: DatabaseObservation): boolean {
  return newest.reachable && newest.role === 'Standby' && movedOn(earlier, newest);
}

/** Both reads have a position, on one timeline, and the newest is no further back. */
function movedOn(earlier: DatabaseObservation, newest: DatabaseObservation): boolean {
  if (!newest.lsn || !earlier.lsn) return false;
  if (earlier.timeline !== undefined && newest.timeline !== earlier.timeline) return false;
  return compareLsn(newest.lsn, earlier.lsn) >= 0;
}

/**
 * Bytes of WAL a second a primary wrote between its read before and this one, at `at`: undefined
 * without both positions on one timeline, moving forward.
 */
function walRate(
  earlier: ProbeRecord['earlier'],
  at: Date,
  primary: DatabaseObservation,
): number | undefined {
  const before = earlier?.observation;
  if (!earlier || !before?.reachable || before.role !== 'Primary' || !movedOn(before, primary))
    return undefined;
  const ms = at.getTime() - earlier.at.getTime();
  if (ms <= 0) return undefined;
  return Math.round((replicationLagBytes(primary.lsn as string, before.lsn as string) * 1000) / ms);
}

function probeTimeoutMs(target: ProbeTarget): number {
  if (target.timeoutMs !== undefined) return target.timeoutMs;
  return target.minIntervalMs ? target.minIntervalMs / 0.8 : DEFAULT_PROBE_TIMEOUT_MS;
}

function seconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(ms % 1000 === 0 ? 0 : 1))} s`;
}

/**
 * The failures in a row, this one included: a run is of one kind. Refusals (the database turned
 * the prober away: refusedTheProber) are no evidence of an outage and count no vote, so a failure
 * of the other kind after them starts a run of its own: one timeout after an hour of a wrong
 * password is one failure, not a vote past the threshold.
 */
export function failuresInARow(previous: ProbeRecord | undefined, observation: DatabaseObservation): number {
  if (!previous || previous.observation.reachable) return 1;
  const refused = (o: DatabaseObservation) => refusedTheProber(o.failure?.reason);
  return refused(previous.observation) === refused(observation) ? previous.consecutiveFailures + 1 : 1;
}
