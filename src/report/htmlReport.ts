import type { JobType } from '../types.js';
import type { ReportPage } from './reportPage.js';

/** Okabe–Ito, then darker companions: distinguishable with the common colour-vision deficiencies, and in print. */
const PALETTE = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9', '#F0E442', '#000000', '#7F3C8D', '#11A579', '#3969AC', '#F2B701'];

const esc = (value: unknown): string =>
  String(value).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
const num = (n: number) => n.toLocaleString('en-US');
const pct = (share: number) => `${(share * 100).toFixed(1)}%`;
const day = (iso: string) => iso.slice(0, 10);
const minute = (iso: string) => `${iso.slice(0, 16).replace('T', ' ')} UTC`;

/**
 * The compliance report as one self-contained HTML page: inline CSS and SVG, no script, no external resource (the
 * Content-Security-Policy forbids both), readable on a phone (fluid layout, tables scroll sideways) and printed
 * (print styles, no page break inside a section).
 */
export function renderReportHtml(page: ReportPage): string {
  const { report } = page;
  const types = report.types.map((t) => t.type);
  const body = [
    `<header><h1>Compliance report</h1>
<p class="meta">Store <code>${esc(page.store)}</code> (id <code>${esc(page.storeId)}</code>)<br>
Period ${esc(minute(report.since))} to ${esc(minute(report.until))} · generated ${esc(minute(page.generatedAt))}</p></header>`,
    overview(page, types),
    ...types.map((type) => typeSection(page, type)),
    hooksSection(page),
    auditSection(page),
    `<section id="config"><h2>Configuration in force</h2><p class="note">Secrets masked: the bearer token is never part of the configuration; URLs and hook arguments that could carry one are masked.</p><pre>${esc(JSON.stringify(page.config, null, 2))}</pre></section>`,
  ].join('\n');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>Compliance report · ${esc(day(report.since))} to ${esc(day(report.until))}</title>
<style>${CSS}</style>
</head>
<body>
<main>
${body}
</main>
</body>
</html>
`;
}

function auditSection(page: ReportPage): string {
  const audit = page.report.lastAudit;
  if (!audit) return `<section id="audit"><h2>Last audit</h2><p>No audit recorded.</p></section>`;
  const verdict = audit.outcome === 'clean' ? 'clean: every check ran and found nothing' : audit.outcome === 'incomplete' ? 'incomplete: a check could not run' : `${num(audit.findings)} findings`;
  const rows = audit.checks.map((c) => {
    const result = c.error !== undefined ? `could not run: ${c.error}` : !c.ran ? 'not run' : c.count ? `${num(c.count)} ${c.unit}` : 'ok';
    const where = Object.entries(c.locations).map(([place, n]) => `${place}: ${num(n)}`).join('; ');
    const examples = c.examples.map((e) => e.id).join(', ');
    return `<tr><td>${esc(c.name)}</td><td>${esc(result)}</td><td>${esc(where)}</td><td>${examples ? `<code>${esc(examples)}</code>` : ''}</td></tr>`;
  });
  return `<section id="audit"><h2>Last audit</h2>
<p>Audit #${audit.id} at ${esc(minute(audit.startedAt))}${audit.scanBytes ? ', with the byte scan' : ''}: <strong>${esc(verdict)}</strong>.</p>
<div class="scroll"><table><thead><tr><th>check</th><th>result</th><th>where</th><th>examples</th></tr></thead><tbody>${rows.join('')}</tbody></table></div></section>`;
}

function overview(page: ReportPage, types: JobType[]): string {
  const row = (label: string, cell: (type: JobType) => string) => `<tr><th scope="row">${esc(label)}</th>${types.map((t) => `<td>${cell(t)}</td>`).join('')}</tr>`;
  const of = (type: JobType) => page.report.types.find((t) => t.type === type)!;
  const oldest = (type: JobType) => {
    const first = page.types[type].coverage.oldestUnchecked[0];
    return first ? `<code>${esc(first.id)}</code>${first.createdAt ? ` (${esc(day(first.createdAt))})` : ''}` : 'none';
  };
  return `<section id="overview"><h2>Overview</h2><div class="scroll"><table class="numbers">
<thead><tr><th></th>${types.map((t) => `<th scope="col">${esc(t)}</th>`).join('')}</tr></thead>
<tbody>
${row('cycles completed', (t) => num(of(t).cyclesClosed))}
${row('IDs checked', (t) => num(of(t).idsChecked))}
${row('compliance jobs run', (t) => num(of(t).jobsRun))}
${row('stored rows', (t) => num(page.types[t].coverage.storedRows))}
${row(`checked within ${page.auditMaxAge}`, (t) => `${num(page.types[t].coverage.checkedRows)} (${pct(page.types[t].coverage.share)})`)}
${row('oldest unchecked row', oldest)}
${row('failed shards', (t) => num(of(t).failures.length))}
${row('shards held now', (t) => num(page.types[t].history.holds.length))}
</tbody></table></div></section>`;
}

function typeSection(page: ReportPage, type: JobType): string {
  const { history, coverage } = page.types[type];
  const typeReport = page.report.types.find((t) => t.type === type)!;
  const series = seriesOf(history.cycles);
  const totals = Object.entries(typeReport.actionsByReason).flatMap(([reason, actions]) =>
    Object.entries(actions).map(([action, n]) => `<tr><td>${esc(reason)}</td><td>${esc(action)}</td><td>${num(n)}</td></tr>`),
  );
  return `<section id="${type}"><h2>${esc(type)}</h2>
<h3>Actions per reason, cycle by cycle</h3>
${history.cycles.length ? chart(type, history.cycles, series) : '<p>No cycle closed in this period.</p>'}
${history.cycles.length ? cycleTable(history.cycles, series) : ''}
<h3>Actions per reason in the period</h3>
${totals.length ? `<div class="scroll"><table class="numbers"><thead><tr><th>reason</th><th>action taken</th><th>count</th></tr></thead><tbody>${totals.join('')}</tbody></table></div>` : '<p>No result needed action in this period.</p>'}
<h3>Coverage</h3>
<p><strong>${pct(coverage.share)}</strong> of ${num(coverage.storedRows)} stored rows were checked by a cycle closed within ${esc(page.auditMaxAge)} (${num(coverage.checkedRows)} rows).</p>
${
  coverage.oldestUnchecked.length
    ? `<p>The oldest unchecked rows:</p><div class="scroll"><table><thead><tr><th>ID</th><th>created (from the ID)</th></tr></thead><tbody>${coverage.oldestUnchecked
        .map((row) => `<tr><td><code>${esc(row.id)}</code></td><td>${row.createdAt ? esc(minute(row.createdAt)) : 'unknown'}</td></tr>`)
        .join('')}</tbody></table></div>`
    : '<p>Every stored row was checked.</p>'
}
<h3>Jobs and failures</h3>
<p>Jobs created in the period, by last status: ${
    Object.entries(history.jobStatuses)
      .map(([status, n]) => `${esc(status)} <strong>${num(n)}</strong>`)
      .join(', ') || 'none'
  }.</p>
${
  history.problemJobs.length
    ? `<div class="scroll"><table><thead><tr><th>job</th><th>cycle / shard</th><th>status</th><th>why</th><th>what became of it</th></tr></thead><tbody>${history.problemJobs
        .map(
          (job) =>
            `<tr><td><code>${esc(job.jobId)}</code></td><td>#${job.cycleId} / ${job.seq}</td><td>${esc(job.status)}</td><td>${esc(job.error ?? '')}</td><td>${esc(
              job.nextJob ? `shard retried with job ${job.nextJob.id} (${job.nextJob.status}); shard ${job.shardState}` : `no later job; shard ${job.shardState}`,
            )}</td></tr>`,
        )
        .join('')}</tbody></table></div>`
    : '<p>No job failed or expired.</p>'
}
${
  typeReport.failures.length
    ? `<p>Shards that failed after every attempt:</p><div class="scroll"><table><thead><tr><th>cycle / shard</th><th>IDs</th><th>error</th><th>what became of it</th></tr></thead><tbody>${typeReport.failures
        .map((f) => `<tr><td>#${f.cycleId} / ${f.seq}</td><td><code>${esc(f.firstId)}</code>–<code>${esc(f.lastId)}</code></td><td>${esc(f.error)}</td><td>${esc(f.resolution)}</td></tr>`)
        .join('')}</tbody></table></div>`
    : '<p>No shard failed.</p>'
}
<h3>Holds and confirmations</h3>
${
  history.holds.length
    ? `<div class="scroll"><table><thead><tr><th>held shard</th><th>IDs</th><th>since</th><th>why</th></tr></thead><tbody>${history.holds
        .map((h) => `<tr><td>#${h.cycleId} / ${h.seq}</td><td>${num(h.idCount)}</td><td>${esc(minute(h.since))}</td><td>${esc(h.reason ?? '')}</td></tr>`)
        .join('')}</tbody></table></div>`
    : '<p>No shard is held by the safety gate.</p>'
}
${
  history.confirmations.length
    ? `<div class="scroll"><table><thead><tr><th>confirmed shard</th><th>confirmed</th><th>rows deleted</th></tr></thead><tbody>${history.confirmations
        .map((c) => `<tr><td>${c.cycleId === null ? 'apply' : `#${c.cycleId} / ${c.seq}`}</td><td>${esc(minute(c.confirmedAt))}</td><td>${num(c.rowsDeleted)}</td></tr>`)
        .join('')}</tbody></table></div>`
    : '<p>No held deletions were confirmed in this period.</p>'
}
</section>`;
}

