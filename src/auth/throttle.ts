/**
 * Throttling of failed credential attempts (app credentials and the admin token), per client address and per
 * sdkAppId, counted in Redis so that every API and media process sees the same counts (rate-limiter-flexible, with a
 * per-process in-memory limiter taking over while Redis does not answer). Successful attempts are never counted.
 *
 * A client address past its limit is refused before its credentials are looked at, whatever they are. An sdkAppId
 * past its limit (guessing spread over many addresses) is refused likewise, except from an address that presented
 * that app's correct key within the last hour: a guessing campaign cannot lock a working tenant out. Known and unknown
 * sdkAppIds are counted alike, so the throttle tells nothing about which ids exist.
 */
import type { Redis } from 'ioredis';
import {
  RateLimiterMemory,
  RateLimiterRedis,
  type RateLimiterAbstract,
  type RateLimiterRes,
} from 'rate-limiter-flexible';
import { RelayError } from '../errors/index.js';
import { isAdmin, parseBasic } from './index.js';

/** How many failures within a window are allowed, and how long a client past them is refused. */
export interface ThrottleLimit {
  /** Failed attempts allowed within the window; the next one blocks. */
  failures: number;
  /** The window, in seconds. */
  windowSeconds: number;
  /** How long a client past the limit is refused, in seconds. */
  blockSeconds: number;
}

/** Per client address: 30 failed attempts within 10 minutes, then 10 minutes refused. */
export const ADDRESS_LIMIT: ThrottleLimit = { failures: 30, windowSeconds: 600, blockSeconds: 600 };
/** Per sdkAppId, from any address: 100 failed attempts within 10 minutes, then 10 minutes refused. */
export const APP_LIMIT: ThrottleLimit = { failures: 100, windowSeconds: 600, blockSeconds: 600 };
/** An address that presented an app's correct key is let through that app's block for this long, in seconds. */
const KNOWN_GOOD_SECONDS = 3600;

/** Who presents credentials: the client's address and, for app credentials, the sdkAppId it claims. */
export interface Claimant {
  address: string;
  sdkAppId?: string;
}

/** Options of a throttle; without `redis` it counts in this process only. */
export interface ThrottleOptions {
  redis?: Redis;
  /** Key prefix (the deployment's RELAY_REDIS_PREFIX). */
  prefix?: string;
  address?: ThrottleLimit;
  app?: ThrottleLimit;
}

function limiter(o: ThrottleOptions, name: string, l: ThrottleLimit): RateLimiterAbstract {
  const opts = {
    keyPrefix: `${o.prefix ?? 'relay'}:authfail:${name}`,
    points: l.failures,
    duration: l.windowSeconds,
    blockDuration: l.blockSeconds,
  };
  const memory = new RateLimiterMemory(opts);
  return o.redis
    ? new RateLimiterRedis({ ...opts, storeClient: o.redis, rejectIfRedisNotReady: true, insuranceLimiter: memory })
    : memory;
}

/** Refuses, counts and forgives credential attempts (see the module comment). */
export class CredentialThrottle {
  private readonly byAddress: RateLimiterAbstract;
  private readonly byApp: RateLimiterAbstract;
  private readonly limits: { address: ThrottleLimit; app: ThrottleLimit };
  /** Known-good (sdkAppId, address) pairs this process marked lately, so a busy client does not write each time. */
  private readonly marked = new Map<string, number>();
  private readonly known = new Map<string, number>();

  constructor(private readonly o: ThrottleOptions = {}) {
    this.limits = { address: o.address ?? ADDRESS_LIMIT, app: o.app ?? APP_LIMIT };
    this.byAddress = limiter(o, 'addr', this.limits.address);
    this.byApp = limiter(o, 'app', this.limits.app);
  }

