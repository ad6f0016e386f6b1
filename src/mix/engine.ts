import type { Logger } from '../log.js';
import type { SourceSpec } from '../media/ffmpeg/input.js';
import { PcmFifo, mixChunks } from './audio.js';
import { Composer, scaleFrame, slateOf, type Frame, type TileContent } from './composer.js';
import { Feeder } from './feeder.js';
import { layoutTiles, memberKey, type MixMember, type MixSpec, type Tile } from './layout.js';
import { MixPump, type EncoderPipes } from './pump.js';

/** Where a member can be read now; null while it does not publish. `close` ends what the read needs (its egress). */
export interface MemberRead {
  source: SourceSpec;
  env?: Readonly<Record<string, string>>;
  close?: () => Promise<void>;
}

export interface MixEngineDeps {
  ffmpegPath: string;
  logger: Logger;
  resolve(m: MixMember): Promise<MemberRead | null>;
  /** Delay before a member that is not (or no longer) publishing is looked up again. */
  retryMs?: number;
}

/** How soon a member that is away is looked up again (a registry read; its feeder starts once it publishes). */
const RETRY_MS = 500;
/** A feeder that ends sooner than this after its spawn failed: the next one waits 0.5 s, 1 s, 2 s … up to 8 s. */
const STEADY_MS = 5000;
const BACKOFF_MS = 500;
const BACKOFF_MAX_MS = 8000;

/** One member of the running mix: its feeder (and a successor for a new tile size), its last frame, its audio. */
interface Slot {
  member: MixMember;
  tile: Tile;
  feeder: Feeder | null;
  next: Feeder | null;
  last: Frame | null;
  slate: Frame | null;
  /** The last frame scaled to a new tile size, while the feeder of that size starts. */
  scaled?: { from: Frame; frame: Frame };
  fifo: PcmFifo;
  noAudio: boolean;
  /** An audio-only member: its feeder writes no picture, its tile shows the placeholder. */
  noVideo: boolean;
  /** Feeders in a row that ended right after their start (reset once one runs, or the member is away). */
  failures: number;
  retry: NodeJS.Timeout | null;
  /** A lookup or feeder start is under way. */
  busy: boolean;
}

/**
 * A running mix: one feeder per present member, the composed canvas and mixed audio paced into the encoder (MixPump).
 * Layout updates apply on the next frame; a new tile size gets a new feeder before the old one stops (the old frames
 * show clipped at the new place meanwhile). A member that stops publishing shows its slate (its last frame, dimmed
 * grey) and is silent until it publishes again.
 */
export class MixEngine {
  private readonly slots = new Map<string, Slot>();
  private tiles: Tile[] = [];
  private readonly composer: Composer;
  readonly pump: MixPump;
  private stopped = false;
  /** When a member last delivered a frame (or the mix began). */
  lastPresentAt = Date.now();

  constructor(
    private readonly deps: MixEngineDeps,
    private spec: MixSpec,
    background: Frame,
  ) {
    const { width, height, fps } = spec.canvas;
    this.composer = new Composer(width, height, background);
    this.pump = new MixPump(
      { width, height, fps, logger: deps.logger },
      (into) => this.frame(into),
      () => this.audio(),
    );
    this.update(spec);
  }

  get version(): number {
    return this.spec.version;
  }

  /** Applies a (validated) layout: members added, removed, moved; the canvas stays. */
  update(spec: MixSpec): void {
    this.spec = { ...spec, canvas: this.spec.canvas };
    this.tiles = layoutTiles(this.spec);
    const keep = new Set(this.tiles.map((t) => t.key));
    for (const [key, slot] of this.slots) if (!keep.has(key)) void this.drop(key, slot);
    for (const m of spec.members) {
      const key = memberKey(m);
      const tile = this.tiles.find((t) => t.key === key)!;
      const slot = this.slots.get(key);
      if (!slot) {
        const s: Slot = {
          member: m,
          tile,
          feeder: null,
          next: null,
          last: null,
          slate: null,
          fifo: new PcmFifo(),
          noAudio: false,
          noVideo: false,
          failures: 0,
          retry: null,
          busy: false,
        };
        this.slots.set(key, s);
        void this.feed(key, s);
        continue;
      }
      const resized = tile.w !== slot.tile.w || tile.h !== slot.tile.h || tile.fit !== slot.tile.fit;
      slot.member = m;
      slot.tile = tile;
      if (resized) slot.slate = null;
      if (resized && slot.feeder && !slot.noVideo) void this.feed(key, slot);
    }
  }

  /** Attaches the pacing to a (new) encoder's pipes. */
  attach(io: EncoderPipes): void {
    this.pump.attach(io);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.pump.detach();
    await Promise.all([...this.slots].map(([k, s]) => this.drop(k, s)));
  }

  private frame(into?: Buffer): Buffer {
    return this.composer.compose(this.tiles, (key) => this.content(key), into);
  }

  private content(key: string): TileContent {
    const s = this.slots.get(key);
    if (!s) return { frame: null, placeholder: true };
    if (s.feeder?.running && s.feeder.video && s.last) {
      if (s.last.w === s.tile.w && s.last.h === s.tile.h) return { frame: s.last, placeholder: false };
      // the tile changed size: its old frames, scaled, until the feeder of the new size delivers (make-before-break)
      if (s.scaled?.from !== s.last) s.scaled = { from: s.last, frame: scaleFrame(s.last, s.tile.w, s.tile.h) };
      return { frame: s.scaled.frame, placeholder: false };
    }
    // away, or audio-only: the placeholder (the last frame dimmed, or flat grey)
    s.slate ??= slateOf(s.last, s.tile.w, s.tile.h);
    return { frame: s.slate, placeholder: true };
  }

