/** 7. Control plane: start / stop / status API latency with 1,000 channel records present. */
import crypto from 'node:crypto';
import { fixture } from '../../test/helpers/stack.js';
import { percentile } from '../lib/proc.js';
import { sleep, startPush, type Bench } from '../lib/context.js';

export interface ControlPlaneResult {
  records: number;
  cycles: number;
  startP50: number;
  startP99: number;
  stopP50: number;
  stopP99: number;
  statusP50: number;
  statusP99: number;
}

export async function controlPlane(b: Bench, records: number, cycles: number): Promise<ControlPlaneResult> {
  const { stack } = b;
  const pipe = stack.redis.pipeline();
  for (let i = 0; i < records; i++) {
    const id = 'ch_' + crypto.randomBytes(10).toString('hex');
    pipe.set(
      `${stack.prefix}:channel:${id}`,
      JSON.stringify({
        channelId: id,
        sdkAppId: stack.sdkAppId,
        accountId: 'default',
        state: 'stopped',
        option: { rateTypes: [0] },
        urls: [],
        history: [],
      }),
    );
  }
  await pipe.exec();
  await stack.request('PUT', '/v1/rooms/3000/upstreams', { userId: 'cp', srcType: 0, url: fixture('video-only.mp4') });
  const start: number[] = [];
  const stop: number[] = [];
  const status: number[] = [];
  for (let i = 0; i < cycles; i++) {
    let t = Date.now();
    const r = await startPush(stack, { roomId: 3000, userId: 'cp', srcType: 0, option: { encode: 5 } });
    start.push(Date.now() - t);
    for (let j = 0; j < 5; j++) {
      t = Date.now();
      await stack.request('GET', `/v1/push/${r.channelId}`);
      status.push(Date.now() - t);
    }
    t = Date.now();
    await stack.request('POST', '/v1/push/stop', { channelIds: [r.channelId] });
    stop.push(Date.now() - t);
    await sleep(3050);
  }
  const p = percentile;
  return {
    records,
    cycles,
    startP50: p(start, 50),
    startP99: p(start, 99),
    stopP50: p(stop, 50),
    stopP99: p(stop, 99),
    statusP50: p(status, 50),
    statusP99: p(status, 99),
  };
}
