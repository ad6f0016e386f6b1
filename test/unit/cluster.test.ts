import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { internalEndpoint, publicEndpoint, type NodeBeat } from '../../src/cluster/nodes.js';
import { clusterConfig } from '../../src/config/cluster.js';
import { placedOn, playUrls } from '../../src/channels/urls.js';
import { NodeLoadMeter } from '../../src/media-server/load.js';
import { whereabouts, type ClusterView } from '../../src/media-server/owner.js';
import { RunNode } from '../../src/worker/run-node.js';
import { createLogger } from '../../src/log.js';
import type { Channel } from '../../src/channels/types.js';
import type { NmsContext, NmsSession } from '../../src/media-server/nms.js';

const beat = (node: string, load: Partial<NodeBeat['load']> = {}, extra: Partial<NodeBeat> = {}): NodeBeat => ({
  node,
  instance: `${node}:1:1`,
  seenAt: Date.now(),
  rtmpPort: 1935,
  httpPort: 8000,
  load: { channels: 0, viewers: 0, egressKbps: 0, cpu: 0, ...load },
  ...extra,
});

describe('placement', () => {
  it('a channel placed on a node keeps HTTP URLs at the cluster address; its RTMP URLs name the node', () => {
    const ep = { publicHost: 'live.example.com', httpPort: 80, rtmpPort: 1935 };
    const ch = { channelId: 'ch_00000000000000000001', option: { encode: 4 as const, rateTypes: [0 as const] } };
    const at = placedOn(
      ch as Pick<Channel, 'channelId' | 'option'>,
      beat('n2', {}, { publicHost: '10.0.0.2', rtmpPort: 1936 }),
      ep,
    );
    expect(at.mediaNode).toBe('n2');
    expect(at.urls).toEqual([
      { type: 5, rateType: 0, playUrl: 'rtmp://10.0.0.2:1936/live/ch_00000000000000000001' },
      { type: 2, rateType: 0, playUrl: 'http://live.example.com:80/live/ch_00000000000000000001.flv' },
    ]);
    // a node without a public host of its own: the cluster's host and RTMP port, as with one media server
    const same = placedOn(ch as Pick<Channel, 'channelId' | 'option'>, beat('n1', {}, { rtmpPort: 1937 }), ep);
    expect(same.urls[0]!.playUrl).toBe('rtmp://live.example.com:1935/live/ch_00000000000000000001');
    expect(playUrls(ep, ch.channelId, 5, [0])[0]!.playUrl).toBe(
      'rtmp://live.example.com:1935/live/ch_00000000000000000001',
    );
  });

  it('endpoints fall back to the caller’s host and ports when a beat does not say', () => {
    const fallback = { host: 'media', rtmpPort: 1, httpPort: 2 };
    expect(internalEndpoint(null, fallback)).toEqual(fallback);
    expect(internalEndpoint(beat('x', {}, { internalHost: '10.1.1.1' }), fallback)).toEqual({
      host: '10.1.1.1',
      rtmpPort: 1935,
      httpPort: 8000,
    });
    expect(publicEndpoint(beat('x', {}, { internalHost: '10.1.1.1' }), fallback).host).toBe('media');
  });
});

describe('cluster settings', () => {
  const fail = (name: string, detail: string) => new Error(`${name} ${detail}`);
  it('reads node addresses and counts, refusing bad values by name', () => {
    const c = clusterConfig(
      { RELAY_NODE_HOST: '10.0.0.2', RELAY_NODE_MAX_CHANNELS: '40', RELAY_MEDIA_NODES: '3' },
      fail,
    );
    expect(c).toEqual({ nodeHost: '10.0.0.2', nodePublicHost: null, nodeMaxChannels: 40, mediaNodes: 3 });
    // a node's public host is never its internal one by default (players would get a private address)
    expect(clusterConfig({ RELAY_NODE_HOST: '10.0.0.2' }, fail).nodePublicHost).toBeNull();
    expect(clusterConfig({ RELAY_NODE_PUBLIC_HOST: 'edge.example' }, fail).nodePublicHost).toBe('edge.example');
    expect(clusterConfig({}, fail).nodeHost).toBeNull();
    expect(() => clusterConfig({ RELAY_MEDIA_NODES: '0' }, fail)).toThrow(/RELAY_MEDIA_NODES/);
    expect(() => clusterConfig({ RELAY_NODE_MAX_CHANNELS: 'lots' }, fail)).toThrow(/RELAY_NODE_MAX_CHANNELS/);
    expect(() => clusterConfig({ RELAY_NODE_HOST: 'a b' }, fail)).toThrow(/RELAY_NODE_HOST/);
  });
});

describe('node load', () => {
  it('counts a tiered channel once, viewers, and bytes sent to viewers over at least a second', async () => {
    const session = (id: string, publisher: boolean, outBytes = 0) =>
      ({ id, isPublisher: publisher, outBytes, streamApp: 'live', streamQuery: {} }) as NmsSession;
    const viewer = session('v1', false);
    // a worker's read of its channel (a push target) and of a member: no viewers
    const runRead = { ...session('r1', false, 10_000_000), streamQuery: { nonce: 'n' } } as NmsSession;
    const memberRead = { ...session('r2', false, 10_000_000), streamApp: 'ingest' } as NmsSession;
    const context = {
      broadcasts: new Map([
        ['/live/ch_00000000000000000001_r0', { publisher: session('p1', true), subscribers: new Map() }],
        ['/live/ch_00000000000000000001_r10', { publisher: session('p2', true), subscribers: new Map() }],
        ['/live/ch_00000000000000000002', { publisher: null, subscribers: new Map() }],
        ['/ingest/member', { publisher: session('p3', true), subscribers: new Map() }],
      ]),
      sessions: new Map([
        ['v1', viewer],
        ['r1', runRead],
        ['r2', memberRead],
      ]),
    } as unknown as NmsContext;
    const meter = new NodeLoadMeter(context);
    // within the first second: no rate yet (a start-up's CPU is no load)
    expect(meter.read()).toEqual({ channels: 1, viewers: 1, egressKbps: 0, cpu: 0 });
    await new Promise((r) => setTimeout(r, 1050));
    viewer.outBytes = 125_000; // 1 Mbit in ~1 s
    const load = meter.read();
    expect(load.egressKbps).toBeGreaterThan(800);
    expect(load.egressKbps).toBeLessThanOrEqual(1000);
  });
});

