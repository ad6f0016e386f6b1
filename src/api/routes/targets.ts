import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { PushTargetControl } from '../../targets/control.js';
import { ChannelParams, PushTargetBody, TargetParams } from '../schemas.js';

/** GET, POST /v1/push/{channelId}/targets and DELETE /v1/push/{channelId}/targets/{targetId} (issue 14). */
export function targetRoutes(targets: PushTargetControl): FastifyPluginAsync {
  return async (app) => {
    const r = app.withTypeProvider<TypeBoxTypeProvider>();
    const addDoc =
      "Adds a push target to a running channel: the worker relays the channel's best tier (or `rateType`) to it with " +
      'its own ffmpeg (copy; audio always present), and reports its state (connecting; live once the destination ' +
      'accepted it; retrying; failed after its retries; stopped once the run ended), bytes sent and last error here ' +
      'and in `target.failed` / `target.recovered` webhooks. The URL is stored with scheme and host in lower case. ' +
      'Refused with 50002 (scheme, file, credentials, length, internal host: hint names RELAY_UPSTREAM_ALLOW; HTTP ' +
      "409: a sixth target, or a destination the channel has) or 50008 (srt:// without SRT in the relay's ffmpeg). " +
      "The URL is shown only in this app's answers.";
    r.get('/push/:channelId/targets', { schema: { params: ChannelParams } }, async (req) => ({
      code: 0,
      message: 'ok',
      targets: await targets.list(req.app.sdkAppId, req.params.channelId),
    }));
    r.post(
      '/push/:channelId/targets',
      { schema: { params: ChannelParams, body: PushTargetBody, description: addDoc } },
      async (req, reply) => {
        const target = await targets.add(req.app.sdkAppId, req.params.channelId, req.body);
        void reply.status(201);
        return { code: 0, message: 'ok', target };
      },
    );
    r.delete('/push/:channelId/targets/:targetId', { schema: { params: TargetParams } }, async (req) => {
      await targets.remove(req.app.sdkAppId, req.params.channelId, req.params.targetId);
      return { code: 0, message: 'ok' };
    });
  };
}
