/**
 * Renders the benchmark suite's JSON as one chart: an SVG string (pure) and, with writeChart, an SVG and a PNG
 * file side by side. Only the panels whose data exists are drawn (short runs and `--only` subsets omit some).
 */
import fs from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Resvg } from '@resvg/resvg-js';

/** What the chart reads of the suite's JSON (bench/suite.ts SuiteResults has more). CPU is % of ONE core, times are ms; a `null` ratio means the CPU was below the noise. */
export interface ChartInput {
  date: string;
  machine: string;
  short: boolean;
  runs: number;
  seconds: number;
  latency?: {
    runs: number;
    relay: { apiP50: number; flvP50: number; flvP95: number; hlsP50: number; hlsP95: number };
    floor: { flvP50: number; flvP95: number; hlsP50: number; hlsP95: number };
  };
  cost?: {
    channels: number;
    stackPct: number;
    floorPct: number;
    ratio: number | null;
    stackMiBPerChannel: number;
    floorMiBPerChannel: number;
  }[];
  density?: {
    target: number;
    max: number;
    seconds: number;
    steps: { channels: number; realTime: boolean; minSpeed: number; hlsGaps: number; machinePct: number }[];
  };
  tiers?: {
    key: string;
    label: string;
    stackPct: number;
    barePlusMediaPct: number;
    ratio: number;
    relayFfmpegPct: number;
    bareFfmpegPct: number;
  }[];
  fanOut?: { viewers: number; mediaPct: number; mediaMiB: number; slowest: number }[];
  failover?: { sigkill: { gapsMs: number[]; p50: number }; sigterm: { gapsMs: number[]; p50: number } };
  controlPlane?: {
    records: number;
    cycles: number;
    startP50: number;
    startP99: number;
    stopP50: number;
    stopP99: number;
    statusP50: number;
    statusP99: number;
  };
  targets?: { name: string; target: string; value: string; met: boolean | null }[];
}

const WIDTH = 1600,
  MARGIN = 20,
  PW = (WIDTH - 3 * MARGIN) / 2,
  PH = 470,
  TOP = 60;
const RELAY = '#2563eb',
  FLOOR = '#9ca3af',
  GOOD = '#16a34a',
  BAD = '#ef4444',
  TARGET = '#b91c1c',
  INK = '#111827',
  DIM = '#4b5563';
const FONT = 'DejaVu Sans, sans-serif';

interface LegendItem {
  name: string;
  color: string;
  dashed?: boolean;
}
interface Group {
  label: string;
  sub?: string;
  values: number[];
  colors?: string[];
  note?: string;
  target?: number;
}
interface Panel {
  title: string;
  subtitle?: string;
  yLabel: string;
  xLabel: string;
  legend: LegendItem[];
  colors: string[];
  groups: Group[];
  fmt: (v: number) => string;
  yMin?: number;
  yMax?: number;
  target?: number;
}

const esc = (s: string): string =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');
const r1 = (v: number): string => String(Math.round(v * 10) / 10);
const pct = (v: number): string => v.toFixed(1);
/** Speeds: three decimals, but 1.00 rather than 1.000. */
const speed = (v: number): string => v.toFixed(3).replace(/0$/, '');
const r2 = (v: number): string => v.toFixed(2);
const ms = (v: number): string => String(Math.round(v));
const ratio = (v: number | null): string => (v === null ? 'n/a (noise)' : `×${r2(v)}`);
/** Rough text width in DejaVu Sans (deterministic, no font metrics needed). */
const textW = (s: string, size: number): number => s.length * size * 0.62;

function text(
  x: number,
  y: number,
  s: string,
  o: { size?: number; fill?: string; anchor?: string; bold?: boolean; halo?: boolean; extra?: string } = {},
): string {
  const attrs = [`x="${r1(x)}"`, `y="${r1(y)}"`, `font-size="${r1(o.size ?? 13)}"`, `fill="${o.fill ?? INK}"`];
  if (o.anchor) attrs.push(`text-anchor="${o.anchor}"`);
  if (o.bold) attrs.push('font-weight="bold"');
  if (o.halo) attrs.push('stroke="#ffffff" stroke-width="3" stroke-linejoin="round" paint-order="stroke"');
  if (o.extra) attrs.push(o.extra);
  return `<text ${attrs.join(' ')}>${esc(s)}</text>`;
}
const line = (x1: number, y1: number, x2: number, y2: number, stroke: string, extra = ''): string =>
  `<line x1="${r1(x1)}" y1="${r1(y1)}" x2="${r1(x2)}" y2="${r1(y2)}" stroke="${stroke}"${extra}/>`;
const dashed = ` stroke-width="2" stroke-dasharray="7 4"`;

