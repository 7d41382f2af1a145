/**
 * Files the incident records (reports.ts) through the API server: creates each FailoverReport,
 * then lets retention remove old ones. Filing never holds up a failover: it runs after the step,
 * only while the policy is quiet (no operation or drill stored or about to be written), a few
 * records per reconcile, and a policy whose filing fails waits with backoff. A record not filed
 * stays unmarked in status and is tried again later.
 */
import {
  type FailoverPolicySpec,
  type FailoverPolicyStatus,
  type FailoverReportSpec,
  failoverPolicySpec,
  failoverReportSpec,
} from '../../api/v1alpha1/index.ts';
import { parseOnce } from '../../api/validate.ts';
import { type BackoffPolicy, backoffDelay } from '../../runtime/backoff.ts';
import { objectKey } from '../../runtime/informer.ts';
import { isConflict, isGone, isNotFound, type KubeObject } from '../../runtime/kube-client.ts';
import type { OperatorContext } from '../context.ts';
import { readSpec } from '../read-object.ts';
import { failoverReportType } from '../resources.ts';
import {
  type FiledReport,
  markReported,
  POLICY_UID_LABEL,
  PRUNE_INTERVAL_MS,
  type ReportToFile,
  reportObject,
  reportsToFile,
  reportsToPrune,
} from './reports.ts';

const CRD_MISSING_RETRY_MS = 10 * 60_000;
/** Records created in one reconcile; the rest wait for the next (an upgrade backfills ~30). */
const CREATES_PER_PASS = 3;
/** The next pass after one that left records to file (a quiet policy is not looked at sooner). */
const BACKFILL_PACE_MS = 30_000;
/** Reports retention deletes in one pass; more are deleted a minute later. */
const DELETES_PER_PASS = 20;
const FILING_RETRY: BackoffPolicy = { baseMs: 30_000, maxMs: 30 * 60_000 };
/**
 * After a look that left nothing to delete, the next is when the oldest report left passes
 * maxAgeDays, and a week later at the latest: reports another replica filed while it held the
 * policy (a handover, a shard moved) are unknown here. A fleet of quiet policies costs a LIST per
 * policy per week, not per day.
 */
const PRUNE_IDLE_MAX_MS = 7 * 24 * 3_600_000;
/** A survey serves the looks due within this long of it; the next due look takes a new one. */
const SURVEY_MAX_AGE_MS = PRUNE_INTERVAL_MS;

/** What retention makes of one policy's reports: what to delete, and when the oldest kept expires. */
interface Look {
  gone: string[];
  oldestExpiresAt: number | undefined;
}

/**
 * One LIST of a namespace's reports, worked out per policy (by uid) under the retention each had
 * then. A quiet policy's look takes its part instead of listing its own: 2,000 quiet policies
 * cost one paged LIST a day, not one every 40 s of it. Only what each look needs is kept.
 */
interface Survey {
  at: number;
  /**
   * By policy uid, for each policy the cache held then: its look (none: it had no report), until
   * taken. A policy not in it (newer, or its look already taken) lists its own.
   */
  looks: Map<string, { look: Look | undefined; retention: string }>;
}

export class ReportFiling {
  /**
   * When each policy's reports are next looked at for retention, when nothing new is filed, and
   * under which retention that was worked out (a changed one looks again at once).
   */
  private readonly nextPrune = new Map<string, { dueAt: number; retention: string; listOwn?: boolean }>();
  /** By namespace: the last survey, or the one being taken (looks due together share it). */
  private readonly surveys = new Map<string, Survey | Promise<Survey>>();
  /** Policies whose filing failed: failures in a row, and not before when. */
  private readonly failing = new Map<string, { failures: number; until: number }>();
  /**
   * The FailoverReport CRD is missing (an upgrade that did not apply crds/: Helm installs CRDs
   * only on install): filing waits this long between tries, and says so once each time.
   */
  private missingUntil = 0;
  /** Policies with records left to file after a full pass: when the next pass files more. */
  private readonly backfilling = new Map<string, number>();

