import { describe, expect, it } from 'vitest';
import { countStart, crashLoopFailure, RUN_STARTS_WINDOW_MS } from '../../src/worker/crash-loop.js';

describe('crash loop', () => {
  it('counts starts within the window and starts a new window after it', () => {
    let s = countStart(undefined, 1000);
    expect(s).toEqual({ count: 1, since: 1000 });
    s = countStart(s, 2000);
    s = countStart(s, 3000);
    expect(s).toEqual({ count: 3, since: 1000 });
    expect(countStart(s, 1000 + RUN_STARTS_WINDOW_MS + 1)).toEqual({
      count: 1,
      since: 1000 + RUN_STARTS_WINDOW_MS + 1,
    });
    // a clock that went backwards does not keep an old window
    expect(countStart(s, 500)).toEqual({ count: 1, since: 500 });
  });

  it('fails with 6012, naming the reason, only past the limit', () => {
    expect(crashLoopFailure({ count: 5, since: 0 }, 5)).toBeNull();
    const f = crashLoopFailure({ count: 6, since: 0 }, 5);
    expect(f?.code).toBe(6012);
    expect(f?.message).toMatch(/crash loop.*started 6 times within 10 min/);
  });
});
