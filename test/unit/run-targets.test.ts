import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { RunTargets } from '../../src/targets/manager.js';
import type { Channel, PushTargetStatus } from '../../src/channels/types.js';
import type { RelayConfig } from '../../src/config/index.js';
import { recordingLogger, testChannel } from '../fakes/channels.js';
import { eventually } from '../helpers/stack.js';
import { parseEgressAllow } from '../../src/egress/index.js';

/** A run's targets over a record in memory; `/bin/false` stands in for ffmpeg (every attempt fails at once). */
function setup(over: Partial<Channel> = {}, ffmpegPath = '/bin/false') {
  let ch: Channel = testChannel({ state: 'starting', runGen: 3, ...over });
  /** What the destination's host resolves to (a public address unless a test moves it). */
  const dns: { address: string | null } = { address: '93.184.216.34' };
  const writes: Record<string, PushTargetStatus>[] = [];
  const notices: { type: string; data: Record<string, unknown> }[] = [];
  const config = {
    ffmpegPath,
    mediaInternalHost: '127.0.0.1',
    rtmpPort: 1,
    targets: { maxRetries: 1, backoffMs: 100, stallMs: 1000, confirmMs: 500 },
    egress: parseEgressAllow(''),
  } as Pick<RelayConfig, 'ffmpegPath' | 'mediaInternalHost' | 'rtmpPort' | 'targets' | 'egress'>;
  const run = new RunTargets(
    {
      config,
      store: { get: async () => structuredClone(ch) },
      lifecycle: {
        patchRun: async (_id, gen, fields, onlyIn) => {
          const ok = gen === ch.runGen && (!onlyIn?.length || onlyIn.includes(ch.state));
          if (ok) writes.push(structuredClone(fields.targetStatus!));
          return { ok, state: ch.state, ...(gen !== ch.runGen ? { fenced: true } : {}) };
        },
        notify: async (type, _ch, data) => void notices.push({ type, data }),
      },
      secret: 's'.repeat(32),
      logger: recordingLogger(),
      resolve: async () => (dns.address ? [dns.address] : []),
    },
    ch.channelId,
    3,
  );
  return { run, writes, notices, dns, set: (o: Partial<Channel>) => (ch = { ...ch, ...o }) };
}

/** A stand-in ffmpeg that sends 1000 bytes more every 100 ms until it is ended. */
function sendingFfmpeg(): string {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'fake-ffmpeg-')), 'ffmpeg');
  const loop =
    'n=0; while true; do n=$((n+1000)); printf "frame=%d\\nout_time_us=%d\\ntotal_size=%d\\nprogress=continue\\n" $n $n $n; sleep 0.1; done';
  fs.writeFileSync(file, `#!/bin/sh\ntrap 'exit 0' INT TERM\n${loop}\n`, { mode: 0o755 });
  return file;
}

/** The pids of the processes running a stand-in ffmpeg. */
function fakePids(file: string): number[] {
  return fs
    .readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        return fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(file);
      } catch {
        return false;
      }
    })
    .map(Number);
}
const fakesRunning = (file: string) => fakePids(file).length;

const target = { targetId: 'tg_00000000000000aa', url: 'rtmp://cdn.example/live2/SECRET', addedAt: 1 };

