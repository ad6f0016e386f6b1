/**
 * WHIP members beside an RTMP member: start call → first FLV keyframe at a viewer (p50, p95) for a WHIP member
 * sending H.264 (copied by its bridge), one sending VP8 (converted), and the RTMP ingest member alice, starts
 * interleaved in one run; then the CPU of each WHIP member while it publishes (its bridge ffmpeg, and the media
 * process's share: werift's SRTP and forwarding) with nobody reading it.
 */
import { WhipClient } from '../../test/helpers/whip-client.js';
import { eventually, ffmpegsMentioning } from '../../test/helpers/stack.js';
import { measure, percentile } from '../lib/proc.js';
import { firstKeyframe } from '../lib/viewers.js';
import { mediaRoot, sleep, startPush, stopPush, type Bench } from '../lib/context.js';

type Member = 'rtmp' | 'whip-h264' | 'whip-vp8';

export interface WhipResult {
  starts: number;
  /** start call → first FLV keyframe, ms. */
  flv: Record<Member, { p50: number; p95: number }>;
  /** % of one core while publishing, unread: the bridge ffmpeg, and the media process with it minus without it. */
  cpu: { codec: 'h264' | 'vp8'; bridgePct: number; mediaPct: number }[];
}

/** Publishes a WHIP member sending `codec`; resolves once it is registered. */
async function publish(b: Bench, codec: 'h264' | 'vp8'): Promise<WhipClient> {
  const userId = `whip-${codec}`;
  const r = await b.stack.request('GET', `/v1/rooms/1001/ingest?userId=${userId}&srcType=0`);
  const c = new WhipClient({ video: codec, gop: 60 });
  const res = await c.publish(r.body.whipUrl, r.body.whipToken);
  if (res.status !== 201) throw new Error(`WHIP publish refused: ${res.status} ${res.body}`);
  await eventually(async () => {
    const ups = (await b.stack.request('GET', '/v1/rooms/1001')).body.upstreams ?? [];
    return ups.some((u: { userId: string; source: string }) => u.userId === userId && u.source === 'whip');
  }, 20000);
  return c;
}

/** `starts` starts of each member, interleaved, then a CPU window per WHIP member alone. */
export async function whipMembers(b: Bench, starts: number): Promise<WhipResult> {
  const clients: WhipClient[] = [];
  try {
    clients.push(await publish(b, 'h264'), await publish(b, 'vp8'));
    const flv: Record<Member, number[]> = { rtmp: [], 'whip-h264': [], 'whip-vp8': [] };
    const userOf: Record<Member, string> = { rtmp: 'alice', 'whip-h264': 'whip-h264', 'whip-vp8': 'whip-vp8' };
    for (let i = 0; i < starts; i++) {
      for (const m of Object.keys(flv) as Member[]) {
        await sleep(Math.random() * 2000); // samples the upstream's keyframe phase, as the latency scenario does
        const t0 = Date.now();
        const r = await startPush(b.stack, { roomId: 1001, userId: userOf[m], srcType: 0, option: { encode: 2 } });
        const api = Date.now() - t0;
        flv[m].push(api + (await firstKeyframe(r.urls.find((u) => u.type === 2)!.playUrl)));
        await stopPush(b.stack, [r.channelId]);
      }
      const last = (Object.keys(flv) as Member[]).map((m) => `${m} ${flv[m].at(-1)} ms`);
      b.log(`  starts ${i + 1}/${starts}: ${last.join(', ')}`);
      await sleep(3100); // the same member's start rate limit
    }
    for (const c of clients.splice(0)) await c.close();
    await sleep(2000);
    const media = mediaRoot(b.stack);
    const bridges = () => ffmpegsMentioning(`${b.stack.dataDir}/whip/`);
    const idle = (await measure({ media: () => [media] }, b.seconds)).percent('media');
    const cpu: WhipResult['cpu'] = [];
    for (const codec of ['h264', 'vp8'] as const) {
      const c = await publish(b, codec);
      clients.push(c);
      await sleep(1000);
      const w = await measure({ bridge: bridges, media: () => [media] }, b.seconds);
      cpu.push({ codec, bridgePct: round(w.percent('bridge')), mediaPct: round(w.percent('media') - idle) });
      b.log(`  WHIP ${codec} member: bridge ${cpu.at(-1)!.bridgePct} %, media process +${cpu.at(-1)!.mediaPct} %`);
      await c.close();
      clients.pop();
      await sleep(2000);
    }
    const p = (xs: number[]) => ({ p50: percentile(xs, 50), p95: percentile(xs, 95) });
    return {
      starts,
      flv: { rtmp: p(flv.rtmp), 'whip-h264': p(flv['whip-h264']), 'whip-vp8': p(flv['whip-vp8']) },
      cpu,
    };
  } finally {
    for (const c of clients) await c.close();
  }
}

const round = (x: number) => Math.round(x * 10) / 10;
