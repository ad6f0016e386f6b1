/**
 * 6. Failover: the largest gap between video tags an HTTP-FLV viewer sees when the worker running its channel is
 * killed (SIGKILL: another worker takes the job once its lock expires) or stopped (SIGTERM: handed over at once).
 */
import { median } from '../lib/proc.js';
import { FlvWatcher } from '../../test/helpers/media.js';
import { allInState, sleep, startPush, stopPush, type Bench } from '../lib/context.js';

export interface FailoverResult {
  sigkill: { gapsMs: number[]; p50: number };
  sigterm: { gapsMs: number[]; p50: number };
}

const liveWorkers = (b: Bench) =>
  b.stack.procs.filter((p) => p.name.startsWith('worker') && p.child.exitCode === null && p.child.signalCode === null);

async function oneFailover(b: Bench, signal: 'SIGKILL' | 'SIGTERM'): Promise<number> {
  const { stack } = b;
  while (liveWorkers(b).length < 2) await stack.startWorker();
  const r = await startPush(stack, { roomId: 1001, userId: 'alice', srcType: 0, option: { encode: 2 } });
  const viewer = new FlvWatcher(r.urls[0]!.playUrl);
  try {
    await allInState(stack, [r.channelId], 'live', 15000);
    await sleep(2000);
    const owner = (await stack.request('GET', `/v1/push/${r.channelId}`)).body.channel.worker as string;
    const proc = liveWorkers(b).find((p) => owner.endsWith(`:${p.child.pid}`));
    if (!proc) throw new Error(`no worker process for owner ${owner}`);
    const at = Date.now();
    await proc.stop(signal);
    // until the viewer has had 3 s of video again after the other worker took over
    const deadline = Date.now() + 20000;
    for (;;) {
      const ch = (await stack.request('GET', `/v1/push/${r.channelId}`)).body.channel;
      if (ch.state === 'live' && ch.worker !== owner && viewer.videoTimes.at(-1)! > Date.now() - 300) break;
      if (Date.now() > deadline) throw new Error(`${signal}: channel not live on another worker within 20 s`);
      await sleep(100);
    }
    await sleep(3000);
    return viewer.maxGapSince(at);
  } finally {
    viewer.close();
    await stopPush(stack, [r.channelId]);
    await sleep(3100); // alice's start rate limit
  }
}

export async function failover(b: Bench, runs: number): Promise<FailoverResult> {
  const kill: number[] = [];
  const term: number[] = [];
  for (let i = 0; i < runs; i++) {
    kill.push(await oneFailover(b, 'SIGKILL'));
    term.push(await oneFailover(b, 'SIGTERM'));
    b.log(`  run ${i + 1}/${runs}: largest FLV gap SIGKILL ${kill.at(-1)} ms, SIGTERM ${term.at(-1)} ms`);
  }
  while (liveWorkers(b).length < 1) await b.stack.startWorker();
  return { sigkill: { gapsMs: kill, p50: median(kill) }, sigterm: { gapsMs: term, p50: median(term) } };
}
