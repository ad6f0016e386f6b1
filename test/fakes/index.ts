import type { Redis } from 'ioredis';
import { RelayError } from '../../src/errors/index.js';
import { AppRegistry, type App } from '../../src/tenants/apps.js';
import { Keys } from '../../src/redis/index.js';
import type { ApiDeps } from '../../src/api/app.js';
import type { StartRequest, StartResult, StopResult } from '../../src/channels/service.js';
import type { Upstream } from '../../src/rooms/model.js';
import { loadConfig } from '../../src/config/index.js';
import { createLogger } from '../../src/log.js';

export const FAKE_APP: App = { sdkAppId: '1400000001', secretKey: 'k3y', name: 'fake', accountId: 'default' };
export const FAKE_AUTH = 'Basic ' + Buffer.from('1400000001:k3y').toString('base64');
/** A second app, whose secret key contains ':' (HTTP Basic splits at the first one only). */
export const FAKE_APP_COLON: App = {
  sdkAppId: '1400000002',
  secretKey: 'k3y:with:colons',
  name: 'fake-colon',
  accountId: 'default',
};

/** The few Redis hash commands AppRegistry calls (hget, hsetnx, hvals, hdel), in memory: no Redis in unit tests. */
export class MemoryHashes {
  private readonly hashes = new Map<string, Map<string, string>>();
  /** `latencyMs`: each command waits that long first, as a Redis round trip does, so concurrent callers interleave. */
  constructor(private readonly latencyMs = 0) {}
  private async trip(): Promise<void> {
    if (this.latencyMs > 0) await new Promise((r) => setTimeout(r, this.latencyMs));
  }
  /** The hash of a key (created empty); tests may fill it directly. */
  hash(key: string): Map<string, string> {
    let h = this.hashes.get(key);
    if (!h) this.hashes.set(key, (h = new Map()));
    return h;
  }
  async hget(key: string, field: string): Promise<string | null> {
    await this.trip();
    return this.hashes.get(key)?.get(field) ?? null;
  }
  async hsetnx(key: string, field: string, value: string): Promise<number> {
    await this.trip();
    const h = this.hash(key);
    if (h.has(field)) return 0;
    h.set(field, value);
    return 1;
  }
  async hvals(key: string): Promise<string[]> {
    await this.trip();
    return [...(this.hashes.get(key)?.values() ?? [])];
  }
  async hdel(key: string, ...fields: string[]): Promise<number> {
    await this.trip();
    const h = this.hashes.get(key);
    return fields.filter((f) => h?.delete(f)).length;
  }
  /** This stand-in where an ioredis client is expected (only the commands above may be called on it). */
  asRedis(): Redis {
    return this as unknown as Redis;
  }
}

/** The real AppRegistry over MemoryHashes, holding these apps (stored as AppRegistry.ensure stores them). */
export function memoryAppRegistry(apps: readonly App[] = [FAKE_APP, FAKE_APP_COLON]): AppRegistry {
  const keys = new Keys('fake');
  const mem = new MemoryHashes();
  for (const app of apps) mem.hash(keys.apps()).set(app.sdkAppId, JSON.stringify(app));
  return new AppRegistry(mem.asRedis(), keys);
}

/** API dependencies without processes: the real app registry over an in-memory hash holding FAKE_APP and FAKE_APP_COLON, an in-memory room list, a push service that records its calls. */
export function fakeApiDeps(): ApiDeps & { starts: StartRequest[]; stops: string[][]; upstreams: Upstream[] } {
  const starts: StartRequest[] = [];
  const stops: string[][] = [];
  const upstreams: Upstream[] = [];
  return {
    starts,
    stops,
    upstreams,
    config: loadConfig({ RELAY_FILE_UPSTREAM_DIR: '/tmp/fixtures' }),
    logger: createLogger('silent', 'test'),
    apps: memoryAppRegistry(),
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
    store: {
      async get() {
        return null;
      },
      async activeIds() {
        return [];
      },
    },
    watermarks: {
      async add() {
        throw new RelayError(50002, 'fake');
      },
      async get() {
        return null;
      },
      async list() {
        return [];
      },
      async remove() {
        return false;
      },
    },
    records: {
      async get() {
        return null;
      },
      async files() {
        return [];
      },
      async filePath() {
        return null;
      },
    },
    rooms: {
      async list(_a, roomId) {
        return upstreams.filter((u) => u.roomId === roomId);
      },
      async get(_a, roomId, userId, srcType) {
        return upstreams.find((u) => u.roomId === roomId && u.userId === userId && u.srcType === srcType) ?? null;
      },
      async register(u) {
        upstreams.push(u);
      },
      async remove() {
        return false;
      },
      async rooms() {
        return [...new Set(upstreams.map((u) => u.roomId))];
      },
    },
  };
}
