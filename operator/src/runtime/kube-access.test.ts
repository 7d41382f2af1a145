import { mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadKubeAccess } from './kube-access.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const scratch = () => {
  const d = mkdtempSync(join(tmpdir(), 'kube-access-'));
  dirs.push(d);
  return d;
};

const kubeconfig = (dir: string, user: Record<string, unknown>, cluster: Record<string, unknown> = {}) => {
  const path = join(dir, 'config');
  writeFileSync(
    path,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'c', cluster: { server: 'https://api.example:6443/', ...cluster } }],
      users: [{ name: 'u', user }],
      contexts: [{ name: 'x', context: { cluster: 'c', user: 'u', namespace: 'ops' } }],
      'current-context': 'x',
    }),
  );
  return path;
};
const noHome = (dir: string) => ({ HOME: dir });

describe('loadKubeAccess: the operator reads its kubeconfig without client-node', () => {
  it('reads a token and a CA path relative to the file', async () => {
    const dir = scratch();
    mkdirSync(join(dir, 'pki'));
    writeFileSync(join(dir, 'pki', 'ca.crt'), 'not checked here');
    const path = kubeconfig(dir, { token: 'abc' }, { 'certificate-authority': 'pki/ca.crt' });
    const access = await loadKubeAccess(path, noHome(dir));
    expect(access).toMatchObject({ server: 'https://api.example:6443', source: path });
    expect(await access.authenticate('https://api.example:6443/version', 'GET')).toEqual({
      authorization: 'Bearer abc',
    });
    await (await access.dispatcher(1000)).close();
  });

  it('reads a token file again when it rotates, and keeps the last token while it cannot', async () => {
    const dir = scratch();
    writeFileSync(join(dir, 'token'), 'first\n');
    const access = await loadKubeAccess(kubeconfig(dir, { tokenFile: 'token' }), noHome(dir));
    expect(await access.authenticate('', 'GET')).toEqual({ authorization: 'Bearer first' });
    writeFileSync(join(dir, 'token'), 'second\n');
    utimesSync(join(dir, 'token'), new Date(), new Date(Date.now() + 5_000));
    expect(await access.authenticate('', 'GET')).toEqual({ authorization: 'Bearer second' });
    // Gone for a while (a remount): the last token goes on being sent.
    rmSync(join(dir, 'token'));
    expect(await access.authenticate('', 'GET')).toEqual({ authorization: 'Bearer second' });
    const never = await loadKubeAccess(kubeconfig(scratch(), { tokenFile: 'missing' }), noHome(dir));
    await expect(never.authenticate('', 'GET')).rejects.toThrow(/ENOENT/);
  });

  it('sends basic auth, and client certificates from inline data', async () => {
    const dir = scratch();
    const basic = await loadKubeAccess(kubeconfig(dir, { username: 'ann', password: 'pw' }), noHome(dir));
    expect(await basic.authenticate('', 'GET')).toEqual({
      authorization: `Basic ${Buffer.from('ann:pw').toString('base64')}`,
    });
    const certs = await loadKubeAccess(
      kubeconfig(dir, {
        'client-certificate-data': Buffer.from('cert').toString('base64'),
        'client-key-data': Buffer.from('key').toString('base64'),
      }),
      noHome(dir),
    );
    expect(await certs.authenticate('', 'GET')).toEqual({});
  });

  it("uses the pod's service account in a cluster (IPv6 service host bracketed)", async () => {
    const dir = scratch();
    const sa = join(dir, 'sa');
    mkdirSync(sa);
    writeFileSync(join(sa, 'token'), 'pod-token');
    writeFileSync(join(sa, 'ca.crt'), 'ca');
    const env = { HOME: dir, KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '443' };
    const access = await loadKubeAccess(undefined, env, sa);
    expect(access).toMatchObject({ server: 'https://[fd00::1]:443', source: 'in-cluster service account' });
    expect(await access.authenticate('', 'GET')).toEqual({ authorization: 'Bearer pod-token' });
    // KUBECONFIG, then ~/.kube/config, come before the service account, as with kubectl.
    const path = kubeconfig(dir, { token: 'from-file' });
    expect((await loadKubeAccess(undefined, { ...env, KUBECONFIG: path }, sa)).source).toBe(path);
    mkdirSync(join(dir, '.kube'));
    writeFileSync(join(dir, '.kube', 'config'), readFileSync(path));
    expect((await loadKubeAccess(undefined, env, sa)).source).toBe(join(dir, '.kube', 'config'));
  });

  it('leaves exec plugins, auth providers, proxies and merged files to client-node', async () => {
    const dir = scratch();
    const exec = kubeconfig(dir, {
      exec: { apiVersion: 'client.authentication.k8s.io/v1', command: 'true' },
    });
    expect((await loadKubeAccess(exec, noHome(dir))).source).toBe('client-node (exec)');
    const proxied = kubeconfig(scratch(), { token: 't' }, { 'proxy-url': 'http://proxy:3128' });
    const viaProxy = await loadKubeAccess(proxied, noHome(dir));
    expect(viaProxy.source).toBe('client-node (proxy-url)');
    expect(await viaProxy.authenticate('https://api.example:6443/version', 'GET')).toMatchObject({
      Authorization: 'Bearer t',
    });
    // A second file of other names (client-node refuses duplicates), whose current-context wins.
    const second = join(scratch(), 'second');
    writeFileSync(
      second,
      readFileSync(exec, 'utf8')
        .replaceAll('"c"', '"c2"')
        .replaceAll('"u"', '"u2"')
        .replaceAll('"x"', '"x2"'),
    );
    const two = `${proxied}:${second}`;
    const merged = await loadKubeAccess(undefined, { HOME: dir, KUBECONFIG: two });
    expect(merged).toMatchObject({
      source: expect.stringMatching(/client-node \(several KUBECONFIG files/),
      server: 'https://api.example:6443',
    });
  });

  it('says what is wrong with a kubeconfig it cannot use', async () => {
    const dir = scratch();
    // An empty CA field is no CA (the system's roots), as with kubectl; a CA with insecure is refused.
    const empty = await loadKubeAccess(
      kubeconfig(dir, { token: 't' }, { 'certificate-authority-data': '' }),
      noHome(dir),
    );
    expect(empty.source).toBe(join(dir, 'config'));
    await expect(
      loadKubeAccess(
        kubeconfig(dir, {}, { 'insecure-skip-tls-verify': true, 'certificate-authority-data': 'Y2E=' }),
        noHome(dir),
      ),
    ).rejects.toThrow(/insecure flag is not allowed/);
    const path = join(dir, 'config');
    writeFileSync(path, 'clusters: []\ncontexts: []\n');
    await expect(loadKubeAccess(path, noHome(dir))).rejects.toThrow(/no current-context/);
    writeFileSync(path, 'current-context: gone\n');
    await expect(loadKubeAccess(path, noHome(dir))).rejects.toThrow(/gone is not among its contexts/);
    writeFileSync(path, 'clusters: [{name: c, cluster: {}}]\n');
    await expect(loadKubeAccess(path, noHome(dir))).rejects.toThrow(/server/);
  });
});

describe('the operator process', () => {
  it('never imports client-node up front (only types, or a dynamic import for what its loader leaves)', () => {
    // Static imports from main.ts, followed through the repository's own modules.
    const root = join(dirname(new URL(import.meta.url).pathname), '..');
    const seen = new Set<string>();
    const offenders: string[] = [];
    const visit = (file: string) => {
      if (seen.has(file)) return;
      seen.add(file);
      const source = readFileSync(file, 'utf8');
      for (const m of source.matchAll(/^import\s+(type\s+)?[^'"]*?from\s+'([^']+)'/gms)) {
        const [, typeOnly, spec] = m;
        if (typeOnly || !spec) continue;
        if (spec === '@kubernetes/client-node') offenders.push(relative(root, file));
        else if (spec.startsWith('.')) visit(join(dirname(file), spec));
      }
    };
    visit(join(root, 'main.ts'));
    expect(seen.size).toBeGreaterThan(50);
    expect(offenders).toEqual([]);
  });
});
