/**
 * 13. Node loss: N copy channels over two media nodes (placed by placement; the extra node takes half at most, its
 * RELAY_NODE_MAX_CHANNELS); an HTTP-FLV viewer on each channel, reading the channel's stable play URL (the cluster's
 * public address, which answers 302 for the extra node's channels); the extra node's process is killed with SIGKILL.
 * Per viewer of a channel of the killed node: the time from the kill to its first video keyframe on a new connection
 * to the same URL; the time until every moved channel's record is `live` on the other node; and the largest gap
 * between video tags a viewer of the surviving node's channels saw meanwhile.
 */
import { NODE_BEAT_MS } from '../../src/cluster/nodes.js';
import { flvTags, isKeyframe } from '../../test/helpers/media.js';
import { median } from '../lib/proc.js';
import { allInState, sleep, stopPush, type Bench } from '../lib/context.js';
import { copyMember, copyUpstreams, startCopyChannels } from '../lib/copy-channels.js';
import { portOfNode, stopExtraNodes, withNodes } from '../lib/nodes.js';

export interface NodeLossRun {
  channels: number;
  /** channels on the killed node (each with a viewer) */ moved: number;
  /** per viewer, kill → first video keyframe on the same URL (null: none within the wait) */ gapsMs: (number | null)[];
  /** kill → every moved channel's record live on another node (null: not within the wait) */ allLiveMs: number | null;
  /** channels of the surviving node: the largest gap between video tags of their viewers from the kill on */
  survivorMaxGapMs: number | null;
}
export interface NodeLossResult {
  channels: number;
  runs: NodeLossRun[];
  /** over every viewer of every run */ gapP50: number;
  gapMax: number;
  allLiveP50: number;
  allLiveMax: number;
  /** over every run; null: no channel on the surviving node */ survivorMaxGapMs: number | null;
}

const member = copyMember(7000, 'l');
const WAIT_MS = 30_000;

/** An HTTP-FLV viewer that reconnects to its URL (following redirects) whenever its stream ends or fails. */
class StableViewer {
  /** when it first had a keyframe */ ready: number | null = null;
  /** first keyframe on a connection opened at or after `since` */ back: number | null = null;
  /** the largest gap between video tags from `since` on */ maxGap = 0;
  private lastVideo = 0;
  private since = Infinity;
  private closed = false;
  private ctl = new AbortController();
  private readonly done: Promise<void>;

  constructor(private readonly url: string) {
    this.done = this.loop();
  }

  /** From now on, a keyframe on a new connection counts as `back`. */
  arm(at: number): void {
    this.since = at;
  }

  private async loop(): Promise<void> {
    while (!this.closed) {
      const openedAt = Date.now();
      try {
        this.ctl = new AbortController();
        const res = await fetch(this.url, { signal: this.ctl.signal });
        if (res.status === 200 && res.body) {
          const parse = flvTags((tag) => {
            if (tag.type !== 9) return;
            const now = Date.now();
            if (this.lastVideo && now >= this.since) this.maxGap = Math.max(this.maxGap, now - this.lastVideo);
            this.lastVideo = now;
            if (!isKeyframe(tag)) return;
            this.ready ??= now;
            if (openedAt >= this.since) this.back ??= now;
          });
          for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) parse(Buffer.from(chunk));
        } else await res.body?.cancel();
      } catch {
        /* refused, reset or aborted: again */
      }
      if (!this.closed) await sleep(50);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.ctl.abort();
    await this.done;
  }
}

