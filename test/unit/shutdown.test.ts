/**
 * The one way down of a relay process (src/wiring/shutdown.ts): the first signal, or the parent wrapper exiting,
 * starts the graceful stop; a second signal hurries it (ffmpegs killed) but the stop still finishes; a third, or the
 * hurry time running out, exits at once; the grace bound hurries a stop that takes too long.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createLogger } from '../../src/log.js';
import { Shutdown } from '../../src/wiring/shutdown.js';

const logger = createLogger('silent', 'test');

function harness(opts: { graceMs?: number; hurryMs?: number } = {}) {
  let release!: () => void;
  const stopped = new Promise<void>((r) => (release = r));
  const calls = { stop: 0, hurry: 0, exit: [] as number[] };
  let ppid = 100;
  const s = new Shutdown({
    logger,
    graceMs: opts.graceMs ?? 10_000,
    hurryMs: opts.hurryMs ?? 5_000,
    stop: () => {
      calls.stop++;
      return stopped;
    },
    hurry: () => void calls.hurry++,
    exit: (code) => void calls.exit.push(code),
    parentPid: () => ppid,
    parentPollMs: 100,
  });
  return { s, calls, release, reparent: () => (ppid = 1) };
}

describe('Shutdown', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('the first signal runs the stop once and exits 0 when it finishes', async () => {
    const { s, calls, release } = harness();
    s.trigger('SIGTERM');
    expect(s.reason).toBe('SIGTERM');
    expect(calls.stop).toBe(1);
    expect(calls.exit).toEqual([]);
    release();
    await vi.waitFor(() => expect(calls.exit).toEqual([0]));
    expect(calls.hurry).toBe(0);
  });

  it('a second signal hurries the stop but waits for it; a third exits at once; copies of one press count once', async () => {
    const { s, calls, release } = harness();
    s.trigger('SIGINT', 1000);
    s.trigger('SIGINT', 1001); // the same Ctrl-C passed on again by `npm run`
    s.trigger('SIGINT', 1005);
    expect(calls.hurry).toBe(0);
    s.trigger('SIGINT', 1400); // a second press
    expect(calls.stop).toBe(1);
    expect(calls.hurry).toBe(1);
    expect(calls.exit).toEqual([]); // the records are still being finished
    release();
    await vi.waitFor(() => expect(calls.exit).toEqual([0]));

    const third = harness();
    third.s.trigger('SIGINT', 0);
    third.s.trigger('SIGTERM', 300);
    expect(third.calls.exit).toEqual([]);
    third.s.trigger('SIGINT', 600);
    expect(third.calls.exit).toEqual([1]);
  });

  it('a stop longer than the grace is hurried, and one that still hangs exits 1 after the hurry time', () => {
    vi.useFakeTimers();
    const { s, calls } = harness({ graceMs: 8000, hurryMs: 5000 });
    s.trigger('SIGTERM');
    vi.advanceTimersByTime(7999);
    expect(calls.hurry).toBe(0);
    vi.advanceTimersByTime(1);
    expect(calls.hurry).toBe(1);
    expect(calls.exit).toEqual([]);
    vi.advanceTimersByTime(5000);
    expect(calls.exit).toEqual([1]);
  });

  it('a wrapper that exits without passing the signal on (re-parented) starts the stop', () => {
    vi.useFakeTimers();
    const { s, calls, reparent } = harness();
    s.install();
    try {
      vi.advanceTimersByTime(500);
      expect(calls.stop).toBe(0);
      reparent();
      vi.advanceTimersByTime(100);
      expect(s.reason).toBe('parent-exited');
      expect(calls.stop).toBe(1);
      vi.advanceTimersByTime(1000); // noticed again: still one stop, no hurry
      expect(calls.stop).toBe(1);
      expect(calls.hurry).toBe(0);
    } finally {
      s.uninstall();
    }
  });

  it('a stop that fails exits 1', async () => {
    const exit: number[] = [];
    new Shutdown({
      logger,
      graceMs: 1000,
      stop: () => Promise.reject(new Error('boom')),
      hurry: () => undefined,
      exit: (c) => void exit.push(c),
    }).trigger('SIGTERM');
    await vi.waitFor(() => expect(exit).toEqual([1]));
  });
});
