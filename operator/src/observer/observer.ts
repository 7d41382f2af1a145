/**
 * Observer mode: one per region. It probes the clusters of every policy it can see and publishes
 * what it saw as a FailoverObservation (one per policy and observer) through the Kubernetes API
 * where the policy lives. It never acts: the operator counts fresh observations from distinct
 * observers, so a primary is declared down only on positive evidence from several places.
 *
 * Observers are built from the same parts as the operator: informers for the policies and
 * clusters, a keyed queue whose reconcile is one probe round per policy (`requeueAfter` the
 * policy's interval), and the same probe code — minus the heartbeat, which only the operator writes.
 */
import {
  type FailoverObservationSpec,
  type FailoverPolicySpec,
  failoverPolicySpec,
  failoverPolicyStatus,
  type ReplicaClusterSpec,
  replicaClusterSpec,
} from '../api/v1alpha1/index.ts';
import { parseOnce } from '../api/validate.ts';
import { maxObservationAgeMs } from '../controllers/failover-policy/detection.ts';
import { AppEndpointChecks, appCheckTimeoutMs } from '../controllers/replica-cluster/app-endpoints.ts';
import { ClusterProbes } from '../controllers/replica-cluster/probes.ts';
import { PROBE_WAIT_MS } from '../controllers/replica-cluster/reconciler.ts';
import { failoverObservationType, failoverPolicyType, replicaClusterType } from '../controllers/resources.ts';
import { HttpAppEndpointChecker } from '../providers/app/http.ts';
import { waitForCacheSync } from '../runtime/cache-sync.ts';
import type { Clock } from '../runtime/clock.ts';
import { Controller } from '../runtime/controller.ts';
import { Informer, objectKey } from '../runtime/informer.ts';
import { isForbidden, isNotFound, type KubeClient, type KubeObject } from '../runtime/kube-client.ts';
import type { Logger } from '../runtime/logger.ts';
import type { Metrics } from '../runtime/metrics.ts';
import { settledWithin } from '../runtime/promises.ts';
import { done, type ReconcileResult, requeueAfter } from '../runtime/reconcile.ts';
import { timestamp } from '../runtime/time.ts';

export interface ObserverOptions {
  client: KubeClient;
  clock: Clock;
  log: Logger;
  metrics: Metrics;
  name: string;
  region?: string;
  namespace?: string;
  /** namespace/cluster → host:port, for clusters this region reaches through another address. */
  endpointOverrides?: Map<string, { host: string; port: number }>;
  resyncMs?: number;
  /** Keep Secrets read until a watch shows them changed (--watch-secrets). */
  watchSecrets?: boolean;
}

/** What a round saw of one cluster, as the observation carries it. */
type ClusterSeen = FailoverObservationSpec['clusters'][number];

export function parseEndpointOverrides(
  text: string | undefined,
): Map<string, { host: string; port: number }> {
  const map = new Map<string, { host: string; port: number }>();
  for (const item of (text ?? '').split(',').filter(Boolean)) {
    const [key, address] = item.split('=');
    const at = address?.lastIndexOf(':') ?? -1;
    if (key && address && at > 0)
      map.set(key, { host: address.slice(0, at), port: Number(address.slice(at + 1)) });
  }
  return map;
}

export class Observer {
  private readonly opts: ObserverOptions;
  private readonly policies: Informer<KubeObject>;
  private readonly clusters: Informer<KubeObject>;
  private readonly probes: ClusterProbes;
  private readonly appChecks: AppEndpointChecks;
  private readonly lastRound = new Map<string, number>();
  /**
   * Rounds that stopped waiting for their probes (see round), with what they are waiting for:
   * the verdicts wake the round, which publishes them then without probing again.
   */
  private readonly unfinished = new Map<
    string,
    { startedAt: number; uid: string | undefined; seen: Promise<(ClusterSeen | undefined)[]> }
  >();
  /** Per policy: what was last written (without what moves every round), when, and for which policy. */
  private readonly published = new Map<string, { meaning: string; at: number; uid: string | undefined }>();
  readonly controller: Controller;
  private stopping = false;
  /** Whether the API server refused its observations an owner (see createObservation). */
  private readonly owners = { refused: false };

