import { sign } from '../auth/index.js';
import { MAX_ROOM_ID, SRC_TYPES, SRC_TYPE_NAMES, type SrcType } from './model.js';

/** RTMP application of the built-in ingest: members publish to rtmp://host:port/ingest/<name>?sig=<sig>. */
export const INGEST_APP = 'ingest';

/** The parts of an ingest stream name. */
export interface IngestKey {
  sdkAppId: string;
  roomId: number;
  userId: string;
  srcType: SrcType;
}

/** Stream name of a member's upstream on the ingest: `<sdkAppId>_<roomId>_<userId>_<camera|screen>`. */
export function ingestStreamName(k: IngestKey): string {
  return `${k.sdkAppId}_${k.roomId}_${k.userId}_${SRC_TYPE_NAMES[k.srcType]}`;
}

/** Parses an ingest stream name; null when it is not one (userId may itself contain `_`). */
export function parseIngestStreamName(name: string): IngestKey | null {
  const m = /^(\d{1,20})_(\d{1,10})_([A-Za-z0-9_-]{1,32})_(camera|screen)$/.exec(name);
  if (!m) return null;
  const roomId = Number(m[2]);
  if (roomId < 1 || roomId > MAX_ROOM_ID) return null;
  return { sdkAppId: m[1]!, roomId, userId: m[3]!, srcType: SRC_TYPES[m[4] as 'camera' | 'screen'] };
}

/** The publish signature of an ingest stream: HMAC-SHA256(app secret key, stream name), 32 hex characters. */
export function ingestSignature(secretKey: string, k: IngestKey): string {
  return sign(secretKey, ingestStreamName(k));
}

/** The URL a member publishes to. */
export function ingestPublishUrl(host: string, rtmpPort: number, secretKey: string, k: IngestKey): string {
  return `rtmp://${host}:${rtmpPort}/${INGEST_APP}/${ingestStreamName(k)}?sig=${ingestSignature(secretKey, k)}`;
}

/** The documented template of ingest URLs (printed in the READY line). */
export function ingestUrlTemplate(host: string, rtmpPort: number): string {
  return `rtmp://${host}:${rtmpPort}/${INGEST_APP}/{sdkAppId}_{roomId}_{userId}_{camera|screen}?sig={hmacSha256Hex32(secretKey, streamName)}`;
}

/** The WHIP endpoint of a member (POST an SDP offer there with `Authorization: Bearer <ingest signature>`). */
export function whipEndpointUrl(host: string, httpPort: number, k: IngestKey): string {
  return `http://${host}:${httpPort}/whip/${k.sdkAppId}/${k.roomId}/${k.userId}/${SRC_TYPE_NAMES[k.srcType]}`;
}
