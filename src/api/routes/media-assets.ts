import fs from 'node:fs';
import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { RelayError } from '../../errors/index.js';
import { CHANNEL_ID_PATTERN } from '../../channels/types.js';
import { DEFAULT_PLACEMENT, MAX_WATERMARK_BYTES } from '../../watermarks/registry.js';
import type { RecordTask } from '../../records/index.js';
import type { WatermarkPlacement } from '../../channels/types.js';
import type { ApiDeps } from '../app.js';

const WatermarkQuery = Type.Object(
  {
    corner: Type.Optional(
      Type.Union(['top-left', 'top-right', 'bottom-left', 'bottom-right'].map((c) => Type.Literal(c))),
    ),
    relativeWidth: Type.Optional(Type.String({ pattern: '^0?\\.[0-9]{1,4}$|^1(\\.0+)?$' })),
    margin: Type.Optional(Type.String({ pattern: '^0?\\.[0-9]{1,4}$|^0$' })),
  },
  { additionalProperties: false },
);
const IdParams = Type.Object({ id: Type.String({ pattern: '^[0-9]{1,10}$' }) });
const FileParams = Type.Object({ id: Type.String({ pattern: '^[0-9]{1,10}$' }), '*': Type.String({ maxLength: 200 }) });
const ChannelParams = Type.Object({ channelId: Type.String({ maxLength: 64 }) });

/** Watermark registry (upload, list, delete) and recordings (list, download). */
export function mediaAssetRoutes(deps: ApiDeps): FastifyPluginAsync {
  return async (app) => {
    const r = app.withTypeProvider<TypeBoxTypeProvider>();
    r.addContentTypeParser('image/png', { parseAs: 'buffer', bodyLimit: MAX_WATERMARK_BYTES }, (_req, body, done) =>
      done(null, body),
    );

    const uploadDoc =
      'Uploads a PNG watermark (Content-Type: image/png, at most 1 MiB, 4096x4096 and 64 MiB decoded: width x height ' +
      'x bytes per pixel, 8-bit RGBA at 4096x4096). Refusals: 50002 (not a valid PNG or over the pixel budget; 413 ' +
      'too large; 415 wrong type; 409 the app holds RELAY_MAX_WATERMARKS_PER_APP watermarks, default 100), 20102 ' +
      "(HTTP 409: the image would pass the account's storageQuotaMB, which counts recordings and watermark images), " +
      '50005 (HTTP 503 with Retry-After: too many images wait to be checked), 50007 (HTTP 507: the disk is below ' +
      'RELAY_MIN_FREE_MB or full; no file is left behind).';
    const uploadConfig = { contentType: 'image/png' };
    const uploadOpts = {
      schema: { querystring: WatermarkQuery, description: uploadDoc },
      bodyLimit: MAX_WATERMARK_BYTES,
      config: uploadConfig,
    };
    r.post('/watermarks', uploadOpts, async (req) => {
      if (!Buffer.isBuffer(req.body))
        throw new RelayError(50002, 'send the PNG as the request body with Content-Type: image/png', {
          status: 415,
          hint: `send Content-Type: ${uploadConfig.contentType}`,
        });
      const q = req.query;
      const placement: WatermarkPlacement = {
        corner: (q.corner as WatermarkPlacement['corner'] | undefined) ?? DEFAULT_PLACEMENT.corner,
        relativeWidth: q.relativeWidth !== undefined ? Number(q.relativeWidth) : DEFAULT_PLACEMENT.relativeWidth,
        margin: q.margin !== undefined ? Number(q.margin) : DEFAULT_PLACEMENT.margin,
      };
      if (placement.relativeWidth <= 0 || placement.margin >= 0.5)
        throw new RelayError(50002, 'relativeWidth must be in (0, 1] and margin in [0, 0.5)');
      const wm = await deps.watermarks.add(req.app, req.body, placement);
      return { code: 0, message: 'ok', ...wm };
    });

    r.get('/watermarks', async (req) => ({
      code: 0,
      message: 'ok',
      watermarks: await deps.watermarks.list(req.app.sdkAppId),
    }));

    r.delete('/watermarks/:id', { schema: { params: IdParams } }, async (req) => {
      const id = Number(req.params.id);
      if (!(await deps.watermarks.get(req.app.sdkAppId, id)))
        throw new RelayError(50002, `no watermark ${id}`, { status: 404 });
      for (const channelId of await deps.store.activeIds()) {
        const ch = await deps.store.get(channelId);
        if (
          ch &&
          ch.sdkAppId === req.app.sdkAppId &&
          ch.watermark?.id === id &&
          ch.state !== 'stopped' &&
          ch.state !== 'failed'
        ) {
          throw new RelayError(50002, `watermark ${id} is used by running channel ${channelId}`, {
            status: 409,
            hint: 'stop the channel first',
            details: { channelId },
          });
        }
      }
      await deps.watermarks.remove(req.app.sdkAppId, id);
      return { code: 0, message: 'ok' };
    });

    const listing = async (task: RecordTask, base: string) => {
      const files = await deps.records.files(task);
      return {
        code: 0,
        message: 'ok',
        task,
        files: files.map((f) => ({ ...f, downloadUrl: `${base}/v1/records/${task.recordTaskId}/files/${f.name}` })),
      };
    };
    const baseUrl = (host: string | undefined) =>
      `http://${host ?? `${deps.config.publicHost}:${deps.config.apiPort}`}`;

    r.get('/records/:id', { schema: { params: IdParams } }, async (req) => {
      const task = await deps.records.get(req.app.sdkAppId, Number(req.params.id));
      if (!task) throw new RelayError(50002, `no record task ${req.params.id}`, { status: 404 });
      return listing(task, baseUrl(req.headers.host));
    });

    r.get('/push/:channelId/records', { schema: { params: ChannelParams } }, async (req) => {
      const ch = CHANNEL_ID_PATTERN.test(req.params.channelId) ? await deps.store.get(req.params.channelId) : null;
      if (!ch || ch.sdkAppId !== req.app.sdkAppId) throw new RelayError(50002, 'no such channel', { status: 404 });
      const task = ch.recordTaskId !== undefined ? await deps.records.get(req.app.sdkAppId, ch.recordTaskId) : null;
      if (!task)
        throw new RelayError(50002, `channel ${ch.channelId} does not record`, {
          status: 404,
          hint: 'start with option.record: true',
        });
      return listing(task, baseUrl(req.headers.host));
    });

    r.get('/records/:id/files/*', { schema: { params: FileParams } }, async (req, reply) => {
      const task = await deps.records.get(req.app.sdkAppId, Number(req.params.id));
      const file = task ? await deps.records.filePath(task, req.params['*']) : null;
      if (!file) throw new RelayError(50002, 'no such record file', { status: 404 });
      const type = file.endsWith('.mp4')
        ? 'video/mp4'
        : file.endsWith('.flv')
          ? 'video/x-flv'
          : file.endsWith('.m3u8')
            ? 'application/vnd.apple.mpegurl'
            : 'video/mp2t';
      const st = await fs.promises.stat(file);
      return reply.header('Content-Type', type).header('Content-Length', st.size).send(fs.createReadStream(file));
    });
  };
}