describe('where a channel is served', () => {
  const ch = (mediaNode: string | undefined, state: Channel['state'] = 'live') =>
    ({ channelId: 'ch_00000000000000000001', state, ...(mediaNode ? { mediaNode } : {}) }) as Channel;
  const view = (alive: Record<string, NodeBeat>): ClusterView => ({
    self: 'a',
    nodes: { get: async (n: string) => alive[n] ?? null },
    fallback: {
      internal: { host: '127.0.0.1', rtmpPort: 1, httpPort: 2 },
      public: { host: 'h', rtmpPort: 1, httpPort: 2 },
    },
  });

  it('here without a cluster, without a node, or on this node; at the node that holds it otherwise', async () => {
    const none = { get: async () => null };
    expect(await whereabouts(ch('b'), undefined, none)).toEqual({ at: 'here' });
    expect(await whereabouts(ch(undefined), view({}), none)).toEqual({ at: 'here' });
    expect(await whereabouts(ch('a'), view({}), none)).toEqual({ at: 'here' });
    const b = beat('b');
    expect(await whereabouts(ch('b'), view({ b }), none)).toEqual({ at: 'node', beat: b });
  });

  it('a channel whose node is gone: waits for its new placement; held here when it is not running', async () => {
    const c = beat('c');
    let reads = 0;
    const records = { get: async () => (++reads >= 2 ? ch('c') : ch('b')) };
    expect(await whereabouts(ch('b'), view({ c }), records)).toEqual({ at: 'node', beat: c });
    expect(await whereabouts(ch('b', 'interrupted'), view({}), { get: async () => ch('b', 'interrupted') })).toEqual({
      at: 'here',
    });
  });
});

describe('a run’s media node', () => {
  const logger = createLogger('silent', 'test');
  const listening = () =>
    new Promise<net.Server>((resolve) => {
      const s = net.createServer((c) => c.destroy()).listen(0, '127.0.0.1', () => resolve(s));
    });
  // a port nothing listens on (a port closed a moment ago may be taken again by a parallel test: it must not be used)
  const REFUSING_PORT = 1;

  it('keeps a node that accepts connections; moves the channel off one that refuses, and forgets its beat', async () => {
    const server = await listening();
    const live = beat(
      'b',
      {},
      { internalHost: '127.0.0.1', publicHost: 'b.example', rtmpPort: (server.address() as net.AddressInfo).port },
    );
    const dead = beat('a', {}, { internalHost: '127.0.0.1', rtmpPort: REFUSING_PORT });
    const beats: Record<string, NodeBeat> = { a: dead, b: live };
    const forgotten: string[] = [];
    const patches: unknown[] = [];
    const recorded: string[] = [];
    const deps: ConstructorParameters<typeof RunNode>[0] = {
      config: { mediaInternalHost: '127.0.0.1', rtmpPort: 1935, httpPort: 8000, publicHost: 'h' },
      nodes: { get: async (n) => beats[n] ?? null, forget: async (b) => void forgotten.push(b.node) },
      placement: {
        place: async (_id, exclude) => {
          const free = Object.values(beats).find((b) => !exclude?.has(b.node));
          if (!free) throw new Error('no media node has room');
          recorded.push(free.node);
          return free;
        },
        release: async () => undefined,
      },
      lifecycle: { patchRun: async (_id, _gen, fields) => (patches.push(fields), { ok: true, state: 'live' }) },
      rooms: { get: async () => null },
      log: logger,
    };
    const node2 = () => new RunNode(deps, 'ch_00000000000000000001', 3);
    const node = node2();
    const channel = {
      channelId: 'ch_00000000000000000001',
      mediaNode: 'b',
      option: { encode: 4, rateTypes: [0] },
      input: { kind: 'external' },
      urls: [
        { type: 5, rateType: 0, playUrl: 'rtmp://a.example:1935/live/ch_00000000000000000001' },
        { type: 2, rateType: 0, playUrl: 'http://edge.example:8080/live/ch_00000000000000000001.flv' },
      ],
    } as unknown as Channel;
    expect((await node.attempt(channel)).publish.rtmpPort).toBe(live.rtmpPort);
    expect(patches).toEqual([]);
    // the node the record names refuses connections: the channel goes to the other one, recorded with its URLs
    const out = await node2().resolve({ ...channel, mediaNode: 'a' });
    expect(forgotten).toEqual(['a']);
    expect(out.mediaNode).toBe('b');
    expect(recorded).toEqual(['b']);
    expect(patches).toHaveLength(1);
    expect((patches[0] as Channel).urls.map((u) => u.playUrl)).toEqual([
      `rtmp://b.example:${live.rtmpPort}/live/ch_00000000000000000001`,
      'http://edge.example:8080/live/ch_00000000000000000001.flv', // the HTTP URL handed out stays
    ]);
    await new Promise((r) => server.close(r));
  });
});
