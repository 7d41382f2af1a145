/**
 * Agent mode: one beside each self-managed PostgreSQL, with its data directory and programs, as
 * Patroni and CloudNativePG's instance manager sit beside theirs. The operator decides from afar
 * and records its intent in the policy's status (the current operation and its step); the agent
 * carries out the local part and reports in its ReplicaCluster's `status.agent`:
 *
 *   Switchover, step Demoting, from = this cluster: stop the primary cleanly (its standbys get the
 *     shutdown checkpoint, the last WAL it writes), then restart it as a standby of the target.
 *   Reprotect, step Rejoining, from = this cluster: make this former primary a standby of the
 *     active primary: a restart when its WAL is a prefix of the primary's, else pg_rewind, else
 *     (when the policy allows) a fresh pg_basebackup, the old data directory kept aside.
 *   An isolated drill naming this cluster (status.drill): a throwaway copy of this standby,
 *     promoted on a spare port, then removed (drill-copy.ts); only when no step above is due.
 *
 * Beside it, on its own timer, the split-brain guard (split-brain-guard.ts): the primary's agent
 * keeps the policy's Lease and fences its database when it loses it; a standby's agent answers
 * the primary's when the control plane is gone.
 *
 * Between operations it only looks: a former primary is compared with the active primary, and
 * what a rejoin would discard is reported before anyone asks for one. It never rewinds or
 * re-clones a database no operation names, nor one whose system identifier is another cluster's.
 *
 * Every local step is re-derived from the world (the data directory, the running server) on each
 * pass, and written to status before and after it runs: a killed agent resumes where it was.
 */
import { hostname } from 'node:os';
import {
  type AgentReport,
  agentReport,
  type FailoverPolicySpec,
  type FailoverPolicyStatus,
  failoverPolicySpec,
  failoverPolicyStatus,
  type Operation,
  type ReplicaClusterSpec,
  replicaClusterSpec,
  replicaClusterStatus,
} from '../api/v1alpha1/index.ts';
import { claimantNaming } from '../controllers/claims.ts';
import { failoverPolicyType, replicaClusterType } from '../controllers/resources.ts';
import type { Clock } from '../runtime/clock.ts';
import { failpoint } from '../runtime/failpoints.ts';
import type { KubeClient, KubeObject } from '../runtime/kube-client.ts';
import type { Logger } from '../runtime/logger.ts';
import { timestamp } from '../runtime/time.ts';
import { compareHistories, discardedOf, discardRefusal } from './divergence.ts';
import { DrillCopyKeeper } from './drill-copy.ts';
import { guardPorts } from './guard-adapters.ts';
import { REPORT_EVERY_MS } from './liveness.ts';
import { type LocalPostgres, type LocalState, ToolError } from './local-postgres.ts';
import { PeerServer } from './peer.ts';
import { SplitBrainGuard } from './split-brain-guard.ts';
import {
  checkpointOnTimeline,
  conninfo,
  identifyUpstream,
  loginTo,
  type UpstreamAddress,
  type UpstreamIdentity,
  upstreamStartedAt,
} from './upstream.ts';

export interface AgentOptions {
  client: KubeClient;
  clock: Clock;
  log: Logger;
  namespace: string;
  cluster: string;
  name?: string;
  local: LocalPostgres;
  /** The role standbys stream as, with its password; also used for pg_rewind and pg_basebackup. */
  replication: { user: string; password: string };
  intervalMs?: number;
  /**
   * The split-brain guard's control-plane client: short request timeouts, apart from the main
   * loop's (which may wait on pg_rewind for hours). Without it the guard does not run.
   */
  guardClient?: KubeClient;
  /** Where to answer the other agents, how they reach it, and the token they share. */
  peer?: { host: string; port: number; address: string; token?: string };
}

type Task = NonNullable<AgentReport['task']>;

/** A switchover's demotion taken up again after its Demoting step, from status alone. */
type ResumedDemotion = Pick<Operation, 'id' | 'from' | 'to'> & { kind: 'Switchover' };

/**
 * A Demote task still Running for a switchover past its Demoting step. The operator goes on once
 * the target replayed past the shutdown checkpoint, which can be before this agent saw the restart
 * (it died between the stop and the start, or the start was slow): finished here rather than left
 * Running with the server down. Undefined when there is nothing to finish, or another operation
 * comes first; `close` when the world moved on and the demotion is no longer what is wanted.
 */
