import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { renderChart, writeChart, type ChartInput } from '../../bench/chart.js';

const example: ChartInput = {
  date: '2026-11-28T14:26:10.869Z',
  machine: 'AMD EPYC, 2 cores, 24 GiB, node v20.20.2',
  short: false,
  runs: 3,
  seconds: 20,
  latency: {
    runs: 20,
    relay: { apiP50: 230, flvP50: 388, flvP95: 411, hlsP50: 892, hlsP95: 1543 },
    floor: { flvP50: 371, flvP95: 378, hlsP50: 1965, hlsP95: 2100 },
  },
  cost: [
    { channels: 1, stackPct: 3.2, floorPct: 2.1, ratio: null, stackMiBPerChannel: 20.6, floorMiBPerChannel: 18.3 },
    { channels: 10, stackPct: 8.9, floorPct: 8.7, ratio: 1.02, stackMiBPerChannel: 17.6, floorMiBPerChannel: 12 },
    { channels: 50, stackPct: 41.6, floorPct: 40.3, ratio: 1.03, stackMiBPerChannel: 17.6, floorMiBPerChannel: 12 },
  ],
  density: {
    target: 80,
    max: 120,
    seconds: 30,
    steps: [
      { channels: 80, realTime: true, minSpeed: 1.0, hlsGaps: 0, machinePct: 61 },
      { channels: 100, realTime: true, minSpeed: 1.0, hlsGaps: 0, machinePct: 74 },
      { channels: 120, realTime: true, minSpeed: 0.99, hlsGaps: 0, machinePct: 88 },
      { channels: 140, realTime: false, minSpeed: 0.93, hlsGaps: 3, machinePct: 99 },
    ],
  },
  tiers: [
    {
      key: 'original',
      label: 'ORIGINAL copy',
      stackPct: 3.2,
      barePlusMediaPct: 2.3,
      ratio: 1.39,
      relayFfmpegPct: 0.5,
      bareFfmpegPct: 0.5,
    },
    {
      key: '550',
      label: '550 (360p)',
      stackPct: 13.2,
      barePlusMediaPct: 14.6,
      ratio: 0.9,
      relayFfmpegPct: 11.3,
      bareFfmpegPct: 12.6,
    },
    {
      key: '900',
      label: '900 (540p)',
      stackPct: 19.9,
      barePlusMediaPct: 20.0,
      ratio: 0.99,
      relayFfmpegPct: 17.5,
      bareFfmpegPct: 17.7,
    },
    {
      key: '0+10+20+wm',
      label: '0+10+20 + watermark',
      stackPct: 44.3,
      barePlusMediaPct: 40.7,
      ratio: 1.09,
      relayFfmpegPct: 41.2,
      bareFfmpegPct: 38.4,
    },
  ],
  fanOut: [
    { viewers: 1, mediaPct: 24.2, mediaMiB: 60, slowest: 0.99 },
    { viewers: 50, mediaPct: 26.4, mediaMiB: 80, slowest: 0.99 },
    { viewers: 200, mediaPct: 36.9, mediaMiB: 120, slowest: 0.99 },
  ],
  failover: { sigkill: { gapsMs: [3100, 4200, 5100], p50: 4200 }, sigterm: { gapsMs: [390, 395, 400], p50: 395 } },
  controlPlane: {
    records: 1000,
    cycles: 20,
    startP50: 239,
    startP99: 250,
    stopP50: 11,
    stopP99: 16,
    statusP50: 2,
    statusP99: 8,
  },
  targets: [
    { name: 'FLV start p50', target: '≤ 500 ms', value: '388 ms', met: true },
    { name: 'failover after SIGKILL p50', target: '≤ 5000 ms', value: '4200 ms', met: true },
    { name: 'CPU ratio at 50 channels', target: '≤ 1.02', value: '1.03', met: false },
    { name: 'CPU ratio at 1 channel', target: '≤ 1.05', value: 'n/a (noise)', met: null },
  ],
};

const count = (s: string, needle: string): number => s.split(needle).length - 1;
const titles = [
  'Start latency',
  'CPU of N copy channels',
  'Channel density',
  'CPU per transcode tier',
  'Fan-out: media server CPU',
  'Failover gap',
  'Targets',
];

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

describe('renderChart', () => {
  it('draws every panel of a full run as balanced SVG', () => {
    const svg = renderChart(example);
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
    expect(count(svg, '<g')).toBe(count(svg, '</g>'));
    expect(count(svg, '<text')).toBe(count(svg, '</text>'));
    for (const t of titles) expect(svg).toContain(`>${t}</text>`);
    expect(svg).toContain('>388</text>');
    expect(svg).toContain('×1.03');
    expect(svg).toContain('max real-time: 120 channels (target ≥ 80)');
    expect(renderChart(example)).toBe(svg);
  });

  it('omits panels whose data is missing and escapes text', () => {
    const { density: _d, targets: _t, ...rest } = example;
    const svg = renderChart({ ...rest, short: true, machine: 'box <2 cores> & "quotes"' });
    expect(svg).not.toContain('Channel density');
    expect(svg).not.toContain('>Targets<');
    expect(svg).toContain('SHORT run');
    expect(svg).toContain('box &lt;2 cores&gt; &amp; &quot;quotes&quot;');
    expect(svg).not.toContain('<2 cores');
    expect(count(svg, '<g')).toBe(count(svg, '</g>'));
  });

  it('draws just the title for a run without sections', () => {
    const svg = renderChart({ date: 'd', machine: 'm', short: true, runs: 1, seconds: 1 });
    expect(svg).toContain('bypass live relay benchmark — d — m');
    expect(count(svg, '<g')).toBe(0);
  });
});

describe('writeChart', () => {
  it('writes the SVG and a 1600 px wide PNG', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chart-'));
    dirs.push(dir);
    const out = await writeChart(example, path.join(dir, 'suite'));
    expect(out).toEqual({ svg: path.join(dir, 'suite.svg'), png: path.join(dir, 'suite.png') });
    expect(fs.readFileSync(out.svg, 'utf8')).toBe(renderChart(example));
    const png = fs.readFileSync(out.png);
    expect([...png.subarray(0, 4)]).toEqual([0x89, 0x50, 0x4e, 0x47]);
    expect(png.readUInt32BE(16)).toBe(1600);
  });
});
