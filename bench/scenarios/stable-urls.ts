/**
 * Stable URLs: what a media node costs when it answers a play of a channel another node holds (README "Scaling out")
 * — HTTP-FLV by a 302 to the channel's node, WS-FLV by carrying the upgrade there (browsers do not follow a redirect of
 * a WebSocket upgrade). Measured with a second media node: the time to the first video keyframe directly at the
 * channel's node, redirected, and carried (medians), and the first node's CPU with N viewers redirected, then carried,
 * against its CPU with none.
 */
import WebSocket from 'ws';
import { flvTags } from '../../src/player/flv.js';
import { fixture } from '../../test/helpers/stack.js';
import { measure, median } from '../lib/proc.js';
import { mediaRoot, sleep, startPush, stopPush, type Bench } from '../lib/context.js';

export interface StableUrlsResult {
  /** Median ms from the request to the first video keyframe, over `trials` plays each. */
  firstKeyframeMs: { direct: number; redirected: number; wsDirect: number; wsCarried: number };
  trials: number;
  viewers: number;
  seconds: number;
  /** CPU of the node the viewers asked (% of one core): with no viewer, with them redirected, with them carried. */
  askedNodePct: { idle: number; redirected: number; carried: number };
  /** CPU of the channel's node (% of one core), the same windows. */
  channelNodePct: { idle: number; redirected: number; carried: number };
}

const keyframeIn = (onKey: () => void) => {
  let seen = false;
  return flvTags(({ type, body }) => {
    if (!seen && type === 9 && body[0]! >> 4 === 1 && body[1] === 1) {
      seen = true;
      onKey();
    }
  });
};

async function httpFirst(url: string): Promise<number> {
  const t0 = performance.now();
  const ctl = new AbortController();
  const res = await fetch(url, { signal: ctl.signal });
  let at = NaN;
  const parse = keyframeIn(() => (at = performance.now() - t0));
  try {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      parse(Buffer.from(chunk));
      if (!Number.isNaN(at)) break;
    }
  } finally {
    ctl.abort();
  }
  return at;
}

function wsFirst(url: string): Promise<number> {
  const t0 = performance.now();
  const ws = new WebSocket(url);
  return new Promise((resolve, reject) => {
    const parse = keyframeIn(() => {
      resolve(performance.now() - t0);
      ws.close();
    });
    ws.on('message', (d: Buffer) => parse(d));
    ws.on('error', reject);
  });
}

/** N viewers of `url` for the window: HTTP-FLV readers (redirect followed) or WS-FLV readers. */
function viewersOf(url: string, n: number, ws: boolean): () => void {
  const closers: (() => void)[] = [];
  for (let i = 0; i < n; i++) {
    if (ws) {
      const c = new WebSocket(url.replace(/^http/, 'ws'));
      c.on('message', () => undefined).on('error', () => undefined);
      closers.push(() => c.close());
    } else {
      const ctl = new AbortController();
      void fetch(url, { signal: ctl.signal })
        .then(async (r) => {
          for await (const _ of r.body as unknown as AsyncIterable<Uint8Array>);
        })
        .catch(() => undefined);
      closers.push(() => ctl.abort());
    }
  }
  return () => closers.forEach((c) => c());
}

export async function stableUrls(b: Bench): Promise<StableUrlsResult> {
  const { stack } = b;
  const trials = b.short ? 5 : 15;
  const viewers = b.short ? 10 : 40;
  const seconds = b.short ? 3 : b.seconds;
  const other = await stack.startMediaNode();
  const ids: string[] = [];
  try {
    // two channels: placement puts one on each node; the viewers ask the first node for the other node's channel
    for (const userId of ['su1', 'su2']) {
      await stack.request('PUT', '/v1/rooms/1801/upstreams', { userId, srcType: 0, url: fixture('alice-camera.mp4') });
      ids.push((await startPush(stack, { roomId: 1801, userId, srcType: 0, option: { encode: 2 } })).channelId);
    }
    const records = await Promise.all(ids.map(async (id) => (await stack.request('GET', `/v1/push/${id}`)).body));
    const id = records.find((r) => String(r.channel.mediaNode).endsWith(`:${other.rtmpPort}`))?.channel.channelId;
    if (!id) throw new Error('placement put neither channel on the second media node');
    const asked = `http://127.0.0.1:${stack.httpPort}/live/${id}.flv`;
    const direct = `http://127.0.0.1:${other.httpPort}/live/${id}.flv`;
    await sleep(2000);
    const times = async (f: () => Promise<number>) => {
      const xs: number[] = [];
      for (let i = 0; i < trials; i++) xs.push(await f());
      return Math.round(median(xs));
    };
    const firstKeyframeMs = {
      direct: await times(() => httpFirst(direct)),
      redirected: await times(() => httpFirst(asked)),
      wsDirect: await times(() => wsFirst(direct.replace('http', 'ws'))),
      wsCarried: await times(() => wsFirst(asked.replace('http', 'ws'))),
    };
    const groups = { asked: () => [mediaRoot(stack)], channel: () => [other.proc.child.pid!] };
    const window = async (n: number, ws: boolean) => {
      const close = viewersOf(asked, n, ws);
      await sleep(2000);
      const w = await measure(groups, seconds);
      close();
      await sleep(1000);
      return { asked: w.percent('asked'), channel: w.percent('channel') };
    };
    const idle = await window(0, false);
    const redirected = await window(viewers, false);
    const carried = await window(viewers, true);
    const r1 = (x: number) => Math.round(x * 10) / 10;
    const result: StableUrlsResult = {
      firstKeyframeMs,
      trials,
      viewers,
      seconds,
      askedNodePct: { idle: r1(idle.asked), redirected: r1(redirected.asked), carried: r1(carried.asked) },
      channelNodePct: { idle: r1(idle.channel), redirected: r1(redirected.channel), carried: r1(carried.channel) },
    };
    b.log(
      `stable URLs: first keyframe ${firstKeyframeMs.direct} ms direct, ${firstKeyframeMs.redirected} ms redirected, ` +
        `WS ${firstKeyframeMs.wsDirect} ms direct, ${firstKeyframeMs.wsCarried} ms carried; asked node with ` +
        `${viewers} viewers: ${result.askedNodePct.idle}% idle, ${result.askedNodePct.redirected}% redirected, ` +
        `${result.askedNodePct.carried}% carried (channel node ${result.channelNodePct.redirected}% / ` +
        `${result.channelNodePct.carried}%)`,
    );
    return result;
  } finally {
    await stopPush(stack, ids).catch(() => undefined);
    await other.proc.stop();
  }
}
