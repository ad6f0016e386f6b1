import crypto from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Keys } from '../redis/index.js';
import { RelayError } from '../errors/index.js';
import { DEFAULT_ACCOUNT_ID } from '../accounts/index.js';

/** The development app created by `npm run relay` (and the tests). */
export const DEV_SDK_APP_ID = '1400000001';

/** A registered app: the control plane authenticates as sdkAppId + secretKey. */
export interface App {
  sdkAppId: string;
  secretKey: string;
  name: string;
  /** The account whose channel limit the app shares. */
  accountId: string;
}

const SDK_APP_ID = /^\d{1,20}$/;

// Apps registered before accounts existed belong to the default account.
function withAccount(app: App): App {
  return app.accountId ? app : { ...app, accountId: DEFAULT_ACCOUNT_ID };
}

/** Builds the `Authorization` header value for an app: HTTP Basic with sdkAppId as user and the secret key as password. */
export function authorizationFor(app: Pick<App, 'sdkAppId' | 'secretKey'>): string {
  return 'Basic ' + Buffer.from(`${app.sdkAppId}:${app.secretKey}`).toString('base64');
}

/** Compares two secrets in constant time (of their hashes, so lengths do not leak either). */
export function safeEqual(a: string, b: string): boolean {
  const ha = crypto.createHash('sha256').update(a).digest();
  const hb = crypto.createHash('sha256').update(b).digest();
  return crypto.timingSafeEqual(ha, hb);
}

/** Apps and their secret keys, kept in Redis. */
export class AppRegistry {
  constructor(private readonly redis: Redis, private readonly keys: Keys) {}

  /** Registers an app unless it exists; returns the stored app (an existing secret is kept). */
  async ensure(sdkAppId: string, name: string, secretKey?: string, accountId = DEFAULT_ACCOUNT_ID): Promise<App> {
    if (!SDK_APP_ID.test(sdkAppId)) throw new RelayError(50002, `sdkAppId must be 1-20 digits, got ${sdkAppId}`);
    const app: App = { sdkAppId, name, accountId, secretKey: secretKey ?? crypto.randomBytes(24).toString('base64url') };
    await this.redis.hsetnx(this.keys.apps(), sdkAppId, JSON.stringify(app));
    const stored = await this.get(sdkAppId);
    if (!stored) throw new Error(`app ${sdkAppId} vanished after registration`);
    return stored;
  }

  /** The app of that id, or null. */
  async get(sdkAppId: string): Promise<App | null> {
    const raw = await this.redis.hget(this.keys.apps(), sdkAppId);
    return raw ? withAccount(JSON.parse(raw) as App) : null;
  }

  /** Every app (with its secret: callers show it only once, at creation). */
  async list(): Promise<App[]> {
    return (await this.redis.hvals(this.keys.apps())).map((r) => withAccount(JSON.parse(r) as App)).sort((a, b) => a.sdkAppId.localeCompare(b.sdkAppId));
  }

  /** Removes an app; its running channels go on until stopped. */
  async remove(sdkAppId: string): Promise<boolean> {
    return (await this.redis.hdel(this.keys.apps(), sdkAppId)) > 0;
  }

  /** Checks an Authorization header; returns the app or throws 1001 (missing/bad credentials) / 1002 (unknown app). */
  async authenticate(header: string | undefined): Promise<App> {
    const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header ?? '');
    if (!m?.[1]) throw new RelayError(1001, 'permission error: missing or malformed Authorization header (expected Basic sdkAppId:secretKey)');
    const decoded = Buffer.from(m[1], 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    const sdkAppId = colon > 0 ? decoded.slice(0, colon) : '';
    if (!SDK_APP_ID.test(sdkAppId)) throw new RelayError(1001, 'permission error: malformed credentials');
    const app = await this.get(sdkAppId);
    if (!app) throw new RelayError(1002);
    if (!safeEqual(decoded.slice(colon + 1), app.secretKey)) throw new RelayError(1001, 'permission error: wrong secret key for this sdkAppId');
    return app;
  }
}

/** The secret shared by all relay processes to sign internal URLs (worker publish, ingest read); created once in Redis. */
export async function internalSecret(redis: Redis, keys: Keys): Promise<string> {
  await redis.set(keys.internalSecret(), crypto.randomBytes(32).toString('hex'), 'NX');
  const secret = await redis.get(keys.internalSecret());
  if (!secret) throw new Error('internal secret missing from Redis');
  return secret;
}

/** HMAC-SHA256 of a message as 32 hex characters. */
export function sign(secret: string, message: string): string {
  return crypto.createHmac('sha256', secret).update(message).digest('hex').slice(0, 32);
}

/** Whether a signature matches, in constant time. */
export function verifySignature(secret: string, message: string, signature: unknown): boolean {
  return typeof signature === 'string' && safeEqual(sign(secret, message), signature);
}
