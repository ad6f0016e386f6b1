import fs from 'node:fs/promises';
import path from 'node:path';
import type { Redis } from 'ioredis';
import type { Keys } from '../redis/index.js';
import { RelayError } from '../errors/index.js';
import { inspectPng } from './png.js';
import { InspectionLine } from './inspections.js';
import { diskFullRefusal, isDiskFullError, UPLOAD_DISK_HINT } from '../records/disk.js';
import type { StoragePolicy } from '../records/storage.js';

/** Where a watermark goes (README "Watermarks"). */
export interface WatermarkPlacement {
  corner: 'top-left' | 'top-right' | 'bottom-left' | 'bottom-right';
  /** Watermark width as a fraction of the video width. */
  relativeWidth: number;
  /** Distance from the corner as a fraction of the video width. */
  margin: number;
}

/** Largest watermark file accepted, in bytes. */
export const MAX_WATERMARK_BYTES = 1024 * 1024;
/** Largest watermark side, in pixels. */
export const MAX_WATERMARK_SIDE = 4096;
/**
 * Largest decoded watermark, in bytes: 64 MiB, a 4096x4096 8-bit RGBA logo (ffmpeg decodes the image again in every
 * channel that overlays it). A 16-bit or larger-than-4096² image past it is refused from its header.
 */
export const MAX_WATERMARK_DECODED_BYTES = 64 * 1024 * 1024;
/** Watermarks one app may hold unless RELAY_MAX_WATERMARKS_PER_APP says otherwise. */
export const DEFAULT_MAX_WATERMARKS_PER_APP = 100;

// Stores an entry unless the app already holds ARGV[3] (KEYS[1]: its hash; ARGV: id, entry, limit); 1 if stored.
const ADD_WITHIN_LIMIT = `
if redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1`;

/** Placement used when an upload does not say: top-right corner, 15 % of the video width, 2 % margin. */
export const DEFAULT_PLACEMENT: WatermarkPlacement = { corner: 'top-right', relativeWidth: 0.15, margin: 0.02 };

/** A registered watermark image. */
export interface Watermark {
  waterMarkId: number;
  sdkAppId: string;
  width: number;
  height: number;
  bytes: number;
  placement: WatermarkPlacement;
  createdAt: number;
}

/** Limits and admission of uploads; each has a default. */
export interface WatermarkRegistryOptions {
  /** Watermarks one app may hold (RELAY_MAX_WATERMARKS_PER_APP; default 100); one more is refused (50002, 409). */
  maxPerApp?: number;
  /** Free space (50007) and the account's storage quota (20102) of an upload; none: not checked. */
  storage?: Pick<StoragePolicy, 'assertCanStoreImage'>;
  /** The process's line of image inspections (2 at once, 16 waiting; more: 50005). */
  line?: InspectionLine;
}

