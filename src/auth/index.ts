/**
 * Every secret check and signature of the relay in one place: app credentials (HTTP Basic), constant-time compares,
 * the internal secret shared by the relay's processes, and the signatures of the built-in ingest (`sig`). The
 * single-use tokens of internal URLs (worker publish, ingest read) are in run-tokens.ts.
 */
import crypto from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Keys } from '../redis/index.js';
import type { Logger } from '../log.js';

/** Compares two secrets in constant time (of their hashes, so lengths do not leak either). */
export function safeEqual(a: string, b: string): boolean {
  const ha = crypto.createHash('sha256').update(a).digest();
  const hb = crypto.createHash('sha256').update(b).digest();
  return crypto.timingSafeEqual(ha, hb);
}

/** HMAC-SHA256 of a message as 32 hex characters. */
export function sign(secret: string, message: string): string {
  return crypto.createHmac('sha256', secret).update(message).digest('hex').slice(0, 32);
}

/** Whether a signature matches, in constant time. */
export function verifySignature(secret: string, message: string, signature: unknown): boolean {
  return typeof signature === 'string' && safeEqual(sign(secret, message), signature);
}

/**
 * Builds the `Authorization` header value for an app: HTTP Basic with sdkAppId as user and the secret key as password.
 */
export function authorizationFor(app: { sdkAppId: string; secretKey: string }): string {
  return 'Basic ' + Buffer.from(`${app.sdkAppId}:${app.secretKey}`).toString('base64');
}

/**
 * Splits an HTTP Basic `Authorization` value (RFC 7617) into user and password; null when it is not one.
 * The password may contain `:`; the user may not.
 */
export function parseBasic(header: string | undefined): { user: string; password: string } | null {
  const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header ?? '');
  if (!m?.[1]) return null;
  const decoded = Buffer.from(m[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return null;
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/**
 * Whether an Authorization header carries the admin token: `Bearer <token>`, or Basic with the token as password
 * (browsers).
 */
export function isAdmin(header: string | undefined, token: string): boolean {
  const bearer = /^Bearer\s+(\S+)$/.exec(header ?? '');
  if (bearer) return safeEqual(bearer[1]!, token);
  const basic = parseBasic(header);
  return basic !== null && safeEqual(basic.password, token);
}

/**
 * The body of a refused `/metrics` scrape: metrics list every tenant's channel ids, so they need the admin token
 * (Prometheus: `authorization: {credentials: <token>}`), and are closed when no admin token is set.
 */
export function metricsRefusal(adminToken: string | null): { code: number; message: string; hint: string } {
  return adminToken
    ? {
        code: 1001,
        message: 'metrics need the admin credential',
        hint: 'send Authorization: Bearer <RELAY_ADMIN_TOKEN>',
      }
    : {
        code: 1001,
        message: 'metrics are closed: no admin token is set',
        hint: 'set RELAY_ADMIN_TOKEN and scrape with it as a bearer token',
      };
}

/** A new random secret key for an app: 24 random bytes, base64url. */
export function newSecretKey(): string {
  return crypto.randomBytes(24).toString('base64url');
}

/**
 * The secret shared by all relay processes to sign internal URLs (worker publish, ingest read); created once in Redis.
 */
export async function internalSecret(redis: Redis, keys: Keys): Promise<string> {
  await redis.set(keys.internalSecret(), crypto.randomBytes(32).toString('hex'), 'NX');
  const secret = await redis.get(keys.internalSecret());
  if (!secret) throw new Error('internal secret missing from Redis');
  return secret;
}

/**
 * After Redis lost its data: puts this process's internal secret back (SET NX), so that processes starting now read
 * the one the running media server and workers sign with. Answers false when Redis holds another secret (a process
 * that started in the moment before put a new one): signatures between them fail until one of them restarts.
 */
export async function restoreInternalSecret(redis: Redis, keys: Keys, secret: string): Promise<boolean> {
  await redis.set(keys.internalSecret(), secret, 'NX');
  return (await redis.get(keys.internalSecret())) === secret;
}

/** The restore hook of the internal secret a process signs with (README "Security": a Redis that lost its data). */
export function keepSecret(
  redis: Redis,
  keys: Keys,
  secret: string,
  logger: Pick<Logger, 'error'>,
): () => Promise<void> {
  return async () => {
    if (!(await restoreInternalSecret(redis, keys, secret)))
      logger.error("the internal secret in Redis is not this process's (another process made a new one): restart it");
  };
}
