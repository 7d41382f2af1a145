/**
 * The manager wires the operator together, as controller-runtime's does: informers (running on
 * every replica, so a standby replica has a warm cache), controllers (running only on the
 * elected leader), the event recorder and the probes.
 */

import { isDeepStrictEqual } from 'node:util';
import { type FailoverObservationSpec, failoverPolicySpec } from './api/v1alpha1/index.ts';
import { parseOnce } from './api/validate.ts';
import { claimOrder, clustersNamed, hasTakenUp } from './controllers/claims.ts';
import type { OperatorContext } from './controllers/context.ts';
import { CanaryWriters } from './controllers/failover-policy/canaries.ts';
import { maxObservationAgeMs } from './controllers/failover-policy/detection.ts';
import { reconcileFailoverPolicy } from './controllers/failover-policy/reconciler.ts';
import { SplitBrainWatch } from './controllers/failover-policy/split-brain.ts';
import { VoteExpiries } from './controllers/failover-policy/vote-expiries.ts';
import { AppEndpointChecks } from './controllers/replica-cluster/app-endpoints.ts';
import { ClusterProbes } from './controllers/replica-cluster/probes.ts';
import {
  type ReplicaClusterReconciler,
  reconcileReplicaCluster,
} from './controllers/replica-cluster/reconciler.ts';
import { failoverObservationType, failoverPolicyType, replicaClusterType } from './controllers/resources.ts';
import { meaningOf } from './observer/observer.ts';
import { HttpAppEndpointChecker } from './providers/app/http.ts';
import type { CanaryWriterFactory } from './providers/canary/port.ts';
import { PostgresCanaryWriter } from './providers/canary/postgres-canary.ts';
import { type DnsProviderType, DnsReadBudgets, parseDnsReadRates } from './providers/dns/read-budget.ts';
import { waitForCacheSync } from './runtime/cache-sync.ts';
import type { Clock } from './runtime/clock.ts';
import { Controller } from './runtime/controller.ts';
import { EventRecorder } from './runtime/events.ts';
import { Informer, keyParts, objectKey } from './runtime/informer.ts';
import type { KubeClient, KubeObject } from './runtime/kube-client.ts';
import type { Logger } from './runtime/logger.ts';
import type { Metrics } from './runtime/metrics.ts';
import { shardOf } from './runtime/shards.ts';
import type { StatusSource } from './status-page/server.ts';

export interface ManagerOptions {
  client: KubeClient;
  clock: Clock;
  /** Randomness for backoff jitter; Math.random unless a test injects its own. */
  random?: () => number;
  log: Logger;
  metrics: Metrics;
  identity: string;
  namespace?: string;
  concurrency?: number;
  resyncMs?: number;
  /** Reads a second of policies' DNS records that can wait, per provider type (--dns-reads-per-second). */
  dnsReadRates?: Record<DnsProviderType, number>;
  /** How drills' canary writers are made; tests may inject their own. */
  canaryWriter?: CanaryWriterFactory;
  /** Keep Secrets read until a watch shows them changed (--watch-secrets). */
  watchSecrets?: boolean;
}

/** Which policies this replica reconciles, when the operator is sharded (--shards). */
export interface Ownership {
  shards: number;
  owns: (shard: number) => boolean;
}

export class Manager {
  readonly context: OperatorContext;
  readonly controllers: Controller[];
  private readonly informers: Informer<KubeObject>[];
  /** cluster key → keys of the policies that name it, so a cluster change wakes its policies. */
  private readonly policiesByCluster = new Map<string, Set<string>>();
  /** policy key → keys of the clusters it names (the reverse of policiesByCluster). */
  private readonly clustersByPolicy = new Map<string, string[]>();
  /**
   * policy key → keys of the FailoverObservations about it: a policy's reconcile read its votes by
   * scanning every observation (policies × observers of them), each time.
   */
  private readonly observationsByPolicy = new Map<string, Set<string>>();
  /** observation key → the key of the policy it is about (the reverse of observationsByPolicy). */
  private readonly policyOfObservation = new Map<string, string>();
  private readonly clusterReconciler: ReplicaClusterReconciler;
  /** When each observer's vote on each policy goes stale: the policy is looked at then. */
  private readonly voteExpiries: VoteExpiries;
  private ownership: Ownership | undefined;
  private controllersStarted = false;
  private stopping = false;