/** Watermark images of each app: metadata in Redis, the PNG under the data folder. */
export class WatermarkRegistry {
  private readonly maxPerApp: number;
  private readonly line: InspectionLine;

  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly dir: string,
    private readonly opts: WatermarkRegistryOptions = {},
  ) {
    this.maxPerApp = opts.maxPerApp ?? DEFAULT_MAX_WATERMARKS_PER_APP;
    this.line = opts.line ?? new InspectionLine();
  }

  /** Path of a watermark's PNG. */
  file(sdkAppId: string, id: number): string {
    return path.join(this.dir, sdkAppId, `${id}.png`);
  }

  /**
   * Validates and stores a PNG of the app (its account's quota counts it); returns its entry with a new numeric
   * waterMarkId. Throws 50002 for a bad image (400), one too large (413) or an app at its watermark limit (409); 20102
   * (409) past the account's storage quota; 50007 (507) when the folder's disk is below the free-space threshold or
   * full; 50005 (503) when too many images wait to be checked. Nothing is left of a refused upload.
   */
  async add(
    app: { sdkAppId: string; accountId: string },
    png: Buffer,
    placement: WatermarkPlacement = DEFAULT_PLACEMENT,
  ): Promise<Watermark> {
    const { sdkAppId } = app;
    if (png.length > MAX_WATERMARK_BYTES)
      throw new RelayError(50002, `watermark larger than the limit of 1 MiB (${MAX_WATERMARK_BYTES} bytes)`, {
        status: 413,
      });
    if ((await this.redis.hlen(this.keys.watermarks(sdkAppId))) >= this.maxPerApp) throw this.atLimit(sdkAppId);
    await this.opts.storage?.assertCanStoreImage(app.accountId, png.length);
    const info = await this.line.run(() =>
      inspectPng(png, { maxSide: MAX_WATERMARK_SIDE, maxDecodedBytes: MAX_WATERMARK_DECODED_BYTES }),
    );
    if ('error' in info)
      throw new RelayError(50002, `watermark is not a valid PNG: ${info.error}`, {
        hint: `upload a complete PNG file of at most ${MAX_WATERMARK_SIDE}x${MAX_WATERMARK_SIDE} pixels and 64 MiB decoded (8-bit RGBA at that size) with Content-Type: image/png`,
      });
    const id = await this.redis.incr(this.keys.watermarkSeq());
    const file = this.file(sdkAppId, id);
    try {
      await fs.mkdir(path.dirname(file), { recursive: true });
      await fs.writeFile(`${file}.tmp`, png);
      await fs.rename(`${file}.tmp`, file);
    } catch (e) {
      await fs.rm(`${file}.tmp`, { force: true });
      throw isDiskFullError(e) ? diskFullRefusal('watermark images', UPLOAD_DISK_HINT) : e;
    }
    const wm: Watermark = {
      waterMarkId: id,
      sdkAppId,
      width: info.width,
      height: info.height,
      bytes: png.length,
      placement,
      createdAt: Date.now(),
    };
    // the count again, with the entry, in one step: uploads checked at the same moment cannot pass the limit together
    const key = this.keys.watermarks(sdkAppId);
    const stored = await this.redis
      .eval(ADD_WITHIN_LIMIT, 1, key, String(id), JSON.stringify(wm), this.maxPerApp)
      .catch(async (e: unknown) => {
        await fs.rm(file, { force: true }); // Redis did not answer: no entry, so no file either
        throw e;
      });
    if (!stored) {
      await fs.rm(file, { force: true });
      throw this.atLimit(sdkAppId);
    }
    return wm;
  }

  /** The refusal of an upload to an app that holds its limit of watermarks (50002, HTTP 409). */
  private atLimit(sdkAppId: string): RelayError {
    return new RelayError(50002, `app ${sdkAppId} already has ${this.maxPerApp} watermarks, the limit per app`, {
      status: 409,
      hint: 'delete unused watermarks (DELETE /v1/watermarks/{id}) first; operators set the limit with RELAY_MAX_WATERMARKS_PER_APP',
      details: { maxWatermarks: this.maxPerApp },
    });
  }

  /** One watermark of the app, or null. */
  async get(sdkAppId: string, id: number): Promise<Watermark | null> {
    const raw = await this.redis.hget(this.keys.watermarks(sdkAppId), String(id));
    return raw ? (JSON.parse(raw) as Watermark) : null;
  }

  /** The app's watermarks by id. */
  async list(sdkAppId: string): Promise<Watermark[]> {
    const all = await this.redis.hvals(this.keys.watermarks(sdkAppId));
    return all.map((r) => JSON.parse(r) as Watermark).sort((a, b) => a.waterMarkId - b.waterMarkId);
  }

  /** Removes a watermark (the caller checks that no running channel uses it). */
  async remove(sdkAppId: string, id: number): Promise<boolean> {
    const removed = await this.redis.hdel(this.keys.watermarks(sdkAppId), String(id));
    if (removed) await fs.rm(this.file(sdkAppId, id), { force: true });
    return removed > 0;
  }
}
