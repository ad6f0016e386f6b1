import type { Logger } from '../log.js';
import { redact, redactTargetUrls } from '../log.js';
import type { PushTarget, PushTargetStatus } from '../channels/types.js';
import { FfmpegProcess } from '../media/ffmpeg/process.js';
import { buildTargetArgs } from '../media/ffmpeg/target-args.js';
import { normaliseTargetUrl, TARGET_SCHEMES, type TargetScheme } from './check.js';
import { TargetMachine, type TargetNotice, type TargetPolicy } from './state.js';

/** What a target's supervisor needs from its run. */
export interface SupervisorDeps {
  ffmpegPath: string;
  policy: TargetPolicy;
  /** The tier to read, as an internal URL with a fresh single-use read token (a new one per attempt). */
  inputUrl: (t: PushTarget) => string;
  /** Throws (RelayError 50002) when the egress policy refuses the destination now: checked before each attempt. */
  check?: (url: string) => Promise<void>;
  /** The channel's own stream is silent now (its ffmpeg hangs or restarts): an attempt that ends now is no failure. */
  inputSilent?: () => boolean;
  /** A webhook to announce (target.failed, target.recovered). */
  notify: (notice: TargetNotice) => void;
  /** The target changed state (its status is worth writing now rather than at the next tick). */
  changed?: () => void;
  logger: Logger;
}

const WATCH_MS = 250;
/** 256 KiB (512 KiB once the kernel doubles it): 20 Mbit/s at 200 ms round trip, a frozen destination seen in seconds. */
const SEND_BUFFER_BYTES = 256 * 1024;
const ERROR_CHARS = 200;
/** The wait before reading the channel again once its stream ended (its ffmpeg restarts within a second or two). */
export const INPUT_GONE_WAIT_MS = 1000;
/**
 * How much longer than its read timeout (stallMs) a live target may send nothing before it is killed as stalled: a
 * silent input (the channel's own ffmpeg hanging) then ends ffmpeg first, on an error naming the media server, which is
 * no failure of the destination (progress comes every 0.5 s, so the last growth seen may be that much older).
 */
const STALL_GRACE_MS = 1500;
/** An egress refusal that only says the host does not resolve (now). */
const UNRESOLVED = /does not resolve/;

/** A command line or stderr line of a target's ffmpeg as logged: every rtmp(s)/srt URL cut to scheme and host. */
export function targetRedactor(text: string): string {
  return redact(redactTargetUrls(text));
}

/**
 * Whether an attempt ended because its input did, not its destination: ffmpeg exited 0 by itself (the end of its
 * input; a destination that drops makes it fail), or its last error names the media server (`origin`, host:port) the
 * input is read from — unless the destination is on that server too.
 */
export function inputEnded(
  exit: { code: number | null; expected: boolean; stderrTail: readonly string[] },
  origin: string,
  output: string,
): boolean {
  if (exit.expected) return false;
  if (exit.code === 0) return true;
  const input = `rtmp://${origin}/`;
  if (output.startsWith(input.slice(0, -1))) return false;
  return exit.stderrTail.slice(-3).some((l) => l.includes(input));
}
/** The last error of an attempt as stored and shown: one line, URLs cut to scheme and host, other secrets redacted. */
export function errorLine(text: string): string {
  return redact(redactTargetUrls(text.replace(/\s+/g, ' ').trim())).slice(0, ERROR_CHARS);
}

/**
 * Runs one push target: one ffmpeg at a time copying the channel's tier to the destination, watched for progress
 * (live once bytes have flowed for `confirmMs`, killed when a live one sends nothing for `stallMs` + 1.5 s), started again
 * after a backoff, until stopped or failed (TargetMachine). Never throws; stop() ends its ffmpeg and waits for it,
 * leaving the target `stopped` (unless failed) with its bytes of the run.
 */
export class TargetSupervisor {
  private readonly machine: TargetMachine;
  private ff: FfmpegProcess | null = null;
  private stopped = false;
  private wake: (() => void) | null = null;
  private loop: Promise<void> | null = null;
  /** Bytes sent by the ended attempts, and by the current one. */
  private bytesBefore = 0;
  private bytesNow = 0;
  private readonly log: Logger;

  constructor(
    readonly target: PushTarget,
    private readonly deps: SupervisorDeps,
  ) {
    this.machine = new TargetMachine(deps.policy, Date.now());
    this.log = deps.logger.child({ targetId: target.targetId });
  }

  start(): void {
    this.loop ??= this.run().catch((e: Error) => this.log.error({ err: errorLine(e.message) }, 'push target ended'));
  }

  status(now = Date.now()): PushTargetStatus {
    return this.machine.status(this.bytesBefore + this.bytesNow, now);
  }

