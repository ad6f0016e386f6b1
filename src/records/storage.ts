import fs from 'node:fs/promises';
import path from 'node:path';
import { RelayError } from '../errors/index.js';
import { assertFreeSpace, mib, UPLOAD_DISK_HINT } from './disk.js';

/*
 * The storage policy (README "Security": disk policy): free-space admission of starts with recording and of uploads
 * (50007), and each account's storage quota over its recordings and watermark images (20102).
 */

const MIB = 1024 * 1024;
/** How long a measured usage is reused (one walk of an app's recordings serves the starts of these seconds). */
const USAGE_CACHE_MS = 5000;

/** An account as the quota sees it: `storageQuotaMB` null or absent = unlimited. */
export interface QuotaAccount {
  accountId: string;
  storageQuotaMB?: number | null;
}

/** Where an account stands against its quota. */
export interface QuotaState {
  usedBytes: number;
  /** null: unlimited. */
  quotaMB: number | null;
  /** Whether usage has reached the quota (a start with recording is refused, a running recording stops). */
  over: boolean;
}

/** Quota math: usage in bytes against a quota in MiB (null or absent: unlimited); reached counts as over. */
export function quotaState(usedBytes: number, quotaMB: number | null | undefined): QuotaState {
  const quota = quotaMB ?? null;
  return { usedBytes, quotaMB: quota, over: quota !== null && usedBytes >= quota * MIB };
}

/** Bytes of every file under `dir` (0 when it does not exist). */
export async function treeBytes(dir: string): Promise<number> {
  let entries: import('node:fs').Dirent[];
  try {
    entries = await fs.readdir(dir, { withFileTypes: true });
  } catch {
    return 0;
  }
  let sum = 0;
  for (const e of entries) {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) sum += await treeBytes(full);
    else if (e.isFile())
      sum += await fs.stat(full).then(
        (s) => s.size,
        () => 0,
      );
  }
  return sum;
}

/** What the policy needs. */
export interface StoragePolicyDeps {
  recordsDir: string;
  hlsDir: string;
  watermarksDir: string;
  /** Free-space threshold in MiB (RELAY_MIN_FREE_MB); 0 turns admission off. */
  minFreeMB: number;
  /** The sdkAppIds of an account's apps (their recordings and watermark images are its usage). */
  appsOf(accountId: string): Promise<string[]>;
  /** An account's quota, for checks that start from an accountId (workers). */
  account?(accountId: string): Promise<QuotaAccount | null>;
}

/** Free-space admission and per-account recording quotas. */
export class StoragePolicy {
  private readonly cache = new Map<string, { at: number; bytes: Promise<number> }>();

  constructor(private readonly d: StoragePolicyDeps) {}

  /**
   * Bytes an app stores: its recordings (`records/<sdkAppId>/`) and watermark images (`watermarks/<sdkAppId>/`),
   * measured again when older than `maxAgeMs` (5 s).
   */
  appBytes(sdkAppId: string, maxAgeMs = USAGE_CACHE_MS, now = Date.now()): Promise<number> {
    const hit = this.cache.get(sdkAppId);
    if (hit && now - hit.at < maxAgeMs) return hit.bytes;
    const bytes = Promise.all([
      treeBytes(path.join(this.d.recordsDir, sdkAppId)),
      treeBytes(path.join(this.d.watermarksDir, sdkAppId)),
    ]).then(([records, images]) => records + images);
    this.cache.set(sdkAppId, { at: now, bytes });
    return bytes;
  }

  /** Bytes of the recordings and watermark images of all the account's apps (measures older than `maxAgeMs` taken again). */
  async usageBytes(accountId: string, maxAgeMs = USAGE_CACHE_MS): Promise<number> {
    const apps = await this.d.appsOf(accountId);
    return (await Promise.all(apps.map((a) => this.appBytes(a, maxAgeMs)))).reduce((s, b) => s + b, 0);
  }

  /** The account against its quota. */
  async quota(account: QuotaAccount, maxAgeMs = USAGE_CACHE_MS): Promise<QuotaState> {
    if (account.storageQuotaMB === undefined || account.storageQuotaMB === null) return quotaState(0, null);
    return quotaState(await this.usageBytes(account.accountId, maxAgeMs), account.storageQuotaMB);
  }

  /**
   * Admission of a start with recording: the records folder (and the live HLS folder when the channel writes HLS) must
   * keep RELAY_MIN_FREE_MB free (else 50007), and the account must be under its quota (else 20102).
   */
  async assertCanRecord(account: QuotaAccount, liveHls: boolean): Promise<void> {
    const dirs = [{ dir: this.d.recordsDir, what: 'recordings' }];
    if (liveHls) dirs.push({ dir: this.d.hlsDir, what: 'live HLS' });
    await assertFreeSpace(dirs, this.d.minFreeMB);
    const q = await this.quota(account);
    if (q.over)
      throw new RelayError(
        20102,
        `account ${account.accountId} uses ${mib(q.usedBytes)} MiB of storage (recordings and watermark images), its quota is ${q.quotaMB} MiB`,
        { details: { storageUsedBytes: q.usedBytes, storageQuotaMB: q.quotaMB } },
      );
  }

  /**
   * Admission of a watermark image of `bytes` for an app of `accountId`: the watermarks folder must keep
   * RELAY_MIN_FREE_MB free (else 50007), and the account's usage, measured now, plus the image must stay within its
   * quota (else 20102, with `storageUsedBytes` and `storageQuotaMB`). Uploads at the same moment may each pass.
   */
  async assertCanStoreImage(accountId: string, bytes: number): Promise<void> {
    await assertFreeSpace(
      [{ dir: this.d.watermarksDir, what: 'watermark images' }],
      this.d.minFreeMB,
      UPLOAD_DISK_HINT,
    );
    const account = await this.d.account?.(accountId);
    if (!account || account.storageQuotaMB === undefined || account.storageQuotaMB === null) return;
    const used = await this.usageBytes(accountId, 0);
    if (used + bytes > account.storageQuotaMB * MIB)
      throw new RelayError(
        20102,
        `account ${accountId} uses ${mib(used)} MiB of storage (recordings and watermark images); this image of ` +
          `${mib(bytes)} MiB would pass its quota of ${account.storageQuotaMB} MiB`,
        {
          hint: "delete unused watermarks (DELETE /v1/watermarks/{id}) or old recordings of the account's apps, or ask the operator to raise storageQuotaMB",
          details: { storageUsedBytes: used, storageQuotaMB: account.storageQuotaMB },
        },
      );
  }

  /**
   * For a running recording (checked every few seconds): the account's state, measured now, when it is over its quota;
   * else null (also without a quota).
   */
  async overQuota(accountId: string): Promise<QuotaState | null> {
    const account = await this.d.account?.(accountId);
    if (!account) return null;
    const q = await this.quota(account, 0);
    return q.over ? q : null;
  }
}
