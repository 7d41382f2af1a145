/**
 * Files the incident records (reports.ts) through the API server: creates each FailoverReport,
 * then lets retention remove old ones. A record that cannot be filed stays unmarked in status
 * and is tried again next reconcile; nothing here holds up a failover (it runs after the step).
 */
import {
  type FailoverPolicySpec,
  type FailoverPolicyStatus,
  type FailoverReportSpec,
  failoverReportSpec,
} from '../../api/v1alpha1/index.ts';
import { parseOnce } from '../../api/validate.ts';
import { objectKey } from '../../runtime/informer.ts';
import { isConflict, isNotFound, type KubeObject } from '../../runtime/kube-client.ts';
import type { OperatorContext } from '../context.ts';
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

export class ReportFiling {
  /** When each policy's reports are next looked at for retention, when nothing new is filed. */
  private readonly nextPrune = new Map<string, number>();
  /**
   * The FailoverReport CRD is missing (an upgrade that did not apply crds/: Helm installs CRDs
   * only on install): filing waits this long between tries, and says so once each time.
   */
  private missingUntil = 0;

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
    const namespace = object.metadata.namespace ?? 'default';
    const filed: ReportToFile[] = [];
    if (now.getTime() < this.missingUntil) return next;
    for (const file of reportsToFile(object.metadata.name, spec, stored, now)) {
      try {
        await ctx.client.create(failoverReportType, namespace, reportObject(object, file));
        ctx.metrics.reportsFiled.inc({ namespace, policy: object.metadata.name, kind: file.spec.kind });
        filed.push(file);
      } catch (err) {
        // Filed before, and the status write that marked it lost: the same name holds the same record.
        if (isConflict(err)) {
          filed.push(file);
          continue;
        }
        if (isNotFound(err)) {
          this.missingUntil = now.getTime() + CRD_MISSING_RETRY_MS;
          ctx.log.warn(
            { err: String(err) },
            'cannot file incident reports: the FailoverReport CRD is missing; apply crds/regionfailover.io_failoverreports.yaml (helm upgrade does not install new CRDs). Tried again in 10 minutes',
          );
          return next;
        }
        ctx.log.warn(
          { policy: key, report: file.name, err: String(err) },
          'could not file an incident report',
        );
      }
    }
    const due = this.nextPrune.get(key) ?? now.getTime() + ctx.random() * PRUNE_INTERVAL_MS;
    if (filed.length > 0 || now.getTime() >= due) {
      this.nextPrune.set(key, now.getTime() + PRUNE_INTERVAL_MS);
      await this.prune(object, spec).catch((err: unknown) =>
        ctx.log.warn({ policy: key, err: String(err) }, 'could not remove old incident reports'),
      );
    } else this.nextPrune.set(key, due);
    return markReported(next, filed);
  }

  forget(key: string): void {
    this.nextPrune.delete(key);
  }

  private async prune(object: KubeObject, spec: FailoverPolicySpec): Promise<void> {
    const { ctx } = this;
    const namespace = object.metadata.namespace ?? 'default';
    const reports: FiledReport[] = [];
    let next: string | undefined;
    do {
      const page = await ctx.client.list(failoverReportType, namespace, {
        labelSelector: `${POLICY_UID_LABEL}=${object.metadata.uid ?? ''}`,
        limit: 500,
        ...(next ? { continue: next } : {}),
      });
      for (const item of page.items) {
        const parsed = parseOnce(failoverReportSpec, item.spec);
        const completedAt = parsed.ok
          ? (parsed.value as FailoverReportSpec).completedAt
          : (item.metadata.creationTimestamp ?? '');
        reports.push({ name: item.metadata.name, completedAt });
      }
      next = page.metadata.continue || undefined;
    } while (next);
    for (const name of reportsToPrune(reports, spec.reports, ctx.clock.now())) {
      await ctx.client.delete(failoverReportType, namespace, name);
      ctx.log.info({ policy: objectKey(object), report: name }, 'removed an incident report past retention');
    }
  }
}