export function unfinishedDemotion(
  task: Task | undefined,
  status: FailoverPolicyStatus,
  cluster: string,
): { resume: ResumedDemotion } | { close: string } | undefined {
  if (task?.action !== 'Demote' || task.phase !== 'Running' || !task.stoppedLsn) return undefined;
  const current = status.currentOperation;
  if (current) {
    if (current.id !== task.operationId) return undefined;
    if (current.kind !== 'Switchover' || current.from !== cluster)
      return { close: 'not a demotion of this server' };
    // Only once the operator took this very checkpoint as replayed and went on to promote; any
    // other step (rolling back, demotion given up) waits for the operation to end.
    const promoting = ['Promoting', 'RepointingDns', 'VerifyingDns', 'Completed'].includes(current.step);
    if (!promoting || current.demoted !== true || current.stoppedLsn !== task.stoppedLsn) return undefined;
    return { resume: { id: current.id, kind: 'Switchover', from: current.from, to: current.to } };
  }
  const past = status.history?.find((h) => h.id === task.operationId);
  if (past?.kind !== 'Switchover' || past.from !== cluster)
    return { close: `operation ${task.operationId} is no longer in the policy's history` };
  if (past.result !== 'Succeeded' || status.activePrimary !== past.to)
    return {
      close: `the switchover ended ${past.result} and ${status.activePrimary ?? 'no cluster'} is the primary, not ${past.to}: this server is left as it is for a person or a reprotect`,
    };
  return { resume: { id: past.id, kind: 'Switchover', from: past.from, to: past.to } };
}

type Problem = NonNullable<AgentReport['problem']>;

interface PolicyView {
  name: string;
  spec: FailoverPolicySpec;
  status: FailoverPolicyStatus;
}

/** How often a former primary is compared with the active primary. */
const ASSESS_EVERY_MS = 5_000;
/** pg_rewind saying "no rewind required" of diverged histories this often is not a stale checkpoint. */
const MAX_EMPTY_REWINDS = 5;

export class DatabaseAgent {
  private readonly opts: AgentOptions;
  private readonly name: string;
  private report: AgentReport | undefined;
  private lastWritten = 0;
  private lastAssessed = 0;
  /** pg_rewind answers that said there was nothing to rewind, in this operation. */
  private emptyRewinds = { operationId: '', count: 0 };
  private stopping = false;
  private loop: Promise<void> | undefined;
  /** An isolated drill's copy of this standby; its reports go out with the server's last state. */
  private readonly drillCopies: DrillCopyKeeper;
  private lastLocal: LocalState | undefined;
  private readonly guard: SplitBrainGuard | undefined;
  private readonly closeGuard: (() => Promise<void>) | undefined;
  private guardLoop: Promise<void> | undefined;
  private peerServer: PeerServer | undefined;

  constructor(opts: AgentOptions) {
    this.opts = opts;
    this.name = opts.name ?? hostname();
    if (opts.guardClient) {
      const ports = guardPorts({
        client: opts.guardClient,
        namespace: opts.namespace,
        cluster: opts.cluster,
        socketDir: opts.local.opts.socketDir,
        port: opts.local.opts.port,
        user: opts.local.opts.user,
        ...(opts.peer?.token !== undefined ? { peerToken: opts.peer.token } : {}),
        stateFile: `${opts.local.opts.dataDir.replace(/\/+$/, '')}.failover-guard.json`,
        serverRunning: () => opts.local.isRunning(),
        readOnlyAtStart: () => opts.local.readOnlyAtStart(),
        changed: () => void this.sayGuard(),
      });
      this.guard = new SplitBrainGuard({
        cluster: opts.cluster,
        namespace: opts.namespace,
        ports,
        log: opts.log,
      });
      this.closeGuard = () => ports.close();
    }
    this.drillCopies = new DrillCopyKeeper({
      cluster: opts.cluster,
      local: opts.local,
      clock: opts.clock,
      log: opts.log,
      replication: opts.replication,
      reported: () => this.report?.drillCopy,
      say: async (drillCopy) => {
        if (this.lastLocal) await this.publish(this.lastLocal, { drillCopy });
      },
      beat: () => this.beat(),
      currentDrill: async () => (await this.policy())?.status.drill,
    });
  }

  start(): void {
    this.loop ??= this.run();
    this.guardLoop ??= this.runGuard();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.guard?.stop();
    await Promise.all([this.loop, this.guardLoop, this.peerServer?.close()]);
    await this.closeGuard?.();
  }

  /** The guard's own loop: it must keep time while the main loop waits on a long step. */
  private async runGuard(): Promise<void> {
    const guard = this.guard;
    if (!guard) return;
    const peer = this.opts.peer;
    if (peer) {
      const server = new PeerServer((q) => guard.answer(q), peer.token);
      await server.listen(peer.host, peer.port);
      this.peerServer = server;
      this.opts.log.info(
        { listen: `${peer.host}:${peer.port}`, address: peer.address },
        'answering peer agents',
      );
    }
    // What an earlier run knew (its policy, its peers, when it last confirmed the Lease): a
    // restart while cut off keeps the deadline the earlier run had.
    await guard.load();
    // A fence an earlier run of this agent made is this run's to undo, once confirmed. Read
    // beside the rounds, not before them: the deadline load() armed may be a renew interval
    // away, and the first round (its peers) must come before it, also with a control plane that
    // drops packets. A round that confirms first is undone by the restore: the fence stands.
    void this.restoreGuard(guard);
    while (!this.stopping) {
      const started = performance.now();
      try {
        await guard.tick();
      } catch (err) {
        this.opts.log.warn({ err: (err as Error).message }, 'split-brain guard round failed; trying again');
      }
      const wait = guard.intervalMs() - (performance.now() - started);
      await new Promise((r) => setTimeout(r, Math.max(50, wait)));
    }
  }

