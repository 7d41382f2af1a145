import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const src = join(import.meta.dirname, '..');

describe('the AWS SDK is loaded when a policy first names an AWS provider', () => {
  it('is not loaded by the operator, observer and agent modules, and is by a Route 53 provider', () => {
    // A fresh process: this one has loaded the SDK for other tests. Node lists CommonJS modules
    // in require.cache however they were loaded, an ESM import included (pg shows it).
    const script = `
      import { createRequire } from 'node:module';
      const cache = createRequire(import.meta.url).cache;
      const loaded = (name) => Object.keys(cache).some((k) => k.includes('/node_modules/' + name + '/'));
      for (const m of ['manager.ts', 'observer/observer.ts', 'agent/agent.ts']) await import(${JSON.stringify(`${src}/`)} + m);
      const before = { route53: loaded('@aws-sdk/client-route-53'), rds: loaded('@aws-sdk/client-rds'), pg: loaded('pg') };
      const { createDnsProvider } = await import(${JSON.stringify(`${src}/providers/dns/factory.ts`)});
      createDnsProvider({ type: 'Route53', route53: { hostedZoneId: 'Z1', region: 'us-east-1' } }, undefined, 'test');
      console.log(JSON.stringify({ before, after: { route53: loaded('@aws-sdk/client-route-53') } }));
    `;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    expect(JSON.parse(out)).toEqual({
      before: { route53: false, rds: false, pg: true },
      after: { route53: true },
    });
  });
});
