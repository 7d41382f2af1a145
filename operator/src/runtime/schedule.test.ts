import { afterEach, describe, expect, it, vi } from 'vitest';
import { Schedule } from './schedule.ts';

describe('Schedule', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  function setup(keep: 'earliest' | 'latest') {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    const due: string[] = [];
    return { due, schedule: new Schedule((key) => due.push(key), keep) };
  }

  it('keeps the latest time, moved on without a timer per move, and fires once then', () => {
    const { due, schedule } = setup('latest');
    for (let ms = 1_000; ms <= 100_000; ms += 1_000) schedule.set('a', performance.now() + ms);
    schedule.set('a', performance.now() + 50); // sooner: kept as it was
    expect(vi.getTimerCount()).toBe(1);
    vi.advanceTimersByTime(99_999);
    expect(due).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(due).toEqual(['a']);
    vi.advanceTimersByTime(1_000_000);
    expect(due).toEqual(['a']);
  });

  it('replaces a time with a sooner or a later one, and drops a deleted key', () => {
    const { due, schedule } = setup('latest');
    schedule.set('a', performance.now() + 10_000);
    schedule.replace('a', performance.now() + 2_000);
    schedule.set('b', performance.now() + 3_000);
    schedule.replace('b', performance.now() + 8_000);
    schedule.set('c', performance.now() + 1_000);
    schedule.delete('c');
    vi.advanceTimersByTime(2_000);
    expect(due).toEqual(['a']);
    vi.advanceTimersByTime(5_999);
    expect(due).toEqual(['a']);
    vi.advanceTimersByTime(1);
    expect(due).toEqual(['a', 'b']);
    vi.advanceTimersByTime(60_000);
    expect(due).toEqual(['a', 'b']);
  });

  it('keeps the earliest time in the mode the work queue uses, and waits out what no timer can hold', () => {
    const { due, schedule } = setup('earliest');
    schedule.set('a', performance.now() + 5_000);
    schedule.set('a', performance.now() + 1_000);
    schedule.set('a', performance.now() + 3_000);
    schedule.set('never', Number.NaN);
    schedule.set('far', Number.POSITIVE_INFINITY);
    vi.advanceTimersByTime(1_000);
    expect(due).toEqual(['a']);
    vi.advanceTimersByTime(10_000);
    expect(due).toEqual(['a']);
    vi.advanceTimersByTime(2 ** 31);
    expect(due).toEqual(['a', 'far']);
  });
});
