/**
 * ReportFiling against a stand-in for the API server's FailoverReport collection (the real one is
 * exercised by the failover, drill and status-page integration tests): when it files, what it
 * does with a name already taken, a missing CRD and a failing server.
 */
import { describe, expect, it } from 'vitest';
import { type FailoverPolicyStatus, failoverPolicySpec } from '../../api/v1alpha1/index.ts';
import { KubeApiError, type KubeObject } from '../../runtime/kube-client.ts';
import { silentLogger } from '../../runtime/logger.ts';
import { Metrics } from '../../runtime/metrics.ts';
import type { OperatorContext } from '../context.ts';
import { ReportFiling } from './report-filing.ts';
import { POLICY_UID_LABEL } from './reports.ts';

const NOW = new Date('2026-12-02T12:00:00Z');
const policy: KubeObject = { metadata: { name: 'orders', namespace: 'apps', uid: 'uid-orders-1' } };
const spec = failoverPolicySpec.parse({
  primary: 'a',
  standbys: ['b'],
  dns: {
    provider: { type: 'Route53', route53: { hostedZoneId: 'Z1' } },
    zone: 'example.com',
    name: 'db.example.com',
  },
  reports: { keep: 2 },
});

const finished = (id: string, minute: number) => ({
  id,
  kind: 'Failover' as const,
  trigger: 'Automatic' as const,
  from: 'a',
  to: 'b',
  epoch: 1,
  result: 'Succeeded' as const,
  startedAt: new Date(NOW.getTime() - 120_000 + minute * 60_000).toISOString(),
  completedAt: new Date(NOW.getTime() - 60_000 + minute * 60_000).toISOString(),
});

/** The API server's FailoverReport collection, as far as filing uses it. */
class Reports {
  readonly objects = new Map<string, KubeObject>();
  calls = 0;
  lists = 0;
  failListWith: KubeApiError | undefined;
  failWith: KubeApiError | undefined;

  async create(_t: unknown, _ns: string, body: KubeObject): Promise<KubeObject> {
    this.calls++;
    if (this.failWith) throw this.failWith;
    if (this.objects.has(body.metadata.name)) throw new KubeApiError(409, 'AlreadyExists', 'exists');
    this.objects.set(body.metadata.name, body);
    return body;
  }
  async find(_t: unknown, _ns: string, name: string) {
    return this.objects.get(name);
  }
  /** Pages of this many (the API server's `limit`), and continue tokens that expire when told. */
  pageSize = Number.POSITIVE_INFINITY;
  expireNextContinue = false;
  async list(_t: unknown, _ns: string, query: { labelSelector?: string; continue?: string }) {
    this.lists++;
    if (this.failListWith) throw this.failListWith;
    if (query.continue && this.expireNextContinue) {
      this.expireNextContinue = false;
      throw new KubeApiError(410, 'Expired', 'the provided continue parameter is too old');
    }
    const [key, value] = (query.labelSelector ?? '').split('=');
    const all = [...this.objects.values()].filter((o) => !key || o.metadata.labels?.[key] === value);
    const from = Number(query.continue ?? 0);
    const to = from + this.pageSize;
    const items = all.slice(from, to);
    return {
      items,
      metadata: { resourceVersion: '1', ...(to < all.length ? { continue: String(to) } : {}) },
    };
  }
  async delete(_t: unknown, _ns: string, name: string) {
    this.objects.delete(name);
  }
}

/** The policies the informer holds (a survey works out each one's look under its retention). */
const held = (...policies: [KubeObject, unknown][]) =>
  policies.map(([o, spec]) => ({ ...o, spec }) as KubeObject);

function filing(now: () => Date = () => NOW, random: () => number = () => 0.5) {
  const reports = new Reports();
  const cache = { policies: held([policy, spec]) };
  const ctx = {
    client: reports,
    clock: { now },
    random,
    log: silentLogger,
    metrics: new Metrics(),
    policies: { list: () => cache.policies },
  } as unknown as OperatorContext;
  return { reports, cache, filing: new ReportFiling(ctx) };
}

