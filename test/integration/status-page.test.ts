/**
 * The status page after a real failover (real PostgreSQL, BIND, observers and operator), read in
 * a real headless browser: the figures it shows are status's, its 90-day bar holds the outage the
 * quorum saw, and the incident's timeline is there. Screenshots go to .local/screenshots/.
 */
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterEach, describe, expect, it } from 'vitest';
import { failoverPolicyType } from '../../operator/src/controllers/resources.ts';
import { launchBrowser } from '../harness/browser.ts';
import type { FailoverStack } from '../harness/failover-stack.ts';
import { freePort } from '../harness/ports.ts';
import { stackStarter } from './failover-fixtures.ts';

const screenshots = resolve(import.meta.dirname, '..', '..', '.local', 'screenshots');
let stack: FailoverStack | undefined;
let browser: Browser | undefined;

afterEach(async () => {
  await browser?.close();
  browser = undefined;
  await stack?.stop();
  stack = undefined;
});

const start = stackStarter('sp');

/** Loads `url` again and reads the text of `selector`: what the page says now. */
async function textAfterLoading(page: Page, url: string, selector: string): Promise<string | null> {
  await page.goto(url);
  return page.textContent(selector);
}

describe('the status page', () => {
  it('shows a real failover in a browser: the new primary and epoch, the outage on the 90-day bar, the incident with its RTO and timeline; read-only', async () => {
    const port = await freePort();
    stack = await start({ operatorArgs: [`--status-page-address=127.0.0.1:${port}`] });
    const ns = stack.options.namespace;
    await stack.waitUntilHealthy();
    await stack.client.mergePatch(failoverPolicyType, ns, 'orders', {
      spec: { slo: { availabilityTarget: 99.95 } },
    });
    browser = await launchBrowser();
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const base = `http://127.0.0.1:${port}`;
    // Before: healthy, no incident.
    await expect
      .poll(() => textAfterLoading(page, `${base}/`, 'tbody'), { timeout: 30_000 })
      .toContain('Ready');

    await stack.pair.killPrimary();
    const status = await stack.waitForPolicy(
      (st) =>
        st.history?.[0]?.kind === 'Failover' && st.availability?.outages?.length && !st.availability.downSince
          ? st
          : undefined,
      'the failover, and the outage closed in the ledger',
    );
    const failover = status.history?.[0];
    const outage = status.availability?.outages?.[0];
    expect(outage?.seconds).toBeGreaterThan(0);
    process.stdout.write(
      `status page: outage ${outage?.seconds} s (quorum to DNS), failover RTO ${failover?.rtoSeconds} s\n`,
    );

    // The index: one line, the new primary, this month below 100 %.
    await expect
      .poll(() => textAfterLoading(page, `${base}/`, 'tbody tr'), { timeout: 30_000 })
      .toMatch(/region-b\s*1\s*\d+\.\d+ %/);
    expect(await page.textContent(`a[href="policies/${ns}/orders"]`)).toBe(`${ns}/orders`);
    mkdirSync(screenshots, { recursive: true });
    await page.screenshot({ path: join(screenshots, 'status-page-index.png'), fullPage: true });

    // The policy's page.
    await page.click(`a[href="policies/${ns}/orders"]`);
    await expect(page.textContent('#primary')).resolves.toBe('region-b');
    await expect(page.textContent('#epoch')).resolves.toBe('1');
    const bar = await page.$$eval('ol.bar li', (items) =>
      items.map((li) => ({
        day: li.getAttribute('data-day'),
        down: Number(li.getAttribute('data-down-seconds')),
      })),
    );
    expect(bar).toHaveLength(90);
    const today = new Date().toISOString().slice(0, 10);
    const downToday = bar.filter((d) => d.down > 0);
    expect(downToday.map((d) => d.day)).toContain(today);
    expect(downToday.reduce((s, d) => s + d.down, 0)).toBeCloseTo(outage?.seconds ?? 0, 0);
    expect(await page.getAttribute('ol.bar', 'aria-label')).toMatch(/with downtime|1 with/);
    const heading = await page.textContent('article h3');
    expect(heading).toBe('Failover region-a → region-b: Succeeded');
    expect(await page.textContent('article td.rto')).toBe(
      `${Number((failover?.rtoSeconds ?? 0).toFixed(1))} s`,
    );
    await page.click('article details summary');
    const events = await page.$$eval('article details tbody tr td:nth-child(3)', (cells) =>
      cells.map((c) => c.textContent),
    );
    expect(events).toEqual(
      expect.arrayContaining(['ObserverLostPrimary', 'QuorumLostPrimary', 'DnsVerified', 'Completed']),
    );
    await page.screenshot({ path: join(screenshots, 'status-page-policy.png'), fullPage: true });

    // The same as JSON; nothing writable; no script allowed.
    const res = await fetch(`${base}/policies/${ns}/orders.json`);
    expect(res.headers.get('content-security-policy')).toContain("default-src 'none'");
    const json = (await res.json()) as {
      policy: { activePrimary: string; incidents: { rtoSeconds: number }[] };
    };
    expect(json.policy.activePrimary).toBe('region-b');
    expect(json.policy.incidents[0]?.rtoSeconds).toBe(failover?.rtoSeconds);
    expect((await fetch(`${base}/`, { method: 'POST' })).status).toBe(405);
    expect((await fetch(`${base}/policies/${ns}/missing`)).status).toBe(404);
  });
});