  /**
   * Runs a credential check for `who` under the throttle: throws RelayError 1001 with HTTP 429 (`retryAfterMs` in its
   * details, which the API turns into Retry-After) when the client is blocked, without running the check; counts a
   * check that throws RelayError 1001 as a failure (and rethrows it); returns what a passing check returns. A request
   * that presents no `Authorization` header is no credential attempt: it is checked as is, neither refused nor counted.
   */
  async guard<T>(who: Claimant, header: string | undefined, check: () => Promise<T> | T): Promise<T> {
    if (!header) return check();
    await this.assertNotBlocked(who);
    let out: T;
    try {
      out = await check();
    } catch (e) {
      if (e instanceof RelayError && e.code === 1001) await this.failed(who);
      throw e;
    }
    if (who.sdkAppId) await this.markKnown(who.sdkAppId, who.address);
    return out;
  }

  private async assertNotBlocked(who: Claimant): Promise<void> {
    const byAddress = await this.blockedFor(this.byAddress, who.address, this.limits.address);
    if (byAddress !== null) throw refusal('from this address', byAddress);
    if (!who.sdkAppId) return;
    const byApp = await this.blockedFor(this.byApp, who.sdkAppId, this.limits.app);
    if (byApp !== null && !(await this.isKnown(who.sdkAppId, who.address))) throw refusal('for this sdkAppId', byApp);
  }

  /** Milliseconds a key stays blocked, or null; a store that fails to answer blocks nobody. */
  private async blockedFor(l: RateLimiterAbstract, key: string, limit: ThrottleLimit): Promise<number | null> {
    const res: RateLimiterRes | null = await l.get(key).catch(() => null);
    return res && res.consumedPoints > limit.failures ? Math.max(res.msBeforeNext, 1000) : null;
  }

  private async failed(who: Claimant): Promise<void> {
    // a rejection is the limit being reached (or the store failing): the attempt is answered 1001 either way
    await Promise.all([
      this.byAddress.consume(who.address).catch(() => undefined),
      who.sdkAppId ? this.byApp.consume(who.sdkAppId).catch(() => undefined) : undefined,
    ]);
  }

  private async markKnown(sdkAppId: string, address: string): Promise<void> {
    const pair = `${sdkAppId}:${address}`;
    const now = Date.now();
    if ((this.marked.get(pair) ?? 0) > now - 300_000) return;
    if (this.marked.size > 10_000) this.marked.clear();
    if (this.known.size > 10_000) this.known.clear();
    this.marked.set(pair, now);
    this.known.set(pair, now + KNOWN_GOOD_SECONDS * 1000);
    await this.o.redis?.set(this.knownKey(pair), '1', 'EX', KNOWN_GOOD_SECONDS).catch(() => undefined);
  }

  private async isKnown(sdkAppId: string, address: string): Promise<boolean> {
    const pair = `${sdkAppId}:${address}`;
    if ((this.known.get(pair) ?? 0) > Date.now()) return true;
    return (await this.o.redis?.exists(this.knownKey(pair)).catch(() => 0)) === 1;
  }

  private knownKey(pair: string): string {
    return `${this.o.prefix ?? 'relay'}:authok:${pair}`;
  }
}

function refusal(scope: string, retryAfterMs: number): RelayError {
  return new RelayError(
    1001,
    `too many failed credential attempts ${scope}: retry in ${Math.ceil(retryAfterMs / 1000)} s`,
    {
      status: 429,
      hint: 'check the credentials (sdkAppId and secret key, or the admin token), then retry after Retry-After seconds',
      details: { retryAfterMs },
    },
  );
}

/** The sdkAppId an HTTP Basic `Authorization` value claims (digits only), for the per-app count. */
export function claimedApp(header: string | undefined): string | undefined {
  const user = parseBasic(header)?.user;
  return user && /^\d{1,20}$/.test(user) ? user : undefined;
}

/**
 * Checks the admin token under the throttle: resolves when `header` carries `token`; throws `refused` (a RelayError
 * 1001) when it does not, or when no token is set (then nothing is counted), and the throttle's 429 when the address
 * is blocked.
 */
export async function guardAdmin(
  throttle: CredentialThrottle,
  address: string,
  header: string | undefined,
  token: string | null,
  refused: RelayError,
): Promise<void> {
  if (!token) throw refused;
  await throttle.guard({ address }, header, () => {
    if (!isAdmin(header, token)) throw refused;
  });
}