describe('filing incident records', () => {
  it('waits while an operation runs, files three at a time, and retention keeps `keep`', async () => {
    const { reports, filing: f } = filing();
    const history = [1, 2, 3, 4, 5].map((i) => finished(`failover-e${i}`, i)).reverse();
    const busy: FailoverPolicyStatus = {
      history,
      currentOperation: { ...finished('x', 6), step: 'Fencing', stepStartedAt: NOW.toISOString() } as never,
    };
    expect(await f.file(policy, spec, busy, busy)).toBe(busy);
    expect(reports.calls).toBe(0);
    const quiet: FailoverPolicyStatus = { history };
    const once = await f.file(policy, spec, quiet, quiet);
    expect(once.history?.filter((r) => r.reported)).toHaveLength(3);
    // Two left: the next pass is due in 30 s, so a quiet policy is looked at then.
    expect(f.nextPassAt('apps/orders')).toBe(NOW.getTime() + 30_000);
    const twice = await f.file(policy, spec, once, once);
    expect(twice.history?.every((r) => r.reported)).toBe(true);
    expect(f.nextPassAt('apps/orders')).toBeUndefined();
    // Retention ran after each filing: the newest two are left.
    expect([...reports.objects.keys()].sort()).toEqual(['orders-failover-e4', 'orders-failover-e5']);
  });

  it('puts the next pass no sooner than filing can work: after a missing CRD’s wait, or a failure’s retry', async () => {
    const { reports, filing: f } = filing();
    const history = [1, 2, 3, 4, 5].map((i) => finished(`failover-e${i}`, i)).reverse();
    reports.failWith = new KubeApiError(404, 'NotFound', 'the server could not find the requested resource');
    await f.file(policy, spec, { history }, { history });
    // Five to file, but the CRD is missing: not in 30 s (a quiet policy spinning), in 10 minutes.
    expect(f.nextPassAt('apps/orders')).toBe(NOW.getTime() + 10 * 60_000);
    // A record this reconcile decided is filed by the next pass, once its status is written.
    const g = filing().filing;
    await g.file(policy, spec, {}, { history: [finished('failover-e1', 1)] });
    expect(g.nextPassAt('apps/orders')).toBe(NOW.getTime());
  });

  it('takes a 409 for its own record as filed, and moves a record whose name another holds', async () => {
    const { reports, filing: f } = filing();
    const status: FailoverPolicyStatus = { history: [finished('failover-e1', 1)] };
    await f.file(policy, spec, status, status);
    // A lost status write: the same record again is filed, not made twice.
    const again = await f.file(policy, spec, status, status);
    expect(again.history?.[0]?.reported).toBe(true);
    expect(reports.objects.size).toBe(1);
    // A policy made again under the same name (another uid) reusing a request id.
    const reborn: KubeObject = { metadata: { ...policy.metadata, uid: 'uid-orders-2' } };
    const refused: FailoverPolicyStatus = {
      lastRequest: { id: 'fail-1', outcome: 'Rejected', reason: 'X', message: 'no', time: NOW.toISOString() },
    };
    await f.file(policy, spec, refused, refused);
    const marked = await f.file(reborn, spec, refused, refused);
    expect(marked.lastRequest?.reported).toBe(true);
    expect([...reports.objects.keys()]).toContain('orders-promotion-request-fail-1-uid-orde');
  });

  it('says once that the CRD is missing and waits ten minutes; backs off after a failure', async () => {
    let now = NOW;
    const { reports, filing: f } = filing(() => now);
    const status: FailoverPolicyStatus = { history: [finished('failover-e1', 1)] };
    reports.failWith = new KubeApiError(404, 'NotFound', 'the server could not find the requested resource');
    expect((await f.file(policy, spec, status, status)).history?.[0]?.reported).toBeUndefined();
    await f.file(policy, spec, status, status);
    expect(reports.calls).toBe(1);
    now = new Date(NOW.getTime() + 11 * 60_000);
    reports.failWith = new KubeApiError(500, 'InternalError', 'etcd timeout');
    await f.file(policy, spec, status, status);
    await f.file(policy, spec, status, status);
    expect(reports.calls).toBe(2);
    // The retry's time (30 s, jittered) is when a quiet policy is looked at again.
    const retryAt = f.nextPassAt('apps/orders') ?? 0;
    expect(retryAt - now.getTime()).toBeGreaterThanOrEqual(15_000);
    expect(retryAt - now.getTime()).toBeLessThanOrEqual(30_000);
    reports.failWith = undefined;
    now = new Date(now.getTime() + 60 * 60_000);
    expect((await f.file(policy, spec, status, status)).history?.[0]?.reported).toBe(true);
  });

  it('looks at a quiet policy’s reports when the oldest kept expires, a week on at the latest, and at once under a new retention', async () => {
    let now = NOW;
    const { reports, cache, filing: f } = filing(() => now);
    const later = (days: number) => new Date(NOW.getTime() + days * 86_400_000);
    const status: FailoverPolicyStatus = { history: [finished('failover-e1', 1)] };
    const filed = await f.file(policy, spec, status, status);
    expect(reports.lists).toBe(1);
    // Nothing filed since: no look for a week (not every day, as before).
    for (const day of [1, 2, 3, 6.9]) {
      now = later(day);
      await f.file(policy, spec, filed, filed);
    }
    expect(reports.lists).toBe(1);
    now = later(7.01);
    await f.file(policy, spec, filed, filed);
    expect(reports.lists).toBe(2);
    // A new retention is looked at at once; kept 10 days, the next look is when the report
    // passes that age, and removes it.
    const short = failoverPolicySpec.parse({ ...spec, reports: { keep: 2, maxAgeDays: 10 } });
    cache.policies = held([policy, short]);
    await f.file(policy, short, filed, filed);
    expect(reports.lists).toBe(3);
    expect(reports.objects.size).toBe(1);
    now = later(9.9);
    await f.file(policy, short, filed, filed);
    expect(reports.lists).toBe(3);
    now = later(10.01);
    await f.file(policy, short, filed, filed);
    // A survey, which finds a report to delete, then the policy's own LIST to delete it from.
    expect(reports.lists).toBe(5);
    expect(reports.objects.size).toBe(0);
  });

  it('looks at a namespace of quiet policies with one LIST a day, not one per policy', async () => {
    let now = NOW;
    let draw = 0;
    // The first looks after a start spread over the day: policy i's at i/40 of it.
    const {
      reports,
      cache,
      filing: f,
    } = filing(
      () => now,
      () => draw++ / 40,
    );
    const fleet = Array.from(
      { length: 40 },
      (_, i): KubeObject => ({
        metadata: { name: `db-${i}`, namespace: 'apps', uid: `uid-db-${i}` },
      }),
    );
    cache.policies = held(...fleet.map((p): [KubeObject, unknown] => [p, spec]));
    const report = (p: KubeObject, id: string, completedAt: Date) =>
      reports.objects.set(`${p.metadata.name}-${id}`, {
        metadata: {
          name: `${p.metadata.name}-${id}`,
          labels: { [POLICY_UID_LABEL]: p.metadata.uid ?? '' },
          creationTimestamp: completedAt.toISOString(),
        },
      });
    const [db0, db1] = fleet as [KubeObject, KubeObject];
    // db-0 has three reports (keep 2: the oldest goes); db-1 one that passes maxAgeDays (400) 6
    // hours on. (Their spec is left out: retention then goes by when the object was made.)
    for (const d of [1, 2, 3]) report(db0, `failover-e${d}`, new Date(NOW.getTime() - d * 86_400_000));
    report(db1, 'failover-e1', new Date(NOW.getTime() - (400 * 24 - 6) * 3_600_000));
    const quiet: FailoverPolicyStatus = {};
    for (let quarter = 0; quarter < 24 * 4; quarter++) {
      now = new Date(NOW.getTime() + quarter * 900_000);
      for (const p of fleet) await f.file(p, spec, quiet, quiet);
    }
    expect([...reports.objects.keys()].sort()).toEqual(['db-0-failover-e1', 'db-0-failover-e2']);
    // One survey served the 40 first looks; db-0, with a report to delete, listed its own first
    // (what goes is decided on a fresh list); db-1, due again at its report's expiry within the
    // day, listed its own (the survey no longer speaks for a policy whose part was taken).
    expect(reports.lists).toBe(3);
  });

  it('starts a paged list over once when its continue token expires', async () => {
    const { reports, filing: f } = filing();
    reports.pageSize = 2;
    const history = [1, 2, 3, 4, 5].map((i) => finished(`failover-e${i}`, i)).reverse();
    // Five filed already (keep is 2); the look pages through them 2 at a time.
    const reported = history.map((r) => ({ ...r, reported: true }));
    for (const r of history)
      reports.objects.set(`orders-${r.id}`, {
        metadata: {
          name: `orders-${r.id}`,
          labels: { [POLICY_UID_LABEL]: policy.metadata.uid ?? '' },
          creationTimestamp: r.completedAt,
        },
      });
    reports.expireNextContinue = true;
    const status: FailoverPolicyStatus = { history: [finished('failover-e6', 6), ...reported] };
    await f.file(policy, spec, status, status);
    // Filed e6, then listed: page 1, an expired token, then all three pages again.
    expect(reports.lists).toBe(5);
    expect([...reports.objects.keys()].sort()).toEqual(['orders-failover-e5', 'orders-failover-e6']);
  });

  it('looks again a day after a look that failed, not a week', async () => {
    let now = NOW;
    const { reports, filing: f } = filing(() => now);
    const status: FailoverPolicyStatus = { history: [finished('failover-e1', 1)] };
    reports.failListWith = new KubeApiError(500, 'InternalError', 'etcd timeout');
    const filed = await f.file(policy, spec, status, status);
    expect(reports.lists).toBe(1);
    reports.failListWith = undefined;
    now = new Date(NOW.getTime() + 0.9 * 86_400_000);
    await f.file(policy, spec, filed, filed);
    expect(reports.lists).toBe(1);
    now = new Date(NOW.getTime() + 1.01 * 86_400_000);
    await f.file(policy, spec, filed, filed);
    expect(reports.lists).toBe(2);
  });
});
