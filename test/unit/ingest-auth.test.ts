import { describe, expect, it, vi } from 'vitest';
import { Ingest } from '../../src/media-server/ingest.js';
import type { NmsContext, NmsSession } from '../../src/media-server/nms.js';
import { ingestSignature } from '../../src/rooms/ingest.js';
import { createLogger, LogThrottle } from '../../src/log.js';

const APP = { sdkAppId: '1400000001', secretKey: 's3cret-key', name: 'a', accountId: 'default' };
const KEY = { sdkAppId: APP.sdkAppId, roomId: 1001, userId: 'alice', srcType: 0 as const };
const NAME = '1400000001_1001_alice_camera';

function session(sig: string | undefined, name = NAME): NmsSession & { close: ReturnType<typeof vi.fn> } {
  return {
    id: 's1',
    ip: '127.0.0.1',
    protocol: 'rtmp',
    streamPath: `/ingest/${name}`,
    streamApp: 'ingest',
    streamName: name,
    streamQuery: sig === undefined ? {} : { sig },
    isPublisher: true,
    inBytes: 0,
    outBytes: 0,
    videoCodec: 0,
    videoWidth: 0,
    videoHeight: 0,
    videoFramerate: 0,
    audioCodec: 0,
    audioDatarate: 0,
    close: vi.fn(),
  } as never;
}

async function ingest() {
  const registered: unknown[] = [];
  const get = vi.fn(async (id: string) => (id === APP.sdkAppId ? APP : null));
  const i = new Ingest({
    apps: { list: async () => [APP], get },
    rooms: {
      register: async (u) => void registered.push(u),
      remove: async () => false,
      removeStaleIngest: async () => 0,
      updateStats: async () => undefined,
    },
    bus: { publish: async () => undefined },
    node: 'host-a:1935',
    context: { broadcasts: new Map(), sessions: new Map() } as unknown as NmsContext,
    logger: createLogger('silent', 'test'),
  });
  await i.start();
  return { i, registered, get };
}

describe('ingest authorisation', () => {
  it('a publish with a wrong or missing sig is refused while node-media-server asks, before any media', async () => {
    const { i, get } = await ingest();
    for (const sig of ['0'.repeat(32), undefined]) {
      const s = session(sig);
      i.onPublish(s);
      expect(s.close).toHaveBeenCalledTimes(1); // synchronously: no Redis read in between
      expect(s.relayRejected).toBe(true);
    }
    expect(get).not.toHaveBeenCalled();
    i.close();
  });

  it('a signed publish is accepted at once and the member registered', async () => {
    const { i, registered } = await ingest();
    const s = session(ingestSignature(APP.secretKey, KEY));
    i.onPublish(s);
    expect(s.close).not.toHaveBeenCalled();
    await vi.waitFor(() => expect(registered).toHaveLength(1));
    i.close();
  });

  it('an app the cache has not seen yet is read from the registry; an unknown one is refused', async () => {
    const { i, get } = await ingest();
    const s = session('x'.repeat(32), '1400000009_1001_bob_camera');
    i.onPublish(s);
    await vi.waitFor(() => expect(s.close).toHaveBeenCalledTimes(1));
    expect(get).toHaveBeenCalledWith('1400000009');
    i.close();
  });
});

describe('LogThrottle', () => {
  it('lets one line a window through per key, and the next one carries how many it stood for', () => {
    const t = new LogThrottle(1000);
    expect(t.take('a', 0)).toBe(0);
    expect([t.take('a', 10), t.take('a', 500), t.take('b', 600)]).toEqual([null, null, 0]);
    expect(t.take('a', 1000)).toBe(2);
    expect(t.take('a', 1001)).toBeNull();
  });
});
