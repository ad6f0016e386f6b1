import { describe, expect, it, vi } from 'vitest';
import {
  afterStartFailure,
  mediaServerRefused,
  RestartPolicy,
  RESTART_WINDOW_MS,
  watchStall,
} from '../../src/worker/restart-policy.js';
import type { StartFailureKind } from '../../src/media/ffmpeg/process.js';

describe('RestartPolicy', () => {
  it('backs off 0.5 s, doubling to at most 8 s, while failures stay within the limit', () => {
    const p = new RestartPolicy(10);
    const waits = Array.from({ length: 7 }, (_, i) => p.afterFailure(false, 1000 + i));
    expect(waits.map((d) => (d.action === 'restart' ? d.backoffMs : d.action))).toEqual([
      500, 1000, 2000, 4000, 8000, 8000, 8000,
    ]);
  });

  it('gives up (fail) on the failure after maxRestarts within a minute', () => {
    const p = new RestartPolicy(3);
    expect([1, 2, 3].map((t) => p.afterFailure(false, t).action)).toEqual(['restart', 'restart', 'restart']);
    expect(p.afterFailure(false, 4)).toEqual({ action: 'fail', failures: 4 });
  });

  it('gives up by interrupting when the media server was unreachable', () => {
    const p = new RestartPolicy(1);
    p.afterFailure(true, 1);
    expect(p.afterFailure(true, 2)).toEqual({ action: 'interrupt', failures: 2 });
  });

  it('forgets failures older than the window, so the backoff starts over', () => {
    const p = new RestartPolicy(2);
    p.afterFailure(false, 0);
    p.afterFailure(false, 1);
    expect(p.afterFailure(false, 2 + RESTART_WINDOW_MS)).toEqual({ action: 'restart', backoffMs: 500, failures: 1 });
  });

  it('with maxRestarts 0 the first failure gives up', () => {
    expect(new RestartPolicy(0).afterFailure(false, 0).action).toBe('fail');
  });
});

describe('after a failed ffmpeg start', () => {
  const cases: [string, StartFailureKind, { first: boolean; mediaDown: boolean; upstream: boolean }, string][] = [
    ['the first start of a new channel fails', 'exited', { first: true, mediaDown: false, upstream: true }, 'fail'],
    [
      'a source without video fails, even when live before',
      'no-video',
      { first: false, mediaDown: false, upstream: true },
      'fail',
    ],
    ['the media server away is retried', 'unreadable', { first: false, mediaDown: true, upstream: false }, 'restart'],
    [
      'an unreadable upstream interrupts',
      'unreadable',
      { first: false, mediaDown: false, upstream: true },
      'interrupt',
    ],
    ['a timeout interrupts', 'timeout', { first: false, mediaDown: false, upstream: true }, 'interrupt'],
    [
      'an exit with the member gone interrupts',
      'exited',
      { first: false, mediaDown: false, upstream: false },
      'interrupt',
    ],
    [
      'an exit with the member still there is retried',
      'exited',
      { first: false, mediaDown: false, upstream: true },
      'restart',
    ],
  ];
  it.each(cases)('%s', async (_title, kind, o, want) => {
    const action = await afterStartFailure(kind, {
      firstStartOfNewChannel: o.first,
      mediaDown: o.mediaDown,
      upstreamPresent: async () => o.upstream,
    });
    expect(action).toBe(want);
  });

  it('asks whether the upstream is there only for an exit', async () => {
    let asked = 0;
    await afterStartFailure('timeout', {
      firstStartOfNewChannel: false,
      mediaDown: false,
      upstreamPresent: async () => {
        asked++;
        return true;
      },
    });
    expect(asked).toBe(0);
  });

  it('reads "connection refused" towards the media server as the media server being down, not towards others', () => {
    expect(
      mediaServerRefused(
        [
          '[tcp @ 0x1] Connection to tcp://127.0.0.1:1935 failed: Connection refused',
          'rtmp://127.0.0.1:1935/live/x: Connection refused',
        ],
        '127.0.0.1:1935',
      ),
    ).toBe(true);
    expect(mediaServerRefused(['rtmp://cam.example:1935/a: Connection refused'], '127.0.0.1:1935')).toBe(false);
    expect(mediaServerRefused(['rtmp://127.0.0.1:1935/live/x: Invalid data found'], '127.0.0.1:1935')).toBe(false);
  });
});

describe('watchStall', () => {
  it('kills ffmpeg once its output time has not moved for stallMs, never while it moves', async () => {
    vi.useFakeTimers();
    try {
      const ff = {
        progress: { outTimeUs: 0 },
        kills: 0,
        async kill() {
          this.kills++;
        },
      };
      const warn = vi.fn();
      const stop = watchStall(ff, 3000, { warn } as never);
      for (let i = 1; i <= 5; i++) {
        ff.progress.outTimeUs = i * 1_000_000;
        await vi.advanceTimersByTimeAsync(1000);
      }
      expect(ff.kills).toBe(0);
      await vi.advanceTimersByTimeAsync(4000);
      expect(ff.kills).toBeGreaterThan(0);
      expect(warn).toHaveBeenCalledWith(
        expect.objectContaining({ stalledMs: expect.any(Number) }),
        'ffmpeg stalled: killing it',
      );
      stop();
      const kills = ff.kills;
      await vi.advanceTimersByTimeAsync(5000);
      expect(ff.kills).toBe(kills);
    } finally {
      vi.useRealTimers();
    }
  });
});
