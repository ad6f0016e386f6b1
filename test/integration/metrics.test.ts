import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFlv } from '../helpers/media.js';
import { eventually, fixture, sleep, startStack, type Stack } from '../helpers/stack.js';

let stack: Stack;

beforeAll(async () => {
  // capacity (cores it may fill) and concurrency (channels at once) set apart, so the metrics show which is which
  stack = await startStack({ env: { RELAY_WORKER_CAPACITY: '3.5', RELAY_WORKER_CONCURRENCY: '6' } });
  await stack.publish({ roomId: 1001, userId: 'alice', srcType: 0 }, fixture('alice-camera.mp4'));
});

afterAll(async () => {
  await stack?.close();
});

/** The value of one sample of a Prometheus text exposition, or undefined. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^(\w+)(?:\{([^}]*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[3]);
  }
  return undefined;
}

const scrape = async (url: string) => (await fetch(url, { headers: { authorization: stack.adminAuth } })).text();

describe('Prometheus metrics', () => {
  it('need the admin credential on both ports: without it 401 and no channel id', async () => {
    for (const url of [`${stack.api}/metrics`, `http://127.0.0.1:${stack.httpPort}/metrics`]) {
      for (const authorization of [undefined, 'Bearer not-the-token', stack.auth]) {
        const res = await fetch(url, authorization ? { headers: { authorization } } : {});
        const text = await res.text();
        expect(res.status, `${url} with ${authorization ?? 'no credential'}`).toBe(401);
        expect(text).not.toContain('ch_');
        expect(JSON.parse(text)).toMatchObject({ code: 1001, hint: expect.stringContaining('RELAY_ADMIN_TOKEN') });
      }
    }
  });

  it('show each process its event-loop lag (seconds), CPU and memory: the API and the media server', async () => {
    for (const url of [`${stack.api}/metrics`, `http://127.0.0.1:${stack.httpPort}/metrics`]) {
      await scrape(url);
      await sleep(300); // the lag histogram covers the delays since the previous scrape
      const t = await scrape(url);
      for (const name of [
        'nodejs_eventloop_lag_seconds',
        'nodejs_eventloop_lag_p50_seconds',
        'nodejs_eventloop_lag_p99_seconds',
        'nodejs_eventloop_lag_max_seconds',
      ]) {
        const v = sample(t, name);
        expect(v, `${name} at ${url}`).toBeGreaterThanOrEqual(0);
        expect(v, `${name} at ${url}: an idle relay process lags well under a second`).toBeLessThan(1);
      }
      expect(sample(t, 'nodejs_eventloop_lag_p99_seconds')).toBeGreaterThan(0);
      expect(sample(t, 'process_cpu_seconds_total')).toBeGreaterThan(0);
      expect(sample(t, 'process_resident_memory_bytes')).toBeGreaterThan(10e6);
    }
  });

  it('move with a running channel: channels by state, fps and frames, workers, queue; viewers and bitrate at the media server', async () => {
    const api = `${stack.api}/metrics`;
    const media = `http://127.0.0.1:${stack.httpPort}/metrics`;
    const idle = await scrape(api);
    expect(sample(idle, 'relay_channels', { state: 'live' })).toBe(0);
    expect(sample(idle, 'relay_worker_capacity')).toBe(3.5);
    expect(sample(idle, 'relay_worker_concurrency')).toBe(6);
    expect(sample(idle, 'relay_worker_load_cores')).toBe(0);
    expect(idle).not.toContain('relay_worker_capacity_cores');

    const r = await stack.request('POST', '/v1/push/start', {
      roomId: 1001,
      userId: 'alice',
      srcType: 0,
      option: { encode: 3 },
    });
    expect(r.body.code).toBe(0);
    const id = r.body.channelId as string;
    const flv = await readFlv(r.body.urls.find((u: { type: number }) => u.type === 2).playUrl, { keepOpen: true });
    await fetch(r.body.urls.find((u: { type: number }) => u.type === 1).playUrl);

    const first = await eventually(async () => {
      const t = await scrape(api);
      return (sample(t, 'relay_channel_frames', { channel: id }) ?? 0) > 0 &&
        (sample(t, 'relay_channel_fps', { channel: id }) ?? 0) > 0
        ? t
        : null;
    });
    expect(sample(first, 'relay_channels', { state: 'live' })).toBe(1);
    expect(sample(first, 'relay_channel_fps', { channel: id })).toBeGreaterThan(0);
    expect(sample(first, 'relay_channel_restarts', { channel: id })).toBe(0);
    expect(sample(first, 'relay_worker_channels')).toBe(1);
    expect(sample(first, 'relay_queue_jobs', { state: 'active' })).toBe(1);
    await sleep(2500);
    const second = await scrape(api);
    expect(sample(second, 'relay_channel_frames', { channel: id })!).toBeGreaterThan(
      sample(first, 'relay_channel_frames', { channel: id })!,
    );

    await scrape(media);
    await sleep(1500);
    const m = await scrape(media);
    expect(sample(m, 'relay_channel_viewers', { channel: id, protocol: 'flv' })).toBe(1);
    expect(sample(m, 'relay_stream_bitrate_kbps', { channel: id, stream: id })).toBeGreaterThan(500);
    expect(sample(m, 'relay_hls_requests_total', { channel: id, kind: 'playlist' })).toBeGreaterThanOrEqual(1);
    flv.destroy();
    await stack.request('POST', '/v1/push/stop', { channelIds: [id] });
    const after = await scrape(api);
    expect(sample(after, 'relay_channels', { state: 'live' })).toBe(0);
  });
});
