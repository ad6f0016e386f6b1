import { RelayError } from '../../src/errors/index.js';
import type { App } from '../../src/tenants/apps.js';
import type { ApiDeps } from '../../src/api/app.js';
import type { StartRequest, StartResult, StopResult } from '../../src/channels/service.js';
import type { Upstream } from '../../src/rooms/model.js';
import { loadConfig } from '../../src/config/index.js';
import { createLogger } from '../../src/log.js';

export const FAKE_APP: App = { sdkAppId: '1400000001', secretKey: 'k3y', name: 'fake', accountId: 'default' };
export const FAKE_AUTH = 'Basic ' + Buffer.from('1400000001:k3y').toString('base64');

/** API dependencies without processes: one app, an in-memory room list, a push service that records its calls. */
export function fakeApiDeps(): ApiDeps & { starts: StartRequest[]; stops: string[][]; upstreams: Upstream[] } {
  const starts: StartRequest[] = [];
  const stops: string[][] = [];
  const upstreams: Upstream[] = [];
  return {
    starts, stops, upstreams,
    config: loadConfig({ RELAY_FILE_UPSTREAM_DIR: '/tmp/fixtures' }),
    logger: createLogger('silent', 'test'),
    apps: {
      async authenticate(header) {
        if (!header?.startsWith('Basic ')) throw new RelayError(1001);
        const [id, key] = Buffer.from(header.slice(6), 'base64').toString().split(':');
        if (id !== FAKE_APP.sdkAppId) throw new RelayError(1002);
        if (key !== FAKE_APP.secretKey) throw new RelayError(1001);
        return FAKE_APP;
      },
    },
    push: {
      async start(_app, req): Promise<StartResult> {
        starts.push(req);
        return { channelId: 'ch_0123456789abcdef0123', urls: [] };
      },
      async stop(_app, ids): Promise<StopResult[]> {
        stops.push([...ids]);
        return ids.map((channelId) => ({ channelId, code: 0, message: 'stopped' }));
      },
    },
    store: { async get() { return null; }, async activeIds() { return []; } },
    watermarks: {
      async add() { throw new RelayError(50002, 'fake'); },
      async get() { return null; },
      async list() { return []; },
      async remove() { return false; },
    },
    records: { async get() { return null; }, async files() { return []; }, async filePath() { return null; } },
    rooms: {
      async list(_a, roomId) { return upstreams.filter((u) => u.roomId === roomId); },
      async get(_a, roomId, userId, srcType) { return upstreams.find((u) => u.roomId === roomId && u.userId === userId && u.srcType === srcType) ?? null; },
      async register(u) { upstreams.push(u); },
      async remove() { return false; },
      async rooms() { return [...new Set(upstreams.map((u) => u.roomId))]; },
    },
  };
}