  /** The Lease state this agent last reported, for the guard (an earlier run's self-fence). */
  private async restoreGuard(guard: SplitBrainGuard): Promise<void> {
    try {
      const own = await (this.opts.guardClient ?? this.opts.client).get<KubeObject>(
        replicaClusterType,
        this.opts.namespace,
        this.opts.cluster,
      );
      const prior = replicaClusterStatus.safeParse(own.status ?? {});
      if (prior.success) guard.restore(prior.data.agent?.lease);
    } catch (err) {
      this.opts.log.warn(
        { err: (err as Error).message },
        'could not read the last report; the guard starts from its saved state',
      );
    }
  }

  /** The guard's fields changed (Lease state, vouching): written at once, with the report's. */
  private async sayGuard(): Promise<void> {
    if (!this.report) return;
    const fields = this.guardFields();
    this.report = { ...this.report, ...fields };
    try {
      await this.opts.client.mergePatch(
        replicaClusterType,
        this.opts.namespace,
        this.opts.cluster,
        {
          status: {
            agent: {
              ...fields,
              lease: whole(fields.lease, LEASE_KEYS),
              vouch: whole(fields.vouch, VOUCH_KEYS),
            },
          },
        },
        'status',
      );
    } catch (err) {
      this.opts.log.warn({ err: (err as Error).message }, 'could not report the split-brain guard state');
    }
  }

  private guardFields(): Pick<AgentReport, 'peerAddress' | 'lease' | 'vouch'> {
    return {
      ...(this.opts.peer ? { peerAddress: this.opts.peer.address } : {}),
      ...(this.guard?.report() ?? {}),
    };
  }

  readiness(): { ok: boolean; reasons: string[] } {
    return this.report ? { ok: true, reasons: [] } : { ok: false, reasons: ['no report written yet'] };
  }

  private async run(): Promise<void> {
    const interval = this.opts.intervalMs ?? 1_000;
    while (!this.stopping) {
      try {
        await this.pass();
      } catch (err) {
        this.opts.log.warn({ err: (err as Error).message }, 'agent pass failed; trying again');
      }
      await new Promise((r) => setTimeout(r, interval));
    }
  }

  /** One look at the world and at most one local task, reported. */
  async pass(): Promise<void> {
    const { client, namespace, cluster } = this.opts;
    const own = await client.get<KubeObject>(replicaClusterType, namespace, cluster);
    const prior = replicaClusterStatus.safeParse(own.status ?? {});
    this.report ??= prior.success ? prior.data.agent : undefined;
    await this.finishReclone();
    const local = await this.opts.local.inspect();
    this.lastLocal = local;
    if (local.problem) return this.publish(local, { problem: local.problem });
    const policy = await this.policy();
    const op = policy?.status.currentOperation;
    const mine =
      op &&
      op.from === cluster &&
      ((op.kind === 'Switchover' && op.step === 'Demoting') ||
        (op.kind === 'Reprotect' && op.step === 'Rejoining'));
    if (
      policy &&
      op &&
      mine &&
      !(this.report?.task?.operationId === op.id && this.report.task.phase !== 'Running')
    ) {
      // pg_rewind and pg_basebackup can run for hours: the report's time keeps saying the agent lives.
      const beat = setInterval(() => void this.beat(), REPORT_EVERY_MS);
      try {
        return await this.carryOut(policy, op, local);
      } finally {
        clearInterval(beat);
      }
    }
    const unfinished =
      policy && !mine ? unfinishedDemotion(this.report?.task, policy.status, cluster) : undefined;
    if (policy && unfinished && 'close' in unfinished) return this.closeDemotion(local, unfinished.close);
    if (policy && unfinished && 'resume' in unfinished) {
      return this.resumeDemotion(unfinished.resume, local);
    }
    // A drill copy only once no operation wants this agent: the standby's own duties come first.
    const spec = replicaClusterSpec.safeParse(own.spec);
    try {
      await this.drillCopies.pass(
        policy?.status.drill,
        spec.success ? spec.data.connection.database : 'postgres',
        local,
      );
    } catch (err) {
      this.opts.log.warn({ err: (err as Error).message }, 'drill copy: trying again next pass');
    }
    const active = policy?.status.activePrimary;
    if (
      policy &&
      active &&
      active !== cluster &&
      this.opts.clock.now().getTime() - this.lastAssessed >= ASSESS_EVERY_MS
    ) {
      this.lastAssessed = this.opts.clock.now().getTime();
      return this.assess(active, local);
    }
    // Between assessments the last one stands: its problem and divergence are not news to drop.
    return this.publish(local, { keep: true });
  }

