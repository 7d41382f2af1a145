import { Writable } from 'node:stream';
import { KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import { describe, expect, it, vi } from 'vitest';
import { ManualClock } from './clock.ts';
import { EventRecorder, fitNote } from './events.ts';
import { KubeClient, type KubeObject } from './kube-client.ts';
import { Metrics } from './metrics.ts';

/** A real client whose API server refuses connections: port 1 on loopback has no listener. */
function unreachableClient(): KubeClient {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'gone', server: 'http://127.0.0.1:1', skipTLSVerify: true }],
    users: [{ name: 'u', token: 't' }],
    contexts: [{ name: 'gone', cluster: 'gone', user: 'u' }],
    currentContext: 'gone',
  });
  return new KubeClient(kc, undefined, { requestTimeoutMs: 2_000 });
}

function setup(burst: number) {
  const clock = new ManualClock();
  const metrics = new Metrics();
  const warnings: { msg: string; [k: string]: unknown }[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      warnings.push(JSON.parse(String(chunk)));
      done();
    },
  });
  const recorder = new EventRecorder({
    client: unreachableClient(),
    clock,
    log: pino({ level: 'warn' }, sink),
    controller: 'regionfailover.io/operator',
    instance: 'test',
    metrics,
    burst,
  });
  const dropped = async (reason: string) =>
    (await metrics.eventsDropped.get()).values.find((v) => v.labels.reason === reason)?.value ?? 0;
  return { clock, recorder, warnings, dropped };
}

const policy = (name: string): KubeObject => ({
  apiVersion: 'regionfailover.io/v1alpha1',
  kind: 'FailoverPolicy',
  metadata: { name, namespace: 'apps', uid: `uid-${name}` },
});
const event = (reason: string) => ({ type: 'Normal' as const, reason, action: 'Observe', note: reason });

describe('EventRecorder drops', () => {
  it('counts every Event over the budget as RateLimited without calling the API, and warns once a minute per object', async () => {
    const { clock, recorder, warnings, dropped } = setup(0);
    for (let i = 0; i < 5; i++) await recorder.record(policy('orders'), event(`E${i}`));
    expect(await dropped('RateLimited')).toBe(5);
    expect(await dropped('ApiError')).toBe(0);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({
      level: 40,
      reason: 'RateLimited',
      eventReason: 'E0',
      object: 'FailoverPolicy apps/orders',
    });

    // Another object has its own minute.
    await recorder.record(policy('billing'), event('E0'));
    expect(warnings).toHaveLength(2);

    // A minute later the next drop warns again and says how many were not warned about.
    clock.advance(59_000);
    await recorder.record(policy('orders'), event('E5'));
    expect(warnings).toHaveLength(2);
    clock.advance(1_000);
    await recorder.record(policy('orders'), event('E6'));
    expect(warnings).toHaveLength(3);
    expect(warnings[2]).toMatchObject({ droppedSinceLastWarning: { RateLimited: 5 } });
    expect(await dropped('RateLimited')).toBe(8);
  });

  it('counts an Event the API server did not take as ApiError, and never throws', async () => {
    const { recorder, warnings, dropped } = setup(25);
    await expect(recorder.record(policy('orders'), event('PromotionStarted'))).resolves.toBeUndefined();
    await recorder.record(policy('orders'), event('PromotionStarted'));
    expect(await dropped('ApiError')).toBe(2);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ reason: 'ApiError', eventReason: 'PromotionStarted' });
    expect(String(warnings[0]?.err)).not.toBe('');
  });

  it('refills the budget with time', async () => {
    const { clock, recorder, dropped } = setup(1);
    // The one token goes to an attempt (which fails: no API server); the next is rate limited.
    await recorder.record(policy('orders'), event('A'));
    await recorder.record(policy('orders'), event('B'));
    expect(await dropped('ApiError')).toBe(1);
    expect(await dropped('RateLimited')).toBe(1);
    clock.advance(5 * 60_000);
    await recorder.record(policy('orders'), event('C'));
    expect(await dropped('ApiError')).toBe(2);
    expect(await dropped('RateLimited')).toBe(1);
  });
});

/** The API port with each create answered when the test says: what the queue does while it waits. */
function heldClient() {
  const calls: { reason: string; eventTime: string; answer: () => void }[] = [];
  const client = {
    create: (_type: unknown, _ns: string, body: { reason: string; eventTime: string }) =>
      new Promise<void>((answer) => calls.push({ reason: body.reason, eventTime: body.eventTime, answer })),
    mergePatch: () => Promise.resolve(),
  } as unknown as KubeClient;
  return { client, calls };
}

