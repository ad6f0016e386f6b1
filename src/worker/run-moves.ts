import type { Logger } from '../log.js';
import type { Channel } from '../channels/types.js';
import type { Moved } from '../channels/records.js';
import type { ChannelLifecycle } from '../channels/lifecycle.js';

/** How a run ended; `superseded`: a newer run of the channel (a higher run generation) owns it now. */
export type RunOutcome = 'stopped' | 'failed' | 'gone' | 'handover' | 'interrupted' | 'superseded';

/**
 * The lifecycle moves of one run of a channel, each fenced by the run's generation (`runGen`): once a newer run has
 * begun, a move changes nothing and the run ends as `superseded`. A move that lost to a stop finishes the stop.
 */
export class RunMoves {
  constructor(
    private readonly lifecycle: Pick<ChannelLifecycle, 'finishStop' | 'fail' | 'interrupt'>,
    private readonly gen: number,
    private readonly log: Logger,
  ) {}

  /** A move this run wanted did not happen: a newer run owns the channel, a stop won (finish it), or it is gone. */
  afterLost(ch: Channel, moved: Moved): Promise<RunOutcome> | RunOutcome {
    if (moved.fenced) return this.superseded();
    return moved.state === 'stopping' || moved.state === 'stopped' ? this.finishStop(ch) : 'gone';
  }

  /** A newer run of the channel has begun (here or on another worker): this one ends without a move. */
  superseded(): RunOutcome {
    this.log.info('a newer run of the channel took over: this run ends without a move');
    return 'superseded';
  }

  /** The upstream is gone: `interrupted`, resumed when the member publishes again. */
  async interrupt(ch: Channel, reason: string): Promise<RunOutcome> {
    const moved = await this.lifecycle.interrupt(ch, reason, this.gen);
    if (!moved.ok) return this.afterLost(ch, moved);
    this.log.info({ reason }, 'channel interrupted');
    return 'interrupted';
  }

  /** Ends a stop asked for (ffmpeg has ended), or one the run decided (`why`: in the history and push.stopped). */
  async finishStop(ch: Channel, why?: string): Promise<RunOutcome> {
    const moved = await this.lifecycle.finishStop(ch, why ?? 'stopped by request', this.gen, why !== undefined);
    if (moved.fenced) return this.superseded();
    if (moved.state === '') this.log.error('the channel record is gone from Redis (its data lost?): ffmpeg ended');
    if (!moved.ok) return 'gone';
    this.log.info('channel stopped');
    return 'stopped';
  }

  /** Fails the channel with a spec code and message (and a hint, which the start's refusal answers with). */
  async fail(ch: Channel, code: number, message: string, hint?: string): Promise<RunOutcome> {
    const moved = await this.lifecycle.fail(ch, { code, message, ...(hint ? { hint } : {}) }, this.gen);
    return moved.ok ? 'failed' : this.afterLost(ch, moved);
  }
}