/** 1, 2 or 5 times a power of ten, at least `raw`. */
function niceStep(raw: number): number {
  const p = 10 ** Math.floor(Math.log10(raw));
  return ([1, 2, 5, 10].find((m) => m * p >= raw - 1e-12) ?? 10) * p;
}

function legend(items: LegendItem[], x: number, y: number): string {
  let out = '';
  for (const it of items) {
    out += it.dashed
      ? line(x, y - 4, x + 22, y - 4, it.color, dashed)
      : `<rect x="${r1(x)}" y="${r1(y - 11)}" width="14" height="14" fill="${it.color}"/>`;
    const sx = x + (it.dashed ? 28 : 20);
    out += text(sx, y + 1, it.name, { size: 12, fill: DIM });
    x = sx + textW(it.name, 12) + 22;
  }
  return out;
}

/** One grouped bar chart panel with its top-left corner at (x, y). */
function barPanel(p: Panel, x: number, y: number): string {
  const L = x + 78,
    R = x + PW - 16,
    T = y + 100,
    B = y + PH - 92;
  const all = [...p.groups.flatMap((g) => [...g.values, g.target ?? 0]), p.target ?? 0];
  const min = Math.min(0, ...all),
    max = Math.max(...all);
  const step = niceStep(((p.yMax ?? max * 1.22) - (p.yMin ?? min)) / 5 || 1);
  const lo = p.yMin ?? Math.floor(min / step) * step;
  const hi = p.yMax ?? lo + Math.max(1, Math.ceil((max * 1.22 - lo) / step)) * step;
  const yOf = (v: number): number => B - ((Math.min(Math.max(v, lo), hi) - lo) / (hi - lo)) * (B - T);
  const tickDigits = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  let out = `<g>`;
  out += `<rect x="${x}" y="${y}" width="${PW}" height="${PH}" rx="6" fill="#ffffff" stroke="#d1d5db"/>`;
  out += text(x + 16, y + 28, p.title, { size: 18, bold: true });
  if (p.subtitle) out += text(x + 16, y + 50, p.subtitle, { fill: DIM });
  out += legend(p.legend, x + 16, y + 75);
  for (let v = lo; v <= hi + step / 1e6; v += step) {
    out += line(L, yOf(v), R, yOf(v), '#e5e7eb');
    out += text(L - 8, yOf(v) + 4, v.toFixed(tickDigits), { size: 11, fill: DIM, anchor: 'end' });
  }
  out += line(L, T, L, B, INK) + line(L, B, R, B, INK);
  const cy = (T + B) / 2;
  out += text(x + 22, cy, p.yLabel, {
    size: 12,
    fill: DIM,
    anchor: 'middle',
    extra: `transform="rotate(-90 ${r1(x + 22)} ${r1(cy)})"`,
  });
  out += text((L + R) / 2, B + 66, p.xLabel, { size: 12, fill: DIM, anchor: 'middle' });
  const gw = (R - L) / p.groups.length;
  const bw = Math.min(70, (gw * 0.8) / Math.max(...p.groups.map((g) => g.values.length), 1));
  // Bars first, then the target lines over them, then the labels (with a white halo) over the lines.
  let bars = '',
    lines = '',
    labels = '';
  p.groups.forEach((g, gi) => {
    const cx = L + gw * (gi + 0.5);
    if (g.target !== undefined)
      lines += line(cx - gw * 0.45, yOf(g.target), cx + gw * 0.45, yOf(g.target), TARGET, dashed);
    let top = B;
    g.values.forEach((v, i) => {
      const bx = cx - (g.values.length * bw) / 2 + i * bw,
        by = Math.min(yOf(v), yOf(0)),
        bh = Math.abs(yOf(v) - yOf(0));
      const label = p.fmt(v),
        size = Math.min(13, Math.max(8, (bw - 2) / (label.length * 0.62)));
      bars += `<rect x="${r1(bx + 2)}" y="${r1(by)}" width="${r1(bw - 4)}" height="${r1(bh)}" fill="${g.colors?.[i] ?? p.colors[i] ?? RELAY}"/>`;
      // A value label the target line would cross goes just above the line instead.
      const ty = yOf(g.target ?? p.target ?? hi),
        ly = by - 4 > ty - 2 && by - 4 - size < ty + 2 ? ty - 4 : by - 4;
      labels += text(bx + bw / 2, ly, label, { size, anchor: 'middle', halo: true });
      top = Math.min(top, ly - size);
    });
    if (g.note) labels += text(cx, top - 6, g.note, { bold: true, anchor: 'middle', halo: true });
    labels += text(cx, B + 20, g.label, { size: Math.min(13, (gw - 6) / (g.label.length * 0.62)), anchor: 'middle' });
    if (g.sub)
      labels += text(cx, B + 38, g.sub, {
        size: Math.min(11, (gw - 6) / (g.sub.length * 0.62)),
        fill: DIM,
        anchor: 'middle',
      });
  });
  if (p.target !== undefined) lines += line(L, yOf(p.target), R, yOf(p.target), TARGET, dashed);
  out += bars + lines + labels;
  return out + `</g>`;
}