  constructor(options: ObserverOptions) {
    this.opts = options;
    const { client, log, metrics, namespace, resyncMs } = options;
    this.policies = new Informer({
      client,
      type: failoverPolicyType,
      namespace: namespace || undefined,
      log,
      metrics,
      resyncMs,
    });
    this.clusters = new Informer({
      client,
      type: replicaClusterType,
      namespace: namespace || undefined,
      log,
      metrics,
      resyncMs,
    });
    this.appChecks = new AppEndpointChecks(new HttpAppEndpointChecker(), options.clock);
    this.probes = new ClusterProbes({
      client,
      clock: options.clock,
      log,
      metrics,
      factoryOptions: { applicationName: `failover-observer-${options.name}` },
      watchSecrets: options.watchSecrets ?? false,
    });
    this.controller = new Controller({
      name: 'observer',
      reconcile: (key) => this.round(key),
      log,
      metrics,
      concurrency: 8,
    });
    this.policies.on((event) => {
      if (event.type !== 'deleted') this.controller.enqueue(objectKey(event.object));
    });
    // A deleted cluster's sessions close now, not when its pool's idle timeout runs out: they
    // hold connection slots and keep its database from being dropped.
    this.clusters.on((event) => {
      if (event.type === 'deleted') void this.probes.forget(objectKey(event.object));
    });
  }

  /** Starts the caches, then probing once they are synced (a cluster not listed yet is not probed). */
  async start(): Promise<void> {
    this.policies.start();
    this.clusters.start();
    const synced = await waitForCacheSync([this.policies, this.clusters], {
      log: this.opts.log,
      stopped: () => this.stopping,
    });
    if (synced) this.controller.start();
  }

