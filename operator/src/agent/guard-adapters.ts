/**
 * The split-brain guard's ports, for real: the control plane through a client with short
 * timeouts (a hung request must not outlive a renew interval by much; the deadline timer fences
 * regardless), the local server over its Unix socket (which no network partition cuts), and the
 * other agents over HTTP.
 */
import { readFile, rename, writeFile } from 'node:fs/promises';
import pg from 'pg';
import {
  type FailoverObservationSpec,
  failoverPolicySpec,
  failoverPolicyStatus,
  replicaClusterStatus,
} from '../api/v1alpha1/index.ts';
import { claimantNaming } from '../controllers/claims.ts';
import { failoverObservationType, failoverPolicyType, replicaClusterType } from '../controllers/resources.ts';
import { PostgresSql } from '../providers/database/postgres-sql.ts';
import type { KubeClient, KubeObject } from '../runtime/kube-client.ts';
import { isConflict } from '../runtime/kube-client.ts';
import { leaseType } from '../runtime/leader-election.ts';
import { microTime } from '../runtime/time.ts';
import { primaryLeaseName } from './lease-settings.ts';
import { askPeer } from './peer.ts';
import type { GuardPorts, GuardState, GuardWorld, LocalServer } from './split-brain-guard.ts';

export interface GuardAdapterOptions {
  client: KubeClient;
  namespace: string;
  cluster: string;
  socketDir: string;
  port: number;
  user: string;
  peerToken?: string;
  /** Where the guard keeps what it knew, for a restart while cut off (beside the data directory). */
  stateFile?: string;
  /**
   * Whether the server of the data directory runs (pg_ctl status): a socket that is missing or
   * refuses says Down only if it does not (a wrong --pg-socket-dir, a deleted socket file).
   */
  serverRunning?: () => Promise<boolean>;
  /** Makes the stopped server start read-only (LocalPostgres.readOnlyAtStart). */
  readOnlyAtStart?: () => Promise<boolean>;
  changed: () => void;
}

interface Lease extends KubeObject {
  spec?: { holderIdentity?: string; leaseDurationSeconds?: number; renewTime?: string; acquireTime?: string };
}

/** Peer addresses change rarely: read the members' reports this often, not every round. */
const PEERS_EVERY_MS = 5_000;

