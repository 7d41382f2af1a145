/**
 * Application endpoints checked over HTTP against a real server on loopback: what counts as
 * healthy (2xx and 3xx), and how each way of failing is reported, always within the deadline.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HttpAppEndpointChecker } from '../../../operator/src/providers/app/http.ts';
import { freePort } from '../../harness/ports.ts';

let server: Server;
let base: string;
const checker = new HttpAppEndpointChecker();

beforeAll(async () => {
  server = createServer((req, res) => {
    if (req.url === '/hang') return; // never answers
    const status = Number(req.url?.slice(1)) || 200;
    res.writeHead(status, status >= 300 && status < 400 ? { location: '/login' } : {});
    res.end('body');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

describe('an application endpoint checked over HTTP', () => {
  it.each([200, 204, 302])('is healthy when it answers %i', async (status) => {
    expect(await checker.check({ name: 'api', url: `${base}/${status}` }, 1000)).toMatchObject({
      name: 'api',
      healthy: true,
      statusCode: status,
    });
  });

  it.each([404, 500, 503])('is unhealthy when it answers %i, saying so', async (status) => {
    expect(await checker.check({ name: 'api', url: `${base}/${status}` }, 1000)).toMatchObject({
      healthy: false,
      statusCode: status,
      reason: 'HttpStatus',
      message: expect.stringContaining(`answered ${status}`),
    });
  });

  it('is a Timeout, within the deadline, when it never answers', async () => {
    const started = performance.now();
    const result = await checker.check({ name: 'api', url: `${base}/hang` }, 300);
    expect(result).toMatchObject({ healthy: false, reason: 'Timeout' });
    expect(performance.now() - started).toBeLessThan(2000);
  });

  it('is Unreachable when nothing listens', async () => {
    const port = await freePort();
    expect(await checker.check({ name: 'api', url: `http://127.0.0.1:${port}/` }, 1000)).toMatchObject({
      healthy: false,
      reason: 'Unreachable',
    });
  });
});