  readiness(): { ok: boolean; reasons: string[] } {
    const reasons = [this.policies, this.clusters]
      .filter((i) => !i.synced)
      .map((i) => `cache of ${i.resource} not synced`);
    return { ok: reasons.length === 0, reasons };
  }

  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    await this.controller.stop(graceMs);
    await Promise.all([this.policies.stop(), this.clusters.stop()]);
    await this.probes.closeAll();
  }

  /** One probe round for one policy: probe each of its clusters, publish what was seen. */
  private async round(key: string): Promise<ReconcileResult> {
    const policy = this.policies.get(key);
    // Taken whatever happens next, so an unfinished round never outlives one more look.
    const waiting = this.unfinished.get(key);
    this.unfinished.delete(key);
    if (!policy) {
      this.lastRound.delete(key);
      this.published.delete(key);
      return done();
    }
    const spec = parseOnce(failoverPolicySpec, policy.spec);
    if (!spec.ok) return done();
    const namespace = policy.metadata.namespace ?? 'default';
    const interval = spec.value.detection.probeIntervalSeconds;
    // One round per interval, however often the policy changes: a failure count must mean time.
    // A round its probes woke goes on as the round it was (its start, its cadence, its probes),
    // for the same policy and within its interval; later, a new round starts.
    const now = this.opts.clock.now().getTime();
    const resumed =
      waiting && waiting.uid === policy.metadata.uid && now - waiting.startedAt < interval * 1000
        ? waiting
        : undefined;
    const startedAt = resumed?.startedAt ?? now;
    if (!resumed) {
      const sinceLast = now - (this.lastRound.get(key) ?? 0);
      if (sinceLast < interval * 800) return requeueAfter(interval * 1000 - sinceLast);
      this.lastRound.set(key, startedAt);
    }
    const names = [spec.value.primary, ...spec.value.standbys];
    const status = parseOnce(failoverPolicyStatus, policy.status ?? {});
    // As the policy's status records it (never spec.primary, which may name a former primary).
    const active = status.ok ? status.value.activePrimary : undefined;
    const probing =
      resumed?.seen ??
      Promise.all(
        names.map(async (name): Promise<ClusterSeen | undefined> => {
          const clusterKey = objectKey({ metadata: { name, namespace } });
          const object = this.clusters.get(clusterKey);
          const parsed = object ? parseOnce(replicaClusterSpec, object.spec) : undefined;
          if (!parsed?.ok) return undefined;
          const override = this.opts.endpointOverrides?.get(clusterKey);
          const clusterSpec = override
            ? { ...parsed.value, connection: { ...parsed.value.connection, ...override } }
            : parsed.value;
          const [record, apps] = await Promise.all([
            this.probe(clusterKey, namespace, clusterSpec, active, interval),
            this.appChecks.check(clusterKey, clusterSpec.appEndpoints, appCheckTimeoutMs(interval)),
          ]);
          const obs = record.observation;
          const unhealthy = apps?.checks.filter((c) => !c.healthy).map((c) => c.name) ?? [];
          return {
            name,
            reachable: obs.reachable,
            role: obs.reachable ? obs.role : ('Unknown' as const),
            consecutiveFailures: record.consecutiveFailures,
            ...(record.lastReachableAt ? { lastSuccessTime: timestamp(record.lastReachableAt) } : {}),
            ...(obs.failure ? { failureReason: obs.failure.reason } : {}),
            ...(obs.lsn ? { lsn: obs.lsn } : {}),
            ...(apps ? { appEndpointsHealthy: unhealthy.length === 0 } : {}),
            ...(unhealthy.length ? { unhealthyAppEndpoints: unhealthy } : {}),
          };
        }),
      );
    // A database a round trip away, or a silent one (judged at its probe's deadline, an interval
    // on), would hold one of the few workers that long: with a region lost, 2,000 policies on 8
    // workers took 2,000 / 8 intervals (21 minutes) to see their primaries silent once. Past a
    // short wait the round returns, and the verdicts wake it.
    const probes = await settledWithin(probing, PROBE_WAIT_MS);
    if (!probes) {
      this.unfinished.set(key, { startedAt, uid: policy.metadata.uid, seen: probing });
      const wake = () => this.controller.enqueue(key);
      void probing.then(wake, wake);
      const took = this.opts.clock.now().getTime() - startedAt;
      return requeueAfter(Math.max(interval * 1000 - took, 0));
    }
    const observation: FailoverObservationSpec = {
      policy: policy.metadata.name,
      observer: this.opts.name,
      ...(this.opts.region ? { region: this.opts.region } : {}),
      observedAt: timestamp(this.opts.clock.now()),
      probeIntervalSeconds: interval,
      clusters: probes.filter((p) => p !== undefined),
    };
    // A policy deleted and made again under the same name lost its observation with the old one.
    const last = this.published.get(key);
    const mine = last?.uid === policy.metadata.uid ? last : undefined;
    const meaning = meaningOf(observation, spec.value.detection.failureThreshold);
    if (publishDue(mine, meaning, refreshMs(spec.value), startedAt, interval * 1000)) {
      this.published.delete(key);
      await this.publish(namespace, observation, policy);
      this.published.set(key, { meaning, at: startedAt, uid: policy.metadata.uid });
    }
    // The next round one interval after this one started, not after it ended: a round that
    // waited out a silent database must not stretch the interval.
    const took = this.opts.clock.now().getTime() - startedAt;
    return requeueAfter(Math.max(interval * 1000 - took, 0));
  }

  private probe(
    key: string,
    namespace: string,
    spec: ReplicaClusterSpec,
    active: string | undefined,
    interval: number,
  ) {
    return this.probes.probe({
      key,
      namespace,
      spec,
      ...(active ? { activePrimaryKey: objectKey({ metadata: { name: active, namespace } }) } : {}),
      primaryMaxAgeMs: interval * 2000 + 1000,
      minIntervalMs: interval * 800,
      // A database that does not answer within the interval counts as failed then, so a round
      // takes about one interval however long a silent database keeps the call.
      timeoutMs: interval * 1000,
    });
  }

  private async publish(namespace: string, spec: FailoverObservationSpec, policy: KubeObject): Promise<void> {
    const name = `${spec.policy}.${spec.observer}`;
    try {
      await this.opts.client.mergePatch(failoverObservationType, namespace, name, { spec });
    } catch (err) {
      if (!isNotFound(err)) throw err;
      await createObservation(this.opts.client, this.owners, this.opts.log, namespace, spec, policy);
    }
  }
}

