import type { RelayConfig } from '../config/index.js';
import type { Logger } from '../log.js';
import type { App } from '../tenants/apps.js';
import type { RoomRegistry } from '../rooms/registry.js';
import type { SrcType } from '../rooms/model.js';
import { ingestPublishUrl } from '../rooms/ingest.js';
import { FfmpegProcess } from '../media/ffmpeg/process.js';
import { loopPublishArgs } from '../media/ffmpeg/args.js';

/** A member of the sample room and the fixture it publishes. */
export interface SampleMember {
  roomId: number;
  userId: string;
  srcType: SrcType;
  file: string;
}

/** Room 1001: alice's camera, bob's camera and bob's screen share. */
export function sampleMembers(fixtureDir: string): SampleMember[] {
  return [
    { roomId: 1001, userId: 'alice', srcType: 0, file: `${fixtureDir}/alice-camera.mp4` },
    { roomId: 1001, userId: 'bob', srcType: 0, file: `${fixtureDir}/bob-camera.mp4` },
    { roomId: 1001, userId: 'bob', srcType: 1, file: `${fixtureDir}/bob-screen.mp4` },
  ];
}

/**
 * Members publishing fixtures in a loop into the built-in ingest, as real members would: each is one ffmpeg,
 * restarted a second after it dies, until close().
 */
export class SampleRoom {
  private readonly feeders = new Map<SampleMember, FfmpegProcess>();
  private closed = false;

  constructor(
    private readonly config: RelayConfig,
    private readonly app: App,
    private readonly logger: Logger,
  ) {}

  /** Starts every member and waits until the registry lists them all. */
  async start(members: readonly SampleMember[], rooms: RoomRegistry, timeoutMs = 15000): Promise<void> {
    for (const m of members) this.feed(m);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const listed = await Promise.all(members.map((m) => rooms.get(this.app.sdkAppId, m.roomId, m.userId, m.srcType)));
      if (listed.every(Boolean)) return;
      if (Date.now() > deadline) throw new Error('sample members did not appear on the ingest in time');
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  private feed(m: SampleMember): void {
    if (this.closed) return;
    const url = ingestPublishUrl('127.0.0.1', this.config.rtmpPort, this.app.secretKey, {
      sdkAppId: this.app.sdkAppId,
      ...m,
    });
    const ff = new FfmpegProcess({
      ffmpegPath: this.config.ffmpegPath,
      args: loopPublishArgs(m.file, url),
      logger: this.logger.child({ member: `${m.userId}/${m.srcType}` }),
      startTimeoutMs: 10000,
    });
    this.feeders.set(m, ff);
    ff.once('exit', () => {
      if (this.closed) return;
      this.logger.warn({ member: m.userId, srcType: m.srcType }, 'sample member stopped publishing; restarting in 1 s');
      setTimeout(() => this.feed(m), 1000);
    });
    ff.start().catch(() => undefined);
  }

  /** Stops every member. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.feeders.values()].map((f) => f.close()));
  }
}
