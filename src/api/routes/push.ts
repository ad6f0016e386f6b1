import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { RelayError } from '../../errors/index.js';
import { CHANNEL_ID_PATTERN } from '../../channels/store.js';
import { publicChannel } from '../../channels/view.js';
import type { ResolvedPushOption } from '../../channels/types.js';
import { ChannelParams, StartBody, StopBody } from '../schemas.js';
import type { ApiDeps } from '../app.js';

// Options whose media behaviour this relay does not implement yet are refused rather than silently ignored.
function resolveOption(o: StartBody['option']): ResolvedPushOption {
  if (o.rateType !== undefined && o.rateType !== 0) throw new RelayError(50002, `rateType ${o.rateType} is not available on this relay yet: only ORIGINAL (0)`, { hint: 'use rateType 0' });
  if (o.record) throw new RelayError(50002, 'record is not available on this relay yet', { hint: 'start without record' });
  if (o.waterMark || o.waterMarkId) throw new RelayError(50002, 'watermarks are not available on this relay yet', { hint: 'start without waterMark' });
  if (o.channelPassword !== undefined) throw new RelayError(50002, 'channelPassword is not available on this relay yet', { hint: 'start without channelPassword' });
  return {
    encode: o.encode as ResolvedPushOption['encode'],
    rateType: 0,
    record: false,
    waterMark: false,
    sdkType: o.sdkType ?? 1,
    ...(o.channelName !== undefined ? { channelName: o.channelName } : {}),
    ...(o.channelDesc !== undefined ? { channelDesc: o.channelDesc } : {}),
  };
}

/** POST /v1/push/start, POST /v1/push/stop, GET /v1/push/{channelId}. */
export function pushRoutes(deps: ApiDeps): FastifyPluginAsync {
  return async (app) => {
    const r = app.withTypeProvider<TypeBoxTypeProvider>();
    r.post('/push/start', { schema: { body: StartBody }, config: { validation: 'start' } }, async (req) => {
      const { roomId, userId, srcType, option } = req.body;
      const res = await deps.push.start(req.app.sdkAppId, { roomId, userId, srcType, option: resolveOption(option) });
      return { code: 0, message: 'ok', ...res };
    });
    r.post('/push/stop', { schema: { body: StopBody } }, async (req) => {
      const results = await deps.push.stop(req.app.sdkAppId, req.body.channelIds);
      return { code: 0, message: 'ok', results };
    });
    r.get('/push/:channelId', { schema: { params: ChannelParams } }, async (req) => {
      const { channelId } = req.params;
      const ch = CHANNEL_ID_PATTERN.test(channelId) ? await deps.store.get(channelId) : null;
      if (!ch || ch.sdkAppId !== req.app.sdkAppId) throw new RelayError(50002, `no such channel ${channelId.slice(0, 64)}`, { status: 404, hint: 'check the channelId returned by push/start' });
      return { code: 0, message: 'ok', channel: publicChannel(ch) };
    });
  };
}