const relayVsFloor = (relay: string, floor: string): LegendItem[] => [
  { name: relay, color: RELAY },
  { name: floor, color: FLOOR },
];
const targetItem = (name = 'target'): LegendItem => ({ name, color: TARGET, dashed: true });

/** The panels for whichever sections the results hold, in a fixed order. */
function panels(r: ChartInput): Panel[] {
  const out: Panel[] = [];
  const { latency: lat, density: den, failover: fo } = r;
  if (lat) {
    const g = (label: string, relay: number, floor: number, target?: number): Group => ({
      label,
      values: [relay, floor],
      target,
      sub: target === undefined ? undefined : `target ≤ ${target} ms`,
    });
    out.push({
      title: 'Start latency',
      subtitle: `${lat.runs} runs per protocol; API start p50 ${ms(lat.relay.apiP50)} ms`,
      yLabel: 'ms',
      xLabel: 'protocol and percentile',
      colors: [RELAY, FLOOR],
      fmt: ms,
      legend: [...relayVsFloor('relay', 'floor (bare ffmpeg)'), targetItem()],
      groups: [
        g('FLV p50', lat.relay.flvP50, lat.floor.flvP50, 500),
        g('FLV p95', lat.relay.flvP95, lat.floor.flvP95),
        g('HLS p50', lat.relay.hlsP50, lat.floor.hlsP50, 1500),
        g('HLS p95', lat.relay.hlsP95, lat.floor.hlsP95),
      ],
    });
  }
  if (r.cost?.length)
    out.push({
      title: 'CPU of N copy channels',
      subtitle: 'ratio = relay stack ÷ floor, written above each group',
      yLabel: '% of one core',
      xLabel: 'copy channels (RSS per channel below)',
      colors: [RELAY, FLOOR],
      fmt: pct,
      legend: relayVsFloor('relay stack', 'floor (bare ffmpeg)'),
      groups: r.cost.map((c) => ({
        label: `${c.channels} ch`,
        values: [c.stackPct, c.floorPct],
        note: ratio(c.ratio),
        sub: `${r1(c.stackMiBPerChannel)} vs ${r1(c.floorMiBPerChannel)} MiB/ch`,
      })),
    });
  if (den?.steps.length)
    out.push({
      title: 'Channel density',
      subtitle: `max real-time: ${den.max} channels (target ≥ ${den.target})`,
      yLabel: 'min speed (× real time)',
      xLabel: 'channels',
      colors: [GOOD],
      fmt: speed,
      legend: [
        { name: 'real-time', color: GOOD },
        { name: 'not real-time', color: BAD },
        targetItem('target speed 0.98'),
      ],
      yMin: 0.9,
      yMax: 1.05,
      target: 0.98,
      groups: den.steps.map((s) => ({
        label: `${s.channels}`,
        values: [s.minSpeed],
        colors: [s.realTime ? GOOD : BAD],
        sub: `machine ${Math.round(s.machinePct)}%, ${s.hlsGaps} HLS gaps`,
      })),
    });
  if (r.tiers?.length)
    out.push({
      title: 'CPU per transcode tier',
      subtitle: 'ratio = stack ÷ (bare ffmpeg + media server); ffmpeg alone below',
      yLabel: '% of one core',
      xLabel: 'tier (relay ffmpeg vs bare ffmpeg)',
      colors: [RELAY, FLOOR],
      fmt: pct,
      legend: relayVsFloor('relay stack', 'bare ffmpeg + media'),
      groups: r.tiers.map((t) => ({
        label: t.label,
        values: [t.stackPct, t.barePlusMediaPct],
        note: ratio(t.ratio),
        sub: `ffmpeg ${pct(t.relayFfmpegPct)} vs ${pct(t.bareFfmpegPct)}`,
      })),
    });
  if (r.fanOut?.length)
    out.push({
      title: 'Fan-out: media server CPU',
      subtitle: 'N HTTP-FLV viewers; media server memory and slowest ÷ fastest viewer below',
      yLabel: '% of one core',
      xLabel: 'viewers',
      colors: [RELAY],
      fmt: pct,
      legend: [{ name: 'media server CPU', color: RELAY }],
      groups: r.fanOut.map((f) => ({
        label: `${f.viewers} viewer${f.viewers === 1 ? '' : 's'}`,
        values: [f.mediaPct],
        sub: `${Math.round(f.mediaMiB)} MiB, slowest ${r2(f.slowest)}`,
      })),
    });
  if (fo)
    out.push({
      title: 'Failover gap',
      subtitle: 'largest gap between FLV video tags at a viewer when its worker dies; one bar per run',
      yLabel: 'ms',
      xLabel: 'signal sent to the worker',
      colors: [],
      fmt: ms,
      legend: [{ name: 'gap per run', color: RELAY }, targetItem()],
      groups: [
        {
          label: 'SIGKILL',
          values: fo.sigkill.gapsMs,
          note: `p50 ${ms(fo.sigkill.p50)} ms`,
          target: 5000,
          sub: 'target ≤ 5000 ms',
        },
        {
          label: 'SIGTERM',
          values: fo.sigterm.gapsMs,
          note: `p50 ${ms(fo.sigterm.p50)} ms`,
          target: 2000,
          sub: 'target ≤ 2000 ms',
        },
      ],
    });
  return out;
}