  constructor(options: ManagerOptions) {
    const { client, log, metrics, namespace, resyncMs } = options;
    const informer = (type: typeof failoverPolicyType) =>
      new Informer<KubeObject>({ client, type, namespace: namespace || undefined, log, metrics, resyncMs });
    const policies = informer(failoverPolicyType);
    const clusters = informer(replicaClusterType);
    const observations = informer(failoverObservationType);
    const events = new EventRecorder({
      client,
      clock: options.clock,
      log,
      controller: 'regionfailover.io/operator',
      instance: options.identity,
      metrics,
    });
    const probes = new ClusterProbes({
      client,
      clock: options.clock,
      log,
      metrics,
      watchSecrets: options.watchSecrets ?? false,
    });
    this.voteExpiries = new VoteExpiries(options.clock, (policyKey) =>
      this.controllers[0]?.enqueue(policyKey),
    );
    this.context = {
      voteExpiries: this.voteExpiries,
      client,
      clock: options.clock,
      random: options.random ?? Math.random,
      log,
      metrics,
      events,
      policies,
      clusters,
      observations,
      observationsOf: (policyKey) =>
        [...(this.observationsByPolicy.get(policyKey) ?? [])].flatMap((key) => {
          const observation = observations.get(key);
          return observation ? [observation] : [];
        }),
      probes,
      appChecks: new AppEndpointChecks(new HttpAppEndpointChecker(), options.clock),
      splitBrain: new SplitBrainWatch(),
      dnsReads: new DnsReadBudgets(options.dnsReadRates ?? parseDnsReadRates(''), () =>
        options.clock.now().getTime(),
      ),
      canaries: new CanaryWriters(
        options.canaryWriter ?? ((target) => new PostgresCanaryWriter(target, { log, metrics })),
      ),
      identity: options.identity,
      // In claim order: the first is the policy the cluster belongs to (claims.ts).
      policiesOf: (clusterKey) => this.policiesNaming(clusterKey),
      enqueueCluster: (clusterKey) => this.controllers[1]?.enqueue(clusterKey),
      enqueuePolicies: (clusterKey) => {
        for (const p of this.policiesByCluster.get(clusterKey) ?? []) this.controllers[0]?.enqueue(p);
      },
    };
    this.informers = [policies, clusters, observations];

    const concurrency = options.concurrency ?? 4;
    const policyController = new Controller({
      name: 'failoverpolicy',
      reconcile: reconcileFailoverPolicy(this.context),
      log,
      metrics,
      concurrency,
      owns: (key) => this.ownsPolicy(key),
    });
    // Probes wait on the network: a nearby database at most PROBE_WAIT_MS, a far or silent one not
    // at all (probeWaitMs, replica-cluster/reconciler.ts).
    this.clusterReconciler = reconcileReplicaCluster(this.context);
    const clusterController = new Controller({
      name: 'replicacluster',
      reconcile: this.clusterReconciler,
      log,
      metrics,
      concurrency: Math.max(16, concurrency * 4),
      owns: (key) => this.ownsCluster(key),
    });
    this.controllers = [policyController, clusterController];

    policies.on((event) => {
      const key = objectKey(event.object);
      // The clusters it named before this change too: one dropped may move to another shard.
      const before = this.clustersByPolicy.get(key) ?? [];
      this.indexPolicy(key, event.type === 'deleted' ? undefined : event.object);
      // Not on a change of status alone, which is this operator's own write: reacting to it would
      // retry a failing step at once, round and round, instead of after its backoff.
      // A deletion too: the reconcile of a key that is gone stops its canary and drops its series.
      if (!(event.type === 'updated' && onlyStatusChanged(event.old, event.object)))
        policyController.enqueue(key);
      // A new policy changes who is primary and how often to probe: look at its clusters now.
      // On a change of spec, or a policy gone, at the other policies naming them too, whose claim
      // on them may have changed (claims.ts); on a status write only when it changed which
      // clusters the status has taken up (a status cleared): others would skip their backoff.
      if (event.type !== 'resync') {
        const after = this.clustersByPolicy.get(key) ?? [];
        const claims =
          !(event.type === 'updated' && onlyStatusChanged(event.old, event.object)) ||
          !isDeepStrictEqual(takenUp(event.old), takenUp(event.object));
        for (const clusterKey of new Set([...before, ...after])) {
          clusterController.enqueue(clusterKey);
          if (claims)
            for (const other of this.policiesByCluster.get(clusterKey) ?? [])
              if (other !== key) policyController.enqueue(other);
        }
      }
    });
    // A new vote from an observer may change the verdict on the primary: look at its policy now.
    // Not for a refresh that says what the last write said (its time and WAL positions aside):
    // every write, refreshes too, moves on when its vote goes stale, which wakes the policy then
    // (a quiet policy, failover-policy/quiet.ts, needs every vote fresh; not quiet, it looks
    // every interval).
    observations.on((event) => {
      const spec = event.object.spec as FailoverObservationSpec | undefined;
      const policyKey =
        typeof spec?.policy === 'string'
          ? objectKey({ metadata: { name: spec.policy, namespace: event.object.metadata.namespace } })
          : undefined;
      this.indexObservation(objectKey(event.object), event.type === 'deleted' ? undefined : policyKey);
      if (!spec || policyKey === undefined) return;
      if (event.type === 'deleted') {
        // Its vote no longer counts: the fresh-observer count in status changes now.
        this.voteExpiries.forget(policyKey, spec.observer);
        policyController.enqueue(policyKey);
        return;
      }
      const policy = policies.get(policyKey);
      const parsed = policy && parseOnce(failoverPolicySpec, policy.spec);
      if (parsed?.ok) this.voteExpiries.seen(policyKey, spec, maxObservationAgeMs(parsed.value));
      if (event.type === 'resync') return;
      if (event.type === 'updated' && sameVote(event.old, event.object)) return;
      policyController.enqueue(policyKey);
    });
    clusters.on((event) => {
      const key = objectKey(event.object);
      // A deletion too: the reconcile of a key that is gone stops its probes and drops its series.
      clusterController.enqueue(key);
      if (event.type !== 'resync')
        for (const p of this.policiesByCluster.get(key) ?? []) policyController.enqueue(p);
    });
  }

