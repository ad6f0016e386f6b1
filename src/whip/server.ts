import crypto from 'node:crypto';
import path from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../log.js';
import type { AppRegistry } from '../tenants/apps.js';
import { RelayError } from '../errors/index.js';
import { safeEqual, verifySignature } from '../auth/index.js';
import { INGEST_APP, parseIngestStreamName } from '../rooms/ingest.js';
import { checkOfferShape, chooseCodecs } from './sdp.js';
import { answerOffer } from './peer.js';
import { WhipSession } from './session.js';
import {
  bearerOf,
  MAX_OFFER_BYTES,
  methodNotAllowed,
  readBody,
  sendRefusal,
  WHIP_CORS,
  whipRouteOf,
  type WhipRoute,
} from './http.js';

/** Settings of the WHIP endpoint. */
export interface WhipConfig {
  ffmpegPath: string;
  /** Where the bridge reaches this media server's RTMP port. */
  rtmpHost: string;
  rtmpPort: number;
  dataDir: string;
  /** RELAY_INGEST_IDLE_MS: a session without RTP for this long ends. */
  ingestIdleMs: number;
  /** Extra ICE host candidates (RELAY_WHIP_ICE_HOSTS). */
  iceHosts: readonly string[];
  /** Most concurrent sessions of this media process (RELAY_WHIP_MAX_SESSIONS). */
  maxSessions: number;
}

/** Dependencies of the WHIP endpoint. */
export interface WhipServerDeps {
  config: WhipConfig;
  apps: Pick<AppRegistry, 'get'>;
  /** Whether a member's ingest stream has a publisher now (RTMP or a bridge). */
  isPublishing: (streamName: string) => boolean;
  logger: Logger;
}

/** Keyframe interval of converted video, and of the keyframes asked of a publisher whose H.264 is copied (s). */
const GOP_SECONDS = 2;
/** Bitrate of converted video (kbit/s): the codec policy's default when the upstream's is unknown. */
const VIDEO_KBPS = 2000;

/**
 * WHIP (RFC 9725) on the media HTTP port: `POST /whip/{sdkAppId}/{roomId}/{userId}/{camera|screen}` with an SDP
 * offer and `Authorization: Bearer <the member's ingest signature>` opens a session (201, the answer, `Location`);
 * `DELETE` on the `Location` ends it. Each session publishes into the member's ingest stream through a bridge ffmpeg
 * that presents a single-use token (`claimBridge`), so the ingest registers the member with source `whip`.
 */
export class WhipServer {
  private readonly sessions = new Map<string, WhipSession>();
  /** Stream names with a session (or one being opened): a second publisher is refused with 409. */
  private readonly byStream = new Map<string, WhipSession | 'opening'>();
  private readonly bridgeTokens = new Map<string, string>();

  constructor(private readonly deps: WhipServerDeps) {}