async function oneLoss(b: Bench, n: number): Promise<NodeLossRun> {
  const { stack } = b;
  const nodes = await withNodes(b, 2, { RELAY_NODE_MAX_CHANNELS: String(Math.ceil(n / 2)) });
  const killed = nodes[1]!;
  // a node's first beats show its start-up's CPU: placed by them, the channels would all go to the other node
  await sleep(2 * NODE_BEAT_MS);
  const { started, refused } = await startCopyChannels(b, n, member);
  const ids = started.map((s) => s.channelId);
  const viewers: StableViewer[] = [];
  const survivors: StableViewer[] = [];
  try {
    if (refused) throw new Error(`start refused after ${started.length} channels: ${refused}`);
    await allInState(stack, ids, 'live', 60_000);
    const records = (await stack.redis.mget(...ids.map((id) => `${stack.prefix}:channel:${id}`))).map(
      (r) => JSON.parse(r!) as { mediaNode?: string },
    );
    const onKilled = started.filter((_, i) => portOfNode(records[i]!.mediaNode) === killed.rtmpPort);
    if (!onKilled.length) throw new Error(`placement put none of the ${n} channels on the second node`);
    const flv = (c: (typeof started)[number]) => c.urls.find((u) => u.type === 2)!.playUrl;
    for (const c of started) (onKilled.includes(c) ? viewers : survivors).push(new StableViewer(flv(c)));
    for (let t = 0; [...viewers, ...survivors].some((v) => v.ready === null); t++) {
      if (t > 150) throw new Error('a viewer got no keyframe within 15 s of the start');
      await sleep(100);
    }
    await sleep(1000);
    const killedAt = Date.now();
    for (const v of [...viewers, ...survivors]) v.arm(killedAt);
    await killed.proc!.stop('SIGKILL');
    let allLiveMs: number | null = null;
    const movedIds = onKilled.map((c) => c.channelId);
    while (Date.now() - killedAt < WAIT_MS) {
      if (allLiveMs === null) {
        const now = Date.now();
        const recs = await stack.redis.mget(...movedIds.map((id) => `${stack.prefix}:channel:${id}`));
        const moved = recs.every((r) => {
          const ch = r ? (JSON.parse(r) as { state: string; mediaNode?: string }) : null;
          return ch?.state === 'live' && portOfNode(ch.mediaNode) !== killed.rtmpPort;
        });
        if (moved) allLiveMs = now - killedAt;
      }
      if (allLiveMs !== null && viewers.every((v) => v.back !== null) && Date.now() - killedAt > 3000) break;
      await sleep(100);
    }
    const run: NodeLossRun = {
      channels: n,
      moved: onKilled.length,
      gapsMs: viewers.map((v) => (v.back === null ? null : v.back - killedAt)),
      allLiveMs,
      survivorMaxGapMs: survivors.length ? Math.max(...survivors.map((v) => v.maxGap)) : null,
    };
    const got = run.gapsMs.filter((g): g is number => g !== null);
    b.log(
      `  ${n} channels, ${run.moved} on the killed node: kill → keyframe on the same URL p50 ${Math.round(median(got))} ms, max ${Math.max(...got)} ms` +
        `${got.length < viewers.length ? ` (${viewers.length - got.length} viewers got none in ${WAIT_MS / 1000} s)` : ''}; ` +
        `all moved channels live after ${allLiveMs ?? `> ${WAIT_MS}`} ms; ` +
        `the other ${survivors.length}: largest video gap ${run.survivorMaxGapMs ?? '–'} ms`,
    );
    return run;
  } finally {
    await Promise.all([...viewers, ...survivors].map((v) => v.close()));
    await stopPush(stack, ids);
    await allInState(stack, ids, 'stopped', 60_000).catch((e: Error) => b.log(`  (${e.message})`));
    await stopExtraNodes(nodes);
    await sleep(1000);
  }
}

export async function nodeLoss(b: Bench, opts: { channels: number; runs: number }): Promise<NodeLossResult> {
  // the sources are placed while the stack's own node is the only one (the killed node carries measured channels only)
  const publishers = Math.min(4, opts.channels);
  const sourceIds = await copyUpstreams(b, {
    room: 6990,
    prefix: 'lsrc',
    publishers,
    members: opts.channels,
    member,
  });
  try {
    const runs: NodeLossRun[] = [];
    for (let i = 0; i < opts.runs; i++) runs.push(await oneLoss(b, opts.channels));
    const gaps = runs.flatMap((r) => r.gapsMs).map((g) => g ?? Infinity);
    const live = runs.map((r) => r.allLiveMs ?? Infinity);
    return {
      channels: opts.channels,
      runs,
      gapP50: Math.round(median(gaps)),
      gapMax: Math.max(...gaps),
      allLiveP50: Math.round(median(live)),
      allLiveMax: Math.max(...live),
      survivorMaxGapMs: runs.some((r) => r.survivorMaxGapMs !== null)
        ? Math.max(...runs.map((r) => r.survivorMaxGapMs ?? 0))
        : null,
    };
  } finally {
    await stopPush(b.stack, sourceIds);
  }
}