  /** Only the report's time, while a long step runs. */
  private async beat(): Promise<void> {
    if (!this.report) return;
    const reportedAt = timestamp(this.opts.clock.now());
    try {
      await this.opts.client.mergePatch(
        replicaClusterType,
        this.opts.namespace,
        this.opts.cluster,
        { status: { agent: { reportedAt } } },
        'status',
      );
      if (this.report) this.report = { ...this.report, reportedAt };
      this.lastWritten = this.opts.clock.now().getTime();
    } catch (err) {
      this.opts.log.warn({ err: (err as Error).message }, 'could not write the agent report');
    }
  }

  /** A re-clone killed between its two renames is completed before anything looks at the directory. */
  private async finishReclone(): Promise<void> {
    const kept = await this.opts.local.finishReclone();
    if (kept === undefined) return;
    this.opts.log.warn({ kept }, 'completed a re-clone cut short: the fresh copy is the data directory now');
    const report = this.report;
    const task = report?.task;
    if (!report || task?.phase !== 'Running') return;
    // Written at once: killed again before the next report, the next agent must not take the fresh
    // copy for a directory still to be rejoined (and lose where the old one went).
    const done = {
      method: 'Reclone' as const,
      prepared: true,
      keptDataDirectory: kept,
      message: 're-cloned',
    };
    await this.opts.client.mergePatch(
      replicaClusterType,
      this.opts.namespace,
      this.opts.cluster,
      { status: { agent: { task: done } } },
      'status',
    );
    this.report = { ...report, task: { ...task, ...done } };
  }

  private async policy(): Promise<PolicyView | undefined> {
    const { items } = await this.opts.client.list<KubeObject>(failoverPolicyType, this.opts.namespace);
    // The policy its cluster belongs to, as the operator decides it (claims.ts): a younger one
    // naming it too acts on nothing, and its status must not steer this database.
    const item = claimantNaming(items, this.opts.cluster);
    const spec = item && failoverPolicySpec.safeParse(item.spec);
    if (!item || !spec?.success) return undefined;
    const status = failoverPolicyStatus.safeParse(item.status ?? {});
    return { name: item.metadata.name, spec: spec.data, status: status.success ? status.data : {} };
  }

  private async upstream(cluster: string): Promise<{ address: UpstreamAddress; identity: UpstreamIdentity }> {
    const object = await this.opts.client.get<KubeObject>(replicaClusterType, this.opts.namespace, cluster);
    const spec: ReplicaClusterSpec = replicaClusterSpec.parse(object.spec);
    const address: UpstreamAddress = {
      host: spec.connection.host,
      port: spec.connection.port,
      sslMode: spec.connection.sslMode,
      ...this.opts.replication,
    };
    return { address, identity: await identifyUpstream(address) };
  }

  /** Refuses a database that is not a member of the primary's system: no step may touch it. */
  private foreign(local: LocalState, identity: UpstreamIdentity, primary: string): Problem | undefined {
    const mine = local.control?.systemIdentifier;
    if (!mine || mine === identity.systemIdentifier) return undefined;
    return {
      reason: 'ForeignCluster',
      message: `the database in ${this.opts.local.opts.dataDir} has system identifier ${mine}, but the primary ${primary} has ${identity.systemIdentifier}: it belongs to another cluster; check --data-dir and the ReplicaCluster`,
    };
  }

  /** Compares this former primary with the active primary and reports what a rejoin discards. */
  private async assess(primary: string, local: LocalState): Promise<void> {
    let upstream: Awaited<ReturnType<DatabaseAgent['upstream']>>;
    try {
      upstream = await this.upstream(primary);
    } catch (err) {
      return this.publish(local, { note: `cannot reach the primary ${primary}: ${(err as Error).message}` });
    }
    const foreign = this.foreign(local, upstream.identity, primary);
    if (foreign) return this.publish(local, { problem: foreign });
    return this.publish(local, { divergence: await this.divergence(primary, local, upstream) });
  }

  private following(local: LocalState, address: UpstreamAddress): boolean {
    return (
      local.running &&
      local.inRecovery === true &&
      local.receiver?.host === address.host &&
      local.receiver.port === address.port
    );
  }

  private async divergence(
    primary: string,
    local: LocalState,
    upstream: { address: UpstreamAddress; identity: UpstreamIdentity },
  ): Promise<NonNullable<AgentReport['divergence']>> {
    const assessedAt = timestamp(this.opts.clock.now());
    if (this.following(local, upstream.address))
      return {
        primary,
        assessedAt,
        relation: 'Following',
        divergedBytes: 0,
        message: `a standby of ${primary}`,
      };
    const timeline = local.walTimeline ?? local.control?.timeline ?? 0;
    const walEnd = local.walEnd ?? local.control?.checkpointLsn ?? '0/0';
    const c = compareHistories({ timeline, walEnd }, upstream.identity);
    let transactions: number | undefined;
    if (c.relation === 'Diverged' && c.forkLsn) {
      const dump = await this.opts.local.waldump(timeline, c.forkLsn, walEnd).catch(() => undefined);
      if (dump?.complete) transactions = dump.commits;
    }
    return {
      primary,
      assessedAt,
      relation: c.relation,
      ...(c.forkLsn ? { forkLsn: c.forkLsn } : {}),
      localTimeline: timeline,
      localEndLsn: walEnd,
      divergedBytes: c.divergedBytes,
      ...(transactions !== undefined ? { divergedTransactions: transactions } : {}),
      message:
        transactions !== undefined
          ? `${c.message}; ${transactions} committed transaction(s) in that range`
          : c.message,
    };
  }

