import fs from 'node:fs';
import { getEventListeners } from 'node:events';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isStale } from '../../src/channels/lifecycle.js';
import { channelHlsRoot, type DataLayout } from '../../src/channels/layout.js';
import type { Channel, ChannelState } from '../../src/channels/types.js';
import { sleepOrAbort, untilAbort } from '../../src/worker/end-signal.js';
import { fakeLifecycle, testChannel } from '../fakes/channels.js';

describe('lifecycle moves of a stale run (fencing by run generation)', () => {
  let layout: DataLayout;
  beforeEach(() => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'fencing-'));
    layout = { hlsDir: path.join(root, 'hls'), recordsDir: path.join(root, 'records') };
  });
  afterEach(() => fs.rmSync(path.dirname(layout.hlsDir), { recursive: true, force: true }));

  async function seeded(state: ChannelState, over: Partial<Channel> = {}) {
    const h = fakeLifecycle({ layout });
    const ch = testChannel(over);
    await h.records.admit(ch, 4, 10);
    h.records.records.get(ch.channelId)!.state = state;
    return { h, ch: (await h.records.get(ch.channelId))! };
  }

  it('isStale: only a move given a generation other than the record has', () => {
    expect(isStale({}, undefined)).toBe(false);
    expect(isStale({}, 0)).toBe(false);
    expect(isStale({ runGen: 2 }, 2)).toBe(false);
    expect(isStale({ runGen: 3 }, 2)).toBe(true);
  });

  it('beginRun raises the generation of a starting, live or stopping channel only', async () => {
    for (const [state, gen] of [
      ['starting', 1],
      ['live', 1],
      ['stopping', 1],
      ['interrupted', 0],
      ['stopped', 0],
    ] as const) {
      const { h, ch } = await seeded(state);
      expect(await h.lifecycle.beginRun(ch.channelId)).toBe(gen);
    }
    expect(await fakeLifecycle({ layout }).lifecycle.beginRun('ch_00000000000000000000')).toBeNull();
  });

  it('markLive, fail, interrupt, finishStop and patchRun of an older run change nothing: no state, file, event or webhook', async () => {
    const { h, ch } = await seeded('live', { runGen: 1, startedAt: undefined });
    expect(await h.lifecycle.beginRun(ch.channelId)).toBe(2);
    const root = channelHlsRoot(ch.channelId, layout);
    fs.mkdirSync(root, { recursive: true });
    fs.writeFileSync(path.join(root, 'index.m3u8'), '#EXTM3U\n');
    const before = h.records.dump();
    const fenced = { ok: false, state: 'live', fenced: true };
    expect(await h.lifecycle.markLive(ch, { workerId: 'w1', resumed: true, gen: 1 })).toEqual(fenced);
    expect(await h.lifecycle.fail(ch, { code: 6012, message: 'x' }, 1)).toEqual(fenced);
    expect(await h.lifecycle.interrupt(ch, 'upstream lost', 1)).toEqual(fenced);
    expect(await h.lifecycle.finishStop(ch, 'stop', 1)).toEqual(fenced);
    expect(await h.lifecycle.patchRun(ch.channelId, 1, { restarts: 3 }, ['live'])).toEqual(fenced);
    expect(h.records.dump()).toEqual(before);
    expect(fs.readFileSync(path.join(root, 'index.m3u8'), 'utf8')).toBe('#EXTM3U\n');
    expect([h.bus.events, h.sink.emitted]).toEqual([[], []]);
    // the current run moves
    expect(await h.lifecycle.patchRun(ch.channelId, 2, { restarts: 3 }, ['live'])).toEqual({ ok: true, state: 'live' });
    expect(await h.lifecycle.markLive(ch, { workerId: 'w2', resumed: true, gen: 2 })).toMatchObject({ ok: true });
  });

  it('a resume is fenced by the generation its channel was read with', async () => {
    const { h, ch } = await seeded('interrupted', { runGen: 1 });
    h.records.records.get(ch.channelId)!.runGen = 2;
    expect(await h.lifecycle.resume(ch, 'resumed')).toEqual({ ok: false, state: 'interrupted', fenced: true });
    expect(await h.lifecycle.resume({ ...ch, runGen: 2 }, 'resumed')).toMatchObject({ ok: true, state: 'starting' });
  });
});

describe("a runner's end signals", () => {
  it('untilAbort and sleepOrAbort answer with the first abort reason, and leave no listener behind', async () => {
    const c = new AbortController();
    for (let i = 0; i < 50; i++) expect(await untilAbort(Promise.resolve(i), [c.signal])).toEqual({ done: i });
    expect(await sleepOrAbort(1, [c.signal])).toBeNull();
    expect(getEventListeners(c.signal, 'abort')).toHaveLength(0);
    setTimeout(() => c.abort('superseded'), 5);
    expect(await sleepOrAbort(10_000, [new AbortController().signal, c.signal])).toBe('superseded');
    expect(await untilAbort(new Promise(() => undefined), [c.signal])).toEqual({ reason: 'superseded' });
  });
});
