import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { canMove, NEXT_STATES, statesBefore, type ChannelLifecycle } from '../../src/channels/lifecycle.js';
import { channelHlsRoot, channelPlaylists, type DataLayout } from '../../src/channels/layout.js';
import { CHANNEL_STATES, FINAL_STATES, type Channel, type ChannelState } from '../../src/channels/types.js';
import type { Moved } from '../../src/channels/records.js';
import { RelayError } from '../../src/errors/index.js';
import { webhookTypeOf } from '../../src/webhooks/index.js';
import { fakeLifecycle, testChannel } from '../fakes/channels.js';

type Harness = ReturnType<typeof fakeLifecycle>;
const MOVES: Record<string, { to: ChannelState; run: (lc: ChannelLifecycle, ch: Channel) => Promise<Moved> }> = {
  markLive: { to: 'live', run: (lc, ch) => lc.markLive(ch, { workerId: 'w1', resumed: false }) },
  requestStop: { to: 'stopping', run: (lc, ch) => lc.requestStop(ch, 'stop requested') },
  finishStop: { to: 'stopped', run: (lc, ch) => lc.finishStop(ch, 'stopped by request') },
  fail: { to: 'failed', run: (lc, ch) => lc.fail(ch, { code: 6012, message: 'boom' }) },
  interrupt: { to: 'interrupted', run: (lc, ch) => lc.interrupt(ch, 'upstream lost') },
  resume: { to: 'starting', run: (lc, ch) => lc.resume(ch, 'resumed') },
  recycle: { to: 'recycled', run: (lc, ch) => lc.recycle(ch.channelId) },
};

let layout: DataLayout;
beforeEach(() => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'lifecycle-'));
  layout = { hlsDir: path.join(root, 'hls'), recordsDir: path.join(root, 'records') };
});
afterEach(() => fs.rmSync(path.dirname(layout.hlsDir), { recursive: true, force: true }));

/** Admits a channel, puts it in `state` with the slots that state has, and writes its playlist. */
async function seed(h: Harness, state: ChannelState, over: Partial<Channel> = {}): Promise<Channel> {
  const ch = testChannel(over);
  expect(await h.records.admit(ch, 4, 10)).toEqual({ ok: true });
  const rec = h.records.records.get(ch.channelId)!;
  rec.state = state;
  if (state !== 'starting') rec.startedAt = 2;
  if (state === 'interrupted') await h.records.retain(ch, Date.now() + 60_000);
  if (FINAL_STATES.includes(state)) await h.records.release(ch);
  for (const f of channelPlaylists(rec, layout)) {
    fs.mkdirSync(path.dirname(f), { recursive: true });
    // a stopped channel's playlists were ended by its stop
    fs.writeFileSync(f, `#EXTM3U\n#EXTINF:2.0,\nseg_000001.ts\n${state === 'stopped' ? '#EXT-X-ENDLIST\n' : ''}`);
  }
  return (await h.records.get(ch.channelId))!;
}

