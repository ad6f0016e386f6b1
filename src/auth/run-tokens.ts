/**
 * Run tokens: what a channel's runner puts in the internal URLs its ffmpeg opens (the channel publish into the media
 * server, the read of a member from the ingest). Each is minted for one ffmpeg attempt, lives at most
 * RUN_TOKEN_TTL_MS, is accepted once (its nonce is remembered until it expires) and is bound to the runner's
 * generation (the channel record's `runGen`), so a command line seen with `ps` holds nothing reusable and a stale
 * runner's ffmpeg is refused once a newer run has shown itself.
 */
import crypto from 'node:crypto';
import { sign, verifySignature } from './index.js';

/** What a run token allows: publishing a channel stream, or reading a member from the ingest. */
export type RunTokenKind = 'publish' | 'read';

/** Longest a run token lives (ms): ffmpeg uses it once, when it connects, seconds after it was minted. */
export const RUN_TOKEN_TTL_MS = 30_000;
/** Clock difference tolerated between the relay's hosts (ms): an expiry this far beyond the TTL is still accepted. */
const SKEW_MS = 5_000;
/** How often remembered nonces whose tokens expired are forgotten (ms). */
const SWEEP_MS = 5_000;

/** What a run token says: whose run (channel, generation), until when (ms since the epoch), and its single-use nonce. */
export interface RunClaims {
  channelId: string;
  gen: number;
  exp: number;
  nonce: string;
}

/** The signed message: `<kind>|<streamPath>|<channelId>|<gen>|<exp>|<nonce>`. */
export function runTokenMessage(kind: RunTokenKind, streamPath: string, c: RunClaims): string {
  return `${kind}|${streamPath}|${c.channelId}|${c.gen}|${c.exp}|${c.nonce}`;
}

/**
 * The query string (without `?`) of an internal URL for one connection of a run: `ch`, `gen`, `exp` (ms), `nonce`
 * and `token` = HMAC-SHA256(secret, runTokenMessage) as 32 hex digits; valid for RUN_TOKEN_TTL_MS from `now`.
 */
export function runTokenQuery(
  secret: string,
  kind: RunTokenKind,
  streamPath: string,
  run: { channelId: string; gen: number },
  now = Date.now(),
): string {
  const c: RunClaims = {
    channelId: run.channelId,
    gen: run.gen,
    exp: now + RUN_TOKEN_TTL_MS,
    nonce: crypto.randomBytes(16).toString('hex'),
  };
  return `ch=${c.channelId}&gen=${c.gen}&exp=${c.exp}&nonce=${c.nonce}&token=${sign(secret, runTokenMessage(kind, streamPath, c))}`;
}

/** A run token's verdict: its claims, or why it is refused. */
export type RunTokenCheck = { ok: true; claims: RunClaims } | { ok: false; why: string };

const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);

/**
 * Checks a run token's form, lifetime (not expired, not longer than the TTL) and signature; replays and generations
 * are RunTokenGate's. `query` is the URL's query as node-media-server parses it.
 */
export function verifyRunToken(
  secret: string,
  kind: RunTokenKind,
  streamPath: string,
  query: Record<string, unknown> | null | undefined,
  now: number,
): RunTokenCheck {
  const [ch, gen, exp, nonce] = [str(query?.ch), str(query?.gen), str(query?.exp), str(query?.nonce)];
  if (!ch || !/^[A-Za-z0-9_-]{1,64}$/.test(ch) || !gen || !/^\d{1,9}$/.test(gen))
    return { ok: false, why: 'no run token' };
  if (!exp || !/^\d{1,15}$/.test(exp) || !nonce || !/^[0-9a-f]{32}$/.test(nonce))
    return { ok: false, why: 'malformed run token' };
  const claims: RunClaims = { channelId: ch, gen: Number(gen), exp: Number(exp), nonce };
  if (claims.exp <= now) return { ok: false, why: 'expired run token' };
  if (claims.exp > now + RUN_TOKEN_TTL_MS + SKEW_MS) return { ok: false, why: 'run token lives too long' };
  if (!verifySignature(secret, runTokenMessage(kind, streamPath, claims), query?.token))
    return { ok: false, why: 'wrong run token signature' };
  return { ok: true, claims };
}

/**
 * The media server's memory of run tokens: each is accepted once, and per channel no generation below the highest one
 * seen. Kept in memory only: after a restart the channel records (checked asynchronously) say which run is current.
 */
export class RunTokenGate {
  /** nonce → when its token expires (ms); forgotten after that, when the token is refused as expired anyway. */
  private readonly nonces = new Map<string, number>();
  /** channelId → highest run generation seen. */
  private readonly gens = new Map<string, number>();
  private sweptAt = 0;

  constructor(private readonly secret: string) {}

  /**
   * Admits a connection of a run: a valid, unexpired token never used before, of the expected channel (when given),
   * whose generation is not below the channel's highest seen. `raised`: its generation is higher than any seen before
   * (older runs' sessions are then stale).
   */
  admit(
    kind: RunTokenKind,
    streamPath: string,
    query: Record<string, unknown> | null | undefined,
    now: number,
    channelId?: string,
  ): { ok: true; channelId: string; gen: number; raised: boolean } | { ok: false; why: string } {
    this.sweep(now);
    const v = verifyRunToken(this.secret, kind, streamPath, query, now);
    if (!v.ok) return v;
    const c = v.claims;
    if (channelId !== undefined && c.channelId !== channelId) return { ok: false, why: 'run token of another channel' };
    if (this.nonces.has(c.nonce)) return { ok: false, why: 'run token used before' };
    this.nonces.set(c.nonce, c.exp);
    const seen = this.gens.get(c.channelId);
    if (seen !== undefined && c.gen < seen)
      return { ok: false, why: `stale run (generation ${c.gen}, current ${seen})` };
    return { ok: true, channelId: c.channelId, gen: c.gen, raised: this.raise(c.channelId, c.gen) };
  }

  /** Records that the channel's current run is at least `gen` (e.g. read from its record); whether it rose. */
  raise(channelId: string, gen: number): boolean {
    const seen = this.gens.get(channelId);
    if (seen !== undefined && gen <= seen) return false;
    this.gens.set(channelId, gen);
    return seen !== undefined;
  }

  /** The highest generation seen of a channel, if any. */
  generation(channelId: string): number | undefined {
    return this.gens.get(channelId);
  }

  /** Forgets an ended channel's generation. */
  forget(channelId: string): void {
    this.gens.delete(channelId);
  }

  private sweep(now: number): void {
    if (now - this.sweptAt < SWEEP_MS) return;
    this.sweptAt = now;
    for (const [nonce, exp] of this.nonces) if (exp <= now) this.nonces.delete(nonce);
  }
}