  private readonly ctx: OperatorContext;

  constructor(ctx: OperatorContext) {
    this.ctx = ctx;
  }

  /**
   * Files what the stored status holds unfiled (only what a status write has made final: a record
   * decided in this reconcile waits for the next); returns `next` with what was filed marked.
   */
  async file(
    object: KubeObject,
    spec: FailoverPolicySpec,
    stored: FailoverPolicyStatus,
    next: FailoverPolicyStatus,
  ): Promise<FailoverPolicyStatus> {
    const { ctx } = this;
    const now = ctx.clock.now();
    const key = objectKey(object);
    // Quiet only: while an operation or a drill runs, each reconcile's status write is a step.
    if (stored.currentOperation || next.currentOperation || stored.drill || next.drill) return next;
    if (now.getTime() < this.missingUntil) return next;
    if (now.getTime() < (this.failing.get(key)?.until ?? 0)) return next;
    const namespace = object.metadata.namespace ?? 'default';
    const filed: ReportToFile[] = [];
    const toFile = reportsToFile(object.metadata.name, spec, stored, now);
    // More than a pass files, or a record this reconcile decided (filed once its status write
    // made it final): the next pass is due, though a quiet policy is looked at every few minutes.
    if (toFile.length > CREATES_PER_PASS) this.backfilling.set(key, now.getTime() + BACKFILL_PACE_MS);
    else if (reportsToFile(object.metadata.name, spec, next, now).length > toFile.length)
      this.backfilling.set(key, now.getTime());
    else this.backfilling.delete(key);
    for (const file of toFile.slice(0, CREATES_PER_PASS)) {
      try {
        await this.create(object, file);
        filed.push(file);
        ctx.metrics.reportsFiled.inc({ namespace, policy: object.metadata.name, kind: file.spec.kind });
      } catch (err) {
        if (isNotFound(err)) {
          this.missingUntil = now.getTime() + CRD_MISSING_RETRY_MS;
          ctx.log.warn(
            { err: String(err) },
            'cannot file incident reports: the FailoverReport CRD is missing; apply crds/regionfailover.io_failoverreports.yaml (helm upgrade does not install new CRDs). Tried again in 10 minutes',
          );
        } else this.failed(key, now, file.name, err);
        return markReported(next, filed);
      }
    }
    this.failing.delete(key);
    const retention = JSON.stringify(spec.reports);
    const known = this.nextPrune.get(key);
    // Unknown (a start, a policy newly held): the first look falls anywhere in a day, so a
    // restart over a fleet does not list every policy's reports at once.
    const due =
      known?.retention === retention
        ? known.dueAt
        : known
          ? 0
          : now.getTime() + ctx.random() * PRUNE_INTERVAL_MS;
    if (filed.length > 0 || now.getTime() >= due) {
      // Its own LIST after a filing, under a new retention or to go on deleting; a survey's otherwise.
      const own =
        filed.length > 0 || (known !== undefined && known.retention !== retention) || known?.listOwn === true;
      const look = await this.prune(object, spec, own).catch((err: unknown) => {
        ctx.log.warn({ policy: key, err: String(err) }, 'could not remove old incident reports');
        // What is there is unknown: look again in a day, not a week.
        return { more: false, oldestExpiresAt: now.getTime() + PRUNE_INTERVAL_MS };
      });
      const idle = Math.min(
        now.getTime() + PRUNE_IDLE_MAX_MS,
        look.oldestExpiresAt ?? Number.POSITIVE_INFINITY,
      );
      this.nextPrune.set(
        key,
        look.more ? { dueAt: now.getTime() + 60_000, retention, listOwn: true } : { dueAt: idle, retention },
      );
    } else this.nextPrune.set(key, { dueAt: due, retention });
    return markReported(next, filed);
  }

  forget(key: string): void {
    this.nextPrune.delete(key);
    this.failing.delete(key);
    this.backfilling.delete(key);
  }

