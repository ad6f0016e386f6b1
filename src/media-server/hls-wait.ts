import fs from 'node:fs';

/** A poll of one file shared by every request waiting for it. */
interface Poll {
  timer: NodeJS.Timeout;
  waiters: Set<(found: boolean) => void>;
}

/**
 * Waits for HLS playlists to appear. A channel is announced live (the start answer) on its first keyframe, but ffmpeg's
 * HLS muxer writes a playlist only once its first segment is complete, which is up to one segment duration (and a GOP)
 * later; a player that asks at once would get a 404, which hls.js treats as fatal for a manifest. The media server
 * therefore holds a playlist request of a starting or live channel until the file exists (RFC 8216 4.3.3.1: its
 * EXT-X-TARGETDURATION bounds a segment, and a segment can end only at the upstream's next keyframe), bounded by the
 * caller's timeout, then answers as usual (the playlist, or 404).
 *
 * Each file is polled with `fs.stat` every `pollMs`, once for all the requests waiting for it.
 */
export class PlaylistWait {
  private readonly polls = new Map<string, Poll>();

  constructor(private readonly pollMs = 50) {}

  /** Requests waiting now, over all files. */
  get waiting(): number {
    let n = 0;
    for (const p of this.polls.values()) n += p.waiters.size;
    return n;
  }

  /**
   * Resolves true as soon as `file` exists (at once if it does), false after `timeoutMs` or when `signal` aborts (the
   * viewer went away). Never rejects.
   */
  async until(file: string, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    if (await exists(file)) return true;
    if (timeoutMs <= 0 || signal?.aborted) return false;
    return new Promise<boolean>((resolve) => {
      let poll = this.polls.get(file);
      if (!poll) {
        const p: Poll = { waiters: new Set(), timer: setInterval(() => void this.check(file, p), this.pollMs) };
        p.timer.unref();
        this.polls.set(file, (poll = p));
      }
      const owner = poll;
      const done = (found: boolean) => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        owner.waiters.delete(done);
        if (!owner.waiters.size) this.stop(file, owner);
        resolve(found);
      };
      const onAbort = () => done(false);
      const timer = setTimeout(() => done(false), timeoutMs);
      timer.unref();
      signal?.addEventListener('abort', onAbort, { once: true });
      owner.waiters.add(done);
    });
  }

  private async check(file: string, poll: Poll): Promise<boolean> {
    if (!(await exists(file))) return false;
    for (const done of [...poll.waiters]) done(true);
    return true;
  }

  private stop(file: string, poll: Poll): void {
    clearInterval(poll.timer);
    if (this.polls.get(file) === poll) this.polls.delete(file);
  }
}

function exists(file: string): Promise<boolean> {
  return fs.promises.stat(file).then(
    (st) => st.isFile(),
    () => false,
  );
}
