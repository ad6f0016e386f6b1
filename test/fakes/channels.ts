import type { Admission, ChannelPatch, ChannelRecords, ChannelSlots, Moved } from '../../src/channels/records.js';
import { ChannelLifecycle, type EventSink, type LifecycleDeps } from '../../src/channels/lifecycle.js';
import type { ChannelEvent, MessageBus } from '../../src/channels/messages.js';
import { FINAL_STATES, type Channel, type ChannelState } from '../../src/channels/types.js';
import type { WebhookEventType } from '../../src/webhooks/index.js';
import type { Logger } from '../../src/log.js';
import { resolveOption } from '../../src/channels/options.js';

let seq = 0;
/** A channel record as the push service admits it (single tier, HLS), with a new id and user each time. */
export function testChannel(over: Partial<Channel> = {}): Channel {
  const channelId = `ch_${(++seq).toString(16).padStart(20, '0')}`;
  return {
    channelId,
    sdkAppId: '1400000001',
    accountId: 'acc',
    roomId: 1001,
    userId: `user${seq}`,
    srcType: 0,
    option: resolveOption({ encode: 1 }),
    input: { kind: 'ingest', streamName: 'x' },
    urls: [],
    hls: true,
    state: 'starting',
    createdAt: 1,
    history: [{ state: 'starting', at: 1, reason: 'start requested' }],
    ...over,
  };
}

const copy = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;
const upstreamKey = (ch: Pick<Channel, 'sdkAppId' | 'roomId' | 'userId' | 'srcType'>) =>
  `${ch.sdkAppId}:${ch.roomId}:${ch.srcType}:${ch.userId}`;
const roomKey = (ch: Pick<Channel, 'sdkAppId' | 'roomId'>) => `${ch.sdkAppId}:${ch.roomId}`;

/**
 * Channel records in memory with the semantics of ChannelStore's Lua scripts: admission with the upstream, room and
 * account checks in one step, compare-and-set transitions with history, release, retention and its claims.
 */
export class InMemoryChannelRecords implements ChannelRecords {
  readonly records = new Map<string, Channel>();
  readonly upstreams = new Map<string, string>();
  readonly rooms = new Map<string, Set<string>>();
  readonly accounts = new Map<string, Set<string>>();
  readonly active = new Set<string>();
  /** channelId → end of retention (ms). */
  readonly retained = new Map<string, number>();

  private set(map: Map<string, Set<string>>, key: string): Set<string> {
    const s = map.get(key) ?? new Set<string>();
    map.set(key, s);
    return s;
  }

  async admit(ch: Channel, maxPerRoom: number, accountLimit: number): Promise<Admission> {
    const existing = this.upstreams.get(upstreamKey(ch));
    const other = existing ? this.records.get(existing) : undefined;
    if (existing && other) {
      if (other.state === 'interrupted') return { ok: false, reason: 'resumable', channelId: existing };
      if (!FINAL_STATES.includes(other.state)) return { ok: false, reason: 'already-pushing', channelId: existing };
    }
    const room = this.set(this.rooms, roomKey(ch));
    for (const id of room) if (!this.records.has(id)) room.delete(id);
    if (room.size >= maxPerRoom) return { ok: false, reason: 'room-full' };
    const account = this.set(this.accounts, ch.accountId);
    for (const id of account) {
      const r = this.records.get(id);
      if (!r || FINAL_STATES.includes(r.state)) account.delete(id);
    }
    if (account.size >= accountLimit) return { ok: false, reason: 'account-full' };
    this.upstreams.set(upstreamKey(ch), ch.channelId);
    room.add(ch.channelId);
    this.records.set(ch.channelId, copy(ch));
    this.active.add(ch.channelId);
    account.add(ch.channelId);
    return { ok: true };
  }

  async get(channelId: string): Promise<Channel | null> {
    const ch = this.records.get(channelId);
    return ch ? copy(ch) : null;
  }

  async transition(
    channelId: string,
    from: readonly ChannelState[],
    to: ChannelState | null,
    reason: string,
    patch: ChannelPatch = {},
    gen?: number,
  ): Promise<Moved> {
    const ch = this.records.get(channelId);
    if (!ch) return { ok: false, state: '' };
    if (gen !== undefined && (ch.runGen ?? 0) !== gen) return { ok: false, state: ch.state, fenced: true };
    if (from.length > 0 && !from.includes(ch.state)) return { ok: false, state: ch.state };
    for (const [k, v] of Object.entries(copy(patch))) {
      if (v === null) delete (ch as unknown as Record<string, unknown>)[k];
      else (ch as unknown as Record<string, unknown>)[k] = v;
    }
    if (to) {
      ch.state = to;
      ch.history.push({ state: to, at: Date.now(), reason });
    }
    return { ok: true, state: ch.state };
  }

  async beginRun(channelId: string): Promise<number | null> {
    const ch = this.records.get(channelId);
    if (!ch) return null;
    if (!['starting', 'live', 'stopping'].includes(ch.state)) return ch.runGen ?? 0;
    ch.runGen = (ch.runGen ?? 0) + 1;
    return ch.runGen;
  }

