import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { RelayError } from '../../errors/index.js';
import { CHANNEL_ID_PATTERN } from '../../channels/types.js';
import { publicChannel } from '../../channels/view.js';
import { resolveOption } from '../../channels/options.js';
import { ChannelParams, StartBody, StopBody } from '../schemas.js';
import type { ApiDeps } from '../app.js';
import { targetsOf } from '../push-targets.js';

/** POST /v1/push/start, POST /v1/push/stop, GET /v1/push/{channelId}. */
export function pushRoutes(deps: ApiDeps): FastifyPluginAsync {
  return async (app) => {
    const r = app.withTypeProvider<TypeBoxTypeProvider>();
    const startDoc =
      'Starts a bypass push; answers once media flows. With option.record the start is also refused with 50007 ' +
      '(HTTP 507) when the recordings (or live HLS) disk has less than RELAY_MIN_FREE_MB free, and with 20102 when ' +
      "the account's recordings reached its storageQuotaMB. A channel whose disk fills fails with 50007, or, when " +
      'only recording cannot go on, stays live with `recordStopped` (50007, or 20102 once the quota is reached). ' +
      "A start that ffmpeg refuses answers with ffmpeg's reason in the message: 40000004 (no video), 50008 (HTTP 501: " +
      "the relay's ffmpeg lacks a protocol, demuxer or decoder, or an output cannot carry the codec), 50009 (HTTP " +
      '422: not media, truncated, HTTP 4xx), 6012 (HTTP 504: nothing in time, unreachable; retry after 30 s).';
    const schema = { body: StartBody, description: startDoc };
    r.post('/push/start', { schema, config: { validation: 'start' } }, async (req) => {
      const { roomId, userId, srcType, option } = req.body;
      const resolved = resolveOption(option);
      const targets = await targetsOf(option, resolved.rateTypes, deps);
      const res = await deps.push.start(req.app, {
        roomId,
        userId,
        srcType,
        option: resolved,
        ...(targets.length ? { pushTargets: targets } : {}),
        ...(option.channelPassword !== undefined ? { channelPassword: option.channelPassword } : {}),
      });
      return { code: 0, message: 'ok', ...res };
    });
    r.post('/push/stop', { schema: { body: StopBody } }, async (req) => {
      const results = await deps.push.stop(req.app.sdkAppId, req.body.channelIds);
      return { code: 0, message: 'ok', results };
    });
    r.get('/push/:channelId', { schema: { params: ChannelParams } }, async (req) => {
      const { channelId } = req.params;
      const ch = CHANNEL_ID_PATTERN.test(channelId) ? await deps.store.get(channelId) : null;
      if (!ch || ch.sdkAppId !== req.app.sdkAppId)
        throw new RelayError(50002, `no such channel ${channelId.slice(0, 64)}`, {
          status: 404,
          hint: 'check the channelId returned by push/start',
        });
      // the view at the top level (`state`, `urls` …) and, as before, under `channel`
      const view = publicChannel(ch);
      return { code: 0, message: 'ok', ...view, channel: view };
    });
  };
}
