import { describe, expect, it } from 'vitest';
import { KeyframeWatch } from '../../src/worker/keyframes.js';

describe('KeyframeWatch', () => {
  const id = 'ch_00000000000000000001';
  it('a keyframe report of the channel resolves its watch; other channels do not', async () => {
    const w = new KeyframeWatch();
    let seen = false;
    const p = w.firstKeyframe(id, new AbortController().signal).then(() => {
      seen = true;
    });
    w.onEvent({ type: 'keyframe', channelId: 'ch_00000000000000000002', stream: 'x', at: 1 });
    await Promise.resolve();
    expect(seen).toBe(false);
    w.onEvent({ type: 'keyframe', channelId: id, stream: id, at: 1 });
    await p;
    expect(w.watching).toBe(0);
  });

  it('an aborted watch holds nothing', () => {
    const w = new KeyframeWatch();
    const ctl = new AbortController();
    void w.firstKeyframe(id, ctl.signal);
    expect(w.watching).toBe(1);
    ctl.abort();
    expect(w.watching).toBe(0);
  });
});
