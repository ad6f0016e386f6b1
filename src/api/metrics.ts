import { collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Keys } from '../redis/index.js';
import type { ChannelStore } from '../channels/store.js';
import { TARGET_STATES, type ChannelState } from '../channels/types.js';
import { liveWorkers } from '../queue/heartbeat.js';

const STATES: readonly ChannelState[] = ['starting', 'live', 'stopping', 'interrupted'];
/** One scrape reads Redis once: the gauges of a scrape share a snapshot this young. */
const SNAPSHOT_MS = 500;

type Labelled = { labels: Record<string, string>; value: number }[];
type Snapshot = Record<
  | 'channels'
  | 'fps'
  | 'speed'
  | 'frames'
  | 'restarts'
  | 'tracks'
  | 'jobs'
  | 'workerChannels'
  | 'workerConcurrency'
  | 'workerLoad'
  | 'workerCapacity'
  | 'targetState'
  | 'targetBytes',
  Labelled
>;

/**
 * Control-plane metrics, read from Redis at scrape time: channels by state, each running channel's fps, speed,
 * frames, restarts and whether ORIGINAL copies or converts each of its tracks, queue depth and failures, and each worker's channels against its concurrency and its load
 * (cores) against its capacity (cores); and the API process's own (prom-client's defaults): event-loop lag in seconds
 * (`nodejs_eventloop_lag_seconds`, and `_p50/_p90/_p99/_max…` of the delays since the previous scrape), `process_*`
 * CPU and memory, heap and GC.
 */
export function controlPlaneMetrics(
  store: ChannelStore,
  redis: Redis,
  keys: Keys,
  queue: Pick<Queue, 'getJobCounts'>,
): Registry {
  let cached: { at: number; value: Promise<Snapshot> } | null = null;
  const snapshot = (): Promise<Snapshot> => {
    if (!cached || Date.now() - cached.at > SNAPSHOT_MS) cached = { at: Date.now(), value: read() };
    return cached.value;
  };

  async function read(): Promise<Snapshot> {
    const s: Snapshot = {
      channels: [],
      fps: [],
      speed: [],
      frames: [],
      restarts: [],
      tracks: [],
      jobs: [],
      workerChannels: [],
      workerConcurrency: [],
      workerLoad: [],
      workerCapacity: [],
      targetState: [],
      targetBytes: [],
    };
    const ids = [...new Set([...(await store.activeIds()), ...(await redis.zrange(keys.retainedChannels(), 0, -1))])];
    const counts = new Map<string, number>(STATES.map((st) => [st, 0]));
    for (const ch of await store.getMany(ids)) {
      const id = ch.channelId;
      counts.set(ch.state, (counts.get(ch.state) ?? 0) + 1);
      for (const t of ch.state === 'live' ? (ch.pushTargets ?? []) : []) {
        const st = ch.targetStatus?.[t.targetId]; // labelled by ids, never by the URL (a secret)
        const labels = { channel: id, target: t.targetId };
        for (const state of TARGET_STATES)
          s.targetState.push({ labels: { ...labels, state }, value: (st?.state ?? 'connecting') === state ? 1 : 0 });
        s.targetBytes.push({ labels, value: st?.bytesSent ?? 0 });
      }
      if (ch.state !== 'live' || !ch.stats) continue;
      const labels = { channel: id };
      s.fps.push({ labels, value: ch.stats.fps });
      s.speed.push({ labels, value: ch.stats.speed });
      s.frames.push({ labels, value: ch.stats.frames });
      s.restarts.push({ labels, value: ch.restarts ?? 0 });
      for (const [track, t] of Object.entries(ch.tracks ?? {}))
        if (t) {
          const converted = t.mode === 'converted';
          const to = t.to ?? t.codec ?? 'unknown';
          s.tracks.push({ labels: { channel: id, track, codec: t.codec ?? 'unknown', to }, value: converted ? 1 : 0 });
        }
    }
    for (const [state, n] of counts) s.channels.push({ labels: { state }, value: n });
    const c = await queue.getJobCounts('waiting', 'active', 'delayed', 'failed', 'completed');
    for (const [state, n] of Object.entries(c)) s.jobs.push({ labels: { state }, value: n });
    for (const w of await liveWorkers(redis, keys)) {
      const labels = { worker: w.workerId };
      s.workerChannels.push({ labels, value: w.channels });
      s.workerConcurrency.push({ labels, value: w.concurrency });
      s.workerLoad.push({ labels, value: w.load });
      s.workerCapacity.push({ labels, value: w.capacity });
    }
    return s;
  }

  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const gauge = (name: string, help: string, labelNames: string[], key: keyof Snapshot) =>
    new Gauge({
      name,
      help,
      labelNames,
      registers: [registry],
      async collect() {
        const s = await snapshot();
        this.reset();
        for (const { labels, value } of s[key]) this.set(labels, value);
      },
    });
  gauge('relay_channels', 'Channels by state (running and retained)', ['state'], 'channels');
  gauge('relay_channel_fps', 'Frames per second ffmpeg writes, per channel', ['channel'], 'fps');
  gauge('relay_channel_speed', 'ffmpeg speed relative to real time (1 = real time), per channel', ['channel'], 'speed');
  gauge('relay_channel_frames', 'Frames written in the current run, per channel', ['channel'], 'frames');
  gauge(
    'relay_channel_restarts',
    'ffmpeg restarts (crash or stall) in the current run, per channel',
    ['channel'],
    'restarts',
  );
  gauge(
    'relay_channel_track_converted',
    "1 when ORIGINAL converts the track (codec → to), 0 when it copies it, per live channel's video and audio",
    ['channel', 'track', 'codec', 'to'],
    'tracks',
  );
  gauge(
    'relay_push_target_state',
    "1 for a live channel's push target's state (connecting, live, retrying, failed, stopped), else 0",
    ['channel', 'target', 'state'],
    'targetState',
  );
  gauge(
    'relay_push_target_bytes',
    "Bytes a live channel's push target was sent by the channel's current run",
    ['channel', 'target'],
    'targetBytes',
  );
  gauge('relay_queue_jobs', 'Push jobs by queue state', ['state'], 'jobs');
  gauge('relay_worker_channels', 'Channels a worker runs', ['worker'], 'workerChannels');
  gauge('relay_worker_concurrency', 'Channels a worker may run at once', ['worker'], 'workerConcurrency');
  gauge(
    'relay_worker_load_cores',
    "CPU cores a worker's channels are expected to use (sum of their costs)",
    ['worker'],
    'workerLoad',
  );
  gauge(
    'relay_worker_capacity',
    'CPU cores a worker may fill with channels (its capacity; compare relay_worker_load_cores)',
    ['worker'],
    'workerCapacity',
  );
  return registry;
}

/** `relay_redis_data_losses`: times this process found that Redis had lost its data (its boot marker gone). */
export function addBootMetric(registry: Registry, status: () => { dataLosses: number }): void {
  new Gauge({
    name: 'relay_redis_data_losses',
    help: 'Times this API process found that Redis had lost its data (boot marker missing or changed) since it started',
    registers: [registry],
    collect() {
      this.set(status().dataLosses);
    },
  });
}
