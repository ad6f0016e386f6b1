import crypto from 'node:crypto';
import { safeEqual } from '../auth/index.js';

/** What is stored of a channel password: sha256 of `<channelId>:<password>` (hex). */
export function hashChannelPassword(channelId: string, password: string): string {
  return crypto.createHash('sha256').update(`${channelId}:${password}`).digest('hex');
}

/** The play token derived from the password (players may send it instead of the password): 32 hex digits. */
export function playTokenOf(passwordHash: string): string {
  return passwordHash.slice(0, 32);
}

/** Outcome of a play check: allowed, or refused as missing (401) or wrong (403). */
export type PlayAuth = 'ok' | 'missing' | 'wrong';

/** Checks a viewer's `pwd` (the password) or `token` (derived) query value against a protected channel. */
export function checkPlay(
  channelId: string,
  passwordHash: string | undefined,
  query: Record<string, unknown> | null | undefined,
): PlayAuth {
  if (!passwordHash) return 'ok';
  const pwd = typeof query?.pwd === 'string' ? query.pwd : undefined;
  const token = typeof query?.token === 'string' ? query.token : undefined;
  if (pwd === undefined && token === undefined) return 'missing';
  if (pwd !== undefined && safeEqual(hashChannelPassword(channelId, pwd), passwordHash)) return 'ok';
  if (token !== undefined && safeEqual(token, playTokenOf(passwordHash))) return 'ok';
  return 'wrong';
}

/** Adds the play token to every URI line of a playlist, so a player's segment and variant requests carry it. */
export function tokenisePlaylist(text: string, token: string): string {
  return text
    .split('\n')
    .map((line) => (line && !line.startsWith('#') ? `${line}${line.includes('?') ? '&' : '?'}token=${token}` : line))
    .join('\n');
}
