/** The bench's outputs: the machine it ran on, the table on stdout, the JSON and its SVG chart. */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, platform, release } from 'node:os';
import { dirname, resolve } from 'node:path';
import type { DrafterSummary } from './stats.js';

export function machineInfo(): Record<string, unknown> {
  const c = cpus();
  let steal: number | null = null;
  try {
    const stat = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const total = stat.reduce((a, b) => a + b, 0);
    steal = total > 0 ? stat[7] / total : null; // since boot
  } catch {
    /* not Linux */
  }
  return {
    cpu: c[0]?.model,
    cores: c.length,
    platform: `${platform()} ${release()}`,
    node: process.version,
    loadavg: loadavg(),
    steal_fraction_since_boot: steal,
    date: new Date().toISOString(),
  };
}

export function printTable(rows: [string, DrafterSummary][], extraNote = ''): string {
  const head = ['drafter', 'tok/s', 'tau', 'tree', 'draft ms', 'verify ms', 'speedup', 'identical'];
  const body = rows.map(([name, s]) => [
    name,
    s.tokens_per_s.toFixed(1),
    s.tau.toFixed(2),
    s.mean_tree_size.toFixed(1),
    s.draft_ms.toFixed(2),
    s.verify_ms.toFixed(2),
    Number.isFinite(s.speedup) ? `${s.speedup.toFixed(2)}x` : '-',
    `${s.identical}/${s.prompts}`,
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  const out = [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
  return out + (extraNote ? `\n${extraNote}` : '') + '\n';
}

/** Hand-written SVG: two panels (speedup over plain, τ) with one bar per drafter, each panel on its own scale. */
export function renderSvg(rows: [string, DrafterSummary][], title: string): string {
  const esc = (x: string) => x.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  const barW = 34, gap = 14, left = 50, top = 48, plotH = 220;
  const panelW = left + rows.length * (barW + gap) + 20;
  const W = panelW * 2 + 20, H = top + plotH + 110;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="20" text-anchor="middle" font-size="14">${esc(title)}</text>`,
  ];
  const panel = (x0: number, label: string, color: string, value: (s: DrafterSummary) => number, fmt: (v: number) => string, ref: number) => {
    const vals = rows.map(([, s]) => (Number.isFinite(value(s)) ? value(s) : 0));
    const maxV = Math.max(ref * 1.2, ...vals) * 1.08;
    const step = maxV > 20 ? 5 : maxV > 8 ? 2 : maxV > 3 ? 1 : 0.5;
    const y = (v: number) => top + plotH - (plotH * v) / maxV;
    out.push(`<text x="${x0 + panelW / 2}" y="${top - 14}" text-anchor="middle" font-size="12">${esc(label)}</text>`);
    for (let v = 0; v <= maxV; v += step) {
      out.push(`<line x1="${x0 + left - 4}" x2="${x0 + panelW - 10}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="#e4e4e4"/>`);
      out.push(`<text x="${x0 + left - 8}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end" fill="#555">${v}</text>`);
    }
    out.push(`<line x1="${x0 + left - 4}" x2="${x0 + panelW - 10}" y1="${y(ref).toFixed(1)}" y2="${y(ref).toFixed(1)}" stroke="#888" stroke-dasharray="4 3"/>`);
    rows.forEach(([name], i) => {
      const v = vals[i];
      const x = x0 + left + i * (barW + gap);
      out.push(`<rect x="${x}" y="${y(v).toFixed(1)}" width="${barW}" height="${(top + plotH - y(v)).toFixed(1)}" fill="${color}"/>`);
      out.push(`<text x="${x + barW / 2}" y="${(y(v) - 4).toFixed(1)}" text-anchor="middle">${esc(fmt(v))}</text>`);
      const lx = x + barW / 2, ly = top + plotH + 10;
      out.push(`<text x="${lx}" y="${ly}" text-anchor="end" transform="rotate(-40 ${lx} ${ly})">${esc(name.length > 22 ? name.slice(0, 21) + '…' : name)}</text>`);
    });
  };
  panel(0, 'speedup over plain (median of per-prompt tok/s ratios)', '#3b7dd8', (s) => s.speedup, (v) => `${v.toFixed(2)}x`, 1);
  panel(panelW + 20, 'τ: tokens per base-model call', '#e8a33d', (s) => s.tau, (v) => v.toFixed(2), 1);
  out.push('</svg>');
  return out.join('\n') + '\n';
}

export function writeOutputs(jsonPath: string, result: Record<string, unknown>, rows: [string, DrafterSummary][], title: string): void {
  const abs = resolve(jsonPath);
  mkdirSync(dirname(abs), { recursive: true });
  writeFileSync(abs, JSON.stringify(result, null, 2) + '\n');
  const svgPath = abs.replace(/\.json$/, '') + '.svg';
  writeFileSync(svgPath, renderSvg(rows, title));
  process.stderr.write(`wrote ${abs} and ${svgPath}\n`);
}