function files(dir: string): Record<string, string> {
  if (!fs.existsSync(dir)) return {};
  return Object.fromEntries(
    fs
      .readdirSync(dir, { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile())
      .map((e) => {
        const f = path.join(e.parentPath, e.name);
        return [f, fs.readFileSync(f, 'utf8')];
      }),
  );
}

describe('NEXT_STATES', () => {
  it('every state is the target of exactly one named move, and final states lead nowhere', () => {
    expect(
      Object.values(MOVES)
        .map((m) => m.to)
        .sort(),
    ).toEqual([...CHANNEL_STATES].sort());
    for (const s of FINAL_STATES) expect(NEXT_STATES[s]).toEqual([]);
  });
  it('statesBefore reads the table backwards', () => {
    expect(statesBefore('stopped').sort()).toEqual(['interrupted', 'live', 'starting', 'stopping']);
    expect(statesBefore('starting')).toEqual(['interrupted']);
  });
});

const cases = CHANNEL_STATES.flatMap((from) =>
  Object.entries(MOVES).map(([move, m]) => {
    const legal = canMove(from, m.to);
    return { title: `${move} from ${from} ${legal ? `moves to ${m.to}` : 'is refused'}`, from, move, to: m.to, legal };
  }),
);

describe('every move from every state', () => {
  it.each(cases.filter((c) => c.legal).map((c) => [c.title, c] as const))(
    '%s, and publishes once',
    async (_t, { from, move, to }) => {
      const h = fakeLifecycle({ layout });
      const ch = await seed(h, from);
      const moved = await MOVES[move]!.run(h.lifecycle, ch);
      expect(moved).toEqual({ ok: true, state: to });
      const after = (await h.records.get(ch.channelId))!;
      expect(after.state).toBe(to);
      expect(after.history.at(-1)?.state).toBe(to);
      expect(h.bus.events).toEqual([expect.objectContaining({ channelId: ch.channelId, state: to })]);
      const hook = webhookTypeOf(to, false);
      expect(h.sink.emitted.map((e) => e.type)).toEqual(hook ? [hook] : []);
    },
  );

  it.each(cases.filter((c) => !c.legal).map((c) => [c.title, c] as const))(
    '%s: nothing changes, nothing is published',
    async (_t, { from, move }) => {
      const h = fakeLifecycle({ layout });
      const ch = await seed(h, from);
      const before = { store: h.records.dump(), files: files(layout.hlsDir) };
      const moved = await MOVES[move]!.run(h.lifecycle, ch);
      expect(moved).toEqual({ ok: false, state: from });
      expect({ store: h.records.dump(), files: files(layout.hlsDir) }).toEqual(before);
      expect(h.bus.events).toEqual([]);
      expect(h.sink.emitted).toEqual([]);
      expect(h.queue.jobs.size).toBe(0);
    },
  );

  it('finishStop of a stopped channel whose playlist a late ffmpeg rewrote ends it again, moving and publishing nothing', async () => {
    const h = fakeLifecycle({ layout });
    const ch = await seed(h, 'stopped');
    const [playlist] = channelPlaylists(ch, layout);
    fs.writeFileSync(playlist!, '#EXTM3U\n#EXTINF:2.0,\nseg_000001.ts\n#EXTINF:1.4,\nseg_000002.ts\n');
    const store = h.records.dump();
    expect(await h.lifecycle.finishStop(ch, 'stopped by request')).toEqual({ ok: false, state: 'stopped' });
    expect(fs.readFileSync(playlist!, 'utf8')).toMatch(/seg_000002\.ts\n#EXT-X-ENDLIST\n$/);
    expect(h.records.dump()).toEqual(store);
    expect(h.bus.events).toEqual([]);
  });

  it.each(Object.keys(MOVES))(
    '%s of a channel that does not exist answers state "" and publishes nothing',
    async (move) => {
      const h = fakeLifecycle({ layout });
      const moved = await MOVES[move]!.run(h.lifecycle, testChannel({ state: 'interrupted' }));
      expect(moved).toEqual({ ok: false, state: '' });
      expect(h.bus.events).toEqual([]);
    },
  );
});

describe('what each move does besides the state', () => {
  it('markLive stamps the worker and startedAt; a resumed channel announces push.resumed', async () => {
    const h = fakeLifecycle({ layout });
    const ch = await seed(h, 'starting');
    await h.lifecycle.markLive(ch, { workerId: 'w1', resumed: false });
    expect(await h.records.get(ch.channelId)).toMatchObject({ worker: 'w1', startedAt: expect.any(Number) });
    const again = (await h.records.get(ch.channelId))!;
    await h.lifecycle.markLive(again, { workerId: 'w2', resumed: true });
    expect((await h.records.get(ch.channelId))!.history.at(-1)!.reason).toBe('resumed on w2');
    expect(h.bus.events.map((e) => e.resumed ?? false)).toEqual([false, true]);
    expect(h.sink.emitted.map((e) => e.type)).toEqual(['push.started', 'push.resumed']);
  });

  it('finishStop ends the playlists with ENDLIST and frees the upstream for a new start', async () => {
    const h = fakeLifecycle({ layout });
    const ch = await seed(h, 'stopping');
    await h.lifecycle.finishStop(ch, 'stopped by request');
    for (const f of channelPlaylists(ch, layout)) expect(fs.readFileSync(f, 'utf8')).toMatch(/#EXT-X-ENDLIST/);
    expect((await h.records.get(ch.channelId))!.stoppedAt).toBeGreaterThan(0);
    expect(h.records.active.has(ch.channelId)).toBe(false);
    expect(await h.records.admit({ ...testChannel(), userId: ch.userId }, 4, 10)).toEqual({ ok: true });
  });

  it('a stop the run decided itself (a mix whose members stayed away) gives its reason in the history and push.stopped', async () => {
    const h = fakeLifecycle({ layout });
    const asked = await seed(h, 'stopping');
    await h.lifecycle.finishStop(asked, 'stopped by request');
    expect(h.sink.emitted[0]!.data).toEqual({ state: 'stopped' });
    const ch = await seed(h, 'live');
    const why = 'every member away for the retention time';
    expect(await h.lifecycle.finishStop(ch, why, undefined, true)).toEqual({ ok: true, state: 'stopped' });
    expect((await h.records.get(ch.channelId))!.history.at(-1)).toMatchObject({ state: 'stopped', reason: why });
    expect(h.sink.emitted[1]).toMatchObject({ type: 'push.stopped', data: { state: 'stopped', reason: why } });
  });

  it('fail of a start that never went live removes its HLS files; of a live channel, ends them', async () => {
    const h = fakeLifecycle({ layout });
    const fresh = await seed(h, 'starting');
    await h.lifecycle.fail(fresh, { code: 40000004, message: 'no video' });
    expect(fs.existsSync(channelHlsRoot(fresh.channelId, layout))).toBe(false);
    expect(await h.records.get(fresh.channelId)).toMatchObject({
      state: 'failed',
      error: { code: 40000004, message: 'no video' },
    });
    expect(h.bus.events).toEqual([
      { channelId: fresh.channelId, state: 'failed', code: 40000004, message: 'no video' },
    ]);
    expect(h.sink.emitted[0]).toMatchObject({
      type: 'push.failed',
      data: { state: 'failed', code: 40000004, reason: 'no video' },
    });
    const live = await seed(h, 'live');
    await h.lifecycle.fail(live, { code: 6012, message: 'too many restarts' });
    for (const f of channelPlaylists(live, layout)) expect(fs.readFileSync(f, 'utf8')).toMatch(/#EXT-X-ENDLIST/);
  });

  it('fail whose compare-and-set loses (a stale snapshot) frees nothing and publishes nothing', async () => {
    const h = fakeLifecycle({ layout });
    const ch = await seed(h, 'live');
    h.records.records.get(ch.channelId)!.state = 'stopped';
    const before = h.records.dump();
    expect(await h.lifecycle.fail(ch, { code: 6012, message: 'x' })).toEqual({ ok: false, state: 'stopped' });
    expect(h.records.dump()).toEqual(before);
    expect(h.bus.events).toEqual([]);
  });

  it('interrupt keeps the account slot and the upstream, leaves the room, and is due when retention ends', async () => {
    const h = fakeLifecycle({ layout, retentionMs: 5000 });
    const ch = await seed(h, 'live');
    await h.lifecycle.interrupt(ch, 'upstream lost');
    const rec = (await h.records.get(ch.channelId))!;
    expect(rec.retainUntil! - rec.interruptedAt!).toBe(5000);
    expect(h.records.rooms.get('1400000001:1001')?.has(ch.channelId)).toBe(false);
    expect(h.records.accounts.get('acc')?.has(ch.channelId)).toBe(true);
    expect(await h.records.dueForRecycling(rec.retainUntil! - 1)).toEqual([]);
    expect(await h.records.dueForRecycling(rec.retainUntil!)).toEqual([ch.channelId]);
    expect(h.bus.events).toEqual([{ channelId: ch.channelId, state: 'interrupted', message: 'upstream lost' }]);
  });

  it('resume queues the job under the channel id and clears the interruption', async () => {
    const h = fakeLifecycle({ layout });
    const ch = await seed(h, 'interrupted', { restarts: 3 });
    await h.lifecycle.resume(ch, 'resumed by a start');
    expect([...h.queue.jobs.keys()]).toEqual([ch.channelId]);
    const rec = (await h.records.get(ch.channelId))!;
    expect(rec).toMatchObject({ state: 'starting', restarts: 0 });
    expect(rec.interruptedAt).toBeUndefined();
    expect(rec.retainUntil).toBeUndefined();
    expect(h.records.retained.has(ch.channelId)).toBe(false);
  });

  it('resume into a full room throws 20101 and leaves the channel retained', async () => {
    const h = fakeLifecycle({ layout, maxPerRoom: 1 });
    const ch = await seed(h, 'interrupted');
    await seed(h, 'live');
    const before = h.records.dump();
    await expect(h.lifecycle.resume(ch, 'resumed')).rejects.toSatisfy(
      (e) => e instanceof RelayError && e.code === 20101,
    );
    expect(h.records.dump()).toEqual(before);
    expect(h.queue.jobs.size).toBe(0);
  });

  it('resume that loses to a stop gives back the slots it took', async () => {
    const h = fakeLifecycle({ layout });
    const ch = await seed(h, 'interrupted');
    await h.lifecycle.finishStop(ch, 'stopped by request while interrupted');
    expect(await h.lifecycle.resume(ch, 'resumed')).toEqual({ ok: false, state: 'stopped' });
    expect(h.records.active.has(ch.channelId)).toBe(false);
    expect(h.records.rooms.get('1400000001:1001')?.has(ch.channelId)).toBe(false);
    expect(h.queue.jobs.size).toBe(0);
  });

  it('recycle removes the HLS folder and frees every slot', async () => {
    const h = fakeLifecycle({ layout });
    const ch = await seed(h, 'interrupted');
    await h.lifecycle.recycle(ch.channelId);
    expect(fs.existsSync(channelHlsRoot(ch.channelId, layout))).toBe(false);
    expect(h.records.accounts.get('acc')?.has(ch.channelId)).toBe(false);
    expect(h.records.upstreams.size).toBe(0);
  });

  it('the recycler recycles channels whose retention ended', async () => {
    const h = fakeLifecycle({ layout, retentionMs: 0 });
    const ch = await seed(h, 'live');
    await h.lifecycle.interrupt(ch, 'upstream lost');
    const stop = h.lifecycle.startRecycler(10);
    try {
      await expect.poll(async () => (await h.records.get(ch.channelId))?.state, { timeout: 2000 }).toBe('recycled');
    } finally {
      stop();
    }
  });

  it('erase leaves nothing of a refused start', async () => {
    const h = fakeLifecycle({ layout });
    const ch = await seed(h, 'starting');
    await h.lifecycle.erase(ch);
    expect(h.records.dump()).toEqual(new (h.records.constructor as new () => typeof h.records)().dump());
    expect(fs.existsSync(channelHlsRoot(ch.channelId, layout))).toBe(false);
    expect(h.bus.events).toEqual([]);
  });

  it('patch merges fields only in the given states and says whether the channel was in one', async () => {
    const h = fakeLifecycle({ layout });
    const ch = await seed(h, 'stopping');
    expect(await h.lifecycle.patch(ch.channelId, { restarts: 2 }, ['live'])).toBe(false);
    expect((await h.records.get(ch.channelId))!.restarts).toBeUndefined();
    expect(await h.lifecycle.patch(ch.channelId, { restarts: 2 })).toBe(true);
    expect((await h.records.get(ch.channelId))!.restarts).toBe(2);
    expect((await h.records.get(ch.channelId))!.history).toHaveLength(1);
  });

  it('a webhook that cannot be queued is logged and does not undo the move', async () => {
    const h = fakeLifecycle({ layout });
    h.sink.failing = true;
    const ch = await seed(h, 'stopping');
    expect((await h.lifecycle.finishStop(ch, 'stopped by request')).ok).toBe(true);
    expect(h.bus.events).toHaveLength(1);
    expect(h.logger.warnings).toEqual([
      [expect.objectContaining({ channelId: ch.channelId, type: 'push.stopped' }), 'webhook event not queued'],
    ]);
  });
});