  /** A Demote task that can no longer be finished ends Failed, saying why, instead of Running. */
  private async closeDemotion(local: LocalState, why: string): Promise<void> {
    const task = this.report?.task;
    if (!task) return;
    this.opts.log.warn({ operation: task.operationId, why }, 'demotion left unfinished');
    return this.publish(local, {
      task: {
        ...task,
        phase: 'Failed',
        message: `DemotionUnfinished: ${why}`.slice(0, 1024),
        finishedAt: timestamp(this.opts.clock.now()),
      },
    });
  }

  /**
   * Finishes a demotion the switchover went past, from the world: the server must be stopped (or
   * already a standby) and its WAL end before the target's fork, as a clean stop the target
   * replayed leaves it; then it starts as the target's standby. Anything else, or a start that
   * fails, closes the task: a person or a reprotect takes it from there, and the agent goes back
   * to assessing.
   */
  private async resumeDemotion(op: ResumedDemotion, local: LocalState): Promise<void> {
    const task = this.report?.task;
    if (!task) return;
    const say = (update: Partial<Task>, state: LocalState) => {
      this.opts.log.info({ operation: op.id, action: 'Demote', ...update }, 'agent task (resumed)');
      return this.publish(state, { task: { ...task, ...update } });
    };
    const succeeded = (message: string, state: LocalState) =>
      say(
        { phase: 'Succeeded', method: 'Restart', message, finishedAt: timestamp(this.opts.clock.now()) },
        state,
      );
    let upstream: Awaited<ReturnType<DatabaseAgent['upstream']>>;
    try {
      upstream = await this.upstream(op.to);
    } catch (err) {
      return say(
        { message: `waiting for ${op.to} to answer: ${(err as Error).message}`.slice(0, 1024) },
        local,
      );
    }
    const foreign = this.foreign(local, upstream.identity, op.to);
    if (foreign) return this.closeDemotion(local, foreign.message);
    // Seen again now: the server may have been started by hand while the target was asked.
    const now = await this.opts.local.inspect();
    if (now.running && now.inRecovery === true)
      return succeeded(`stopped cleanly at ${task.stoppedLsn}; now a standby of ${op.to}`, now);
    if (now.running && now.inRecovery === undefined)
      return say({ message: 'the server runs but does not answer yet: waiting for it' }, now);
    // Started as a primary by someone else: never stopped here.
    if (now.running) return this.closeDemotion(now, 'the server runs as a primary: not touched');
    const seen = await this.divergence(op.to, now, upstream);
    if (seen.relation !== 'Behind')
      return this.closeDemotion(
        now,
        `${seen.message}: it cannot follow ${op.to} without a rewind; a reprotect rejoins it`,
      );
    const pg = this.opts.local;
    try {
      await pg.configureStandby(conninfo(upstream.address, { application_name: this.opts.cluster }));
      await pg.start();
    } catch (err) {
      return this.closeDemotion(
        await pg.inspect(),
        `could not start it as a standby of ${op.to}: ${(err as Error).message}`,
      );
    }
    const started = await pg.inspect();
    if (started.running && started.inRecovery)
      return succeeded(`stopped cleanly at ${task.stoppedLsn}; restarted as a standby of ${op.to}`, started);
    return say({ message: 'restarted; waiting for it to run in recovery' }, started);
  }

