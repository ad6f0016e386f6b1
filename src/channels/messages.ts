/**
 * Every message the relay's processes exchange over Redis pub/sub, with one parser each (a malformed or foreign
 * message parses to null and is dropped). Three topics, each a Redis pub/sub channel under the key prefix:
 *
 * - `events`  (ChannelEvent): a channel changed state. Published by the lifecycle module only; read by API waiters,
 *   media servers (to end viewers) and nobody else.
 * - `media`   (MediaEvent): facts the media plane observed — a channel's stream carried its first keyframe (the
 *   worker goes live on it), a member published into the ingest (the control side may resume its channel).
 *   The media plane only reports; it never changes channel state.
 * - `control` (ControlMessage): commands to the worker that runs a channel.
 *
 * Pub/sub is at most once: every receiver also has a slower path through the channel record (see ChannelWaiter,
 * ChannelRunner's record check), so a message lost across a Redis reconnect delays, never breaks.
 */
import type { Redis } from 'ioredis';
import type { Keys } from '../redis/index.js';
import { SRC_TYPE_NAMES, type SrcType } from '../rooms/model.js';
import { CHANNEL_ID_PATTERN, CHANNEL_STATES, type ChannelState } from './types.js';

/** A channel's state changed. */
export interface ChannelEvent {
  channelId: string;
  state: ChannelState;
  /** SPEC code of a failure. */
  code?: number;
  message?: string;
  /** live again after an interruption or a worker change */
  resumed?: boolean;
}

/** What the media plane observed. */
export type MediaEvent =
  /** A channel's stream (a tier) received its first video keyframe: viewers can play from now on. `at` in ms. */
  | { type: 'keyframe'; channelId: string; stream: string; at: number }
  /** A member's signed publish into the built-in ingest was accepted and registered. */
  | { type: 'member-published'; sdkAppId: string; roomId: number; userId: string; srcType: SrcType; at: number };

/** A command to the worker that runs the channel: stop it, or read its push targets again (one was added or removed). */
export interface ControlMessage {
  /** `stop`: end the run; `targets`: read its push targets again; `mix-layout`: a mix's layout changed in its record, apply it now. */
  type: 'stop' | 'targets' | 'mix-layout';
  channelId: string;
}

type Json = Record<string, unknown>;
const parse = (raw: string): Json | null => {
  try {
    const v: unknown = JSON.parse(raw);
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : null;
  } catch {
    return null;
  }
};
const isChannelId = (v: unknown): v is string => typeof v === 'string' && CHANNEL_ID_PATTERN.test(v);
const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v);

/** Parses a ChannelEvent; null when it is not one. */
export function parseChannelEvent(raw: string): ChannelEvent | null {
  const m = parse(raw);
  if (!m || !isChannelId(m.channelId) || !(CHANNEL_STATES as readonly unknown[]).includes(m.state)) return null;
  return {
    channelId: m.channelId,
    state: m.state as ChannelState,
    ...(isInt(m.code) ? { code: m.code } : {}),
    ...(typeof m.message === 'string' ? { message: m.message } : {}),
    ...(m.resumed === true ? { resumed: true } : {}),
  };
}

/** Parses a MediaEvent; null when it is not one. */
export function parseMediaEvent(raw: string): MediaEvent | null {
  const m = parse(raw);
  if (!m || !isInt(m.at)) return null;
  if (m.type === 'keyframe' && isChannelId(m.channelId) && typeof m.stream === 'string') {
    return { type: 'keyframe', channelId: m.channelId, stream: m.stream, at: m.at };
  }
  if (
    m.type === 'member-published' &&
    typeof m.sdkAppId === 'string' &&
    isInt(m.roomId) &&
    typeof m.userId === 'string' &&
    (m.srcType === 0 || m.srcType === 1)
  ) {
    return {
      type: 'member-published',
      sdkAppId: m.sdkAppId,
      roomId: m.roomId,
      userId: m.userId,
      srcType: m.srcType,
      at: m.at,
    };
  }
  return null;
}

/** Parses a ControlMessage; null when it is not one. */
export function parseControlMessage(raw: string): ControlMessage | null {
  const m = parse(raw);
  const type = m?.type === 'stop' || m?.type === 'targets' || m?.type === 'mix-layout' ? m.type : null;
  return type && isChannelId(m!.channelId) ? { type, channelId: m!.channelId } : null;
}

interface Topics {
  events: ChannelEvent;
  media: MediaEvent;
  control: ControlMessage;
}
export type Topic = keyof Topics;
const PARSERS: { [T in Topic]: (raw: string) => Topics[T] | null } = {
  events: parseChannelEvent,
  media: parseMediaEvent,
  control: parseControlMessage,
};

/** A short label of a member for logs (`alice/camera`). */
export function memberLabel(m: { userId: string; srcType: SrcType }): string {
  return `${m.userId}/${SRC_TYPE_NAMES[m.srcType]}`;
}

/**
 * Typed publish and subscribe over one command connection and one subscriber connection (ioredis needs a dedicated
 * one for subscriptions). A process makes one bus and hands it to every part that sends or listens.
 */
export class MessageBus {
  private readonly handlers = new Map<Topic, Set<(msg: never) => void>>();
  private readonly subscribed = new Map<Topic, Promise<unknown>>();
  private listening = false;

  constructor(
    private readonly redis: Redis,
    private readonly subscriber: Redis | null,
    private readonly keys: Keys,
  ) {}

  private channelOf(topic: Topic): string {
    return topic === 'events' ? this.keys.events() : topic === 'media' ? this.keys.media() : this.keys.control();
  }

  /** Publishes one message on its topic. */
  async publish<T extends Topic>(topic: T, msg: Topics[T]): Promise<void> {
    await this.redis.publish(this.channelOf(topic), JSON.stringify(msg));
  }

  /** Calls `fn` with every well-formed message of the topic until the returned function is called. */
  async subscribe<T extends Topic>(topic: T, fn: (msg: Topics[T]) => void): Promise<() => Promise<void>> {
    if (!this.subscriber) throw new Error('this message bus was made without a subscriber connection');
    const sub = this.subscriber;
    if (!this.listening) {
      this.listening = true;
      sub.on('message', (channel: string, raw: string) => {
        const t = (['events', 'media', 'control'] as const).find((x) => this.channelOf(x) === channel);
        if (!t) return;
        const msg = PARSERS[t](raw);
        if (msg) for (const h of this.handlers.get(t) ?? []) (h as (m: typeof msg) => void)(msg);
      });
    }
    const set = this.handlers.get(topic) ?? new Set();
    this.handlers.set(topic, set);
    const handler = fn as (msg: never) => void;
    set.add(handler);
    if (!this.subscribed.has(topic)) this.subscribed.set(topic, sub.subscribe(this.channelOf(topic)));
    await this.subscribed.get(topic);
    return async () => {
      set.delete(handler);
      if (set.size === 0 && this.handlers.get(topic) === set) {
        this.handlers.delete(topic);
        this.subscribed.delete(topic);
        await sub.unsubscribe(this.channelOf(topic)).catch(() => undefined);
      }
    };
  }

  /** Drops every subscription of this bus. */
  async close(): Promise<void> {
    const topics = [...this.subscribed.keys()];
    this.handlers.clear();
    this.subscribed.clear();
    if (this.subscriber && topics.length)
      await this.subscriber.unsubscribe(...topics.map((t) => this.channelOf(t))).catch(() => undefined);
  }
}