  /** Files an observation under the policy it is about (none: deleted, or about no policy). */
  private indexObservation(observationKey: string, policyKey: string | undefined): void {
    const before = this.policyOfObservation.get(observationKey);
    if (before === policyKey) return;
    if (before !== undefined) {
      const keys = this.observationsByPolicy.get(before);
      keys?.delete(observationKey);
      if (keys?.size === 0) this.observationsByPolicy.delete(before);
    }
    if (policyKey === undefined) {
      this.policyOfObservation.delete(observationKey);
      return;
    }
    this.policyOfObservation.set(observationKey, policyKey);
    const keys = this.observationsByPolicy.get(policyKey);
    if (keys) keys.add(observationKey);
    else this.observationsByPolicy.set(policyKey, new Set([observationKey]));
  }

  /** Keeps both indexes in step; touches only the clusters the policy names, before and after. */
  private indexPolicy(policyKey: string, policy: KubeObject | undefined): void {
    for (const clusterKey of this.clustersByPolicy.get(policyKey) ?? []) {
      const keys = this.policiesByCluster.get(clusterKey);
      keys?.delete(policyKey);
      if (keys?.size === 0) this.policiesByCluster.delete(clusterKey);
    }
    this.clustersByPolicy.delete(policyKey);
    if (!policy?.spec) return;
    const clusterKeys = clustersNamed(policy).map((name) =>
      objectKey({ metadata: { name, namespace: policy.metadata.namespace } }),
    );
    this.clustersByPolicy.set(policyKey, clusterKeys);
    for (const clusterKey of clusterKeys) {
      const set = this.policiesByCluster.get(clusterKey) ?? new Set();
      set.add(policyKey);
      this.policiesByCluster.set(clusterKey, set);
    }
  }

  /** The shard of a policy: the hash of its key. */
  private policyShard(policyKey: string, shards: number): number {
    return shardOf(policyKey, shards);
  }

  /** The policies naming a cluster, the one it belongs to first (claims.ts). */
  private policiesNaming(clusterKey: string): KubeObject[] {
    const keys = this.policiesByCluster.get(clusterKey);
    if (!keys?.size) return [];
    const found = [...keys].flatMap((k) => this.context.policies.get(k) ?? []);
    return found.length > 1 ? found.sort(claimOrder(keyParts(clusterKey).name)) : found;
  }

  /**
   * The shard of a cluster: the shard of the policy it belongs to, so the replica deciding on a
   * policy also probes its clusters; a cluster no policy names, by its own key.
   */
  private clusterShard(clusterKey: string, shards: number): number {
    const owner = this.policiesNaming(clusterKey)[0];
    return shardOf(owner ? objectKey(owner) : clusterKey, shards);
  }

  private ownsPolicy(key: string): boolean {
    const o = this.ownership;
    return !o || o.owns(this.policyShard(key, o.shards));
  }

  private ownsCluster(key: string): boolean {
    const o = this.ownership;
    if (!o || o.owns(this.clusterShard(key, o.shards))) return true;
    // Probed elsewhere now (its shard given back, or its policy's shard changed): a record kept
    // here would go stale under the policies that still read it.
    void this.context.probes.forget(key);
    this.context.appChecks.forget(key);
    this.clusterReconciler.forget(key);
    return false;
  }

  /** A shard was taken: every policy and cluster in it is reconciled now. */
  enqueueShard(shard: number): void {
    const o = this.ownership;
    if (!o) return;
    const [policyController, clusterController] = this.controllers;
    for (const p of this.context.policies.list()) {
      const key = objectKey(p);
      if (this.policyShard(key, o.shards) === shard) policyController?.enqueue(key);
    }
    for (const c of this.context.clusters.list()) {
      const key = objectKey(c);
      if (this.clusterShard(key, o.shards) === shard) clusterController?.enqueue(key);
    }
  }