  /** Demote or rejoin, one sub-step after another, each re-derived from the world. */
  private async carryOut(policy: PolicyView, op: Operation, local: LocalState): Promise<void> {
    const action = op.kind === 'Switchover' ? 'Demote' : 'Rejoin';
    const previous = this.report?.task?.operationId === op.id ? this.report.task : undefined;
    let task: Task = previous ?? {
      operationId: op.id,
      action,
      phase: 'Running',
      startedAt: timestamp(this.opts.clock.now()),
    };
    const say = async (update: Partial<Task>, state = local) => {
      task = { ...task, ...update };
      this.opts.log.info({ operation: op.id, action, ...update }, 'agent task');
      await this.publish(state, { task });
    };
    const fail = (reason: string, message: string) =>
      say({
        phase: 'Failed',
        message: `${reason}: ${message}`.slice(0, 1024),
        finishedAt: timestamp(this.opts.clock.now()),
      });
    let upstream: Awaited<ReturnType<DatabaseAgent['upstream']>>;
    try {
      upstream = await this.upstream(op.to);
    } catch (err) {
      return say({ message: `waiting for ${op.to} to answer: ${(err as Error).message}`.slice(0, 1024) });
    }
    const foreign = this.foreign(local, upstream.identity, op.to);
    if (foreign) {
      await this.publish(local, { problem: foreign });
      return fail(foreign.reason, foreign.message);
    }
    // Running but not answering over its socket (starting up, overloaded, hung): it cannot be told
    // apart from the primary, nor a standby from a primary, so nothing is stopped until it answers.
    if (local.running && local.inRecovery === undefined)
      return say({
        message: `the server in ${this.opts.local.opts.dataDir} runs but does not answer over ${this.opts.local.opts.socketDir}: waiting for it before touching it`,
      });
    // The same cluster's other member (a data directory of the primary itself): stopping it would
    // stop the primary. Refuse before touching anything.
    if (
      local.running &&
      local.startedAt &&
      local.startedAt === (await upstreamStartedAt(upstream.address).catch(() => undefined))
    ) {
      const problem: Problem = {
        reason: 'SameServerAsPrimary',
        message:
          `the server in ${this.opts.local.opts.dataDir} is ${op.to} itself, the primary: check --data-dir and --pg-port`.slice(
            0,
            1024,
          ),
      };
      await this.publish(local, { problem });
      return fail(problem.reason, problem.message);
    }
    const standbyOf = conninfo(upstream.address, { application_name: this.opts.cluster });
    try {
      if (action === 'Demote') return await this.demote(op, local, standbyOf, say, fail);
      return await this.rejoin(policy, op, local, upstream, standbyOf, say, fail);
    } catch (err) {
      const reason = err instanceof ToolError ? `${err.tool}Failed` : 'StepFailed';
      // Left Running: the operator retries the step, and the agent takes it up from the world.
      return say({ message: `${reason}: ${(err as Error).message}`.slice(0, 1024) });
    }
  }

  private async demote(
    op: Operation,
    local: LocalState,
    standbyOf: string,
    say: (u: Partial<Task>, s?: LocalState) => Promise<void>,
    fail: (reason: string, message: string) => Promise<void>,
  ): Promise<void> {
    const pg = this.opts.local;
    if (local.running && local.inRecovery) {
      const stopped = this.report?.task?.operationId === op.id ? this.report.task.stoppedLsn : undefined;
      // In recovery without having stopped it for this operation: not the primary it was asked to
      // demote (a wrong data directory); say so rather than report a demotion that never happened.
      if (!stopped)
        return fail(
          'NotAPrimary',
          `the server in ${pg.opts.dataDir} is already in recovery: it is not the primary ${op.from}`,
        );
      return say({
        phase: 'Succeeded',
        method: 'Restart',
        message: `stopped cleanly at ${stopped}; now a standby of ${op.to}`,
        finishedAt: timestamp(this.opts.clock.now()),
      });
    }
    if (local.running) {
      await say({
        message: `stopping the primary (fast shutdown) so ${op.to} receives its shutdown checkpoint`,
      });
      await pg.stop();
      failpoint('demote:stopped');
      local = await pg.inspect();
    }
    const control = local.control;
    if (!control) return fail('NoControlData', 'pg_controldata gave nothing');
    if (!local.standbySignal && control.state !== 'shut down')
      return fail(
        'NotShutDownCleanly',
        `the server stopped in state "${control.state}", not by a clean shutdown: it cannot rejoin without a rewind; the switchover goes on and a reprotect rejoins it`,
      );
    const stoppedLsn =
      this.report?.task?.operationId === op.id && this.report.task.stoppedLsn
        ? this.report.task.stoppedLsn
        : control.checkpointLsn;
    await say(
      {
        stoppedLsn,
        message: `stopped cleanly; shutdown checkpoint at ${stoppedLsn}; restarting as a standby of ${op.to}`,
      },
      local,
    );
    await pg.configureStandby(standbyOf);
    failpoint('demote:configured');
    await pg.start();
    local = await pg.inspect();
    if (local.running && local.inRecovery)
      return say(
        {
          phase: 'Succeeded',
          method: 'Restart',
          message: `stopped cleanly at ${stoppedLsn}; restarted as a standby of ${op.to}`,
          finishedAt: timestamp(this.opts.clock.now()),
        },
        local,
      );
    return say({ message: 'restarted; waiting for it to run in recovery' }, local);
  }