type Cycle = ReportPage['types'][JobType]['history']['cycles'][number];

/** The "reason → action" pairs seen in the period, most frequent first (stacking order and colour). */
function seriesOf(cycles: readonly Cycle[]): { key: string; reason: string; action: string; color: string }[] {
  const totals = new Map<string, number>();
  for (const cycle of cycles) {
    for (const [reason, actions] of Object.entries(cycle.summary?.byReason ?? {})) {
      for (const [action, n] of Object.entries(actions)) totals.set(`${reason}\u0000${action}`, (totals.get(`${reason}\u0000${action}`) ?? 0) + n);
    }
  }
  return [...totals]
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .map(([key], i) => {
      const [reason, action] = key.split('\u0000') as [string, string];
      return { key, reason, action, color: PALETTE[i % PALETTE.length]! };
    });
}

const valueOf = (cycle: Cycle, reason: string, action: string) => cycle.summary?.byReason?.[reason]?.[action] ?? 0;

/** Stacked bars, one per closed cycle in time order; the table below carries the same numbers. */
function chart(type: JobType, cycles: readonly Cycle[], series: ReturnType<typeof seriesOf>): string {
  const width = 720;
  const height = 260;
  const left = 56;
  const right = 12;
  const top = 12;
  const bottom = 44;
  const plotW = width - left - right;
  const plotH = height - top - bottom;
  const stackTotals = cycles.map((c) => series.reduce((sum, s) => sum + valueOf(c, s.reason, s.action), 0));
  const max = niceCeiling(Math.max(1, ...stackTotals));
  const slot = plotW / cycles.length;
  const barW = Math.max(2, Math.min(48, slot * 0.7));
  const y = (v: number) => top + plotH - (v / max) * plotH;
  const parts: string[] = [];
  for (const tick of [0, max / 2, max]) {
    parts.push(`<line x1="${left}" x2="${width - right}" y1="${y(tick).toFixed(1)}" y2="${y(tick).toFixed(1)}" class="grid"/>`);
    parts.push(`<text x="${left - 6}" y="${(y(tick) + 4).toFixed(1)}" text-anchor="end" class="tick">${num(tick)}</text>`);
  }
  const labelEvery = Math.max(1, Math.ceil(cycles.length / 8));
  cycles.forEach((cycle, i) => {
    const x = left + i * slot + (slot - barW) / 2;
    let base = 0;
    for (const s of series) {
      const v = valueOf(cycle, s.reason, s.action);
      if (!v) continue;
      const y1 = y(base + v);
      const h = Math.max(0.5, y(base) - y1);
      parts.push(
        `<rect x="${x.toFixed(1)}" y="${y1.toFixed(1)}" width="${barW.toFixed(1)}" height="${h.toFixed(1)}" fill="${s.color}"><title>cycle #${cycle.id}, ${esc(minute(cycle.finishedAt))}: ${esc(s.reason)} → ${esc(s.action)} ${num(v)}</title></rect>`,
      );
      base += v;
    }
    if (i % labelEvery === 0 || i === cycles.length - 1) {
      parts.push(`<text x="${(x + barW / 2).toFixed(1)}" y="${height - bottom + 16}" text-anchor="middle" class="tick">#${cycle.id}</text>`);
      parts.push(`<text x="${(x + barW / 2).toFixed(1)}" y="${height - bottom + 30}" text-anchor="middle" class="tick">${esc(cycle.finishedAt.slice(5, 10))}</text>`);
    }
  });
  parts.push(`<line x1="${left}" x2="${width - right}" y1="${y(0)}" y2="${y(0)}" class="axis"/>`);
  const legend = series.length
    ? `<ul class="legend">${series.map((s) => `<li><span class="swatch" style="background:${s.color}"></span>${esc(s.reason)} → ${esc(s.action)}</li>`).join('')}</ul>`
    : '<p>No result needed action in these cycles.</p>';
  return `<figure><svg viewBox="0 0 ${width} ${height}" role="img" aria-label="${esc(type)}: actions per reason in each of ${cycles.length} cycles">${parts.join('')}</svg>
<figcaption>${esc(type)}: rows acted on per reason and action, one bar per closed cycle (label: cycle and finish date, MM-DD).</figcaption>${legend}</figure>`;
}