  /**
   * When work left for a policy comes due (ms since the epoch): a failed filing's retry, records
   * left to file, reports still being removed. A quiet policy is looked at then, not minutes later.
   */
  nextPassAt(key: string): number | undefined {
    // A failed filing holds every pass back until its retry, and a missing CRD every policy's.
    const failing = this.failing.get(key);
    const prune = this.nextPrune.get(key);
    const times = (
      failing ? [failing.until] : [this.backfilling.get(key), prune?.listOwn ? prune.dueAt : undefined]
    ).filter((t): t is number => t !== undefined);
    return times.length ? Math.max(Math.min(...times), this.missingUntil) : undefined;
  }

  /**
   * Creates one record. A 409 is this record filed before (its status write lost) when the object
   * there is this policy's with this id; another's (a request id reused by a policy made again
   * under the same name, before the garbage collector removed the old reports) moves the record
   * to a name with the policy's uid in it.
   */
  private async create(object: KubeObject, file: ReportToFile): Promise<void> {
    const { client } = this.ctx;
    const namespace = object.metadata.namespace ?? 'default';
    try {
      await client.create(failoverReportType, namespace, reportObject(object, file));
      return;
    } catch (err) {
      if (!isConflict(err)) throw err;
    }
    const there = await client.find(failoverReportType, namespace, file.name);
    const ours =
      there?.metadata.labels?.[POLICY_UID_LABEL] === object.metadata.uid &&
      (there?.spec as { id?: string } | undefined)?.id === file.id;
    if (ours) return;
    const uid = (object.metadata.uid ?? '').slice(0, 8);
    const moved = { ...file, name: `${file.name.slice(0, 244).replace(/[^a-z0-9]+$/, '')}-${uid}` };
    try {
      await client.create(failoverReportType, namespace, reportObject(object, moved));
    } catch (err) {
      if (!isConflict(err)) throw err;
    }
  }

  private failed(key: string, now: Date, report: string, err: unknown): void {
    const failures = (this.failing.get(key)?.failures ?? 0) + 1;
    const wait = backoffDelay(failures - 1, FILING_RETRY, this.ctx.random);
    this.failing.set(key, { failures, until: now.getTime() + wait });
    this.ctx.log.warn(
      { policy: key, report, err: String(err), retryInSeconds: Math.round(wait / 1000) },
      'could not file an incident report',
    );
  }

  /** Deletes a pass of what retention removes: whether more is left, and when the oldest kept expires. */
  private async prune(
    object: KubeObject,
    spec: FailoverPolicySpec,
    listOwn: boolean,
  ): Promise<{ more: boolean; oldestExpiresAt: number | undefined }> {
    const { ctx } = this;
    const namespace = object.metadata.namespace ?? 'default';
    const retention = JSON.stringify(spec.reports);
    let look: Look;
    if (listOwn) {
      const reports = await this.listReports(namespace, `${POLICY_UID_LABEL}=${object.metadata.uid ?? ''}`);
      look = lookAt(reports, spec, ctx.clock.now());
    } else {
      const survey = await this.survey(namespace);
      const uid = object.metadata.uid ?? '';
      const part = survey.looks.get(uid);
      survey.looks.delete(uid);
      // Not surveyed (or taken already), worked out under another retention, or with something to
      // delete (what is deleted is decided on a fresh list, never a day-old one): its own LIST.
      if (!part || part.retention !== retention || part.look?.gone.length)
        return this.prune(object, spec, true);
      look = part.look ?? { gone: [], oldestExpiresAt: undefined };
    }
    const { gone } = look;
    for (const name of gone.slice(0, DELETES_PER_PASS)) {
      // Gone already (a person, or another replica's pass): what retention wanted.
      const removed = await ctx.client.delete(failoverReportType, namespace, name).then(
        () => true,
        (err: unknown) => {
          if (isNotFound(err)) return false;
          throw err;
        },
      );
      if (removed)
        ctx.log.info(
          { policy: objectKey(object), report: name },
          'removed an incident report past retention',
        );
    }
    return { more: gone.length > DELETES_PER_PASS, oldestExpiresAt: look.oldestExpiresAt };
  }

