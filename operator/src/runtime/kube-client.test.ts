import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import type { KubeAccess } from './kube-access.ts';
import { KubeClient } from './kube-client.ts';
import { errorReason } from './reconcile.ts';

const pods = { group: '', version: 'v1', plural: 'pods', kind: 'Pod' };

describe('KubeClient', () => {
  let server: Server | undefined;
  afterEach(() => new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve())));

  /** A local server answering with `handle`, and a client for it with the given headers. */
  const serve = async (
    handle: (req: IncomingMessage, res: import('node:http').ServerResponse) => void,
    auth: Record<string, string> = {},
  ) => {
    server = createServer(handle);
    await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
    const access: KubeAccess = {
      server: `http://127.0.0.1:${(server.address() as AddressInfo).port}/prefix`,
      source: 'test',
      dispatcher: async (keepAliveTimeout) => new Agent({ keepAliveTimeout, allowH2: false }),
      authenticate: async () => auth,
    };
    return access;
  };

  it("keeps a quiet watch open past the pool's body timeout, says when it is accepted, and asks for metadata alone", async () => {
    let accept: string | undefined;
    const access = await serve((req, res) => {
      accept = req.headers.accept;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.flushHeaders(); // then silence: a quiet watch
    });
    // undici's default idle limit (300 s), made short: a watch must not be held to it.
    const quick: KubeAccess = {
      ...access,
      dispatcher: async (keepAliveTimeout) =>
        new Agent({ keepAliveTimeout, allowH2: false, bodyTimeout: 200 }),
    };
    const client = new KubeClient(quick);
    const controller = new AbortController();
    let openedAt: number | undefined;
    const started = performance.now();
    const watching = client
      .watch(pods, 'ns', {}, () => undefined, controller.signal, {
        metadataOnly: true,
        onOpen: () => {
          openedAt = performance.now() - started;
        },
      })
      .then(
        () => 'ended',
        (err: Error) => (controller.signal.aborted ? 'aborted' : `failed: ${err.name} ${err.message}`),
      );
    while (openedAt === undefined && performance.now() - started < 5_000)
      await new Promise((r) => setTimeout(r, 20));
    expect(openedAt).toBeDefined();
    expect(accept).toContain('as=PartialObjectMetadata;g=meta.k8s.io;v=v1');
    // Five times the body timeout, then stopped by its owner: it was not cut as an error.
    await new Promise((r) => setTimeout(r, 1_000));
    controller.abort();
    expect(await watching).toBe('aborted');
  });

  it('bounds an ordinary request as a whole: a body that trickles in fails at the timeout', async () => {
    const access = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"kind":"Pod","metadata":{"name":"');
      // One byte every 100 ms: never a pause as long as the timeout, never done within it.
      const timer = setInterval(() => res.write('a'), 100);
      res.on('close', () => clearInterval(timer));
    });
    const client = new KubeClient(access, undefined, { requestTimeoutMs: 600 });
    const started = performance.now();
    const err = await client.get(pods, 'ns', 'p').catch((e: unknown) => e);
    expect(errorReason(err)).toBe('ApiTimeout');
    expect(performance.now() - started).toBeLessThan(5_000);
  });

  it("sends the server's path prefix, and a given header in place of the kubeconfig's own of that name", async () => {
    let seen: IncomingMessage | undefined;
    const access = await serve(
      (req, res) => {
        seen = req;
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"metadata":{"name":"p"}}');
      },
      { 'Impersonate-User': 'from-kubeconfig', authorization: 'Bearer t' },
    );
    const client = new KubeClient(access, undefined, {
      extraHeaders: [
        ['Impersonate-User', 'from-flag'],
        ['Impersonate-Group', 'g1'],
        ['Impersonate-Group', 'g2'],
      ],
    });
    expect((await client.get(pods, 'ns', 'p')).metadata.name).toBe('p');
    expect(seen?.url).toBe('/prefix/api/v1/namespaces/ns/pods/p');
    const raw = seen?.rawHeaders ?? [];
    const values = (name: string) => raw.filter((_, i) => i % 2 === 1 && raw[i - 1]?.toLowerCase() === name);
    expect(values('impersonate-user')).toEqual(['from-flag']);
    expect(values('impersonate-group')).toEqual(['g1', 'g2']);
    expect(values('authorization')).toEqual(['Bearer t']);
  });

  it('reads a watch line by line across chunks, a character split between two included', async () => {
    const line = (name: string) => `${JSON.stringify({ type: 'ADDED', object: { metadata: { name } } })}\n`;
    const access = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      const bytes = Buffer.from(`${line('é-one')}${line('two')}\n${line('three').trimEnd()}`);
      // Split inside the two bytes of é, and mid-line.
      res.write(bytes.subarray(0, 47));
      res.write(bytes.subarray(47, 70));
      res.end(bytes.subarray(70));
    });
    const client = new KubeClient(access);
    const names: string[] = [];
    await client.watch(
      pods,
      'ns',
      {},
      (e) => names.push(e.object.metadata.name),
      new AbortController().signal,
    );
    expect(names).toEqual(['é-one', 'two', 'three']);
  });
});