describe('a run’s push targets', () => {
  it('start only once the channel is live, write their status fenced by the run, fail after their retries', async () => {
    const t = setup({ pushTargets: [target] });
    t.run.start();
    await new Promise((r) => setTimeout(r, 300));
    expect(t.writes).toEqual([]); // starting: nothing runs, nothing written
    t.set({ state: 'live' });
    t.run.refresh();
    const failed = await eventually(async () => t.writes.find((w) => w[target.targetId]?.state === 'failed'), 5000);
    expect(failed[target.targetId]).toMatchObject({ attempts: 2, bytesSent: 0 });
    await eventually(async () => t.notices.length > 0 || null);
    expect(t.notices).toEqual([
      {
        type: 'target.failed',
        data: expect.objectContaining({ targetId: target.targetId, url: 'rtmp://cdn.example/***', final: true }),
      },
    ]);
    await t.run.close();
  });

  it('a removed target disappears from the status', async () => {
    const t = setup({ state: 'live', pushTargets: [target] });
    t.run.start();
    await eventually(async () => t.writes.some((w) => w[target.targetId]) || null);
    t.set({ pushTargets: [] });
    t.run.refresh();
    await eventually(async () => (t.writes.at(-1) && !t.writes.at(-1)![target.targetId]) || null);
    await t.run.close();
  });

  it('a newer run stops its live targets’ ffmpegs and writes nothing more', async () => {
    const ffmpeg = sendingFfmpeg();
    const t = setup({ state: 'live', pushTargets: [target] }, ffmpeg);
    t.run.start();
    await eventually(async () => t.writes.find((w) => w[target.targetId]?.state === 'live'), 5000);
    expect(fakesRunning(ffmpeg)).toBe(1);
    const n = t.writes.length;
    t.set({ runGen: 4 }); // the fence moves while the target is live (its target still in the record)
    t.run.refresh();
    await eventually(async () => (fakesRunning(ffmpeg) === 0 ? true : null), 5000);
    await new Promise((r) => setTimeout(r, 1200)); // a tick of the run comes and goes
    expect(t.writes.length).toBe(n);
    await t.run.close();
    expect(t.writes.length).toBe(n); // its close is fenced too
    expect(t.notices).toEqual([]);
  });

  it('a destination the egress policy refuses by now (its host moved to an internal address) ends failed', async () => {
    const ffmpeg = sendingFfmpeg();
    const t = setup({ state: 'live', pushTargets: [target] }, ffmpeg);
    t.run.start();
    await eventually(async () => t.writes.find((w) => w[target.targetId]?.state === 'live'), 5000);
    t.dns.address = '10.0.0.5';
    process.kill(fakePids(ffmpeg)[0]!, 'SIGKILL'); // the destination drops: the next attempt is checked again
    const failed = await eventually(async () => t.writes.find((w) => w[target.targetId]?.state === 'failed'), 5000);
    expect(failed[target.targetId]!.lastError).toMatch(/internal address/);
    expect(failed[target.targetId]!.lastError).not.toContain('SECRET');
    expect(t.notices.at(-1)).toMatchObject({ type: 'target.failed', data: { final: true } });
    expect(fakesRunning(ffmpeg)).toBe(0);
    await t.run.close();
  });

  it('a destination whose name does not resolve is counted as a failed attempt (retried up to maxRetries)', async () => {
    const ffmpeg = sendingFfmpeg();
    const t = setup({ state: 'live', pushTargets: [target] }, ffmpeg);
    t.run.start();
    await eventually(async () => t.writes.find((w) => w[target.targetId]?.state === 'live'), 5000);
    t.dns.address = null;
    process.kill(fakePids(ffmpeg)[0]!, 'SIGKILL'); // attempt 1 drops; attempt 2 finds no address: maxRetries (1) spent
    const failed = await eventually(async () => t.writes.find((w) => w[target.targetId]?.state === 'failed'), 5000);
    expect(failed[target.targetId]).toMatchObject({
      attempts: 2,
      lastError: expect.stringMatching(/does not resolve/),
    });
    expect(t.notices.map((n) => n.data.final)).toEqual([false, true]);
    await t.run.close();
  });

  it('a target an earlier run gave up on stays failed', async () => {
    const failed: PushTargetStatus = { state: 'failed', bytesSent: 0, attempts: 9, since: 5, updatedAt: 5 };
    const t = setup({ state: 'live', pushTargets: [target], targetStatus: { [target.targetId]: failed } });
    t.run.start();
    await eventually(async () => t.writes.length > 0 || null);
    expect(t.writes[0]![target.targetId]).toEqual(failed);
    expect(t.notices).toEqual([]);
    await t.run.close();
  });

  it('when the run ends, its targets are written stopped with the bytes of the run (none claims live)', async () => {
    const t = setup({ state: 'live', pushTargets: [target] }, sendingFfmpeg());
    t.run.start();
    const live = await eventually(async () => t.writes.find((w) => w[target.targetId]?.state === 'live'), 5000);
    expect(live[target.targetId]!.bytesSent).toBeGreaterThan(0);
    t.set({ state: 'stopping' });
    await t.run.close();
    await t.run.close(); // a second close writes nothing more
    const last = t.writes.at(-1)![target.targetId]!;
    expect(last.state).toBe('stopped');
    expect(last.bytesSent).toBeGreaterThanOrEqual(live[target.targetId]!.bytesSent);
    expect(t.writes.filter((w) => w[target.targetId]?.state === 'stopped')).toHaveLength(1);
  });
});