  /** Every report matching `labelSelector` in `namespace`, a page at a time: name and when completed. */
  private async listReports(
    namespace: string,
    labelSelector?: string,
  ): Promise<(FiledReport & { uid: string })[]> {
    let reports: (FiledReport & { uid: string })[] = [];
    let next: string | undefined;
    let restarted = false;
    for (;;) {
      const page = await this.ctx.client
        .list(failoverReportType, namespace, {
          ...(labelSelector ? { labelSelector } : {}),
          limit: 500,
          ...(next ? { continue: next } : {}),
        })
        .catch((err: unknown) => {
          // A continue token expires (410) when paging a large namespace outlasts etcd's
          // compaction: start over once, from a fresh list.
          if (!next || restarted || !isGone(err)) throw err;
          return undefined;
        });
      if (!page) {
        restarted = true;
        reports = [];
        next = undefined;
        continue;
      }
      for (const item of page.items) {
        const parsed = parseOnce(failoverReportSpec, item.spec);
        const completedAt = parsed.ok
          ? (parsed.value as FailoverReportSpec).completedAt
          : (item.metadata.creationTimestamp ?? '');
        const uid = item.metadata.labels?.[POLICY_UID_LABEL] ?? '';
        reports.push({ name: item.metadata.name, completedAt, uid });
      }
      next = page.metadata.continue || undefined;
      if (!next) return reports;
    }
  }

  /** The namespace's survey of the last day, or a new one (one at a time per namespace). */
  private async survey(namespace: string): Promise<Survey> {
    const now = this.ctx.clock.now();
    const held = this.surveys.get(namespace);
    if (held && (held instanceof Promise || now.getTime() - held.at < SURVEY_MAX_AGE_MS)) return held;
    // Surveys past their day go (a namespace with no policy left would keep its last one).
    for (const [ns, old] of this.surveys)
      if (!(old instanceof Promise) && now.getTime() - old.at >= SURVEY_MAX_AGE_MS) this.surveys.delete(ns);
    const taking = this.takeSurvey(namespace, now);
    this.surveys.set(namespace, taking);
    try {
      const survey = await taking;
      this.surveys.set(namespace, survey);
      return survey;
    } catch (err) {
      this.surveys.delete(namespace);
      throw err;
    }
  }

  private async takeSurvey(namespace: string, now: Date): Promise<Survey> {
    const byUid = new Map<string, FiledReport[]>();
    for (const r of await this.listReports(namespace)) {
      const group = byUid.get(r.uid) ?? [];
      group.push({ name: r.name, completedAt: r.completedAt });
      byUid.set(r.uid, group);
    }
    const looks: Survey['looks'] = new Map();
    // Worked out under each policy's retention as the cache holds it; a report of no policy held
    // here (deleted: the garbage collector's) is left alone.
    for (const policy of this.ctx.policies.list()) {
      const uid = policy.metadata.uid;
      const spec = readSpec(failoverPolicySpec, policy);
      if (!uid || !spec.ok || policy.metadata.namespace !== namespace) continue;
      const reports = byUid.get(uid);
      const retention = JSON.stringify(spec.spec.reports);
      looks.set(uid, { look: reports ? lookAt(reports, spec.spec, now) : undefined, retention });
    }
    return { at: now.getTime(), looks };
  }
}

/** What retention makes of a policy's reports at `now`. */
function lookAt(reports: FiledReport[], spec: FailoverPolicySpec, now: Date): Look {
  const gone = reportsToPrune(reports, spec.reports, now);
  const removed = new Set(gone);
  const oldest = reports
    .filter((r) => !removed.has(r.name))
    .map((r) => Date.parse(r.completedAt))
    .filter((t) => Number.isFinite(t))
    .reduce((a, b) => Math.min(a, b), Number.POSITIVE_INFINITY);
  return {
    gone,
    // A second past: a look at the very moment finds it exactly maxAgeDays old, not older.
    oldestExpiresAt: Number.isFinite(oldest)
      ? oldest + spec.reports.maxAgeDays * 86_400_000 + 1000
      : undefined,
  };
}
