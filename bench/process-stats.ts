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

/**
 * The heap V8 reports in use (nodejs_heap_size_used_bytes), read from processes' own metrics
 * every 2 s (each read renders their whole /metrics, so not more often): the most seen, and the
 * least seen while `idle` is set (close to the live heap). Against peak RSS it tells live data
 * from the collector's headroom.
 */
/** The Kubernetes API requests a process made so far, by HTTP method (rest_client_requests_total). */
export function requestsByMethod(text: string): Map<string, number> {
  const by = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^rest_client_requests_total\{[^}]*method="([A-Z]+)"[^}]*\} ([0-9.eE+-]+)$/.exec(line);
    if (m?.[1]) by.set(m[1], (by.get(m[1]) ?? 0) + Number(m[2]));
  }
  return by;
}

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
