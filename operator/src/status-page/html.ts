/**
 * The status page as HTML: no script, one small inline style sheet, semantic tables, every value
 * escaped. Pure: the view in, the document out.
 */
import type { MonthAvailability } from '../controllers/failover-policy/availability.ts';
import type { DrillLine, Incident, PolicyLine, PolicyPage } from './view.ts';

/** Escapes text for HTML content and attribute values. */
export function escapeHtml(value: unknown): string {
  return String(value)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

const e = escapeHtml;

const STYLE = `
:root{font-family:system-ui,sans-serif;color:#1d2125;background:#fff;line-height:1.4}
body{margin:0 auto;max-width:72rem;padding:1rem 1.5rem}
h1{font-size:1.5rem}h2{font-size:1.2rem;margin-top:2rem}h3{font-size:1rem}
table{border-collapse:collapse;width:100%;margin:.5rem 0}
th,td{text-align:left;padding:.3rem .6rem;border-bottom:1px solid #d8dde3;vertical-align:top}
th{background:#f3f5f7;font-weight:600}
.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.at{white-space:nowrap}
.ok{color:#116329}.bad{color:#a40e26;font-weight:600}.warn{color:#7d4e00}
.bar{display:flex;gap:2px;list-style:none;padding:0;margin:.5rem 0;height:2rem}
.bar li{flex:1;border-radius:2px;background:#2da44e}
.bar li.minor{background:#d4a72c}.bar li.major{background:#cf222e}.bar li.none{background:#d8dde3}
.legend{font-size:.85rem;color:#57606a}
details{margin:.5rem 0}summary{cursor:pointer}
a{color:#0550ae}
`;

function page(title: string, body: string, generatedAt: string, json: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${e(title)}</title>
<style>${STYLE}</style>
</head>
<body>
<main>
${body}
</main>
<footer class="legend"><p>Generated ${e(generatedAt)} by the failover operator from its own cache. Read-only; <a href="${e(json)}">the same as JSON</a>.</p></footer>
</body>
</html>
`;
}

const percent = (p: number | undefined) =>
  p === undefined ? '–' : `${p >= 99.99 ? p.toFixed(3) : p.toFixed(2)} %`;
const secs = (s: number | undefined) =>
  s === undefined
    ? '–'
    : s < 60
      ? `${Number(s.toFixed(1))} s`
      : `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
const when = (t: string | undefined) => (t ? e(t.replace('T', ' ').replace(/\.\d+Z$/, 'Z')) : '–');

function availabilityCell(m: MonthAvailability | undefined): string {
  if (!m) return '<td class="num">–</td>';
  const cls = m.met === false ? 'bad' : m.met ? 'ok' : '';
  const against = m.target !== undefined ? ` <span class="legend">(target ${e(m.target)} %)</span>` : '';
  return `<td class="num ${cls}">${e(percent(m.percent))}${against}</td>`;
}

export function indexHtml(view: { generatedAt: string; policies: PolicyLine[] }): string {
  const rows = view.policies
    .map((p) => {
      const href = `policies/${encodeURIComponent(p.namespace)}/${encodeURIComponent(p.name)}`;
      const state = p.down
        ? '<span class="bad">Down</span>'
        : p.ready
          ? '<span class="ok">Ready</span>'
          : e(p.phase);
      return `<tr>
<th scope="row"><a href="${e(href)}">${e(p.namespace)}/${e(p.name)}</a></th>
<td>${state}</td><td>${e(p.phase)}</td><td>${e(p.activePrimary ?? '–')}</td><td class="num">${e(p.epoch ?? '–')}</td>
${availabilityCell(p.month)}
<td>${p.lastIncident ? `${e(p.lastIncident.kind)} ${e(p.lastIncident.result)}, ${when(p.lastIncident.completedAt)}` : '–'}</td>
<td>${p.lastDrill ? `${e(p.lastDrill.result)}, RTO ${e(secs(p.lastDrill.rtoSeconds))}, ${when(p.lastDrill.completedAt)}` : '–'}</td>
</tr>`;
    })
    .join('\n');
  const body = `<h1>Database failover status</h1>
<table>
<caption class="legend">${view.policies.length} ${view.policies.length === 1 ? 'policy' : 'policies'}; availability counts a moment as down only when a quorum of observers agree</caption>
<thead><tr><th scope="col">Policy</th><th scope="col">State</th><th scope="col">Phase</th><th scope="col">Primary</th><th scope="col">Epoch</th><th scope="col">This month</th><th scope="col">Last incident</th><th scope="col">Last drill</th></tr></thead>
<tbody>
${rows || '<tr><td colspan="8">No FailoverPolicy yet.</td></tr>'}
</tbody>
</table>`;
  return page('Database failover status', body, view.generatedAt, 'status.json');
}

/** The 90-day bar: one block a day, its colour by downtime, described as a whole for screen readers. */
function dayBar(days: PolicyPage['days']): string {
  const down = days.filter((d) => d.downSeconds > 0);
  const worst = down.reduce<PolicyPage['days'][number] | undefined>(
    (w, d) => (!w || d.downSeconds > w.downSeconds ? d : w),
    undefined,
  );
  const label = `Last ${days.length} days: ${days.filter((d) => d.tracked).length - down.length} without downtime, ${down.length} with${worst ? ` (most: ${worst.day}, ${secs(worst.downSeconds)})` : ''}`;
  const items = days
    .map((d) => {
      const cls = !d.tracked ? 'none' : d.downSeconds === 0 ? '' : d.downSeconds < 300 ? 'minor' : 'major';
      const title = !d.tracked
        ? `${d.day}: not tracked`
        : `${d.day}: ${d.downSeconds === 0 ? 'no downtime' : `down ${secs(d.downSeconds)}`}`;
      return `<li${cls ? ` class="${cls}"` : ''} title="${e(title)}" data-day="${e(d.day)}" data-down-seconds="${e(d.downSeconds)}"></li>`;
    })
    .join('');
  return `<ol class="bar" role="img" aria-label="${e(label)}">${items}</ol>
<p class="legend">${e(label)}. Green: no downtime; amber: under 5 minutes; red: more; grey: before the ledger began.</p>`;
}

function timelineTable(caption: string, moments: Incident['timeline']): string {
  if (moments.length === 0) return '<p class="legend">No timeline kept for this one.</p>';
  const first = Date.parse(moments[0]?.at ?? '');
  return `<details><summary>${e(caption)}</summary>
<table><thead><tr><th scope="col">Time (UTC)</th><th scope="col" class="num">T</th><th scope="col">Event</th><th scope="col">Detail</th></tr></thead><tbody>
${moments
  .map(
    (m) =>
      `<tr><td class="at">${e(new Date(m.at).toISOString().replace('T', ' '))}</td><td class="num">+${e(((Date.parse(m.at) - first) / 1000).toFixed(1))} s</td><td>${e(m.event)}</td><td>${e(m.detail ?? '')}</td></tr>`,
  )
  .join('\n')}
</tbody></table></details>`;
}

function incidentSection(i: Incident): string {
  const rpo =
    i.rpoSeconds !== undefined || i.rpoBytes !== undefined
      ? `${secs(i.rpoSeconds)}${i.rpoBytes !== undefined ? ` / ${i.rpoBytes} bytes` : ''}`
      : '–';
  return `<article aria-labelledby="incident-${e(i.id)}">
<h3 id="incident-${e(i.id)}">${e(i.kind)} ${e(i.from)} → ${e(i.to)}: ${e(i.result)}</h3>
<table><tbody>
<tr><th scope="row">When</th><td>${when(i.startedAt)} – ${when(i.completedAt)}</td></tr>
<tr><th scope="row">Trigger</th><td>${e(i.trigger)}${i.reason ? `: ${e(i.reason)}` : ''}</td></tr>
<tr><th scope="row">RTO</th><td class="rto">${e(secs(i.rtoSeconds))}</td></tr>
<tr><th scope="row">RPO</th><td class="rpo">${e(rpo)}</td></tr>
${i.lostWrites !== undefined ? `<tr><th scope="row">Writes lost (canary)</th><td>${e(i.lostWrites)}</td></tr>` : ''}
<tr><th scope="row">Record</th><td><code>kubectl failover report … ${e(i.id)}</code></td></tr>
</tbody></table>
${timelineTable(`Timeline (${i.timeline.length} moments)`, i.timeline)}
</article>`;
}

function drillsTable(drills: DrillLine[]): string {
  if (drills.length === 0) return '<p>No drill has run.</p>';
  return `<table><thead><tr><th scope="col">Drill</th><th scope="col">Mode</th><th scope="col">Result</th><th scope="col">Finished</th><th scope="col" class="num">RTO out</th><th scope="col" class="num">RTO back</th><th scope="col" class="num">Writes lost</th></tr></thead><tbody>
${drills
  .map(
    (d) =>
      `<tr><th scope="row">${e(d.id)}</th><td>${e(d.mode)}</td><td class="${d.result === 'Succeeded' ? 'ok' : 'bad'}">${e(d.result)}</td><td>${when(d.completedAt)}</td><td class="num">${e(secs(d.rtoSeconds))}</td><td class="num">${e(secs(d.rtoBackSeconds))}</td><td class="num">${e(d.lostWrites ?? '–')}</td></tr>`,
  )
  .join('\n')}
</tbody></table>`;
}

export function policyHtml(p: PolicyPage, generatedAt: string): string {
  const state = p.down
    ? '<span class="bad">Down</span>'
    : p.ready
      ? '<span class="ok">Ready</span>'
      : e(p.phase);
  const members = p.members
    .map(
      (m) =>
        `<tr><th scope="row">${e(m.cluster)}</th><td>${e(m.role)}</td><td class="${m.ready ? 'ok' : 'warn'}">${m.ready ? 'ready' : 'not ready'}</td><td class="num">${m.lagSeconds !== undefined ? `${e(m.lagSeconds)} s` : '–'}</td><td>${e(m.message ?? '')}</td></tr>`,
    )
    .join('\n');
  const months = p.months
    .map(
      (m) =>
        `<tr><th scope="row">${e(m.month)}</th>${availabilityCell(m)}<td class="num">${e(secs(m.downSeconds))}</td><td class="num">${e(m.outages)}</td></tr>`,
    )
    .join('\n');
  const outages = p.outages
    .map(
      (o) =>
        `<li>${when(o.start)}${o.end ? ` – ${when(o.end)}` : ' – <strong>ongoing</strong>'}: ${e(secs(o.seconds))}</li>`,
    )
    .join('\n');
  const body = `<p><a href="../../">All policies</a></p>
<h1>${e(p.namespace)}/${e(p.name)}</h1>
<table><tbody>
<tr><th scope="row">State</th><td id="state">${state}${p.readyMessage ? ` <span class="legend">${e(p.readyMessage)}</span>` : ''}</td></tr>
<tr><th scope="row">Phase</th><td id="phase">${e(p.phase)}</td></tr>
<tr><th scope="row">Primary</th><td id="primary">${e(p.activePrimary ?? '–')}</td></tr>
<tr><th scope="row">Epoch</th><td id="epoch">${e(p.epoch ?? '–')}</td></tr>
</tbody></table>
<table><caption class="legend">Members</caption><thead><tr><th scope="col">Cluster</th><th scope="col">Role</th><th scope="col">Ready</th><th scope="col" class="num">Lag</th><th scope="col">Why not ready</th></tr></thead><tbody>
${members || '<tr><td colspan="5">Not observed yet.</td></tr>'}
</tbody></table>
<h2>Availability</h2>
${dayBar(p.days)}
<table><caption class="legend">Per calendar month (UTC)${p.target !== undefined ? `, against the target of ${e(p.target)} %` : ''}</caption><thead><tr><th scope="col">Month</th><th scope="col" class="num">Availability</th><th scope="col" class="num">Down</th><th scope="col" class="num">Outages</th></tr></thead><tbody>
${months || '<tr><td colspan="4">Not tracked yet.</td></tr>'}
</tbody></table>
${outages ? `<h3>Recent outages</h3><ul>${outages}</ul>` : '<p>No outage recorded.</p>'}
<h2>Recent incidents</h2>
${p.incidents.map(incidentSection).join('\n') || '<p>No failover, switchover, fence or reprotect yet.</p>'}
<h2>Drills</h2>
${drillsTable(p.drills)}`;
  return page(
    `${p.namespace}/${p.name}: failover status`,
    body,
    generatedAt,
    `${encodeURIComponent(p.name)}.json`,
  );
}
