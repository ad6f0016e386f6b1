import { sign } from '../apps/index.js';

/** What a worker signs (with the internal secret) to publish a channel: `publish:/live/<channelId>`. */
export function publishToken(streamPath: string): string {
  return `publish:${streamPath}`;
}

/** What a worker signs to read a member's upstream from the ingest: `read:/ingest/<name>`. */
export function readToken(streamPath: string): string {
  return `read:${streamPath}`;
}

/** The signed query value for a token. */
export function tokenFor(secret: string, token: string): string {
  return sign(secret, token);
}
