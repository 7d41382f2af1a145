/**
 * What the benches read about the processes they measure: CPU and peak RSS from /proc, an
 * operator's heap from its own metrics, and its reconciles per controller.
 */
import { readFileSync } from 'node:fs';

/** User + system CPU seconds the process has used (/proc/PID/stat, in clock ticks of 1/100 s). */
export function cpuSeconds(pid: number | undefined): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** The process's peak RSS (VmHWM), MiB. */
export function peakRssMiB(pid: number | undefined): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0) / 1024;
}

/** Per controller: reconciles and the seconds they took (controller_runtime_reconcile_time_*). */
export function reconcilesByController(text: string): Map<string, { count: number; seconds: number }> {
  const by = new Map<string, { count: number; seconds: number }>();
  for (const line of text.split('\n')) {
    const m =
      /^controller_runtime_reconcile_time_seconds_(count|sum)\{[^}]*controller="([^"]*)"[^}]*\} ([0-9.eE+-]+)$/.exec(
        line,
      );
    if (!m?.[2]) continue;
    const e = by.get(m[2]) ?? { count: 0, seconds: 0 };
    if (m[1] === 'count') e.count += Number(m[3]);
    else e.seconds += Number(m[3]);
    by.set(m[2], e);
  }
  return by;
}

/** A counter family summed by one label's value, from a /metrics text. */
function sumByLabel(text: string, family: string, label: string): Map<string, number> {
  const sample = new RegExp(`^${family}\\{[^}]*${label}="([^"]*)"[^}]*\\} ([0-9.eE+-]+)$`);
  const by = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = sample.exec(line);
    if (m?.[1]) by.set(m[1], (by.get(m[1]) ?? 0) + Number(m[2]));
  }
  return by;
}

/** The Kubernetes API requests a process made so far, by HTTP method (rest_client_requests_total). */
export function requestsByMethod(text: string): Map<string, number> {
  return sumByLabel(text, 'rest_client_requests_total', 'method');
}

/** Probe failures so far by reason (failover_probe_failures_total), largest first: "Timeout 12, Refused 3". */
export function probeFailuresByReason(text: string): string {
  return [...sumByLabel(text, 'failover_probe_failures_total', 'reason')]
    .sort((a, b) => b[1] - a[1])
    .map(([reason, n]) => `${reason} ${n}`)
    .join(', ');
}

/**
 * The heap V8 reports in use (nodejs_heap_size_used_bytes), read from processes' own metrics
 * every 2 s (each read renders their whole /metrics, so not more often): the most seen, and the
 * least seen while `idle` is set (close to the live heap). Against peak RSS it tells live data
 * from the collector's headroom.
 */
export class HeapSampler {
  maxBytes = 0;
  idleMinBytes = Number.POSITIVE_INFINITY;
  idle = false;
  private readonly timer: ReturnType<typeof setInterval>;

  constructor(processes: () => Iterable<{ metric(name: string): Promise<number> }>, everyMs = 2_000) {
    this.timer = setInterval(() => {
      for (const p of processes())
        p.metric('nodejs_heap_size_used_bytes').then(
          (b) => {
            if (!(b > 0)) return;
            this.maxBytes = Math.max(this.maxBytes, b);
            if (this.idle) this.idleMinBytes = Math.min(this.idleMinBytes, b);
          },
          () => undefined,
        );
    }, everyMs);
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

/**
 * The API server's requests so far by verb and resource (apiserver_request_total), from every
 * client: the operator, the observers and this benchmark's own LISTs of policies and clusters.
 */
export async function apiserverRequests(cp: {
  get(path: string): Promise<{ body: string }>;
}): Promise<Map<string, number>> {
  const by = new Map<string, number>();
  for (const line of (await cp.get('/metrics')).body.split('\n')) {
    const m = /^apiserver_request_total\{([^}]*)\} ([0-9.eE+-]+)$/.exec(line);
    if (!m?.[1]) continue;
    const label = (k: string) => new RegExp(`${k}="([^"]*)"`).exec(m[1] ?? '')?.[1] ?? '';
    const resource = label('resource');
    if (!/failover|replicacluster|secrets|events|leases/.test(resource)) continue;
    const sub = label('subresource');
    const key = `${label('verb')} ${resource}${sub ? `/${sub}` : ''}`;
    by.set(key, (by.get(key) ?? 0) + Number(m[2]));
  }
  return by;
}

export function difference(
  after: Map<string, number>,
  before: Map<string, number>,
  scale = 1,
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of [...after].sort((a, b) => b[1] - a[1])) {
    const d = v - (before.get(k) ?? 0);
    if (d > 0) out[k] = Number((d * scale).toFixed(1));
  }
  return out;
}

/** The middle of `xs` (the mean of the two middle ones when they are even); NaN when empty. */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  if (s.length === 0) return Number.NaN;
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}
