import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import type { SuiteResults } from '../../bench/suite.js';
import { nginxMissing } from '../helpers/nginx-edge.js';

const run = promisify(execFile);

describe('npm run bench', () => {
  it('runs every scenario in its short form, prints the relay beside its floor and writes JSON and a chart', async () => {
    const { stdout } = await run(process.execPath, ['--import', 'tsx', 'bench/suite.ts', '--short'], {
      timeout: 480_000,
      maxBuffer: 4 << 20,
    });
    expect(stdout).toMatch(/start call → first FLV video tag at a viewer\s+\d+ \/ \d+ ms\s+\d+ \/ \d+ ms/);
    expect(stdout).toMatch(/control plane with 1000 channel records: start p50\/p99 \d+\/\d+ ms/);
    const file = /results: (\S+)/.exec(stdout)![1]!;
    const png = /chart: (\S+)/.exec(stdout)![1]!;
    const r = JSON.parse(fs.readFileSync(path.resolve(file), 'utf8')) as SuiteResults;
    expect(r.short).toBe(true);
    expect(r.latency!.relay.flvP50).toBeGreaterThan(0);
    expect(r.latency!.floor.hlsP50).toBeGreaterThan(0);
    // viewers played by the client player (probePlayback): behind live on FLV from the relay clock
    expect(r.latency!.behindLive!.relay.flvMs).toBeGreaterThan(0);
    expect(r.latency!.behindLive!.floor.flvFirstFrameMs).toBeGreaterThan(0);
    // HLS viewers through the nginx edge: each segment of each variant fetched from the origin once
    if (nginxMissing()) expect(r.edge).toBeUndefined();
    else expect(r.edge!.originPerSegment).toBe(1);
    expect(r.whip!.flv['whip-h264'].p50).toBeGreaterThan(0);
    expect(r.whip!.cpu.map((c) => c.codec)).toEqual(['h264', 'vp8']);
    // one channel's cost is often below the noise: then the ratio is null (printed n/a) rather than a meaningless number
    expect(r.cost!.map((c) => c.channels)).toEqual([1, 4]);
    for (const c of r.cost!) expect(c.ratio === null || c.ratio > 0).toBe(true);
    expect(r.density!.steps.map((s) => s.channels)).toEqual([8]);
    expect(r.density!.steps[0]!.minSpeed).toBeGreaterThan(0);
    expect(r.tiers!.map((t) => t.key)).toEqual(['original', '0+10+20+wm']);
    expect(r.tiers![1]!.barePlusMediaPct).toBeGreaterThan(5); // three encodes: far above noise
    expect(r.fanOut!.map((v) => v.viewers)).toEqual([1, 20]);
    for (const v of r.fanOut!) expect(v.slowest).toBeGreaterThan(0);
    // one media node per core: 8 channels spread by placement, beside the same work bare into the same nodes
    expect(r.nodes!.nodes).toBe(2);
    expect(r.nodes!.steps.map((s) => s.channels)).toEqual([8]);
    const step = r.nodes!.steps[0]!;
    expect(step.relay!.nodes.reduce((a, n) => a + n.channels, 0)).toBe(8);
    expect(step.relay!.minSpeed).toBeGreaterThan(0);
    expect(step.floor!.minSpeed).toBeGreaterThan(0);
    // a SIGKILLed media node: its channels' viewers play again on the same URL
    expect(r.nodeLoss!.runs).toHaveLength(1);
    expect(r.nodeLoss!.runs[0]!.moved).toBeGreaterThan(0);
    expect(r.nodeLoss!.gapMax).toBeLessThan(30_000);
    expect(r.nodeLoss!.allLiveMax).toBeLessThan(30_000);
    expect(stdout).toMatch(/node loss: 4 copy channels on 2 media nodes.*p50 \d+ ms, max \d+ ms/);
    expect(r.failover!.sigkill.gapsMs).toHaveLength(1);
    expect(r.failover!.sigterm.gapsMs[0]).toBeLessThan(10_000);
    // a short run judges no target
    expect(r.targets!.length).toBeGreaterThan(5);
    expect(r.targets!.every((t) => t.met === null)).toBe(true);
    const head = fs.readFileSync(path.resolve(png)).subarray(0, 8);
    expect(head.toString('hex')).toBe('89504e470d0a1a0a');
  }, 540_000);
});
