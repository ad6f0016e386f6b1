import type { Redis } from 'ioredis';
import type { Queue } from 'bullmq';
import type { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { controlPlaneMetrics } from '../../src/api/metrics.js';
import { MediaMetrics } from '../../src/media-server/metrics.js';
import type { NmsContext } from '../../src/media-server/nms.js';
import type { ChannelStore } from '../../src/channels/store.js';
import { Keys } from '../../src/redis/index.js';

/** The value of an unlabelled sample of a Prometheus text exposition. */
const sample = (text: string, name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]);

/** Blocks this event loop for `ms` inside a timer (so the loop's delay monitor sees the late tick), then scrapes. */
async function scrapeAfterBlocking(registry: Registry, ms: number): Promise<string> {
  await registry.metrics(); // the lag figures are of the delays since the previous scrape
  await new Promise<void>((resolve) =>
    setTimeout(() => {
      const until = Date.now() + ms;
      while (Date.now() < until);
      resolve();
    }, 30),
  );
  await new Promise((r) => setTimeout(r, 30));
  return registry.metrics();
}

describe('event-loop lag and process metrics', () => {
  const registries: [string, () => Registry][] = [
    ['media server', () => new MediaMetrics({ broadcasts: new Map() } as unknown as NmsContext).registry],
    [
      'API',
      () =>
        controlPlaneMetrics(
          { activeIds: async () => [], getMany: async () => [] } as unknown as ChannelStore,
          { zrange: async () => [], hgetall: async () => ({}) } as unknown as Redis,
          new Keys('t'),
          { getJobCounts: async () => ({}) } as unknown as Pick<Queue, 'getJobCounts'>,
        ),
    ],
  ];

  it.each(registries)('the %s registry shows a 150 ms stall of its event loop in seconds', async (_n, make) => {
    const text = await scrapeAfterBlocking(make(), 150);
    expect(sample(text, 'nodejs_eventloop_lag_max_seconds')).toBeGreaterThanOrEqual(0.12);
    expect(sample(text, 'nodejs_eventloop_lag_max_seconds')).toBeLessThan(5);
    expect(sample(text, 'nodejs_eventloop_lag_p99_seconds')).toBeGreaterThan(0);
    expect(sample(text, 'process_cpu_seconds_total')).toBeGreaterThan(0);
    expect(sample(text, 'process_resident_memory_bytes')).toBeGreaterThan(1e6);
  });
});
