/**
 * A channel its worker moves to another media node keeps the HTTP play URLs it was handed (the cluster's front, as the
 * API configured it) whatever the worker's own RELAY_PUBLIC_HOST and RELAY_HTTP_PORT; its RTMP URLs name the new node.
 */
import { describe, expect, it } from 'vitest';
import { movedTo, placedOn } from '../../src/channels/urls.js';
import type { NodeBeat } from '../../src/cluster/nodes.js';
import type { Channel } from '../../src/channels/types.js';

const beat = (node: string, host: string): NodeBeat => ({
  node,
  instance: 'i',
  seenAt: 0,
  internalHost: host,
  publicHost: host,
  rtmpPort: 11935,
  httpPort: 18000,
});
const front = { publicHost: 'edge.example', httpPort: 8080, rtmpPort: 1935 };
// a worker on a media host: its own settings name that host's ports, not the cluster's front
const worker = { publicHost: '10.0.0.3', httpPort: 18000, rtmpPort: 11935 };

function channel(encode: 3 | 4, rateTypes: (0 | 10 | 20)[]): Pick<Channel, 'channelId' | 'option' | 'urls'> {
  const ch = { channelId: 'ch_00000000000000000001', option: { encode, rateTypes } } as Pick<
    Channel,
    'channelId' | 'option' | 'urls'
  >;
  return { ...ch, urls: placedOn(ch, beat('hostB', '10.0.0.2'), front).urls };
}

describe('movedTo', () => {
  it('keeps the HTTP URLs handed out (HLS and FLV, master playlist included)', () => {
    const ch = channel(3, [0, 10]);
    const moved = movedTo(ch, beat('hostC', '10.0.0.3'), worker);
    expect(moved.mediaNode).toBe('hostC');
    expect(moved.urls).toEqual(ch.urls);
    for (const u of moved.urls) expect(u.playUrl).toMatch(/^http:\/\/edge\.example:8080\//);
  });

  it('names the new node in the RTMP URLs, per tier, and keeps FLV at the front', () => {
    const ch = channel(4, [0, 20]);
    expect(ch.urls.filter((u) => u.type === 5).map((u) => u.playUrl)).toEqual([
      'rtmp://10.0.0.2:11935/live/ch_00000000000000000001_r0',
      'rtmp://10.0.0.2:11935/live/ch_00000000000000000001_r20',
    ]);
    const moved = movedTo(ch, beat('hostC', '10.0.0.3'), worker);
    expect(moved.urls.map((u) => [u.type, u.rateType, u.playUrl])).toEqual([
      [5, 0, 'rtmp://10.0.0.3:11935/live/ch_00000000000000000001_r0'],
      [5, 20, 'rtmp://10.0.0.3:11935/live/ch_00000000000000000001_r20'],
      [2, 0, 'http://edge.example:8080/live/ch_00000000000000000001_r0.flv'],
      [2, 20, 'http://edge.example:8080/live/ch_00000000000000000001_r20.flv'],
    ]);
  });

  it('a node without a public host of its own: the URLs stay as they are (the cluster’s, as with one media server)', () => {
    const ch = channel(4, [0]);
    const moved = movedTo(ch, { ...beat('hostC', '10.0.0.3'), publicHost: undefined }, worker);
    expect(moved).toEqual({ mediaNode: 'hostC', urls: ch.urls });
  });
});
