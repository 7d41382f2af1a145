import { describe, expect, it } from 'vitest';
import { mergePatchFor, recloneSuffix } from './agent.ts';
import { compareHistories } from './divergence.ts';
import { wantedCopy } from './drill-copy.ts';
import { drillCopyName, parseControlData, parseTimelineHistory } from './local-postgres.ts';
import { conninfo } from './upstream.ts';

describe('agent: the pure parts', () => {
  it('a report patch removes nested fields the last report had (a new task inherits nothing)', () => {
    const before = {
      task: { operationId: 'a', stoppedLsn: '0/1', phase: 'Succeeded' },
      problem: { reason: 'X' },
    };
    const next = { task: { operationId: 'b', phase: 'Running' } };
    expect(mergePatchFor(before, next)).toEqual({
      problem: null,
      task: { operationId: 'b', phase: 'Running', stoppedLsn: null },
    });
  });

  it('compares a former primary with the primary’s timeline history', () => {
    const primary = {
      timeline: 2,
      walPosition: '0/5000000',
      history: parseTimelineHistory('1\t0/3000398\tno recovery target specified\n'),
    };
    expect(compareHistories({ timeline: 1, walEnd: '0/3000398' }, primary)).toMatchObject({
      relation: 'Behind',
      divergedBytes: 0,
    });
    expect(compareHistories({ timeline: 1, walEnd: '0/3000730' }, primary)).toMatchObject({
      relation: 'Diverged',
      forkLsn: '0/3000398',
      divergedBytes: 0x398,
    });
    expect(compareHistories({ timeline: 3, walEnd: '0/1' }, primary).relation).toBe('Unrelated');
    expect(compareHistories({ timeline: 2, walEnd: '0/4000000' }, primary).relation).toBe('Behind');
  });

  it('reads pg_controldata', () => {
    const text = [
      'pg_control version number:            1300',
      'Database system identifier:           7714122470937997949',
      'Database cluster state:               shut down',
      'Latest checkpoint location:           0/30096A8',
      "Latest checkpoint's REDO location:    0/3009670",
      "Latest checkpoint's TimeLineID:       1",
      'wal_log_hints setting:                on',
      'Data page checksum version:           0',
    ].join('\n');
    expect(parseControlData(text)).toEqual({
      systemIdentifier: '7714122470937997949',
      state: 'shut down',
      checkpointLsn: '0/30096A8',
      redoLsn: '0/3009670',
      timeline: 1,
      walLogHints: true,
      checksums: false,
    });
  });

  it('quotes every connection string value, a quote and a backslash in a password included', () => {
    const text = conninfo({ host: 'db', port: 5432, sslMode: 'require', user: 'rep', password: "a'b\\c" });
    expect(text).toBe("host='db' port='5432' user='rep' password='a\\'b\\\\c' sslmode='require'");
  });
});

describe('where a re-clone keeps the old data directory', () => {
  it('is named by the operation epoch and start, not by the cluster name at the end of its id', () => {
    expect(recloneSuffix({ epoch: 5, id: 'reprotect-e5-20261201030500123-region-a' })).toBe(
      '5-20261201030500123',
    );
    expect(recloneSuffix({ epoch: 5, id: 'reprotect-e5-20261201030501456-region-a' })).not.toBe(
      recloneSuffix({ epoch: 5, id: 'reprotect-e5-20261201030500123-region-a' }),
    );
    expect(recloneSuffix({ epoch: 2, id: 'reprotect-e2-20261201030500-a' })).toBe('2-20261201030500');
  });
});

describe('isolated drill copies', () => {
  const drill = {
    id: 'drill-20261201060000123',
    mode: 'Isolated' as const,
    from: 'region-a',
    to: 'region-b',
    startedAt: '2026-12-01T06:00:00Z',
    leg: 'Copying' as const,
    isolated: { recordName: '_drill.db.example.com', port: 5433 },
  };

  it('is wanted of the standby the drill names, while the legs that use it last', () => {
    expect(wantedCopy(drill, 'region-b')).toEqual({ drillId: drill.id, port: 5433 });
    for (const leg of ['Pointing', 'Writing'] as const)
      expect(wantedCopy({ ...drill, leg }, 'region-b')).toBeDefined();
    for (const leg of ['Removing', 'Cleaning', 'Out', 'Holding'] as const)
      expect(wantedCopy({ ...drill, leg }, 'region-b')).toBeUndefined();
    expect(wantedCopy(drill, 'region-a')).toBeUndefined();
    expect(wantedCopy({ ...drill, mode: 'RoundTrip' }, 'region-b')).toBeUndefined();
    expect(wantedCopy({ ...drill, mode: undefined }, 'region-b')).toBeUndefined();
    expect(wantedCopy(undefined, 'region-b')).toBeUndefined();
  });

  it('names its directory after the drill: path-safe, short enough for a socket, distinct', () => {
    expect(drillCopyName(drill.id)).toBe(drill.id);
    expect(drillCopyName('a/../b c')).toBe('a----b-c');
    const long = drillCopyName(`x${'y'.repeat(120)}1`);
    expect(long.length).toBeLessThanOrEqual(40);
    expect(long).not.toBe(drillCopyName(`x${'y'.repeat(120)}2`));
  });

  it("a new drill's copy report inherits nothing of the last one's", () => {
    const before = {
      drillCopy: { drillId: 'a', phase: 'Removed', promotionSeconds: 0.2, finishedAt: 't' },
    };
    const next = { drillCopy: { drillId: 'b', phase: 'Copying' } };
    expect(mergePatchFor(before, next)).toEqual({
      drillCopy: { drillId: 'b', phase: 'Copying', promotionSeconds: null, finishedAt: null },
    });
  });
});
