/**
 * A kind cluster for the end-to-end suite: created from kind-config.yaml, the operator image
 * built from the Dockerfile and loaded into it, and the chart installed with the real helm. Every
 * command is the one a person would type, run through docker, kind, kubectl and helm.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { chartToolsBin } from '../harness/chart-tools.ts';

const run = promisify(execFile);
export const repoRoot = resolve(import.meta.dirname, '..', '..');
export const IMAGE = process.env.E2E_IMAGE ?? 'failover-operator:e2e';

export interface CommandResult {
  stdout: string;
  stderr: string;
}

/** Runs a command; on failure the error says which command and what it printed. */
export async function sh(
  command: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; input?: string } = {},
) {
  try {
    const child = run(command, args, {
      maxBuffer: 64 << 20,
      env: { ...process.env, ...opts.env },
      timeout: 15 * 60_000,
    });
    if (opts.input !== undefined) child.child.stdin?.end(opts.input);
    return (await child) as CommandResult;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${command} ${args.join(' ')} failed: ${e.stderr?.trim() || e.message}`);
  }
}

export class KindCluster {
  readonly name: string;
  readonly kubeconfig: string;
  private readonly dir: string;

  constructor(name = process.env.E2E_CLUSTER ?? 'failover-e2e') {
    this.name = name;
    this.dir = mkdtempSync(join(tmpdir(), 'failover-e2e-'));
    this.kubeconfig = join(this.dir, 'kubeconfig');
  }

  /** Creates the cluster, or reuses one of this name (E2E_REUSE_CLUSTER=1 keeps reruns fast). */
  async create(log: (line: string) => void): Promise<void> {
    const existing = (await sh('kind', ['get', 'clusters'])).stdout.split('\n');
    if (existing.includes(this.name) && process.env.E2E_REUSE_CLUSTER === '1') {
      log(`reusing kind cluster ${this.name}`);
    } else {
      if (existing.includes(this.name)) await sh('kind', ['delete', 'cluster', '--name', this.name]);
      log(`creating kind cluster ${this.name} (1 control plane, 3 workers as regions a, b, c)`);
      await sh('kind', [
        'create',
        'cluster',
        '--name',
        this.name,
        '--config',
        join(repoRoot, 'test', 'e2e', 'kind-config.yaml'),
        '--wait',
        '180s',
      ]);
    }
    await sh('kind', ['export', 'kubeconfig', '--name', this.name, '--kubeconfig', this.kubeconfig]);
  }

  /** Builds the image from the Dockerfile (unless E2E_IMAGE names a built one) and loads it into the nodes. */
  async loadImage(log: (line: string) => void): Promise<void> {
    if (!process.env.E2E_IMAGE) {
      log(`building ${IMAGE} from the Dockerfile`);
      await sh('docker', ['build', '-t', IMAGE, repoRoot]);
    }
    log(`loading ${IMAGE} into the kind nodes`);
    await sh('kind', ['load', 'docker-image', IMAGE, '--name', this.name]);
  }

  kubectl(args: string[], input?: string): Promise<CommandResult> {
    return sh('kubectl', ['--kubeconfig', this.kubeconfig, ...args], input === undefined ? {} : { input });
  }

  async helm(args: string[]): Promise<CommandResult> {
    const helm = join(await chartToolsBin(), 'helm');
    return sh(helm, ['--kubeconfig', this.kubeconfig, ...args], {
      env: {
        HELM_CACHE_HOME: join(this.dir, 'helm-cache'),
        HELM_CONFIG_HOME: join(this.dir, 'helm-config'),
        HELM_DATA_HOME: join(this.dir, 'helm-data'),
      },
    });
  }

  /** A JSON object through kubectl, or undefined when it does not exist. */
  async getJson<T>(args: string[]): Promise<T | undefined> {
    try {
      return JSON.parse((await this.kubectl(['get', ...args, '-o', 'json'])).stdout) as T;
    } catch (err) {
      if (/NotFound|not found/.test((err as Error).message)) return undefined;
      throw err;
    }
  }

  /** The kind node (a Docker container) that carries a region's label. */
  async nodeOfRegion(region: string): Promise<string> {
    const { stdout } = await this.kubectl([
      'get',
      'nodes',
      '-l',
      `topology.kubernetes.io/region=${region}`,
      '-o',
      'jsonpath={.items[0].metadata.name}',
    ]);
    if (!stdout) throw new Error(`no node labelled topology.kubernetes.io/region=${region}`);
    return stdout;
  }

  /** Takes a whole region down at once: its node's container stops running, network and all. */
  async pauseRegion(region: string): Promise<void> {
    await sh('docker', ['pause', await this.nodeOfRegion(region)]);
  }

  async unpauseRegion(region: string): Promise<void> {
    await sh('docker', ['unpause', await this.nodeOfRegion(region)]).catch(() => undefined);
  }

  /** What the DNS server answers for `name` (type A), asked from inside the cluster. */
  async dnsAnswer(name: string, server: string): Promise<string[]> {
    const pod = `dns-check-${Date.now()}`;
    const { stdout } = await this.kubectl([
      'run',
      pod,
      '-n',
      'failover-e2e',
      '--rm',
      '-i',
      '--restart=Never',
      '--image=busybox:1.36',
      '--',
      'nslookup',
      '-type=a',
      name,
      server,
    ]).catch((err: Error) => ({ stdout: err.message, stderr: '' }));
    // busybox prints the server first ("Address: 10.96.200.53:53"), then the answers.
    return [...stdout.matchAll(/^Address: ([0-9.]+)$/gm)].map((m) => m[1] as string);
  }

  /** Deletes the cluster unless E2E_KEEP_CLUSTER=1 (to look around after a failure). */
  async delete(): Promise<void> {
    if (process.env.E2E_KEEP_CLUSTER !== '1') await sh('kind', ['delete', 'cluster', '--name', this.name]);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