  /**
   * A shard is being given back (ownership already says no): resolves once none of its policies or
   * clusters is being reconciled, so the next holder never works beside this one.
   */
  async drainShard(shard: number): Promise<void> {
    const o = this.ownership;
    if (!o) return;
    const [policyController, clusterController] = this.controllers;
    await Promise.all([
      policyController?.drain((key) => this.policyShard(key, o.shards) === shard),
      clusterController?.drain((key) => this.clusterShard(key, o.shards) === shard),
    ]);
    // What runs between reconciles goes too: a drill's canary writer (its last write done), the
    // probes' connections and records, the application checks.
    for (const p of this.context.policies.list()) {
      const key = objectKey(p);
      if (this.policyShard(key, o.shards) === shard) this.context.canaries.stop(key);
    }
    await this.context.canaries.stopped();
    for (const c of this.context.clusters.list()) {
      const key = objectKey(c);
      if (this.clusterShard(key, o.shards) !== shard) continue;
      await this.context.probes.forget(key);
      this.context.appChecks.forget(key);
      this.clusterReconciler.forget(key);
    }
  }

  /** What the status page reads: the policies in the cache, never the API server. */
  statusSource(): StatusSource {
    const policies = this.context.policies;
    return {
      policies: () => policies.list(),
      policy: (namespace, name) => policies.get(objectKey({ metadata: { name, namespace } })),
    };
  }

  startInformers(): void {
    for (const i of this.informers) i.start();
  }

  /**
   * Reconciles only the shards `ownership` says are held here (sharding); set before
   * startControllers. Without it, everything (the single leader).
   */
  shardBy(ownership: Ownership): void {
    this.ownership = ownership;
  }

  /**
   * Starts reconciling once every cache holds its first list; only the leader calls this. As in
   * controller-runtime: deciding on a partial cache would take a ReplicaCluster not listed yet for
   * one that does not exist. Keys queued meanwhile are kept and processed after.
   */
  async startControllers(): Promise<void> {
    const synced = await waitForCacheSync(this.informers, {
      log: this.context.log,
      stopped: () => this.stopping,
    });
    if (!synced) return;
    this.controllersStarted = true;
    for (const c of this.controllers) c.start();
  }

  readiness(): { ok: boolean; reasons: string[] } {
    const reasons = this.informers.filter((i) => !i.synced).map((i) => `cache of ${i.resource} not synced`);
    return { ok: reasons.length === 0, reasons };
  }

  /** Stops taking work, lets the current steps finish (bounded), then stops the informers. */
  async stop(graceMs = 20_000): Promise<void> {
    this.stopping = true;
    if (this.controllersStarted) await Promise.all(this.controllers.map((c) => c.stop(graceMs)));
    await Promise.all(this.informers.map((i) => i.stop()));
    this.voteExpiries.stop();
    await this.context.probes.closeAll();
    await this.context.canaries.stopAll();
  }

  /** Waits up to `ms` for the Events the last reconciles queued (after the Leases are let go). */
  async flushEvents(ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.context.events.settled(),
      new Promise((resolve) => {
        timer = setTimeout(resolve, ms);
      }),
    ]);
    clearTimeout(timer);
  }
}

/** Two writes of one FailoverObservation that say the same (observer.ts meaningOf, uncapped). */
export function sameVote(old: KubeObject, current: KubeObject): boolean {
  const meaning = (o: KubeObject) => {
    const spec = o.spec as FailoverObservationSpec | undefined;
    return Array.isArray(spec?.clusters) ? meaningOf(spec, Number.POSITIVE_INFINITY) : undefined;
  };
  const before = meaning(old);
  return before !== undefined && before === meaning(current);
}

/** The clusters a policy names whose claim its status holds (claims.ts `hasTakenUp`). */
function takenUp(policy: KubeObject | undefined): string[] {
  return policy ? clustersNamed(policy).filter((c) => hasTakenUp(policy, c)) : [];
}

/** Whether an update changed nothing but status (and the resourceVersion and managedFields). */
export function onlyStatusChanged(old: KubeObject, current: KubeObject): boolean {
  const meta = (o: KubeObject) => {
    const { resourceVersion: _r, managedFields: _m, ...rest } = o.metadata;
    return rest;
  };
  const { status: _os, metadata: _om, ...oldRest } = old;
  const { status: _cs, metadata: _cm, ...currentRest } = current;
  return isDeepStrictEqual(meta(old), meta(current)) && isDeepStrictEqual(oldRest, currentRest);
}