function cycleTable(cycles: readonly Cycle[], series: ReturnType<typeof seriesOf>): string {
  const head = series.map((s) => `<th>${esc(s.reason)} → ${esc(s.action)}</th>`).join('');
  const rows = cycles
    .map(
      (c) =>
        `<tr><td>#${c.id}</td><td>${esc(minute(c.finishedAt))}</td><td>${num(c.summary?.idsChecked ?? 0)}</td>${series.map((s) => `<td>${num(valueOf(c, s.reason, s.action))}</td>`).join('')}</tr>`,
    )
    .join('');
  return `<details open><summary>The numbers behind the chart</summary><div class="scroll"><table class="numbers"><thead><tr><th>cycle</th><th>closed</th><th>IDs checked</th>${head}</tr></thead><tbody>${rows}</tbody></table></div></details>`;
}

function hooksSection(page: ReportPage): string {
  if (!page.hookDeliveries.length) return '';
  return `<section id="hooks"><h2>Hook deliveries</h2><div class="scroll"><table><thead><tr><th>hook</th><th>cycle</th><th>state</th><th>attempts</th><th>last error</th><th>at</th></tr></thead><tbody>${page.hookDeliveries
    .map(
      (d) =>
        `<tr><td>${esc(d.hook)}</td><td>#${d.cycleId}</td><td>${esc(d.state)}</td><td>${d.attempts}</td><td>${esc(d.lastError ?? '')}</td><td>${esc(minute(d.updatedAt))}</td></tr>`,
    )
    .join('')}</tbody></table></div></section>`;
}

/** 1, 2 or 5 times a power of ten, at or above `n`: round axis labels. */
function niceCeiling(n: number): number {
  const power = 10 ** Math.floor(Math.log10(n));
  for (const step of [1, 2, 5, 10]) if (step * power >= n) return step * power;
  return 10 * power;
}

const CSS = `
:root { color-scheme: light; --ink: #1b1f24; --muted: #57606a; --line: #d0d7de; --band: #f6f8fa; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); background: #fff; }
main { max-width: 60rem; margin: 0 auto; padding: 1rem; }
h1 { font-size: 1.6rem; margin: 0.5rem 0; }
h2 { font-size: 1.3rem; border-bottom: 2px solid var(--line); padding-bottom: 0.2rem; margin-top: 2rem; }
h3 { font-size: 1.05rem; margin: 1.2rem 0 0.4rem; }
.meta, .note, figcaption { color: var(--muted); font-size: 0.9rem; }
code { font: 0.9em ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; overflow-wrap: anywhere; }
pre { background: var(--band); padding: 0.75rem; overflow-x: auto; font-size: 0.8rem; white-space: pre-wrap; overflow-wrap: anywhere; }
.scroll { overflow-x: auto; -webkit-overflow-scrolling: touch; }
table { border-collapse: collapse; margin: 0.4rem 0; font-size: 0.9rem; }
th, td { border: 1px solid var(--line); padding: 0.25rem 0.5rem; text-align: left; vertical-align: top; }
thead th { background: var(--band); }
table.numbers td { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 0.5rem 0; }
svg { width: 100%; height: auto; display: block; }
svg .grid { stroke: var(--line); stroke-width: 1; }
svg .axis { stroke: var(--ink); stroke-width: 1; }
svg .tick { font-size: 11px; fill: var(--muted); }
.legend { list-style: none; padding: 0; margin: 0.4rem 0; display: flex; flex-wrap: wrap; gap: 0.3rem 1rem; font-size: 0.85rem; }
.swatch { display: inline-block; width: 0.8rem; height: 0.8rem; margin-right: 0.3rem; vertical-align: -0.1rem; border-radius: 2px; }
details summary { cursor: pointer; color: var(--muted); font-size: 0.9rem; }
@media (max-width: 600px) {
  body { font-size: 14px; }
  main { padding: 0.6rem; }
  h1 { font-size: 1.3rem; }
  th, td { padding: 0.2rem 0.35rem; }
}
@media print {
  @page { margin: 1.5cm; }
  body { font-size: 10.5pt; }
  main { max-width: none; padding: 0; }
  figure, tr, .legend { break-inside: avoid; }
  h2, h3 { break-after: avoid; }
  .scroll { overflow: visible; }
  details > summary { display: none; }
  .swatch, svg rect, thead th { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  pre { white-space: pre-wrap; }
}
`;
