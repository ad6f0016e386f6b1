import type { Redis } from 'ioredis';
import type { Keys } from '../redis/index.js';
import { RelayError } from '../errors/index.js';
import { newSecretKey, parseBasic, safeEqual } from '../auth/index.js';
import { DEFAULT_ACCOUNT_ID } from './accounts.js';

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
/** What a caller with an unknown sdkAppId or a wrong secret key is told: the same words for both. */
export const BAD_CREDENTIALS = 'permission error: unknown sdkAppId or wrong secret key';
/** Compared against when the app does not exist, so that answer takes the time a wrong key takes. */
const UNKNOWN_APP_KEY = newSecretKey();

// Apps registered before accounts existed belong to the default account.
function withAccount(app: App): App {
  return app.accountId ? app : { ...app, accountId: DEFAULT_ACCOUNT_ID };
}

/** Apps and their secret keys, kept in Redis. */
export class AppRegistry {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
  ) {}

  /** Registers an app unless it exists; returns the stored app (an existing secret is kept). */
  async ensure(sdkAppId: string, name: string, secretKey?: string, accountId = DEFAULT_ACCOUNT_ID): Promise<App> {
    const created = await this.create(sdkAppId, name, secretKey, accountId);
    if (created) return created;
    const stored = await this.get(sdkAppId);
    if (!stored) throw new Error(`app ${sdkAppId} vanished after registration`);
    return stored;
  }

  /** Registers an app; null when one of that id exists (one write wins, concurrent registrations included). */
  async create(
    sdkAppId: string,
    name: string,
    secretKey?: string,
    accountId = DEFAULT_ACCOUNT_ID,
  ): Promise<App | null> {
    if (!SDK_APP_ID.test(sdkAppId)) throw new RelayError(50002, `sdkAppId must be 1-20 digits, got ${sdkAppId}`);
    const app: App = { sdkAppId, name, accountId, secretKey: secretKey ?? newSecretKey() };
    return (await this.redis.hsetnx(this.keys.apps(), sdkAppId, JSON.stringify(app))) === 1 ? app : null;
  }

  /** The app of that id, or null. */
  async get(sdkAppId: string): Promise<App | null> {
    const raw = await this.redis.hget(this.keys.apps(), sdkAppId);
    return raw ? withAccount(JSON.parse(raw) as App) : null;
  }

  /** Every app (with its secret: callers show it only once, at creation). */
  async list(): Promise<App[]> {
    return (await this.redis.hvals(this.keys.apps()))
      .map((r) => withAccount(JSON.parse(r) as App))
      .sort((a, b) => a.sdkAppId.localeCompare(b.sdkAppId));
  }

  /** Removes an app; its running channels go on until stopped. */
  async remove(sdkAppId: string): Promise<boolean> {
    return (await this.redis.hdel(this.keys.apps(), sdkAppId)) > 0;
  }

  /**
   * Checks an Authorization header; returns the app or throws 1001 (HTTP 401). An unknown sdkAppId and a wrong secret
   * key answer alike — same code, message and hint, and both compare a key — so a caller cannot tell which app ids
   * exist. (1002 "account does not exist" is kept for an app whose account is gone, after authentication.)
   */
  async authenticate(header: string | undefined): Promise<App> {
    if (!/^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.test(header ?? ''))
      throw new RelayError(
        1001,
        'permission error: missing or malformed Authorization header (expected Basic sdkAppId:secretKey)',
      );
    const creds = parseBasic(header);
    if (!creds || !SDK_APP_ID.test(creds.user)) throw new RelayError(1001, 'permission error: malformed credentials');
    const app = await this.get(creds.user);
    if (!safeEqual(creds.password, app?.secretKey ?? UNKNOWN_APP_KEY) || !app)
      throw new RelayError(1001, BAD_CREDENTIALS);
    return app;
  }
}
