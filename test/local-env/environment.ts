/**
 * The local two-region environment behind `make up` and `make demo`: a Kubernetes control plane
 * and the failover stack (region A primary, region B standby, BIND, two observers, the operator,
 * and a database agent beside each PostgreSQL), all on loopback on this one machine.
 */
import { join } from 'node:path';
import { repoRoot } from '../harness/chart-tools.ts';
import { ControlPlane } from '../harness/control-plane.ts';
import { FailoverStack, PRIMARY_ADDRESS, RECORD, STANDBY_ADDRESS } from '../harness/failover-stack.ts';
import { freePort } from '../harness/ports.ts';

export const NAMESPACE = 'failover-demo';

export interface LocalEnvironment {
  controlPlane: ControlPlane;
  stack: FailoverStack;
  /** Shell exports for `.local/env.sh`. */
  exports: Record<string, string>;
  /** Directories `.local/env.sh` puts first on PATH (the kubectl plugin). */
  path: string[];
  /** The operator's read-only status page. */
  statusPageUrl: string;
  stop(): Promise<void>;
}

export async function startLocalEnvironment(log: (line: string) => void): Promise<LocalEnvironment> {
  log('starting the Kubernetes control plane (etcd + kube-apiserver) on loopback');
  let t = Date.now();
  const controlPlane = await ControlPlane.start({ name: 'failover-local' });
  log(`control plane ready at ${controlPlane.server} in ${((Date.now() - t) / 1000).toFixed(1)} s`);
  log(
    `starting region A (PostgreSQL primary on ${PRIMARY_ADDRESS}), region B (streaming standby on ${STANDBY_ADDRESS}), BIND, observers in regions B and C, and the operator`,
  );
  t = Date.now();
  let stack: FailoverStack;
  const statusPort = await freePort();
  try {
    stack = await FailoverStack.start({
      name: 'local',
      kubeConfig: controlPlane.kubeConfig(),
      kubeconfigPath: controlPlane.kubeconfigPath,
      namespace: NAMESPACE,
      // pg_rewind needs both to bring a former primary back as a standby (the harness turns
      // full_page_writes off by default, for speed).
      pgSettings: { wal_log_hints: 'on', full_page_writes: 'on' },
      operatorArgs: [`--status-page-address=127.0.0.1:${statusPort}`],
    });
  } catch (err) {
    await controlPlane.stop();
    throw err;
  }
  try {
    // The agents demote an old primary in a switchover and rejoin it after a failover.
    await Promise.all([stack.startAgent('region-a'), stack.startAgent('region-b')]);
  } catch (err) {
    await stack.stop();
    await controlPlane.stop();
    throw err;
  }
  log(
    `two regions up, each with a database agent beside its PostgreSQL, in ${((Date.now() - t) / 1000).toFixed(1)} s; ${RECORD} is served by BIND at ${stack.bind.host}:${stack.bind.port}`,
  );
  return {
    controlPlane,
    stack,
    exports: {
      // The demo namespace is the context's: kubectl and the plugin need no -n.
      KUBECONFIG: controlPlane.writeKubeconfig(
        join(controlPlane.dir, 'kubeconfig-demo'),
        'admin',
        controlPlane.adminToken,
        NAMESPACE,
      ),
      FAILOVER_NAMESPACE: NAMESPACE,
      FAILOVER_DNS_SERVER: `${stack.bind.host}:${stack.bind.port}`,
      FAILOVER_DNS_NAME: RECORD,
      FAILOVER_PG_PORT: String(stack.pair.primary.port),
      FAILOVER_PG_PRIMARY: PRIMARY_ADDRESS,
      FAILOVER_PG_STANDBY: STANDBY_ADDRESS,
      FAILOVER_STATUS_PAGE: `http://127.0.0.1:${statusPort}/`,
      PGUSER: stack.pair.user,
      PGPASSWORD: stack.pair.password,
      PGDATABASE: stack.pair.database,
    },
    path: [join(repoRoot, 'bin')],
    statusPageUrl: `http://127.0.0.1:${statusPort}/`,
    stop: async () => {
      await stack.stop();
      await controlPlane.stop();
    },
  };
}

/** `.local/env.sh`: the exports, and the plugin's directory first on PATH (expanded when sourced). */
export function envScript(env: Pick<LocalEnvironment, 'exports' | 'path'>): string {
  const lines = Object.entries(env.exports).map(([k, v]) => `export ${k}='${v}'`);
  const path = env.path.map((d) => `'${d}':`).join('');
  return `# Written by make up; removed by make down.\n${lines.join('\n')}\nexport PATH=${path}"$PATH"\n`;
}
