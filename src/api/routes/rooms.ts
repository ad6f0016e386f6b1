import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { RelayError } from '../../errors/index.js';
import { checkUpstream } from '../../rooms/upstream-check.js';
import { isIngestMember, MAX_ROOM_ID, SRC_TYPE_NAMES, type SrcType, type Upstream } from '../../rooms/model.js';
import { ingestPublishUrl, ingestSignature, whipEndpointUrl } from '../../rooms/ingest.js';
import { redact } from '../../log.js';
import { IngestQuery, RoomParams, UpstreamBody, UpstreamParams } from '../schemas.js';
import type { ApiDeps } from '../app.js';

function roomIdOf(raw: string): number {
  const n = Number(raw);
  if (n === 0) throw new RelayError(40000007);
  if (!Number.isInteger(n) || n < 1 || n > MAX_ROOM_ID)
    throw new RelayError(50002, 'roomId must be an integer from 1 to 4294967294');
  return n;
}

function view(u: Upstream): Record<string, unknown> {
  return {
    userId: u.userId,
    srcType: u.srcType,
    srcTypeName: SRC_TYPE_NAMES[u.srcType],
    source: u.source,
    ...(u.url ? { url: redact(u.url) } : {}),
    registeredAt: u.registeredAt,
    stats: u.stats ?? null,
  };
}

/** Room upstream registry: GET /v1/rooms, GET /v1/rooms/{roomId}, PUT/DELETE upstreams, ingest and WHIP URLs. */
export function roomRoutes(deps: ApiDeps): FastifyPluginAsync {
  return async (app) => {
    const r = app.withTypeProvider<TypeBoxTypeProvider>();
    r.get('/rooms', async (req) => ({ code: 0, message: 'ok', rooms: await deps.rooms.rooms(req.app.sdkAppId) }));

    r.get('/rooms/:roomId', { schema: { params: RoomParams } }, async (req) => {
      const roomId = roomIdOf(req.params.roomId);
      const ups = await deps.rooms.list(req.app.sdkAppId, roomId);
      if (ups.length === 0) throw new RelayError(40000410, `room ${roomId} does not exist (no upstream registered)`);
      return { code: 0, message: 'ok', roomId, upstreams: ups.map(view) };
    });

    const registerDoc =
      "Registers a member's external upstream. Refused with 50002 for a scheme or path that is not allowed, a file " +
      'that does not exist in RELAY_FILE_UPSTREAM_DIR, or a host on an internal network; with 50008 (HTTP 501) when ' +
      "the relay's ffmpeg lacks the protocol or demuxer the URL needs (srt:// on an ffmpeg without SRT), the message " +
      'naming it. The same checks run again at each start.';
    const schema = { params: RoomParams, body: UpstreamBody, description: registerDoc };
    r.put('/rooms/:roomId/upstreams', { schema }, async (req) => {
      const roomId = roomIdOf(req.params.roomId);
      const { userId, srcType, url } = req.body;
      await checkUpstream(url, { ...deps.config, ...(deps.ffmpeg ? { ffmpeg: deps.ffmpeg } : {}) });
      const existing = await deps.rooms.get(req.app.sdkAppId, roomId, userId, srcType);
      if (isIngestMember(existing))
        throw new RelayError(
          50002,
          `${userId}/${SRC_TYPE_NAMES[srcType]} is publishing to the ingest; it cannot be replaced by a URL`,
        );
      const up: Upstream = {
        sdkAppId: req.app.sdkAppId,
        roomId,
        userId,
        srcType,
        source: 'external',
        url,
        registeredAt: Date.now(),
      };
      await deps.rooms.register(up);
      return { code: 0, message: 'ok', upstream: view(up) };
    });

    r.delete('/rooms/:roomId/upstreams/:userId/:srcType', { schema: { params: UpstreamParams } }, async (req) => {
      const roomId = roomIdOf(req.params.roomId);
      const srcType = Number(req.params.srcType) as SrcType;
      const removed = await deps.rooms.remove(req.app.sdkAppId, roomId, req.params.userId, srcType, 'external');
      if (!removed)
        throw new RelayError(
          40000411,
          `no registered upstream ${req.params.userId}/${SRC_TYPE_NAMES[srcType]} in room ${roomId}`,
        );
      return { code: 0, message: 'ok' };
    });

    r.get('/rooms/:roomId/ingest', { schema: { params: RoomParams, querystring: IngestQuery } }, async (req) => {
      const roomId = roomIdOf(req.params.roomId);
      const srcType = Number(req.query.srcType ?? 0) as SrcType;
      const key = { sdkAppId: req.app.sdkAppId, roomId, userId: req.query.userId, srcType };
      return {
        code: 0,
        message: 'ok',
        publishUrl: ingestPublishUrl(deps.config.publicHost, deps.config.rtmpPort, req.app.secretKey, key),
        // WHIP (browsers, OBS 30+): POST an SDP offer to whipUrl with `Authorization: Bearer <whipToken>`
        whipUrl: whipEndpointUrl(deps.config.publicHost, deps.config.httpPort, key),
        whipToken: ingestSignature(req.app.secretKey, key),
      };
    });
  };
}
