import type { Channel, ChannelState } from './types.js';

/** Outcome of an admission attempt: admitted, refused, or an interrupted channel of that upstream to resume. */
export type Admission =
  | { ok: true }
  | { ok: false; reason: 'already-pushing' | 'resumable'; channelId: string }
  | { ok: false; reason: 'room-full' | 'account-full' };

/** Fields to merge into a channel record; `null` removes the field. */
export type ChannelPatch = { [K in keyof Channel]?: Channel[K] | null };

/** What a compare-and-set did: whether it moved, and the state the channel has now ('' when there is no record). */
export interface Moved {
  ok: boolean;
  state: ChannelState | '';
  /** Refused because the caller's run generation is no longer the channel's (a newer runner owns it). */
  fenced?: boolean;
}

/** The identity fields that locate a channel's slots (upstream, room, account). */
export type ChannelSlots = Pick<Channel, 'channelId' | 'sdkAppId' | 'roomId' | 'userId' | 'srcType' | 'accountId'>;

/**
 * Channel records and their slots, as the lifecycle, the push service and the worker use them. ChannelStore keeps
 * them in Redis; test/fakes/channels.ts keeps them in memory with the same semantics.
 */
export interface ChannelRecords {
  /**
   * Writes a new channel if its upstream is not already pushing, its room has a free slot and its account is under
   * its channel limit (live and retained channels of all the account's apps) — all in one step.
   */
  admit(ch: Channel, maxPerRoom: number, accountLimit: number): Promise<Admission>;
  /** The channel record, or null. */
  get(channelId: string): Promise<Channel | null>;
  /**
   * Moves a channel to `to` if its state is one of `from` (any state when `from` is empty), merging `patch` and
   * appending the move to its history; `to` null only patches. With `gen`, only while the channel's `runGen` is
   * `gen` (else nothing changes and the answer says `fenced`). Only ChannelLifecycle calls it.
   */
  transition(
    channelId: string,
    from: readonly ChannelState[],
    to: ChannelState | null,
    reason: string,
    patch?: ChannelPatch,
    gen?: number,
  ): Promise<Moved>;
  /**
   * Begins a run of the channel: raises its `runGen` by one when it is starting, live or stopping, in one step.
   * Returns the generation it has then (unchanged in other states), or null when there is no record.
   */
  beginRun(channelId: string): Promise<number | null>;
  /** Frees the channel's upstream, room and account slots and its retention; `remove` also deletes the record. */
  release(ch: ChannelSlots, remove?: boolean): Promise<void>;
  /** Moves an interrupted channel out of its room's slots and the active set into retention until `until` (ms). */
  retain(ch: Pick<Channel, 'channelId' | 'sdkAppId' | 'roomId'>, until: number): Promise<void>;
  /** Takes a retained channel back into its room and the active set (false when the room has no free slot). */
  unretain(ch: Pick<Channel, 'channelId' | 'sdkAppId' | 'roomId'>, maxPerRoom: number): Promise<boolean>;
  /** Claims retained channels whose retention ended by `now` (each claimed once). */
  dueForRecycling(now: number): Promise<string[]>;
}
