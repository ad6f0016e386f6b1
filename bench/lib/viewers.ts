/** How soon a viewer sees a start: the first FLV keyframe, the first HLS segment. (FlvWatcher: test/helpers/media.ts.) */
import http from 'node:http';
import { flvTags, isKeyframe } from '../../test/helpers/media.js';
import { sleep } from '../../test/helpers/stack.js';

/** ms from now until an HTTP-FLV URL delivers a video keyframe tag (retrying while it answers 404). */
export function firstKeyframe(url: string, timeoutMs = 15000): Promise<number> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    let req: http.ClientRequest | null = null;
    let done = false;
    const deadline = setTimeout(() => {
      done = true;
      req?.destroy();
      reject(new Error(`no keyframe at ${url} in ${timeoutMs} ms`));
    }, timeoutMs);
    const attempt = () => {
      if (done) return;
      req = http.get(url, (res) => {
        if (res.statusCode !== 200) {
          res.resume();
          setTimeout(attempt, 20);
          return;
        }
        res.on(
          'data',
          flvTags((tag) => {
            if (!isKeyframe(tag) || done) return false;
            done = true;
            clearTimeout(deadline);
            req?.destroy();
            resolve(Date.now() - t0);
            return true;
          }),
        );
      });
      req.on('error', () => setTimeout(attempt, 20));
    };
    attempt();
  });
}

/** ms from now until a playlist lists a segment. */
export async function firstSegment(url: string, timeoutMs = 15000): Promise<number> {
  const t0 = Date.now();
  while (Date.now() - t0 < timeoutMs) {
    const text = await fetch(url)
      .then((r) => (r.ok ? r.text() : ''))
      .catch(() => '');
    if (text.includes('#EXTINF')) return Date.now() - t0;
    await sleep(20);
  }
  throw new Error(`no segment at ${url} in ${timeoutMs} ms`);
}
