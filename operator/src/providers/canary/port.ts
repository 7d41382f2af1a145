/**
 * The canary writer port: a client the operator runs beside an application while a drill (and
 * later a real failover) moves the primary. It writes numbered rows through the policy's DNS
 * name, the way an application would, and remembers which ones the database acknowledged, so
 * the operator can say from the client's side how long writes stopped (RTO) and how many
 * acknowledged writes the new primary lacks (RPO).
 *
 * A writer runs in the background and never blocks a reconcile: the controller starts it, reads
 * snapshots and stops it. What it saw lives in memory only (the acknowledged sequence numbers),
 * so a new writer after an operator restart starts from nothing.
 */
import type { DatabaseConnection } from '../database/port.ts';

export interface CanaryTarget {
  /** The policy's DNS name resolved at its authoritative servers: where a client would connect now (undefined: no answer). */
  resolve(): Promise<string | undefined>;
  /** Which ReplicaCluster an address is (the operator knows each cluster's DNS target). */
  clusterOf(address: string): string | undefined;
  port: number;
  database: string;
  user: string;
  password: string;
  sslMode: DatabaseConnection['sslMode'];
  /**
   * The TLS name to verify with verify-full: the DNS record, the name clients use (a certificate
   * made for the record, not for each server's own name). Default: the address connected to.
   */
  serverName?: string;
  /** The policy, "namespace/name", for metric labels and logs. */
  policyKey?: string;
  /** Rows are keyed by (drill, writer, seq). */
  drillId: string;
  /** This writer's identity (operator pod + start time), unique across restarts. */
  writer: string;
  intervalMs: number;
  /** Rows older than this are deleted from the canary table (any drill's, any writer's). */
  retentionDays: number;
  /**
   * While a session works, how often to ask DNS whether the name still points where it is
   * connected, and to follow it when not: a client whose connections follow DNS this quickly
   * (pools that recycle connections). Default 1000 ms; 0: only when the session fails, like a
   * client that keeps its connection as long as the server does.
   */
  recheckDnsMs?: number;
  /**
   * Write only to a server whose cluster_name is this (an isolated drill's copy); any other
   * server reached is refused before a write.
   */
  requireClusterName?: string;
}

/** A stretch of acknowledged writes on one server: one cluster, one server identity. */
export interface CanaryRun {
  /** The ReplicaCluster written to (clusterOf the address); the address itself when it is none. */
  cluster: string;
  firstSeq: number;
  lastSeq: number;
  acknowledged: number;
  /** When the run's first and last writes were acknowledged (the client's clock), ISO 8601. */
  firstAt: string;
  lastAt: string;
  /** acknowledged seqs of this run missing on the next run's cluster, counted when the first write lands there */
  missing?: number;
  /**
   * How many of the run's acknowledged seqs `missing` was counted over: all of them, unless the
   * run outgrew the writer's memory bound (then the newest ones, where losses happen).
   */
  missingOf?: number;
  /** The address written to (the DNS answer), for messages. */
  address?: string;
}

export interface CanarySnapshot {
  drillId: string;
  writer: string;
  startedAt: string;
  /** Attempts that got no acknowledgement: no answer, no connection, refused, or read-only. */
  failed: number;
  /** Why the last failed attempt failed. */
  lastError?: string;
  runs: CanaryRun[];
}

export interface CanaryWriter {
  /** A copy of what the writer has seen so far. */
  snapshot(): CanarySnapshot;
  /** Ends the loop and the session (after the write in flight); the final snapshot. */
  stop(): Promise<CanarySnapshot>;
}

export type CanaryWriterFactory = (target: CanaryTarget) => CanaryWriter;