  /** Ends the target's ffmpeg (and its retries) and waits until it is gone. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.ff?.close(); // SIGINT: the destination sees the stream end (SIGKILL after a second)
    await this.loop;
    this.machine.stopped(Date.now());
  }

  private async run(): Promise<void> {
    const output = normaliseTargetUrl(this.target.url); // a record written before URLs were stored normalised
    const scheme = output.split(':')[0] as TargetScheme;
    const { format, protocols } = TARGET_SCHEMES[scheme];
    while (!this.stopped) {
      const refusal = await this.refusal(output);
      if (this.stopped) break;
      if (refusal && UNRESOLVED.test(refusal)) {
        // a name that does not resolve (now): an attempt that failed, retried (DNS may answer again)
        this.machine.attemptStarted(Date.now());
        if (await this.ended(refusal)) break;
        continue;
      }
      if (refusal) {
        this.log.warn({ err: refusal }, 'push target refused by the egress policy');
        this.deps.notify(this.machine.refused(Date.now(), refusal).notice);
        this.deps.changed?.();
        break;
      }
      this.machine.attemptStarted(Date.now());
      this.deps.changed?.();
      const input = this.deps.inputUrl(this.target);
      const ff = new FfmpegProcess({
        ffmpegPath: this.deps.ffmpegPath,
        args: buildTargetArgs({
          input,
          output,
          format,
          outputProtocols: protocols,
          rwTimeoutUs: this.deps.policy.stallMs * 1000,
          sendBufferBytes: SEND_BUFFER_BYTES,
        }),
        logger: this.log,
        // nothing sent by then: the destination refused or never answered
        startTimeoutMs: Math.max(this.deps.policy.stallMs * 2, 4000),
        killGraceMs: 1000,
        redactor: targetRedactor, // the destination's key may be anywhere in its URL
      });
      this.ff = ff;
      const { error, inputGone } = await this.attempt(ff, input, output);
      this.bytesBefore += this.bytesNow;
      this.bytesNow = 0;
      if (this.stopped) break;
      if (inputGone) {
        this.machine.inputGone(Date.now());
        this.log.info({ err: error }, 'push target input ended (the channel’s stream): reading it again');
        this.deps.changed?.();
        await this.pause(INPUT_GONE_WAIT_MS);
      } else if (await this.ended(error)) break;
    }
  }

  // A failed attempt: announced if it was live, then the backoff; true once the target is failed.
  private async ended(error: string): Promise<boolean> {
    const after = this.machine.attemptEnded(Date.now(), error);
    this.log.warn({ err: error, state: this.machine.state, attempts: this.machine.attempts }, 'push target dropped');
    if (after.notice) this.deps.notify(after.notice);
    this.deps.changed?.();
    if (after.next === 'failed') return true;
    await this.pause(after.backoffMs);
    return false;
  }

  // Waits, or until stop() wakes it.
  private async pause(ms: number): Promise<void> {
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
    this.wake = null;
  }

  // The egress policy's refusal of the destination now (its DNS resolved again), if any.
  private async refusal(output: string): Promise<string | null> {
    try {
      await this.deps.check?.(output);
      return null;
    } catch (e) {
      return errorLine((e as Error).message);
    }
  }

  // One ffmpeg, from spawn to exit: returns why it ended, and whether its input (not its destination) ended it.
  private async attempt(
    ff: FfmpegProcess,
    input: string,
    output: string,
  ): Promise<{ error: string; inputGone: boolean }> {
    let grewAt = Date.now();
    let stalled: string | null = null;
    ff.on('progress', (p) => {
      const size = p.totalSize ?? 0;
      if (size <= this.bytesNow) return;
      this.bytesNow = size;
      grewAt = Date.now();
      const { changed, notice } = this.machine.sent(grewAt);
      if (notice) this.deps.notify(notice);
      if (changed) {
        this.log.info({ attempts: this.machine.attempts }, 'push target live (accepted by the destination)');
        this.deps.changed?.();
      }
    });
    let startError: string | null = null;
    ff.start().catch((e: Error) => (startError = e.message));
    const watch = setInterval(() => {
      if (this.machine.state !== 'live' || Date.now() - grewAt < this.deps.policy.stallMs + STALL_GRACE_MS) return;
      stalled = `stalled: nothing sent for ${Math.round((Date.now() - grewAt) / 1000)} s`;
      void ff.kill();
    }, WATCH_MS);
    try {
      const exit = await ff.done;
      const error = errorLine(
        stalled ?? exit.reason ?? startError ?? (exit.stderrTail.at(-1) || `exited (${exit.code ?? exit.signal})`),
      );
      const origin = /^rtmp:\/\/([^/]+)\//.exec(input)?.[1] ?? '';
      // ffmpeg 5.1 does not end on a silent RTMP input (its read timeout never fires there): ask the channel's stats
      const silent = this.deps.inputSilent?.() ?? false; // however it ended: killed as stalled, or no media in time
      return { error, inputGone: silent || (!stalled && inputEnded(exit, origin, output)) };
    } finally {
      clearInterval(watch);
    }
  }
}
