import path from 'node:path';
import { RelayError } from '../errors/index.js';

/** Video source of an upstream (SPEC srcType): camera 0, screen (sub stream) 1. */
export const SRC_TYPES = { camera: 0, screen: 1 } as const;
export type SrcType = 0 | 1;
export const SRC_TYPE_NAMES: Record<SrcType, 'camera' | 'screen'> = { 0: 'camera', 1: 'screen' };

/** userId as TRTC accepts it: 1-32 letters, digits, _ or -. */
export const USER_ID_PATTERN = '^[A-Za-z0-9_-]{1,32}$';
export const MAX_ROOM_ID = 4294967294;

/** One member's upstream in a room, keyed by (sdkAppId, roomId, userId, srcType). */
export interface Upstream {
  sdkAppId: string;
  roomId: number;
  userId: string;
  srcType: SrcType;
  /**
   * `ingest`: published to the built-in RTMP ingest; `whip`: published over WHIP (bridged into the ingest, read like an
   * ingest member); `external`: a URL registered through the API.
   */
  source: 'ingest' | 'whip' | 'external';
  /** The URL ffmpeg reads (external upstreams only; ingest upstreams are read from the media server). */
  url?: string;
  registeredAt: number;
  /** The media node an ingest member publishes to (cluster/instance.ts `mediaNodeId`). */
  node?: string;
  /** What the ingest measures of a publishing member, refreshed every few seconds. */
  stats?: UpstreamStats;
}

/** Whether a member publishes into the media server's ingest (RTMP or WHIP): read from it, removed when it leaves. */
export function isIngestMember(u: Pick<Upstream, 'source'> | null | undefined): boolean {
  return u?.source === 'ingest' || u?.source === 'whip';
}

/** Live figures of an ingest upstream. */
export interface UpstreamStats {
  videoKbps: number;
  totalKbps: number;
  width: number;
  height: number;
  fps: number;
  /** null: the publisher sends no video (as `audioCodec` for audio). */
  videoCodec: string | null;
  audioCodec: string | null;
  updatedAt: number;
}

/**
 * What ffmpeg may open for an http(s) upstream, which it reads through the run's egress gateway (plain HTTP to
 * 127.0.0.1; the gateway speaks TLS to https origins): `http` over `tcp`, and `crypto` for AES-128 segments (the hls
 * demuxer opens them as `crypto+http://…`). No https, tls or httpproxy (ffmpeg never speaks TLS nor tunnels), no
 * file, concat, subfile, data or hls protocol: a playlist cannot make ffmpeg open anything else.
 */
export const HTTP_PROTOCOLS = 'http,tcp,crypto';

/**
 * What ffmpeg may open for an rtsp(s) upstream, which it reads through the run's RTSP relay with RTP interleaved on
 * the RTSP connection (`-rtsp_transport tcp`): no udp or rtp sockets, no tls (the relay speaks rtsps), no http
 * tunnelling.
 */
export const RTSP_PROTOCOLS = 'rtsp,tcp';

const NETWORK_SCHEMES: Record<string, string> = {
  rtmp: 'rtmp,tcp',
  rtmps: 'rtmps,rtmp,tcp,tls',
  rtsp: RTSP_PROTOCOLS,
  rtsps: RTSP_PROTOCOLS,
  srt: 'srt,udp',
  http: HTTP_PROTOCOLS,
  https: HTTP_PROTOCOLS,
};

/** How ffmpeg may read an external upstream: the URL and the only protocols it may open. */
export interface UpstreamInput {
  url: string;
  protocolWhitelist: string;
  /** Files are replayed in a loop at their native rate, as a stand-in for a live source. */
  isFile: boolean;
}

/**
 * Checks a registered upstream URL: network URLs of known schemes, or a file inside the allowed folder.
 * Anything else (ffmpeg pseudo-protocols such as concat:, pipe:, subfile:, data:) is refused with 50002.
 */
export function resolveUpstreamInput(raw: string, fileDir: string): UpstreamInput {
  if (raw.length > 2048 || /[\s\0]/.test(raw))
    throw new RelayError(50002, 'upstream url must be at most 2048 characters without spaces or control characters');
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(raw)?.[1]?.toLowerCase();
  if (scheme && NETWORK_SCHEMES[scheme]) {
    try {
      new URL(raw);
    } catch {
      throw new RelayError(50002, 'upstream url is not a valid URL');
    }
    return { url: raw, protocolWhitelist: NETWORK_SCHEMES[scheme], isFile: false };
  }
  if (scheme && scheme !== 'file')
    throw new RelayError(50002, `upstream url scheme ${scheme}: is not allowed`, {
      hint: `use one of ${Object.keys(NETWORK_SCHEMES).join(', ')}, or a file inside the upstream file folder`,
    });
  if (!scheme && /^[a-z0-9+.-]+:/i.test(raw))
    throw new RelayError(50002, 'upstream url uses an ffmpeg pseudo-protocol, which is not allowed');
  const file = path.resolve(fileDir, scheme === 'file' ? decodeURIComponent(new URL(raw).pathname) : raw);
  const root = path.resolve(fileDir) + path.sep;
  if (!file.startsWith(root))
    throw new RelayError(50002, 'upstream file is outside the allowed folder', {
      hint: `put the file under ${fileDir} (RELAY_FILE_UPSTREAM_DIR)`,
    });
  const protocolWhitelist = file.toLowerCase().endsWith('.sdp') ? 'file,udp,rtp' : 'file';
  return { url: file, protocolWhitelist, isFile: !file.toLowerCase().endsWith('.sdp') };
}