  async release(ch: ChannelSlots, remove = false): Promise<void> {
    if (this.upstreams.get(upstreamKey(ch)) === ch.channelId) this.upstreams.delete(upstreamKey(ch));
    this.rooms.get(roomKey(ch))?.delete(ch.channelId);
    this.active.delete(ch.channelId);
    this.accounts.get(ch.accountId ?? 'default')?.delete(ch.channelId);
    if (remove) this.records.delete(ch.channelId);
    this.retained.delete(ch.channelId);
  }

  async retain(ch: Pick<Channel, 'channelId' | 'sdkAppId' | 'roomId'>, until: number): Promise<void> {
    this.rooms.get(roomKey(ch))?.delete(ch.channelId);
    this.active.delete(ch.channelId);
    this.retained.set(ch.channelId, until);
  }

  async unretain(ch: Pick<Channel, 'channelId' | 'sdkAppId' | 'roomId'>, maxPerRoom: number): Promise<boolean> {
    const room = this.set(this.rooms, roomKey(ch));
    for (const id of room) if (!this.records.has(id)) room.delete(id);
    if (!room.has(ch.channelId) && room.size >= maxPerRoom) return false;
    room.add(ch.channelId);
    this.active.add(ch.channelId);
    this.retained.delete(ch.channelId);
    return true;
  }

  async dueForRecycling(now: number): Promise<string[]> {
    const due = [...this.retained]
      .filter(([, until]) => until <= now)
      .sort((a, b) => a[1] - b[1])
      .slice(0, 100)
      .map(([id]) => id);
    for (const id of due) this.retained.delete(id);
    return due;
  }

  /** Everything held, as plain data (to compare before and after). */
  dump(): unknown {
    const sets = (m: Map<string, Set<string>>) =>
      Object.fromEntries([...m].filter(([, s]) => s.size).map(([k, s]) => [k, [...s].sort()]));
    return copy({
      records: Object.fromEntries(this.records),
      upstreams: Object.fromEntries(this.upstreams),
      rooms: sets(this.rooms),
      accounts: sets(this.accounts),
      active: [...this.active].sort(),
      retained: Object.fromEntries(this.retained),
    });
  }
}

/** A message bus that keeps what was published. */
export class RecordingBus implements Pick<MessageBus, 'publish'> {
  readonly events: ChannelEvent[] = [];
  readonly control: unknown[] = [];
  readonly media: unknown[] = [];

  async publish(topic: 'events' | 'media' | 'control', msg: unknown): Promise<void> {
    if (topic === 'events') this.events.push(msg as ChannelEvent);
    else this[topic].push(msg);
  }
}

/** A webhook outbox that keeps what was queued; `failing` makes every emit reject. */
export class RecordingSink implements EventSink {
  readonly emitted: { type: WebhookEventType; channelId: string; data?: Record<string, unknown> }[] = [];
  failing = false;

  async emit(type: WebhookEventType, ch: { channelId: string }, data?: Record<string, unknown>): Promise<void> {
    if (this.failing) throw new Error('webhook queue down');
    this.emitted.push({ type, channelId: ch.channelId, ...(data ? { data } : {}) });
  }
}

/** A push queue that keeps its jobs; `onAdd` plays a worker taking the job. */
export class FakePushQueue {
  readonly jobs = new Map<string, { name: string; data: { channelId: string } }>();
  onAdd: ((channelId: string) => Promise<void>) | null = null;
  /** What remove() answers: 1 when no worker holds the job yet. */
  removable = true;

  async add(name: string, data: { channelId: string }, opts?: { jobId?: string }): Promise<never> {
    this.jobs.set(opts?.jobId ?? data.channelId, { name, data });
    await this.onAdd?.(data.channelId);
    return undefined as never;
  }

  async remove(jobId: string): Promise<0 | 1> {
    if (!this.removable) return 0;
    return this.jobs.delete(jobId) ? 1 : 0;
  }
}

/** A logger that keeps its warnings (and ignores the rest). */
export function recordingLogger(): Logger & { warnings: unknown[][] } {
  const warnings: unknown[][] = [];
  const log = {
    warnings,
    warn: (...a: unknown[]) => {
      warnings.push(a);
    },
    info: () => undefined,
    debug: () => undefined,
    error: () => undefined,
    trace: () => undefined,
    fatal: () => undefined,
    child: () => log,
  };
  return log as unknown as Logger & { warnings: unknown[][] };
}

/** A lifecycle over in-memory records, with every dependency exposed for the test. */
export function fakeLifecycle(over: Partial<LifecycleDeps> & { layout: LifecycleDeps['layout'] }) {
  const records = new InMemoryChannelRecords();
  const bus = new RecordingBus();
  const sink = new RecordingSink();
  const queue = new FakePushQueue();
  const logger = recordingLogger();
  const lifecycle = new ChannelLifecycle({
    records,
    bus,
    sink,
    queue,
    logger,
    retentionMs: 60_000,
    maxPerRoom: 4,
    ...over,
  });
  return { lifecycle, records, bus, sink, queue, logger };
}
