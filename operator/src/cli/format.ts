/** Output for people: aligned tables, ages and durations as kubectl prints them. */

/** Columns padded to their widest cell, two spaces apart, as `kubectl get` prints. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('   ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

/** 45s, 12m, 5h, 3d: how long ago `time` was, relative to `now`. */
export function age(time: string | undefined, now: Date): string {
  if (!time) return '-';
  const seconds = Math.max(0, Math.round((now.getTime() - new Date(time).getTime()) / 1000));
  if (seconds < 120) return `${seconds}s`;
  if (seconds < 120 * 60) return `${Math.round(seconds / 60)}m`;
  if (seconds < 48 * 3600) return `${Math.round(seconds / 3600)}h`;
  return `${Math.round(seconds / 86400)}d`;
}

/** 0.4s, 12.3s, 3m20s. */
export function seconds(value: number | undefined): string {
  if (value === undefined) return '-';
  if (value < 60) return `${Number(value.toFixed(1))}s`;
  const m = Math.floor(value / 60);
  return `${m}m${Math.round(value - m * 60)}s`;
}

/** 0B, 12KiB, 3.2MiB. */
export function bytes(value: number | undefined): string {
  if (value === undefined) return '-';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = value;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${u === 0 ? v : Number(v.toFixed(1))}${units[u]}`;
}

/** 2026-11-21 03:04:05Z */
export const timestamp = (time: string | undefined) =>
  time ? time.replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '-';
