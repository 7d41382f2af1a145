/**
 * Crash points for fault tests, as etcd's gofail and TiKV's fail-rs give theirs: with
 * `FAILOVER_FAILPOINTS=name[,name...]` in its environment, the process kills itself (SIGKILL, the
 * way an OOM kill or a lost node ends it: nothing flushed, nothing cleaned up) when it reaches a
 * point of that name. Without the variable every point is a no-op.
 */
const armed = new Set(
  (process.env.FAILOVER_FAILPOINTS ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean),
);

export function failpoint(name: string): void {
  if (!armed.has(name)) return;
  process.stderr.write(`failpoint ${name}: SIGKILL\n`);
  process.kill(process.pid, 'SIGKILL');
}
