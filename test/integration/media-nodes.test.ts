/**
 * Several media nodes on one cluster (README "Scaling out"): channels are placed on the node with the most headroom,
 * any node answers any HTTP play of a channel (HTTP-FLV and status by a redirect to the channel's node, WS-FLV carried
 * there), RTMP play URLs name the channel's node, and a node killed with SIGKILL has its channels moved to another one
 * by their workers: the same FLV URL plays again, HLS goes on with its numbering behind a discontinuity, and a node
 * full to its RELAY_NODE_MAX_CHANNELS refuses more (50005).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import WebSocket from 'ws';
import { fetchText, flvTags } from '../helpers/media.js';
import { eventually, fixture, startStack, type Stack } from '../helpers/stack.js';
import type { NodeBeat } from '../../src/cluster/nodes.js';

let stack: Stack;
let nodeB: Awaited<ReturnType<Stack['startMediaNode']>>;

beforeAll(async () => {
  // 4 channels a node: the two nodes take 2 each, and after a node loss the survivor is full with all 4
  stack = await startStack({ env: { RELAY_NODE_MAX_CHANNELS: '4' } });
  nodeB = await stack.startMediaNode();
  await eventually(async () => (await stack.redis.hlen(`${stack.prefix}:media-nodes`)) === 2 || null, 10_000);
}, 90_000);

afterAll(async () => {
  await stack?.close();
});

interface Started {
  channelId: string;
  urls: { type: number; rateType: number | null; playUrl: string }[];
}

const urlOf = (c: Started, type: number) => c.urls.find((u) => u.type === type)!.playUrl;
const nodeOf = async (id: string) => (await stack.request('GET', `/v1/push/${id}`)).body.channel;
/** The media nodes' beats as they are now. */
const beatsNow = async () =>
  Object.values(await stack.redis.hgetall(`${stack.prefix}:media-nodes`)).map((raw) => JSON.parse(raw) as NodeBeat);
/** The channels of `of` whose record names the node on `rtmpPort`. */
async function placedOn(of: Started[], rtmpPort: number): Promise<Started[]> {
  const on: Started[] = [];
  for (const c of of) if ((await nodeOf(c.channelId)).mediaNode.endsWith(`:${rtmpPort}`)) on.push(c);
  return on;
}

/** Reads an FLV URL (following redirects) until a video keyframe; resolves with where it was served from. */
async function keyframeAt(url: string, timeoutMs = 10_000): Promise<{ servedBy: string }> {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), timeoutMs);
  try {
    const res = await fetch(url, { signal: ctl.signal });
    if (res.status !== 200) throw new Error(`${url}: HTTP ${res.status} ${await res.text()}`);
    let keyframe = false;
    const parse = flvTags(({ type, body }) => {
      if (type === 9 && body[0]! >> 4 === 1 && body[1] === 1) keyframe = true;
    });
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      parse(Buffer.from(chunk));
      if (keyframe) return { servedBy: new URL(res.url).port };
    }
    throw new Error(`${url}: ended without a keyframe`);
  } finally {
    clearTimeout(timer);
    ctl.abort();
  }
}

