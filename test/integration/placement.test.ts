/**
 * Placement on the real Redis (its choice and record are one Lua script): the node with the most headroom wins,
 * simultaneous placements spread, full nodes and CPU-bound nodes take nothing, a move does not count the channel's
 * own entry, and no beating node at all leaves a channel unplaced.
 */
import crypto from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { Keys } from '../../src/redis/index.js';
import { Placement } from '../../src/cluster/placement.js';
import type { NodeBeat } from '../../src/cluster/nodes.js';
import { RelayError } from '../../src/errors/index.js';
import { REDIS_URL } from '../helpers/stack.js';

const redis = new Redis(REDIS_URL);
const prefixes: Keys[] = [];

afterAll(async () => {
  for (const k of prefixes) await redis.del(k.placements());
  redis.disconnect();
});

const beat = (node: string, load: Partial<NonNullable<NodeBeat['load']>> = {}, maxChannels = 10): NodeBeat => ({
  node,
  instance: node,
  seenAt: Date.now(),
  maxChannels,
  load: { channels: 0, viewers: 0, egressKbps: 0, cpu: 0, ...load },
});

function placement(beats: NodeBeat[]): { p: Placement; counts: () => Promise<Map<string, number>> } {
  const keys = new Keys(`pl${crypto.randomBytes(4).toString('hex')}`);
  prefixes.push(keys);
  const p = new Placement(redis, keys, { list: async () => beats }, 150);
  const counts = async () => {
    const n = new Map<string, number>();
    for (const node of await redis.hvals(keys.placements())) n.set(node, (n.get(node) ?? 0) + 1);
    return n;
  };
  return { p, counts };
}

describe('placement', () => {
  it('spreads channels over nodes by headroom, one at a time and all at once', async () => {
    const a = placement([beat('a'), beat('b')]);
    const seq = [];
    for (let i = 0; i < 4; i++) seq.push((await a.p.place(`ch${i}`))!.node);
    expect(seq).toEqual(['a', 'b', 'a', 'b']);
    // 12 starts at the same moment over 4 nodes of 5: none above its share
    const b = placement([beat('n1', {}, 5), beat('n2', {}, 5), beat('n3', {}, 5), beat('n4', {}, 5)]);
    await Promise.all(Array.from({ length: 12 }, (_, i) => b.p.place(`c${i}`)));
    expect([...(await b.counts()).values()]).toEqual([3, 3, 3, 3]);
  });

  it('counts channels publishing into a node and its CPU; refuses with 50005 when every node is full', async () => {
    const busy = placement([beat('a', { channels: 8 }), beat('b', { channels: 2 })]);
    expect((await busy.p.place('x'))!.node).toBe('b');
    const hot = placement([beat('a', { cpu: 0.95 }), beat('b', { channels: 9 })]);
    expect((await hot.p.place('x'))!.node).toBe('b');
    const full = placement([beat('a', {}, 1), beat('b', {}, 1)]);
    await full.p.place('x1');
    await full.p.place('x2');
    const refused = await full.p.place('x3').catch((e: RelayError) => e);
    expect(refused).toBeInstanceOf(RelayError);
    expect((refused as RelayError).code).toBe(50005);
    expect((refused as RelayError).message).toMatch(/no media node has room/);
    expect([...(await full.counts()).values()].reduce((x, y) => x + y)).toBe(2);
  });

  it('a move leaves out the gone node and does not count the channel itself; release keeps a newer placement', async () => {
    const m = placement([beat('a', {}, 2), beat('b', {}, 2)]);
    await m.p.place('x'); // a
    await m.p.place('y'); // b
    await m.p.place('z'); // a: full now
    // x moves off a (gone): b has room for one more
    expect((await m.p.place('x', new Set(['a'])))!.node).toBe('b');
    expect(Object.fromEntries(await m.counts())).toEqual({ a: 1, b: 2 });
    await m.p.release('x', 'a'); // an older placement's release: x is on b now
    expect(Object.fromEntries(await m.counts())).toEqual({ a: 1, b: 2 });
    await m.p.release('x');
    expect(Object.fromEntries(await m.counts())).toEqual({ a: 1, b: 1 });
  });

  it('no media node beating at all: the channel runs unplaced', async () => {
    expect(await placement([]).p.place('x')).toBeNull();
    expect(await placement([beat('a')]).p.place('x', new Set(['a']))).toBeNull();
  });
});