  /** Handles a request whose URL is a WHIP one (`isWhipUrl`). */
  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const route = whipRouteOf(req.url ?? '');
    try {
      await this.route(req, res, route);
    } catch (e) {
      if (e instanceof RelayError) {
        const headers: Record<string, string> = {};
        if (e.status === 405) headers.Allow = route.kind === 'session' ? 'DELETE, OPTIONS' : 'POST, OPTIONS';
        if (e.status === 401) headers['WWW-Authenticate'] = 'Bearer';
        if (e.status === 413) headers.Connection = 'close';
        return sendRefusal(res, e, headers);
      }
      this.deps.logger.warn({ err: (e as Error).message }, 'WHIP request failed');
      sendRefusal(res, new RelayError(50005, `WHIP session could not be opened: ${(e as Error).message}`));
    }
  }

  private async route(req: IncomingMessage, res: ServerResponse, route: WhipRoute): Promise<void> {
    const method = req.method ?? 'GET';
    if (route.kind === 'not-found')
      throw new RelayError(50002, 'no such WHIP resource', {
        status: 404,
        hint: 'POST to /whip/{sdkAppId}/{roomId}/{userId}/{camera|screen}; DELETE the Location it answers',
      });
    if (method === 'OPTIONS') {
      const allow = route.kind === 'session' ? 'DELETE, OPTIONS' : 'POST, OPTIONS';
      res.writeHead(204, { ...WHIP_CORS, Allow: allow });
      res.end();
      return;
    }
    if (route.kind === 'session') {
      if (method !== 'DELETE') throw methodNotAllowed(method, 'DELETE, OPTIONS');
      const s = this.sessions.get(route.id);
      if (!s) throw new RelayError(50002, 'no such WHIP session', { status: 404, hint: 'it has ended already' });
      await s.close('DELETE');
      res.writeHead(200, WHIP_CORS);
      res.end();
      return;
    }
    if (method !== 'POST') throw methodNotAllowed(method, 'POST, OPTIONS');
    await this.open(req, res, route.streamName);
  }

  private async open(req: IncomingMessage, res: ServerResponse, streamName: string): Promise<void> {
    const key = parseIngestStreamName(streamName)!;
    const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (type !== 'application/sdp')
      throw new RelayError(50002, 'a WHIP offer has Content-Type application/sdp', {
        status: 415,
        hint: 'send the SDP offer as the body with Content-Type: application/sdp',
      });
    const token = bearerOf(req.headers.authorization);
    if (!token)
      throw new RelayError(1001, 'WHIP needs Authorization: Bearer <token>', {
        hint: 'the token is whipToken of GET /v1/rooms/{roomId}/ingest (the ingest signature of the stream)',
      });
    const app = await this.deps.apps.get(key.sdkAppId);
    // an unknown app and a wrong token are answered alike (no app enumeration)
    if (!verifySignature(app?.secretKey ?? crypto.randomBytes(16).toString('hex'), streamName, token))
      throw new RelayError(1001, 'wrong WHIP token for this member', {
        status: 403,
        hint: 'use whipToken of GET /v1/rooms/{roomId}/ingest for this userId and srcType',
      });
    const offer = await readBody(req, MAX_OFFER_BYTES);
    checkOfferShape(offer);
    const codecs = chooseCodecs(offer);
    if (this.byStream.has(streamName) || this.deps.isPublishing(streamName))
      throw new RelayError(50002, `${key.userId}/${streamName.split('_').pop()} is already publishing (RTMP or WHIP)`, {
        status: 409,
        hint: 'end the other publish first (DELETE its WHIP session or stop the RTMP encoder)',
      });
    // sessions being opened count too: offers arriving together must not pass the cap
    if (this.byStream.size >= this.deps.config.maxSessions)
      throw new RelayError(50005, `this media server holds ${this.deps.config.maxSessions} WHIP sessions already`, {
        status: 503,
        hint: 'retry later or raise RELAY_WHIP_MAX_SESSIONS',
      });
    this.byStream.set(streamName, 'opening');
    let session: WhipSession;
    try {
      const peer = await answerOffer(offer, codecs, { extraHosts: this.deps.config.iceHosts }).catch((e: Error) => {
        throw new RelayError(50002, `the offer could not be answered: ${e.message}`, {
          hint: 'send a complete SDP offer (ICE credentials, DTLS fingerprint, BUNDLE) as browsers and OBS do',
        });
      });
      session = await WhipSession.open(key, streamName, peer, codecs, this.sessionOptions(streamName));
    } catch (e) {
      this.byStream.delete(streamName);
      throw e;
    }
    this.sessions.set(session.id, session);
    this.byStream.set(streamName, session);
    session.once('closing', () => {
      this.sessions.delete(session.id);
      if (this.byStream.get(streamName) === session) this.byStream.delete(streamName);
      this.bridgeTokens.delete(streamName);
    });
    this.deps.logger.info(
      {
        session: session.id,
        stream: streamName,
        video: codecs.video.kind,
        copy: codecs.video.copy,
        audio: !!codecs.audio,
      },
      'WHIP session opened',
    );
    const answer = session.answer;
    res.writeHead(201, {
      ...WHIP_CORS,
      'Content-Type': 'application/sdp',
      'Content-Length': Buffer.byteLength(answer),
      Location: `/whip/session/${session.id}`,
      ETag: `"${session.id}"`,
    });
    res.end(answer);
  }

  private sessionOptions(streamName: string) {
    const { config, logger } = this.deps;
    return {
      ffmpegPath: config.ffmpegPath,
      idleMs: config.ingestIdleMs,
      gopSeconds: GOP_SECONDS,
      videoKbps: VIDEO_KBPS,
      workDir: path.join(config.dataDir, 'whip'),
      logger,
      ingestUrl: () => {
        const token = crypto.randomBytes(16).toString('hex');
        this.bridgeTokens.set(streamName, token);
        return `rtmp://${config.rtmpHost}:${config.rtmpPort}/${INGEST_APP}/${streamName}?token=${token}`;
      },
    };
  }

  /** Whether `token` is the single-use bridge token of `streamName`'s session (it is used up either way). */
  claimBridge(streamName: string, token: unknown): boolean {
    const expected = this.bridgeTokens.get(streamName);
    // used up only by its bridge: a wrong guess (anyone can try a publish on a predictable name) leaves it intact
    if (typeof token !== 'string' || expected === undefined || !safeEqual(expected, token)) return false;
    this.bridgeTokens.delete(streamName);
    return true;
  }

  /** Asks the WHIP publisher of a stream for a keyframe (a reader joined); nothing for other streams. */
  requestKeyframe(streamName: string): void {
    const s = this.byStream.get(streamName);
    if (s && s !== 'opening') s.requestKeyframe();
  }

  /** How many sessions are open. */
  get size(): number {
    return this.sessions.size;
  }

  /** Ends every session (the media server is stopping). */
  async close(): Promise<void> {
    await Promise.all([...this.sessions.values()].map((s) => s.close('media server stopping')));
  }
}