function targetsTable(rows: NonNullable<ChartInput['targets']>, x: number, y: number, w: number): string {
  const cols = [16, 0.38 * w, 0.68 * w, w - 60];
  let out = `<g><rect x="${x}" y="${y}" width="${w}" height="${tableHeight(rows.length)}" rx="6" fill="#ffffff" stroke="#d1d5db"/>`;
  out += text(x + 16, y + 28, 'Targets', { size: 18, bold: true });
  ['name', 'target', 'value', 'met'].forEach((h, i) => {
    out += text(x + cols[i]!, y + 56, h, { bold: true, fill: DIM });
  });
  rows.forEach((t, i) => {
    const ry = y + 82 + i * 26;
    if (i % 2 === 0) out += `<rect x="${x + 8}" y="${ry - 18}" width="${w - 16}" height="26" fill="#f3f4f6"/>`;
    const met = t.met === null ? ['–', DIM] : t.met ? ['✓', GOOD] : ['✗', BAD];
    [t.name, t.target, t.value].forEach((s, c) => {
      out += text(x + cols[c]!, ry, s);
    });
    out += text(x + cols[3]!, ry, met[0]!, { bold: true, fill: met[1] });
  });
  return out + `</g>`;
}
const tableHeight = (rows: number): number => 80 + rows * 26;

/** The whole chart as an SVG document (deterministic: same results, same string). */
export function renderChart(results: ChartInput): string {
  const ps = panels(results);
  const rows = Math.ceil(ps.length / 2);
  const tableY = TOP + rows * (PH + MARGIN);
  const height = tableY + (results.targets?.length ? tableHeight(results.targets.length) + MARGIN : 0);
  let body = `<rect width="${WIDTH}" height="${height}" fill="#f9fafb"/>`;
  body += `<text x="${MARGIN}" y="38" font-size="22" font-weight="bold" fill="${INK}" xml:space="preserve">${esc(`bypass live relay benchmark — ${results.date} — ${results.machine}`)}`;
  body += `${results.short ? `<tspan fill="${TARGET}"> — SHORT run</tspan>` : ''}</text>`;
  ps.forEach((p, i) => {
    body += barPanel(p, MARGIN + (i % 2) * (PW + MARGIN), TOP + Math.floor(i / 2) * (PH + MARGIN));
  });
  if (results.targets?.length) body += targetsTable(results.targets, MARGIN, tableY, WIDTH - 2 * MARGIN);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="${FONT}">${body}</svg>\n`;
}

function hasSystemFont(dir = '/usr/share/fonts'): boolean {
  try {
    return fs.readdirSync(dir, { recursive: true }).some((f) => /\.(ttf|otf)$/i.test(String(f)));
  } catch {
    return false;
  }
}

/** Writes `${basePath}.svg` and `${basePath}.png` (1600 px wide, white background) and returns both paths. */
export async function writeChart(results: ChartInput, basePath: string): Promise<{ svg: string; png: string }> {
  const svg = renderChart(results);
  if (!hasSystemFont()) {
    process.stderr.write(
      'chart: no system font found, the PNG has no text; install one with: sudo apt-get install -y fonts-dejavu-core\n',
    );
  }
  const png = new Resvg(svg, {
    background: 'white',
    fitTo: { mode: 'width', value: 1600 },
    font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' },
  })
    .render()
    .asPng();
  const out = { svg: `${basePath}.svg`, png: `${basePath}.png` };
  await mkdir(path.dirname(out.svg), { recursive: true });
  await Promise.all([writeFile(out.svg, svg), writeFile(out.png, png)]);
  return out;
}
