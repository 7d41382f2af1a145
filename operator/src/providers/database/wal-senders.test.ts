import { describe, expect, it } from 'vitest';
import { REFRESH_MS, WalSenderNames, type WalSenderRow } from './wal-senders.ts';

const sender = (pid: number, name?: string): WalSenderRow => ({
  pid,
  activity: name === undefined ? null : { application_name: name, client_addr: '10.0.0.1' },
  state: 'streaming',
  sent_lsn: '0/1',
  replay_lsn: '0/1',
  replay_lag_seconds: null,
  sync_state: 'async',
});

describe('WalSenderNames', () => {
  it('passes no pids until it has read names, then the pids it knows and of which server', () => {
    const names = new WalSenderNames();
    expect(names.known(0)).toEqual([[], null]);
    names.name([sender(7, 'b'), sender(3, 'a')], '100.5', 0);
    expect(names.known(1_000)).toEqual([[7, 3], '100.5']);
  });

  it("names a sender the statement left out from memory, in pg_stat_replication's order", () => {
    const names = new WalSenderNames();
    names.name([sender(7, 'b'), sender(3, 'a'), sender(9, 'a')], 's', 0);
    const named = names.name([sender(9), sender(7), sender(3)], 's', 1_000);
    expect(named.map((s) => [s.application_name, s.pid, s.client_addr])).toEqual([
      ['a', 3, '10.0.0.1'],
      ['a', 9, '10.0.0.1'],
      ['b', 7, '10.0.0.1'],
    ]);
    expect(named[0]).not.toHaveProperty('activity');
  });

  it('forgets senders that are gone, and reads all names again after REFRESH_MS or on another server', () => {
    const names = new WalSenderNames();
    names.name([sender(7, 'b'), sender(3, 'a')], 's', 0);
    names.name([sender(3)], 's', 1_000);
    expect(names.known(2_000)).toEqual([[3], 's']);
    expect(names.known(REFRESH_MS)).toEqual([[], null]);
    // Another server (or this one restarted): a pid remembered from the first is not its name.
    expect(names.name([sender(3)], 'other', 3_000)).toEqual([
      expect.objectContaining({ pid: 3, application_name: '' }),
    ]);
    expect(names.known(4_000)).toEqual([[], 'other']);
  });

  it('a refresh due reads every name, and the read that names them all restarts the clock', () => {
    const names = new WalSenderNames();
    names.name([sender(3, 'a')], 's', 0);
    names.name([sender(3)], 's', REFRESH_MS - 1);
    expect(names.known(REFRESH_MS)).toEqual([[], null]);
    names.name([sender(3, 'a')], 's', REFRESH_MS);
    expect(names.known(REFRESH_MS + 1)).toEqual([[3], 's']);
  });

  it('leaves out a sender whose backend ended between the two reads, and learns that a primary has none', () => {
    const names = new WalSenderNames();
    const gone = { ...sender(5), activity: {} };
    expect(names.name([sender(3, 'a'), gone], 's', 0).map((s) => s.pid)).toEqual([3]);
    expect(names.known(1)).toEqual([[3], 's']);
    expect(names.name([], 's', 2)).toEqual([]);
    expect(names.known(3)).toEqual([[], 's']);
  });
});