  private audio(): Buffer {
    const parts = [...this.slots.values()].map((s) => {
      const pcm = s.fifo.pull();
      const gain = s.member.mute ? 0 : (s.member.volume ?? 100) / 100;
      return { pcm: s.feeder?.running ? pcm : null, gain };
    });
    return mixChunks(parts);
  }

  // Starts a feeder for the slot's tile (a successor when one runs); looks again later when the member is away.
  private async feed(key: string, slot: Slot): Promise<void> {
    if (this.stopped || slot.busy || this.slots.get(key) !== slot) return;
    slot.busy = true;
    const again = (delayMs = this.deps.retryMs ?? RETRY_MS) => {
      if (this.stopped || this.slots.get(key) !== slot || slot.retry) return;
      slot.retry = setTimeout(() => {
        slot.retry = null;
        void this.feed(key, slot);
      }, delayMs);
    };
    let read: MemberRead | null = null;
    let err: Error | null = null;
    try {
      read = await this.deps.resolve(slot.member);
    } catch (e) {
      err = e as Error;
    }
    if (!read || this.stopped || this.slots.get(key) !== slot) {
      slot.busy = false;
      await read?.close?.().catch(() => undefined);
      // unreadable (its lookup or egress failed): as a feeder that fails at once, a growing delay, warned once
      if (err) return again(this.backoff(slot, key, err.message, 'mix member not readable'));
      // away: its tracks are looked at afresh when it publishes again
      if (!read) [slot.failures, slot.noAudio, slot.noVideo] = [0, false, false];
      return again();
    }
    const { tile } = slot;
    const padColour = this.spec.canvas.background ?? '#000000';
    const feeder = new Feeder({
      ffmpegPath: this.deps.ffmpegPath,
      source: read.source,
      spec: {
        width: tile.w,
        height: tile.h,
        fps: this.spec.canvas.fps,
        fit: tile.fit,
        padColour,
        audio: !slot.noAudio,
        video: !slot.noVideo,
      },
      ...(read.env ? { env: read.env } : {}),
      logger: this.deps.logger.child({ member: key }),
      sink: {
        frame: (f) => {
          if (slot.feeder !== feeder) return;
          slot.last = f;
          slot.slate = null;
          this.lastPresentAt = Date.now();
        },
        audio: (pcm) => {
          if (slot.feeder !== feeder) return;
          slot.fifo.push(pcm);
          if (!feeder.video) this.lastPresentAt = Date.now();
        },
      },
    });
    const replacing = slot.feeder;
    if (replacing) slot.next = feeder;
    else slot.feeder = feeder;
    void feeder.done.then(async (exit) => {
      await read.close?.().catch(() => undefined);
      if (slot.next === feeder) {
        slot.next = null;
        return again(); // the new size did not come: the old one keeps showing, try again
      }
      if (slot.feeder !== feeder || this.slots.get(key) !== slot) return; // replaced, or the member was removed
      slot.feeder = null;
      slot.slate = null;
      slot.fifo.clear();
      // a member without audio (or without video): again without that output, at once
      const missing = feeder.noVideo ? 'noVideo' : feeder.noAudio ? 'noAudio' : null;
      if (missing && !slot.noAudio && !slot.noVideo) {
        slot[missing] = true;
        if (missing === 'noVideo')
          this.deps.logger.info(
            { member: key },
            'mix member has no video: its audio is mixed, its tile shows the placeholder',
          );
        return void setTimeout(() => void this.feed(key, slot), 20);
      }
      if (missing) [slot.noAudio, slot.noVideo] = [false, false]; // neither track: look afresh next time
      if (Date.now() - feeder.spawnedAt >= STEADY_MS) {
        slot.failures = 0;
        this.deps.logger.info({ member: key }, 'mix member gone: placeholder shown');
        return again();
      }
      // ended right after its start: back off (0.5 s, 1 s … 8 s), logged once per streak
      const reason = feeder.reason ?? `exit ${exit.code ?? exit.signal}`;
      again(this.backoff(slot, key, reason, 'mix feeder ended right after its start'));
    });
    const ok = await feeder.started;
    slot.busy = false;
    if (ok && replacing && slot.next === feeder) {
      // make-before-break: the new size delivers; the old feeder goes
      slot.next = null;
      slot.feeder = feeder;
      slot.fifo.clear();
      await replacing.close();
    }
    if (ok && slot.feeder === feeder && feeder.video && (slot.tile.w !== feeder.w || slot.tile.h !== feeder.h))
      void this.feed(key, slot);
  }

  // The delay before the slot's next try after a failure in a row (0.5 s, 1 s … 8 s), warned on the streak's first.
  private backoff(slot: Slot, key: string, reason: string, what: string): number {
    const retryMs = Math.min(BACKOFF_MAX_MS, BACKOFF_MS * 2 ** slot.failures++);
    if (slot.failures === 1) {
      const msg = `${what}: placeholder shown, retried with a growing delay`;
      this.deps.logger.warn({ member: key, reason, retryMs, maxRetryMs: BACKOFF_MAX_MS }, msg);
    }
    return retryMs;
  }

  private async drop(key: string, slot: Slot): Promise<void> {
    this.slots.delete(key);
    if (slot.retry) clearTimeout(slot.retry);
    await Promise.all([slot.feeder?.close(), slot.next?.close()]);
  }
}
