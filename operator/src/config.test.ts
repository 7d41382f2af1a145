import { describe, expect, it } from 'vitest';
import { loadConfig } from './config.ts';

describe('loadConfig', () => {
  it('takes flags over environment over defaults', () => {
    const c = loadConfig(['--http-address=127.0.0.1:9090', '--leader-elect', 'false'], {
      FAILOVER_HTTP_ADDRESS: '0.0.0.0:1',
      FAILOVER_LOG_LEVEL: 'debug',
    });
    expect(c.httpAddress).toBe('127.0.0.1:9090');
    expect(c.leaderElect).toBe(false);
    expect(c.logLevel).toBe('debug');
    expect(c.leaseDurationSeconds).toBe(15);
  });

  it('names the flag and the variable of a bad value', () => {
    expect(() => loadConfig(['--max-concurrent-reconciles=0'], {})).toThrow(
      /--max-concurrent-reconciles \(FAILOVER_MAX_CONCURRENT_RECONCILES\)/,
    );
    expect(() => loadConfig(['--lease-duration-seconds=5'], {})).toThrow(
      /must be greater than renew-deadline-seconds/,
    );
  });

  it('takes the replication password from the environment only, never as a flag (ps shows flags)', () => {
    expect(() => loadConfig(['--replication-password=secret'], {})).toThrow(
      /not accepted as a flag .*FAILOVER_REPLICATION_PASSWORD/,
    );
    expect(loadConfig([], { FAILOVER_REPLICATION_PASSWORD: 'secret' }).replicationPassword).toBe('secret');
  });

  it('refuses an unknown flag and lists the known ones', () => {
    expect(() => loadConfig(['--leader-elektion'], {})).toThrow(
      /unknown argument --leader-elektion; flags are: .*--leader-elect/,
    );
  });
});