  private async rejoin(
    policy: PolicyView,
    op: Operation,
    local: LocalState,
    upstream: { address: UpstreamAddress; identity: UpstreamIdentity },
    standbyOf: string,
    say: (u: Partial<Task>, s?: LocalState) => Promise<void>,
    fail: (reason: string, message: string) => Promise<void>,
  ): Promise<void> {
    const pg = this.opts.local;
    const done = (method: Task['method'], message: string, state: LocalState) =>
      say({ phase: 'Succeeded', method, message, finishedAt: timestamp(this.opts.clock.now()) }, state);
    const previousMethod = this.report?.task?.operationId === op.id ? this.report.task.method : undefined;
    // The last part of every way in: configured as the primary's standby, started, seen in recovery.
    const startAsStandby = async () => {
      await pg.configureStandby(standbyOf);
      failpoint('rejoin:configured');
      await pg.start();
      const started = await pg.inspect();
      const method = this.report?.task?.method ?? 'Restart';
      if (started.running && started.inRecovery)
        return done(
          method,
          `${method === 'Restart' ? 'restarted' : method === 'Rewind' ? 'rewound' : 're-cloned'}; a standby of ${op.to}`,
          started,
        );
      return say({ message: 'started; waiting for it to run in recovery' }, started);
    };
    if (this.following(local, upstream.address))
      return done(previousMethod ?? 'Restart', `a standby of ${op.to}`, local);
    // Rewound or re-cloned already (before a crash): only the restart as a standby is left.
    const prepared = this.report?.task?.operationId === op.id && this.report.task.prepared === true;
    if (local.running) {
      await say({ message: `stopping the server to rejoin it to ${op.to}` });
      await pg.stop();
      failpoint('rejoin:stopped');
      local = await pg.inspect();
    }
    if (!prepared) {
      const allowReclone = policy.spec.reprotect.allowReclone;
      if (await pg.rewindInterrupted()) {
        if (!allowReclone || !op.allowDataLoss)
          return fail(
            'RewindInterrupted',
            `a pg_rewind of ${pg.opts.dataDir} was interrupted: the directory cannot be trusted, started or rewound again; re-clone it (spec.reprotect.allowReclone: true and a request with allowDataLoss: true) or rebuild it by hand`,
          );
        await say(
          { method: 'Reclone', message: `an interrupted pg_rewind: pg_basebackup from ${op.to}` },
          local,
        );
        const kept = await pg.reclone(loginTo(upstream.address), recloneSuffix(op), standbyOf);
        await say(
          { method: 'Reclone', prepared: true, keptDataDirectory: kept, message: 're-cloned' },
          local,
        );
        return startAsStandby();
      }
      const divergence = await this.divergence(op.to, local, upstream);
      await this.publish(local, { divergence });
      const refused = discardRefusal(op, policy.spec.reprotect.mode, divergence);
      if (refused) return fail(refused.reason, refused.message);
      // Measured with the server stopped: what the rewind or re-clone really discards.
      const discarded = divergence.relation === 'Diverged' ? discardedOf(divergence) : undefined;
      const control = local.control;
      let method: Task['method'] = 'Restart';
      let kept: string | undefined;
      if (divergence.relation === 'Diverged') {
        const rewindable = control?.walLogHints || control?.checksums;
        let rewound = false;
        let why = 'the data directory has neither wal_log_hints nor data checksums, which pg_rewind needs';
        if (rewindable) {
          if (!(await checkpointOnTimeline(upstream.address, upstream.identity.timeline)))
            return say({
              message: `waiting for ${op.to}'s first checkpoint on timeline ${upstream.identity.timeline}, which pg_rewind needs (grant pg_checkpoint to ${upstream.address.user} to let the agent ask for it)`,
            });
          await say({ method: 'Rewind', message: `pg_rewind from ${op.to}: ${divergence.message}` }, local);
          try {
            const said = await pg.rewind(loginTo(upstream.address, { dbname: 'postgres' }), standbyOf);
            // It compared the wrong timelines: nothing was rewound, so the pass is tried again.
            if (/no rewind required/.test(said)) {
              const tries = this.emptyRewinds.operationId === op.id ? this.emptyRewinds.count + 1 : 1;
              this.emptyRewinds = { operationId: op.id, count: tries };
              if (tries >= MAX_EMPTY_REWINDS)
                return fail(
                  'RewindFoundNothing',
                  `pg_rewind said "${said}" ${tries} times while the histories diverge (${divergence.message}): rejoin it by hand, or re-clone it`,
                );
              return say({ message: `pg_rewind found nothing to rewind (${said}); trying again` });
            }
            rewound = true;
            method = 'Rewind';
          } catch (err) {
            why = (err as Error).message;
          }
        }
        if (!rewound) {
          if (!allowReclone)
            return fail(
              rewindable ? 'RewindFailed' : 'RewindImpossible',
              `${why}; set spec.reprotect.allowReclone: true to copy it afresh with pg_basebackup (the old data directory is kept aside), or rebuild it by hand`,
            );
          method = 'Reclone';
        }
      } else if (divergence.relation === 'Unrelated') {
        if (!op.allowDataLoss)
          return fail('WouldDiscard', `${divergence.message}; request it with allowDataLoss: true`);
        if (!allowReclone)
          return fail('HistoryUnrelated', `${divergence.message}; set spec.reprotect.allowReclone: true`);
        method = 'Reclone';
      }
      if (method === 'Reclone') {
        await say({ method, message: `pg_basebackup from ${op.to}` }, local);
        kept = await pg.reclone(loginTo(upstream.address), recloneSuffix(op), standbyOf);
      }
      await say(
        {
          method,
          prepared: true,
          ...(kept ? { keptDataDirectory: kept } : {}),
          ...(discarded ? { discarded } : {}),
          message: `${method === 'Restart' ? 'nothing to discard' : method === 'Rewind' ? 'rewound' : 're-cloned'}; starting as a standby of ${op.to}`,
        },
        local,
      );
    }
    return startAsStandby();
  }