export function guardPorts(o: GuardAdapterOptions): GuardPorts & { close(): Promise<void> } {
  let peers: { readAt: number; names: string; value: Record<string, string | undefined> } | undefined;
  let sql: PostgresSql | undefined;
  const local = (database: string) => {
    sql ??= new PostgresSql(
      { host: o.socketDir, port: o.port, database, user: o.user, password: '', sslMode: 'disable' },
      {
        applicationName: 'failover-agent-guard',
        connectTimeoutMs: 2_000,
        statementTimeoutMs: 5_000,
        maxConnections: 1,
      },
    );
    return sql;
  };
  let appDatabase = 'postgres';

  return {
    async readWorld(): Promise<GuardWorld | undefined> {
      const { items } = await o.client.list<KubeObject>(failoverPolicyType, o.namespace);
      // The policy its cluster belongs to, as the operator decides it (claims.ts).
      const item = claimantNaming(items, o.cluster);
      const spec = item && failoverPolicySpec.safeParse(item.spec);
      if (!item || !spec?.success) return undefined;
      const members = [spec.data.primary, ...spec.data.standbys];
      const status = failoverPolicyStatus.safeParse(item.status ?? {});
      const name = item.metadata.name;
      const observations = (await o.client.list<KubeObject>(failoverObservationType, o.namespace)).items
        .map((x) => x.spec as FailoverObservationSpec)
        .filter((s) => s?.policy === name && Array.isArray(s.clusters));
      const key = members.join(',');
      // Read again every few seconds, and every round while a member's address is unknown (a
      // standby's agent starting): the failsafe needs all of them before the control plane goes.
      const missing = peers ? Object.values(peers.value).some((a) => !a) : true;
      if (!peers || missing || peers.names !== key || performance.now() - peers.readAt > PEERS_EVERY_MS) {
        const value: Record<string, string | undefined> = {};
        for (const member of members) {
          if (member === o.cluster) continue;
          const rc = await o.client.find<KubeObject>(replicaClusterType, o.namespace, member);
          const st = replicaClusterStatus.safeParse(rc?.status ?? {});
          value[member] = st.success ? st.data.agent?.peerAddress : undefined;
        }
        const own = await o.client.find<KubeObject>(replicaClusterType, o.namespace, o.cluster);
        const db = (own?.spec as { connection?: { database?: string } } | undefined)?.connection?.database;
        if (db) appDatabase = db;
        peers = { readAt: performance.now(), names: key, value };
      }
      return {
        policy: { name, spec: spec.data, status: status.success ? status.data : {} },
        peers: peers.value,
        observations,
      };
    },

    async renewLease(policy, holder, durationSeconds) {
      const name = primaryLeaseName(policy);
      const now = microTime(new Date());
      const lease = await o.client.find<Lease>(leaseType, o.namespace, name);
      const spec = { holderIdentity: holder, leaseDurationSeconds: durationSeconds, renewTime: now };
      if (!lease) {
        await o.client.create(leaseType, o.namespace, {
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: { name, namespace: o.namespace, labels: { 'failover.dev/policy': policy } },
          spec: { ...spec, acquireTime: now },
        });
        return {};
      }
      const current = lease.spec?.holderIdentity;
      const [, cluster, epoch] = /^(.+)@(\d+)$/.exec(current ?? '') ?? [];
      const mine = /^(.+)@(\d+)$/.exec(holder);
      // Another holder at a later epoch, or another cluster at the same one, keeps it; an earlier
      // epoch's holder was superseded by the promotion that made this one primary.
      if (
        current &&
        current !== holder &&
        (Number(epoch) > Number(mine?.[2]) || (cluster !== mine?.[1] && Number(epoch) === Number(mine?.[2])))
      )
        return { heldBy: current };
      try {
        await o.client.replace(leaseType, o.namespace, {
          ...lease,
          spec: { ...lease.spec, ...spec, ...(current !== holder ? { acquireTime: now } : {}) },
        });
      } catch (err) {
        if (isConflict(err)) return { heldBy: current ?? '(changed meanwhile)' };
        throw err;
      }
      return {};
    },

    async localServer(): Promise<LocalServer> {
      const client = new pg.Client({
        host: o.socketDir,
        port: o.port,
        user: o.user,
        database: 'postgres',
        connectionTimeoutMillis: 1_000,
        query_timeout: 1_000,
        application_name: 'failover-agent-guard',
      });
      client.on('error', () => undefined);
      try {
        await client.connect();
        const { rows } = await client.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r');
        return rows[0]?.r ? 'Standby' : 'Primary';
      } catch (err) {
        // Down only when nothing runs (no socket, refused, starting or stopping): a server that
        // does not answer in time may be hung, and thaw writable.
        const e = err as { code?: string };
        if (e.code !== 'ECONNREFUSED' && e.code !== 'ENOENT' && e.code !== '57P03') throw err;
        // Nothing at the socket, or not accepting sessions yet: down only if no server runs on
        // the data directory. One that runs may take writes over TCP (a wrong socket directory)
        // or in a moment (starting up, in crash recovery): a fence owed to it would be counted as
        // made, and the Lease gate opened, while it is not.
        if (o.serverRunning && (await o.serverRunning()))
          throw new Error(
            e.code === '57P03'
              ? 'the server is starting up or shutting down: not stopped'
              : `the server of the data directory runs, but nothing answers at ${o.socketDir} port ${o.port}: check --pg-socket-dir and --pg-port`,
          );
        return 'Down';
      } finally {
        await client.end().catch(() => undefined);
      }
    },

    askPeer: (address, question) => askPeer(address, question, { timeoutMs: 1_000, token: o.peerToken }),

    async fence(mode, epoch) {
      const { detail } = await local(appDatabase).fence({ operationId: `self-fence-${epoch}`, epoch, mode });
      return detail;
    },

    readOnlyAtStart: async () => (o.readOnlyAtStart ? o.readOnlyAtStart() : false),

    async unfence() {
      return (await local(appDatabase).unfence()).detail;
    },

    changed: o.changed,

    async saveState(state: GuardState) {
      if (!o.stateFile) return;
      const tmp = `${o.stateFile}.tmp`;
      await writeFile(tmp, JSON.stringify(state), { mode: 0o600 });
      await rename(tmp, o.stateFile);
    },

    async loadState(): Promise<GuardState | undefined> {
      if (!o.stateFile) return undefined;
      try {
        const saved = JSON.parse(await readFile(o.stateFile, 'utf8')) as GuardState;
        const spec = failoverPolicySpec.safeParse(saved.world?.policy?.spec);
        const status = failoverPolicyStatus.safeParse(saved.world?.policy?.status ?? {});
        if (!spec.success || !status.success) return undefined;
        return {
          ...saved,
          world: { ...saved.world, policy: { ...saved.world.policy, spec: spec.data, status: status.data } },
        };
      } catch {
        return undefined;
      }
    },

    async close() {
      await sql?.close();
    },
  };
}