describe('EventRecorder queue', () => {
  it('returns before the API server answers, writes two at a time in the order recorded, and settles when all are written', async () => {
    const { client, calls } = heldClient();
    const clock = new ManualClock();
    const metrics = new Metrics();
    const recorder = new EventRecorder({
      client,
      clock,
      log: pino({ level: 'silent' }),
      controller: 'c',
      instance: 'i',
      metrics,
      senders: 2,
    });
    const written: string[] = [];
    for (const r of ['A', 'B', 'C', 'D'])
      void recorder.record(policy(`p-${r}`), event(r)).then(() => written.push(r));
    // Two are on the wire, two wait; nothing has been answered, and nothing waited for it.
    expect(calls.map((c) => c.reason)).toEqual(['A', 'B']);
    expect(recorder.pending()).toBe(4);
    expect((await metrics.eventsQueued.get()).values[0]?.value).toBe(4);
    let settled = false;
    void recorder.settled().then(() => {
      settled = true;
    });
    clock.advance(30_000);
    calls[1]?.answer();
    await vi.waitFor(() => expect(calls.map((c) => c.reason)).toEqual(['A', 'B', 'C']));
    // Its time is when it was recorded, not when its turn came.
    expect(calls[2]?.eventTime).toBe(calls[0]?.eventTime);
    for (const c of [calls[0], calls[2]]) c?.answer();
    await vi.waitFor(() => expect(calls).toHaveLength(4));
    expect(settled).toBe(false);
    calls[3]?.answer();
    await vi.waitFor(() => expect(settled).toBe(true));
    expect(written.sort()).toEqual(['A', 'B', 'C', 'D']);
    expect(recorder.pending()).toBe(0);
    expect((await metrics.eventsQueued.get()).values[0]?.value).toBe(0);
  });

  it("writes one object's Events one at a time, in order, so a repeat folds into its series", async () => {
    const { client, calls } = heldClient();
    const patches: unknown[] = [];
    (client as unknown as { mergePatch: (...a: unknown[]) => Promise<void> }).mergePatch = (...a) => {
      patches.push(a[3]);
      return Promise.resolve();
    };
    const recorder = new EventRecorder({
      client,
      clock: new ManualClock(),
      log: pino({ level: 'silent' }),
      controller: 'c',
      instance: 'i',
      senders: 4,
    });
    for (const r of ['A', 'A', 'B', 'A']) void recorder.record(policy('orders'), event(r));
    void recorder.record(policy('billing'), event('X'));
    // Four senders, but orders has one Event on the wire; billing's goes beside it.
    expect(calls.map((c) => c.reason)).toEqual(['A', 'X']);
    calls[0]?.answer();
    // The repeat of A folds (a PATCH of its series), then B is written, then A folds again.
    await vi.waitFor(() => expect(calls.map((c) => c.reason)).toEqual(['A', 'X', 'B']));
    expect(patches).toEqual([{ series: expect.objectContaining({ count: 2 }) }]);
    calls[2]?.answer();
    calls[1]?.answer();
    await recorder.settled();
    expect(patches).toEqual([
      { series: expect.objectContaining({ count: 2 }) },
      { series: expect.objectContaining({ count: 3 }) },
    ]);
    expect(calls.map((c) => c.reason)).toEqual(['A', 'X', 'B']);
  });

  it('drops what is recorded beyond its queue as Backlog, counted and warned about', async () => {
    const { client, calls } = heldClient();
    const metrics = new Metrics();
    const warnings: Record<string, unknown>[] = [];
    const sink = new Writable({
      write(chunk, _enc, done) {
        warnings.push(JSON.parse(String(chunk)));
        done();
      },
    });
    const recorder = new EventRecorder({
      client,
      clock: new ManualClock(),
      log: pino({ level: 'warn' }, sink),
      controller: 'c',
      instance: 'i',
      metrics,
      senders: 1,
      maxQueued: 2,
    });
    for (const r of ['A', 'B', 'C', 'D', 'E']) void recorder.record(policy(`p-${r}`), event(r));
    // A is on the wire, B and C wait, D and E find the queue full.
    expect(recorder.pending()).toBe(3);
    expect((await metrics.eventsDropped.get()).values.find((v) => v.labels.reason === 'Backlog')?.value).toBe(
      2,
    );
    expect(warnings.map((w) => [w.reason, w.eventReason])).toEqual([
      ['Backlog', 'D'],
      ['Backlog', 'E'],
    ]);
    for (let i = 0; i < 3; i++) {
      await vi.waitFor(() => expect(calls).toHaveLength(i + 1));
      calls[i]?.answer();
    }
    await recorder.settled();
    expect(calls.map((c) => c.reason)).toEqual(['A', 'B', 'C']);
  });
});

describe('EventRecorder memory', () => {
  it('forgets budgets that have refilled and warnings with nothing left to report', async () => {
    const { clock, recorder } = setup(1);
    for (const name of ['a', 'b', 'c']) await recorder.record(policy(name), event('A'));
    expect(recorder.retained()).toMatchObject({ buckets: 3, dropWarnings: 3 });
    // Within the minute nothing is swept; five minutes on, each budget is full again.
    clock.advance(30_000);
    await recorder.record(policy('d'), event('A'));
    expect(recorder.retained()).toMatchObject({ buckets: 4, dropWarnings: 4 });
    clock.advance(5 * 60_000);
    await recorder.record(policy('e'), event('A'));
    expect(recorder.retained()).toMatchObject({ buckets: 1, dropWarnings: 1, series: 0 });
  });
});

describe('an Event note', () => {
  it('is cut to 1024 bytes of UTF-8 on a character boundary, as the API server counts', () => {
    expect(fitNote('short')).toBe('short');
    const ascii = 'a'.repeat(2000);
    expect(fitNote(ascii)).toBe('a'.repeat(1024));
    // 3 bytes each: 341 whole characters fit (1023 bytes), the 342nd would be cut in two.
    const wide = '€'.repeat(600);
    expect(fitNote(wide)).toBe('€'.repeat(341));
    expect(Buffer.byteLength(fitNote(`${'a'.repeat(1022)}€€`))).toBeLessThanOrEqual(1024);
    expect(fitNote(`${'a'.repeat(1022)}€€`)).toBe('a'.repeat(1022));
    // A replacement character that was in the text stays; four-byte characters are never split.
    expect(fitNote(`${'a'.repeat(1021)}\uFFFDbbbb`)).toBe(`${'a'.repeat(1021)}\uFFFD`);
    expect(fitNote('😀'.repeat(300))).toBe('😀'.repeat(256));
  });
});
