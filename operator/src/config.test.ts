import { describe, expect, it } from 'vitest';
import { configSchema, helpText, loadConfig, version } from './config.ts';

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
    expect(() => loadConfig(['--dns-reads-per-second=Route53:2'], {})).toThrow(
      /--dns-reads-per-second \(FAILOVER_DNS_READS_PER_SECOND\): must be Provider=reads a second/,
    );
    expect(loadConfig(['--dns-reads-per-second=Route53=4'], {}).dnsReadsPerSecond).toBe('Route53=4');
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

  it('--help lists every flag with its variable, its default and what it does; the password as env only', () => {
    const text = helpText();
    for (const key of Object.keys(configSchema.shape)) {
      const flag = key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
      const env = `FAILOVER_${flag.replace(/-/g, '_').toUpperCase()}`;
      if (flag === 'replication-password') expect(text).toContain(`(env only) ${env}`);
      else expect(text).toContain(`--${flag}  ${env}`);
      expect(configSchema.shape[key as keyof typeof configSchema.shape].description, key).toBeTruthy();
    }
    expect(text).toMatch(/--lease-duration-seconds {2}FAILOVER_LEASE_DURATION_SECONDS {2}\(default: 15\)/);
    expect(text).not.toContain('--replication-password ');
    expect(version()).toMatch(/^\d+\.\d+\.\d+/);
  });
});
