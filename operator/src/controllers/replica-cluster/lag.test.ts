import { describe, expect, it } from 'vitest';
import type { DatabaseObservation } from '../../providers/database/port.ts';
import { standbyLag } from './lag.ts';

const obs = (o: Partial<DatabaseObservation>): DatabaseObservation => ({
  reachable: true,
  role: 'Primary',
  durationMs: 1,
  ...o,
});
const hb = (iso: string) => ({ epoch: 1, writtenAt: new Date(iso) });

describe('standbyLag', () => {
  it('is zero for a standby that has replayed everything, however old the last heartbeat', () => {
    const primary = obs({ lsn: '0/3000060', heartbeat: hb('2026-01-01T10:00:00Z') });
    const standby = obs({ role: 'Standby', lsn: '0/3000060', heartbeat: hb('2026-01-01T09:00:00Z') });
    expect(standbyLag(primary, standby)).toEqual({ bytes: 0, seconds: 0 });
  });

  it('is zero bytes but an unknown age for a caught-up standby that holds no heartbeat yet', () => {
    // A new pair: the operator's first heartbeat is about to make the standby one write behind.
    const lag = standbyLag(obs({ lsn: '0/3000060' }), obs({ role: 'Standby', lsn: '0/3000060' }));
    expect(lag?.bytes).toBe(0);
    expect(lag?.seconds).toBeNaN();
  });

  it('counts WAL bytes and heartbeat age when replay is behind', () => {
    const primary = obs({ lsn: '1/00000100', heartbeat: hb('2026-01-01T10:00:30Z') });
    const standby = obs({ role: 'Standby', lsn: '0/FFFFFF00', heartbeat: hb('2026-01-01T10:00:00Z') });
    expect(standbyLag(primary, standby)).toEqual({ bytes: 512, seconds: 30 });
  });

  it('is unknown without a reachable primary or standby', () => {
    const primary = obs({ lsn: '0/10' });
    expect(
      standbyLag({ ...primary, reachable: false }, obs({ role: 'Standby', lsn: '0/1' })),
    ).toBeUndefined();
    expect(standbyLag(primary, obs({ role: 'Standby', reachable: false }))).toBeUndefined();
    expect(standbyLag(primary, obs({ role: 'Primary', lsn: '0/1' }))).toBeUndefined();
  });
});