  /** Writes the report when it changed, or every REPORT_EVERY_MS to show the agent lives. */
  private async publish(
    local: LocalState,
    change: {
      problem?: Problem;
      divergence?: AgentReport['divergence'];
      task?: Task;
      drillCopy?: AgentReport['drillCopy'];
      note?: string;
      keep?: boolean;
    },
  ): Promise<void> {
    const now = this.opts.clock.now();
    const before = this.report;
    const server: AgentReport['server'] = !local.control
      ? 'Unknown'
      : !local.running
        ? 'Stopped'
        : local.inRecovery === undefined
          ? 'Unknown'
          : local.inRecovery
            ? 'Standby'
            : 'Primary';
    const divergence =
      change.divergence ??
      (before?.divergence && (change.keep || server !== 'Standby') ? before.divergence : undefined);
    // Only the assessment's own finding carries over; the data directory's problems are read each pass.
    const problem =
      change.problem ??
      (change.keep && before?.problem?.reason === 'ForeignCluster' ? before.problem : undefined);
    const next: AgentReport = {
      name: this.name,
      reportedAt: timestamp(now),
      dataDirectory: this.opts.local.opts.dataDir,
      server,
      ...(local.control ? { systemIdentifier: local.control.systemIdentifier } : {}),
      ...((local.walTimeline ?? local.control?.timeline)
        ? { timeline: local.walTimeline ?? local.control?.timeline }
        : {}),
      ...(local.walEnd ? { walEnd: local.walEnd } : {}),
      ...(local.control ? { rewindable: local.control.walLogHints || local.control.checksums } : {}),
      ...(problem ? { problem: { ...problem, message: problem.message.slice(0, 1024) } } : {}),
      ...(divergence
        ? {
            divergence: {
              ...divergence,
              ...(divergence.message ? { message: divergence.message.slice(0, 1024) } : {}),
            },
          }
        : {}),
      ...((change.task ?? before?.task) ? { task: change.task ?? before?.task } : {}),
      ...((change.drillCopy ?? before?.drillCopy)
        ? { drillCopy: change.drillCopy ?? before?.drillCopy }
        : {}),
      ...this.guardFields(),
    };
    this.report = next;
    // A renewal every few seconds is not news: the Lease's time goes out with the periodic report.
    const key = (r?: AgentReport) =>
      JSON.stringify({
        ...r,
        reportedAt: 0,
        walEnd: 0,
        divergence: { ...r?.divergence, assessedAt: 0 },
        lease: { ...r?.lease, confirmedAt: 0 },
      });
    const same = (a?: AgentReport, b?: AgentReport) => key(a) === key(b);
    if (same(before, next) && now.getTime() - this.lastWritten < REPORT_EVERY_MS) return;
    await this.opts.client.mergePatch(
      replicaClusterType,
      this.opts.namespace,
      this.opts.cluster,
      { status: { agent: mergePatchFor(before, next) } },
      'status',
    );
    this.lastWritten = now.getTime();
    if (change.note) this.opts.log.info({ note: change.note }, 'agent');
  }
}

/** Every field a report's lease and vouch can have (the schema's). */
const LEASE_KEYS = Object.keys(agentReport.shape.lease.unwrap().shape);
const VOUCH_KEYS = Object.keys(agentReport.shape.vouch.unwrap().shape);

/**
 * The guard's object as a merge patch replacing it whole: a field it no longer has is sent as
 * null, or the stored one stays (a fence made kept `fenceOwed: true` in status, from any earlier
 * run too). Null for an object it no longer has at all.
 */
function whole(value: object | undefined, keys: string[]): Record<string, unknown> | null {
  return value ? { ...Object.fromEntries(keys.map((k) => [k, null])), ...value } : null;
}

/** Where a re-clone keeps the old directory: the operation's epoch and start time, unique per operation. */
export function recloneSuffix(op: Pick<Operation, 'epoch' | 'id'>): string {
  const stamp = /-(\d{14,17})(?:-|$)/.exec(op.id)?.[1] ?? op.id.replace(/[^A-Za-z0-9-]/g, '').slice(-24);
  return `${op.epoch}-${stamp}`;
}

/**
 * The merge patch that turns `before` into `next`: a merge patch keeps nested fields it does not
 * mention, so every field the last report had and this one has not is sent as null, at any depth
 * (a new task must not inherit the last one's stoppedLsn).
 */
export function mergePatchFor(before: unknown, next: unknown): unknown {
  const isObject = (v: unknown): v is Record<string, unknown> =>
    typeof v === 'object' && v !== null && !Array.isArray(v);
  if (!isObject(next)) return next;
  const out: Record<string, unknown> = {};
  const old = isObject(before) ? before : {};
  for (const k of Object.keys(old)) if (!(k in next)) out[k] = null;
  for (const [k, v] of Object.entries(next)) out[k] = mergePatchFor(old[k], v);
  return out;
}
