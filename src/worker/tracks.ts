import type { ChannelCosts } from '../config/index.js';
import type { Logger } from '../log.js';
import type { ChannelLifecycle } from '../channels/lifecycle.js';
import { channelCost } from '../channels/cost.js';
import type { Channel } from '../channels/types.js';
import { anyConverted, planTracks, type ChannelTracks } from '../channels/tracks.js';
import type { StartFailureKind } from '../media/ffmpeg/process.js';
import type { ReportedCodecs } from '../media/ffmpeg/streams.js';

const modes = (t: ChannelTracks | undefined) => `${t?.video.mode ?? 'copied'}/${t?.audio?.mode ?? 'copied'}`;

/**
 * After a start that failed: the tracks to run ORIGINAL with next when ffmpeg's input report (`reported`) shows a
 * track the `current` plan copies though it cannot (an Opus, VP8, HEVC … upstream whose codecs were not known before
 * the start), or null when converting would change nothing or nothing was reported. Only an `unsupported` failure
 * (50008: an output cannot carry the codec) asks for it.
 */
export function tracksAfterFailure(
  kind: StartFailureKind,
  current: ChannelTracks | undefined,
  reported: ReportedCodecs | null,
): ChannelTracks | null {
  if (kind !== 'unsupported' || !reported) return null;
  const next = planTracks(reported);
  return anyConverted(next) && modes(next) !== modes(current) ? next : null;
}

/**
 * Once media flows: the tracks as ffmpeg reported them, for the channel view (the codecs filled in, modes unchanged),
 * and whether the plan must change because a track it copies does not fit (a rotated video: copying cannot rotate).
 * Null when nothing was reported.
 */
export function tracksWhenLive(
  current: ChannelTracks | undefined,
  reported: ReportedCodecs | null,
): { tracks: ChannelTracks; replan: boolean } | null {
  if (!reported) return null;
  const next = planTracks(reported);
  const replan = modes(next) !== modes(current) && anyConverted(next);
  if (replan) return { tracks: next, replan };
  // keep the modes the run has (a converted track stays converted), with what ffmpeg says of the codecs
  const video = { ...(current?.video ?? next.video), codec: next.video.codec };
  const audio = next.audio && { ...(current?.audio ?? next.audio), codec: next.audio.codec };
  return { tracks: { video, audio }, replan: false };
}

/**
 * The per-track plan of ORIGINAL over one run of a channel (none when the channel has no copied ORIGINAL tier: a
 * watermark or tiers only): starts from the record's (the ingest's codecs), changes at most once after a failed start
 * and once when media flows, each change saved in the record with the channel's cost.
 */
export class RunTracks {
  private current: ChannelTracks | undefined;
  private readonly applies: boolean;
  private retried = false;

  constructor(
    private readonly deps: {
      lifecycle: Pick<ChannelLifecycle, 'patchRun'>;
      costs: ChannelCosts;
      log: Logger;
      gen: number;
    },
    private readonly ch: Channel,
  ) {
    this.current = ch.tracks;
    this.applies = ch.option.rateTypes.includes(0) && !ch.watermark && !ch.mix;
  }

  /** The channel as plans are made of it: with the run's tracks. */
  channel(c: Channel): Channel {
    return this.current ? { ...c, tracks: this.current } : c;
  }

  /** After a failed start: whether to start again at once, converting what ffmpeg said it cannot copy (once a run). */
  async afterFailure(kind: StartFailureKind, reported: ReportedCodecs | null): Promise<boolean> {
    if (!this.applies || this.retried) return false;
    const next = tracksAfterFailure(kind, this.current, reported);
    if (!next) return false;
    this.retried = true;
    await this.save(next);
    return true;
  }

  /**
   * Once media flows: saves what ffmpeg reported; true when the run must start again converting (a rotated video) or
   * adding a silent audio track (no audio: every channel, not only those with ORIGINAL).
   */
  async whenLive(reported: ReportedCodecs | null): Promise<boolean> {
    const seen = tracksWhenLive(this.current, reported);
    // a mix encodes its own mixed audio (input 1): nothing to convert, never a silent track
    if (!seen || this.ch.mix || (!this.applies && seen.tracks.audio?.mode !== 'silent')) return false;
    const replan = seen.replan && !this.retried;
    if (replan) this.retried = true;
    if (replan || JSON.stringify(seen.tracks) !== JSON.stringify(this.current)) await this.save(seen.tracks);
    return replan;
  }

  private async save(tracks: ChannelTracks): Promise<void> {
    this.current = tracks;
    const cost = channelCost({ ...this.ch, tracks }, this.deps.costs);
    this.deps.log.info({ tracks }, anyConverted(tracks) ? 'converting tracks ORIGINAL cannot copy' : 'tracks');
    await this.deps.lifecycle
      .patchRun(this.ch.channelId, this.deps.gen, { tracks, cost })
      .catch((e: Error) => this.deps.log.debug({ err: e.message }, 'tracks not saved'));
  }
}