/**
 * Creates an observation owned by its policy, so the garbage collector deletes it with the
 * policy. Where OwnerReferencesPermissionEnforcement (OpenShift) refuses the owner (the observer
 * may not delete observations, and needs not), it is created without one: an observation outlives
 * a deleted policy rather than the observer going blind. Said once; later creates skip the owner.
 */
export async function createObservation(
  client: KubeClient,
  owners: { refused: boolean },
  log: Logger,
  namespace: string,
  spec: FailoverObservationSpec,
  policy: KubeObject,
): Promise<void> {
  const name = `${spec.policy}.${spec.observer}`;
  const object = (withOwner: boolean) => ({
    apiVersion: 'regionfailover.io/v1alpha1',
    kind: 'FailoverObservation',
    metadata: {
      name,
      namespace,
      labels: { 'regionfailover.io/policy': spec.policy, 'regionfailover.io/observer': spec.observer },
      ...(withOwner
        ? {
            ownerReferences: [
              {
                apiVersion: 'regionfailover.io/v1alpha1',
                kind: 'FailoverPolicy',
                name: policy.metadata.name,
                uid: policy.metadata.uid,
              },
            ],
          }
        : {}),
    },
    spec,
  });
  if (owners.refused) {
    await client.create(failoverObservationType, namespace, object(false));
    return;
  }
  try {
    await client.create(failoverObservationType, namespace, object(true));
  } catch (err) {
    if (!isForbidden(err)) throw err;
    // Refused for the owner, or refused outright: the second attempt tells which.
    await client.create(failoverObservationType, namespace, object(false));
    owners.refused = true;
    log.warn(
      { err: (err as Error).message },
      'observations are created without an owner: the API server refused the owner reference; they stay after their policy is deleted',
    );
  }
}

/**
 * Whether this round writes its observation: a change at once; the same view again in the last
 * round before the last write would be older than the refresh period. Rounds are counted, not
 * milliseconds: they drift by a few, which must not make a write flap between rounds.
 */
export function publishDue(
  last: { meaning: string; at: number } | undefined,
  /** meaningOf this round's observation. */
  meaning: string,
  refresh: number,
  now: number,
  interval: number,
): boolean {
  if (!last || last.meaning !== meaning) return true;
  const rounds = Math.round((now - last.at) / interval);
  return (rounds + 1) * interval > refresh;
}

/**
 * What an observation says, without what moves every round while nothing happens: the time, the
 * last success of a cluster still reached, its WAL position (the operator measures lag from its
 * own probes). A change of anything else (reached or not, a failure counted, a role, an app
 * endpoint) is written in the round that saw it, so detection is not slowed.
 *
 * Failures in a row count up to the policy's failureThreshold and no further: past it a vote says
 * "down" however many more there are (judgePrimary), so a cluster that stays down is written at
 * the refresh rate, not every round. What is written keeps the real count with its own time, so
 * the first failed probe counted back from them (detectionMoments) stays the same instant.
 */
export function meaningOf(observation: FailoverObservationSpec, failureThreshold: number): string {
  const clusters = observation.clusters.map(({ lastSuccessTime: _t, lsn: _l, ...rest }) => ({
    ...rest,
    consecutiveFailures: Math.min(rest.consecutiveFailures, failureThreshold),
  }));
  return JSON.stringify({ ...observation, observedAt: undefined, clusters });
}

/**
 * How often an unchanged observation is written again: at most half the age past which the
 * operator ignores it (detection.observationMaxAgeSeconds, by default 3 intervals + 5 s), leaving
 * a round late by half an interval, the write and the operator's read, and clocks a few seconds
 * apart (REFRESH_MARGIN_MS) inside that age; never more than once a round. At the default 5 s
 * interval that is every 10 s instead of every 5 s; at 1 s, every 2 s. A healthy observer's
 * writes are then bounded by policies / refresh, not by rounds.
 */
export function refreshMs(spec: FailoverPolicySpec): number {
  const interval = spec.detection.probeIntervalSeconds * 1000;
  const maxAge = maxObservationAgeMs(spec);
  return Math.max(interval, Math.min(maxAge / 2, maxAge - interval - REFRESH_MARGIN_MS));
}

const REFRESH_MARGIN_MS = 5_000;