describe('media nodes', () => {
  const started: Started[] = [];

  it('places channels on the node with the most headroom and names it in the record and the RTMP URL', async () => {
    const beats = await beatsNow();
    expect(beats.map((b) => b.rtmpPort).sort()).toEqual([stack.rtmpPort, nodeB.rtmpPort].sort());
    for (const b of beats) expect(b.load).toMatchObject({ channels: 0, viewers: 0 });
    for (let i = 1; i <= 4; i++) {
      const reg = await stack.request('PUT', '/v1/rooms/1601/upstreams', {
        userId: `u${i}`,
        srcType: 0,
        url: fixture('alice-camera.mp4'),
      });
      expect(reg.body.code, JSON.stringify(reg.body)).toBe(0);
      const r = await stack.request('POST', '/v1/push/start', {
        roomId: 1601,
        userId: `u${i}`,
        srcType: 0,
        // recorded as HLS (recordFileType 1): the node loss must not break the recording task
        option: { encode: 3, record: true, recordFileType: 1 },
      });
      expect(r.body.code, JSON.stringify(r.body)).toBe(0);
      started.push(r.body as Started);
    }
    const nodes = await Promise.all(started.map(async (c) => (await nodeOf(c.channelId)).mediaNode as string));
    const counts = new Map<string, number>();
    for (const n of nodes) counts.set(n, (counts.get(n) ?? 0) + 1);
    expect([...counts.values()]).toEqual([2, 2]);
    // each node reports the channels publishing into it
    await eventually(async () => {
      const all = await beatsNow();
      return all.every((b) => b.load?.channels === 2) || null;
    }, 10_000);
  }, 90_000);

  it('any node answers any HTTP play: FLV and status redirect to the channel node, WS-FLV is carried there', async () => {
    const onB = await placedOn(started, nodeB.rtmpPort);
    expect(onB).toHaveLength(2);
    const c = onB[0]!;
    // every HTTP URL handed out names the first node (the cluster's public address)
    const flv = urlOf(c, 2);
    expect(new URL(flv).port).toBe(String(stack.httpPort));
    const manual = await fetch(flv, { redirect: 'manual' });
    expect(manual.status).toBe(302);
    expect(new URL(manual.headers.get('location')!).port).toBe(String(nodeB.httpPort));
    expect((await keyframeAt(flv)).servedBy).toBe(String(nodeB.httpPort));
    const status = await fetch(`http://127.0.0.1:${stack.httpPort}/status/${c.channelId}`);
    expect(new URL(status.url).port).toBe(String(nodeB.httpPort));
    const figures = (await status.json()) as { state: string; liveEdge: Record<string, unknown> };
    expect(figures.state).toBe('live');
    expect(Object.keys(figures.liveEdge)).toContain(c.channelId);
    // WS-FLV through the first node: the bytes of node B's stream
    const ws = new WebSocket(flv.replace('http:', 'ws:'));
    let keyframe = false;
    const parse = flvTags(({ type, body }) => {
      if (type === 9 && body[0]! >> 4 === 1 && body[1] === 1) keyframe = true;
    });
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('no keyframe over WS-FLV')), 10_000);
      ws.on('message', (d: Buffer) => {
        parse(d);
        if (keyframe) {
          clearTimeout(t);
          resolve();
        }
      });
      ws.on('error', reject);
    });
    ws.close();
  }, 60_000);

  it('a node killed with SIGKILL: its channels move to the other node on the same URLs, HLS numbering goes on', async () => {
    const onB = await placedOn(started, nodeB.rtmpPort);
    expect(onB).toHaveLength(2);
    const c = onB[0]!;
    const hls = urlOf(c, 1);
    const before = await eventually(async () => {
      const text = await fetchText(hls);
      return text && /#EXTINF/.test(text) ? text : null;
    }, 15_000);
    const seqBefore = Number(/#EXT-X-MEDIA-SEQUENCE:(\d+)/.exec(before)![1]);
    const lastBefore = before.trim().split('\n').pop()!;

    const task = (await nodeOf(c.channelId)).recordTaskId as number;
    const recorded = path.join(stack.dataDir, 'records', stack.sdkAppId, String(task), 'hls', 'index.m3u8');
    const breaks = (text: string) => text.split('#EXT-X-DISCONTINUITY').length - 1;
    const breaksBefore = breaks(await fs.promises.readFile(recorded, 'utf8'));
    const killedAt = Date.now();
    await nodeB.proc.stop('SIGKILL');
    // a viewer reconnecting on the same URL until it gets media again
    const back = await eventually(() => keyframeAt(urlOf(c, 2), 3000), 30_000, 200);
    const gapMs = Date.now() - killedAt;
    expect(back.servedBy).toBe(String(stack.httpPort));
    console.log(`node loss: first keyframe on the same FLV URL ${gapMs} ms after the SIGKILL`);
    expect(gapMs).toBeLessThan(20_000);

    for (const moved of onB) {
      const ch = await eventually(async () => {
        const cur = await nodeOf(moved.channelId);
        return cur.state === 'live' && !cur.mediaNode.endsWith(`:${nodeB.rtmpPort}`) ? cur : null;
      }, 20_000);
      expect(ch.mediaNode).toMatch(new RegExp(`:${stack.rtmpPort}$`));
    }
    // the recording goes on under the same task: its HLS recording continues behind a discontinuity
    expect((await nodeOf(c.channelId)).recordTaskId).toBe(task);
    await eventually(async () => {
      const text = await fs.promises.readFile(recorded, 'utf8');
      const after = text.split('#EXT-X-DISCONTINUITY').pop()!;
      return (breaks(text) > breaksBefore && /#EXTINF/.test(after)) || null;
    }, 20_000);
    // HLS: the playlist went on (no new numbering), with a discontinuity where the worker published anew
    const after = await eventually(async () => {
      const text = await fetchText(hls);
      return text && text.includes('#EXT-X-DISCONTINUITY') && !text.trim().endsWith(lastBefore) ? text : null;
    }, 20_000);
    expect(Number(/#EXT-X-MEDIA-SEQUENCE:(\d+)/.exec(after)![1])).toBeGreaterThanOrEqual(seqBefore);
    expect(after).not.toContain('#EXT-X-ENDLIST');
  }, 90_000);

  it('a full cluster refuses a new channel with 50005, naming the node limit', async () => {
    const reg = await stack.request('PUT', '/v1/rooms/1602/upstreams', {
      userId: 'u5',
      srcType: 0,
      url: fixture('alice-camera.mp4'),
    });
    expect(reg.body.code).toBe(0);
    const option = { encode: 2 };
    const r = await stack.request('POST', '/v1/push/start', { roomId: 1602, userId: 'u5', srcType: 0, option });
    expect(r.body.code, JSON.stringify(r.body)).toBe(50005);
    expect(r.body.message).toMatch(/no media node has room/);
  }, 30_000);
});
