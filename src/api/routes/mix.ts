import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { RelayError } from '../../errors/index.js';
import { CHANNEL_ID_PATTERN } from '../../channels/types.js';
import { resolveOption } from '../../channels/options.js';
import type { MixMember } from '../../mix/layout.js';
import { ChannelParams } from '../schemas.js';
import { targetsOf } from '../push-targets.js';
import { MixLayoutBody, MixStartBody } from '../mix-schemas.js';
import type { ApiDeps } from '../app.js';

/** POST /v1/mix/start, POST /v1/mix/{channelId}/layout (stop and status: the push routes). */
export function mixRoutes(deps: ApiDeps): FastifyPluginAsync {
  return async (app) => {
    const r = app.withTypeProvider<TypeBoxTypeProvider>();
    const mix = deps.mix;
    if (!mix) return;
    const startDoc =
      'Starts a mix of the room\'s members (README "Mixing"): the output is a channel like any other (same option, ' +
      'URLs, states, webhooks and stop call). 40000410 when the room does not exist; a member not publishing yet ' +
      'shows a placeholder until it does.';
    const startOpts = {
      schema: { body: MixStartBody, description: startDoc },
      config: { validation: 'start' as const },
    };
    r.post('/mix/start', startOpts, async (req) => {
      const { roomId, members, layout, canvas, floatPosition, option } = req.body;
      const resolved = resolveOption(option);
      const targets = await targetsOf(option, resolved.rateTypes, deps);
      const res = await mix.start(req.app, {
        roomId,
        members: members as MixMember[],
        layout,
        canvas,
        ...(floatPosition ? { floatPosition } : {}),
        option: resolved,
        ...(targets.length ? { pushTargets: targets } : {}),
        ...(option.channelPassword !== undefined ? { channelPassword: option.channelPassword } : {}),
      });
      return { code: 0, message: 'ok', ...res };
    });
    const layoutDoc =
      'Changes the members and layout of a running mix, replacing them whole; viewers stay connected (README ' +
      '"Mixing"). Updates of one mix run in turn, each answered with its own version; added members must fit on the ' +
      "mix's worker (50005 otherwise, as a start).";
    r.post(
      '/mix/:channelId/layout',
      {
        schema: { params: ChannelParams, body: MixLayoutBody, description: layoutDoc },
        config: { validation: 'start' as const },
      },
      async (req) => {
        const { channelId } = req.params;
        if (!CHANNEL_ID_PATTERN.test(channelId))
          throw new RelayError(50002, `no such mix ${channelId.slice(0, 64)}`, { status: 404 });
        const { members, layout, floatPosition } = req.body;
        const update = { members: members as MixMember[], layout, ...(floatPosition ? { floatPosition } : {}) };
        const res = await mix.updateLayout(req.app.sdkAppId, channelId, update);
        return { code: 0, message: 'ok', channelId, ...res };
      },
    );
  };
}
