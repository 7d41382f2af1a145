/**
 * The chart's PrometheusRule evaluated by Prometheus's own engine (promtool, built from the Go
 * module proxy with the chart tools): every rule parses, and the availability burn-rate alerts
 * fire on an outage only for a policy with an SLO, the fast one stopping soon after the outage
 * ends while the slow one goes on.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dump } from 'js-yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { parseManifests, promtool, renderChart } from '../harness/chart-tools.ts';

const dir = mkdtempSync(join(tmpdir(), 'failover-rules-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Rule {
  alert?: string;
  record?: string;
  expr: string;
}

async function renderedRules(
  operator: Record<string, unknown> = {},
  file = 'rules.yaml',
): Promise<{ path: string; rules: Rule[] }> {
  const manifests = parseManifests(
    await renderChart({
      namespace: 'failover-system',
      values: { prometheusRule: { enabled: true }, operator },
    }),
  );
  const rule = manifests.find((m) => m.kind === 'PrometheusRule') as unknown as {
    spec: { groups: { name: string; rules: Rule[] }[] };
  };
  const path = join(dir, file);
  writeFileSync(path, dump({ groups: rule.spec.groups }, { lineWidth: -1 }));
  return { path, rules: rule.spec.groups.flatMap((g) => g.rules) };
}

describe("the chart's Prometheus rules, evaluated by promtool", () => {
  it('all parse, and the burn-rate alerts fire on an outage against the SLO, fast then slow', async () => {
    const { path, rules } = await renderedRules();
    const checked = await promtool(['check', 'rules', path]);
    expect(checked.code, `${checked.stdout}${checked.stderr}`).toBe(0);
    expect(checked.stdout).toMatch(/SUCCESS: \d+ rules found/);

    const expr = (alert: string) => rules.find((r) => r.alert === alert)?.expr ?? '';
    const firing = (alert: string) => `count by (namespace, policy) (${expr(alert)})`;
    const orders = { namespace: 'apps', policy: 'orders' };
    const labels = (l: Record<string, string>) =>
      `{${Object.entries(l)
        .map(([k, v]) => `${k}="${v}"`)
        .join(', ')}}`;
    // One sample a minute: up for 30 minutes, down for 11 (31m to 41m), up again.
    const outage = '0x30 1x10 0x30';
    const tests = {
      rule_files: [path],
      evaluation_interval: '1m',
      tests: [
        {
          interval: '1m',
          input_series: [
            {
              series: `failover_policy_unavailable{namespace="apps", policy="orders", job="operator"}`,
              values: outage,
            },
            {
              series: `failover_policy_availability_target_ratio{namespace="apps", policy="orders", job="operator"}`,
              values: '0.9995x70',
            },
            // The same outage on a policy without spec.slo: no budget, no alert.
            {
              series: `failover_policy_unavailable{namespace="apps", policy="no-slo", job="operator"}`,
              values: outage,
            },
          ],
          promql_expr_test: [
            // Before the outage: nothing.
            { expr: firing('FailoverAvailabilityBudgetBurn'), eval_time: '30m', exp_samples: [] },
            // 9 minutes in: the fast burn pages (1 h and 5 m windows both over 14.4 × 0.05 %).
            {
              expr: firing('FailoverAvailabilityBudgetBurn'),
              eval_time: '39m',
              exp_samples: [{ labels: labels(orders), value: 1 }],
            },
            {
              expr: 'namespace_policy:failover_policy_unavailable:avg_over_time1h',
              eval_time: '39m',
              // 9 of the 40 samples in the hour are down (the range is open on the left).
              exp_samples: ['orders', 'no-slo'].map((policy) => ({
                labels: labels({
                  __name__: 'namespace_policy:failover_policy_unavailable:avg_over_time1h',
                  namespace: 'apps',
                  policy,
                }),
                value: 9 / 40,
              })),
            },
            // 9 minutes after it ended: the 5 m window is clean, the page stops; the slow burn goes on.
            { expr: firing('FailoverAvailabilityBudgetBurn'), eval_time: '50m', exp_samples: [] },
            {
              expr: firing('FailoverAvailabilityBudgetSlowBurn'),
              eval_time: '50m',
              exp_samples: [{ labels: labels(orders), value: 1 }],
            },
          ],
        },
      ],
    };
    const testsPath = join(dir, 'tests.yaml');
    writeFileSync(testsPath, dump(tests, { lineWidth: -1 }));
    const tested = await promtool(['test', 'rules', testsPath]);
    expect(tested.code, `${tested.stdout}${tested.stderr}`).toBe(0);
    expect(tested.stdout).toContain('SUCCESS');
  });

  it('with --shards, page when a shard has no holder or two, not when each has one', async () => {
    const { path, rules } = await renderedRules({ shards: 3 }, 'sharded-rules.yaml');
    const expr = (alert: string) => rules.find((r) => r.alert === alert)?.expr ?? '';
    const missing = expr('FailoverOperatorLeaderMissing');
    const several = expr('FailoverOperatorSeveralLeaders');
    const checked = await promtool(['check', 'rules', path]);
    expect(checked.code, `${checked.stdout}${checked.stderr}`).toBe(0);
    const lease = (shard: number, pod: string) =>
      `leader_election_master_status{name="failover-failover-operator-leader-shard-${shard}-of-3", namespace="failover-system", pod="${pod}"}`;
    // 0-20m: one holder each. 20-40m: shard 2 has none. 40-60m: shard 1 has two.
    const tests = {
      rule_files: [path],
      evaluation_interval: '1m',
      tests: [
        {
          interval: '1m',
          input_series: [
            { series: lease(0, 'a'), values: '1x60' },
            { series: lease(1, 'b'), values: '1x60' },
            { series: lease(1, 'c'), values: '0x40 1x20' },
            { series: lease(2, 'c'), values: '1x20 0x20 1x20' },
            // A replica's own member Lease is not a shard: it never counts.
            {
              series: `leader_election_master_status{name="failover-failover-operator-leader-member-a", namespace="failover-system", pod="a"}`,
              values: '1x60',
            },
          ],
          promql_expr_test: [
            { expr: missing, eval_time: '15m', exp_samples: [] },
            { expr: several, eval_time: '15m', exp_samples: [] },
            // Two of three shards held: the count.
            { expr: missing, eval_time: '35m', exp_samples: [{ labels: '{}', value: 2 }] },
            { expr: several, eval_time: '35m', exp_samples: [] },
            { expr: missing, eval_time: '55m', exp_samples: [] },
            // Shard 1 held by two replicas: the most holders of any shard.
            { expr: several, eval_time: '55m', exp_samples: [{ labels: '{}', value: 2 }] },
          ],
        },
      ],
    };
    const testsPath = join(dir, 'sharded-tests.yaml');
    writeFileSync(testsPath, dump(tests, { lineWidth: -1 }));
    const tested = await promtool(['test', 'rules', testsPath]);
    expect(tested.code, `${tested.stdout}${tested.stderr}`).toBe(0);
    expect(tested.stdout).toContain('SUCCESS');
  });
});
