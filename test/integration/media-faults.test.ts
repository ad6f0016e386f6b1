/**
 * No publisher may take the media process down: a publisher whose every run ends on a huge timestamp (what ffmpeg's
 * FLV muxer writes when an upstream had a video header and no frames: an end-of-sequence tag at 0x7FFFFFFF), a
 * connect with a malformed tcUrl. Each publish goes in as a worker's would (a channel record in its run 1 and a
 * single-use run token per connection), with a bare RTMP client that sends exactly those messages.
 */
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import { promisify } from 'node:util';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { runTokenQuery } from '../../src/auth/run-tokens.js';
import { flvTags, type FlvTag } from '../helpers/media.js';
import { AVC_SEQUENCE_HEADER, RawRtmpPublisher } from '../helpers/rtmp-client.js';
import { eventually, FFMPEG, sleep, startStack, type Proc, type Stack } from '../helpers/stack.js';

let stack: Stack;
let media: Proc;
let secret: string;

beforeAll(async () => {
  stack = await startStack({ workers: 0 });
  media = stack.procs.find((p) => p.name === 'media')!;
  secret = (await stack.redis.get(`${stack.prefix}:internal-secret`))!;
  expect(secret).toBeTruthy();
});

afterAll(async () => {
  await stack?.close();
});

// each case starts from a running media process, so each shows its own fault
beforeEach(async () => {
  if (!alive()) media = await stack.restartMedia();
});

const alive = (): boolean => media.child.exitCode === null && media.child.signalCode === null;

/** A live channel record in its run 1, and a new publish of it (a fresh single-use token) at each `query()`. */
async function channelPath(): Promise<{ name: string; query: () => string }> {
  const name = `ch_${crypto.randomBytes(10).toString('hex')}`;
  const record = { channelId: name, state: 'live', runGen: 1, history: [], urls: [], createdAt: Date.now() };
  await stack.redis.set(`${stack.prefix}:channel:${name}`, JSON.stringify(record));
  const query = () => `${name}?${runTokenQuery(secret, 'publish', `/live/${name}`, { channelId: name, gen: 1 })}`;
  return { name, query };
}

/** What the relay's ffmpeg publishes when its upstream yields a video header and no frames (H.264 encode, FLV). */
async function zeroFrameRun(): Promise<FlvTag[]> {
  const { stdout } = await promisify(execFile)(
    FFMPEG,
    ['-loglevel', 'error', '-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=30', '-frames:v', '0'].concat([
      '-c:v',
      'libx264',
      '-f',
      'flv',
      'pipe:1',
    ]),
    { encoding: 'buffer' },
  );
  const tags: FlvTag[] = [];
  flvTags((t) => void tags.push(t))(stdout);
  return tags;
}

/** The media server still accepts a publish and keeps its connection. */
async function stillServes(): Promise<void> {
  const { query } = await channelPath();
  const p = await RawRtmpPublisher.publish(stack.rtmpPort, 'live', query());
  p.send(9, 0, AVC_SEQUENCE_HEADER);
  p.send(9, 0, Buffer.from('1701000000000000', 'hex'));
  await sleep(300);
  expect(p.closed).toBe(false);
  await p.end();
  expect(alive()).toBe(true);
}

describe('media process against hostile publishers', () => {
  it('survives a publisher that reconnects again and again, each run ending on timestamp 0x7FFFFFFF', async () => {
    const tags = await zeroFrameRun();
    // a video header at 0, then the end-of-sequence tag (keyframe type) at 0x7FFFFFFF
    expect(tags.filter((t) => t.type === 9).map((t) => [t.ts, t.body.subarray(0, 2).toString('hex')])).toEqual([
      [0, '1700'],
      [0x7fffffff, '1702'],
    ]);
    const { query } = await channelPath();
    for (let run = 0; run < 5; run++) {
      const p = await RawRtmpPublisher.publish(stack.rtmpPort, 'live', query());
      for (const t of tags) p.send(t.type, t.ts, t.body);
      await sleep(200);
      await p.end();
      await sleep(200);
      expect(alive(), `media process exited after run ${run + 1}:\n${media.output.slice(-15).join('\n')}`).toBe(true);
    }
    // the timestamps were rebased, not failed on: no session had to be closed
    expect(media.output.join('\n')).not.toMatch(/media session failed/);
    await stillServes();
  });

  it('survives timestamps at the top of the 32-bit range across reconnects', async () => {
    const { query } = await channelPath();
    for (let run = 0; run < 3; run++) {
      const p = await RawRtmpPublisher.publish(stack.rtmpPort, 'live', query());
      p.send(9, 0, AVC_SEQUENCE_HEADER);
      p.send(9, 0xfffffff0, Buffer.from('1701000000000000', 'hex'));
      p.send(8, 0xffffffff, Buffer.from('af01', 'hex'));
      await sleep(200);
      await p.end();
    }
    await sleep(200);
    expect(alive(), media.output.slice(-15).join('\n')).toBe(true);
    expect(media.output.join('\n')).not.toMatch(/media session failed/);
    await stillServes();
  });

  it('survives a connect whose tcUrl is not a URL (before any authentication)', async () => {
    const p = await RawRtmpPublisher.publish(stack.rtmpPort, 'live', 'x', 'not a url');
    await eventually(async () => p.closed || !alive(), 5000);
    await sleep(200);
    expect(alive(), media.output.slice(-15).join('\n')).toBe(true);
    expect(p.closed).toBe(true);
    expect(media.output.join('\n')).toMatch(
      /media session failed, closed it.*Invalid URL|Invalid URL.*media session failed/,
    );
    await stillServes();
  });
});
