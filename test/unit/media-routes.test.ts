import { describe, expect, it } from 'vitest';
import { parsePath, routeOf, upgradeChannelOf, type MediaRoute } from '../../src/media-server/routes.js';

const ID = 'ch_0123456789abcdef0123';

describe('request paths', () => {
  it.each([
    ['/live/x.flv?pwd=a&b=c', '/live/x.flv'],
    ['/hls/a/index.m3u8', '/hls/a/index.m3u8'],
    ['/', '/'],
  ])('%s has the path %s', (raw, path) => {
    expect(parsePath(raw)).toBe(path);
  });

  it.each([
    undefined,
    '',
    'live/x.flv',
    '/live/%00.flv',
    '/live/%E2%98%83.flv',
    '/hls/../../etc/passwd',
    '/hls/a/..',
    '/a b',
    '/a\\b',
    'http://host/live/x.flv',
  ])('%j is malformed', (raw) => {
    expect(parsePath(raw)).toBeNull();
    expect(routeOf(raw)).toEqual({ kind: 'malformed' });
  });

  it('a URL of more than 2048 characters is malformed, one of 2048 is not', () => {
    expect(routeOf(`/${'x'.repeat(2048)}`)).toEqual({ kind: 'malformed' });
    expect(routeOf(`/${'x'.repeat(2047)}`)).toEqual({ kind: 'not-found' });
  });
});

describe('routes', () => {
  it.each<[string, MediaRoute]>([
    ['/healthz', { kind: 'healthz' }],
    ['/metrics', { kind: 'metrics' }],
    ['/player', { kind: 'player-redirect' }],
    ['/player/', { kind: 'player', file: '' }],
    ['/player/lib/hls.min.js', { kind: 'player', file: 'lib/hls.min.js' }],
    [`/status/${ID}`, { kind: 'status', channelId: ID }],
    [`/hls/${ID}/index.m3u8`, { kind: 'hls', channelId: ID, dir: ID, file: 'index.m3u8', rateType: null }],
    [`/hls/${ID}/seg_12.ts?token=t`, { kind: 'hls', channelId: ID, dir: ID, file: 'seg_12.ts', rateType: null }],
    [`/hls/${ID}/r10/index.m3u8`, { kind: 'hls', channelId: ID, dir: `${ID}/r10`, file: 'index.m3u8', rateType: 10 }],
    [`/live/${ID}.flv`, { kind: 'flv', channelId: ID, rateType: null }],
    [`/live/${ID}_r20.flv?pwd=x`, { kind: 'flv', channelId: ID, rateType: 20 }],
    [`/live/${ID}_r0.flv`, { kind: 'flv', channelId: ID, rateType: 0 }],
    ['/live/ch_00000000000000000000.flv', { kind: 'flv', channelId: 'ch_00000000000000000000', rateType: null }],
    ['/live/abc.flv', { kind: 'flv', channelId: null, rateType: null }],
    [`/live/${ID}_r1.flv`, { kind: 'flv', channelId: null, rateType: null }],
    ['/live/a.b.flv', { kind: 'not-found' }],
    ['/live/.flv', { kind: 'not-found' }],
    ['//live//x.flv', { kind: 'not-found' }],
    ['/hls/ch_x/index.m3u8', { kind: 'not-found' }],
    [`/hls/${ID}/r1/index.m3u8`, { kind: 'not-found' }],
    [`/status/${ID}/x`, { kind: 'not-found' }],
    ['/admin', { kind: 'not-found' }],
    ['/api/v1/streams', { kind: 'not-found' }],
    ['/healthz/', { kind: 'not-found' }],
  ])('%s → %j', (url, route) => {
    expect(routeOf(url)).toEqual(route);
  });

  it('an FLV name of 64 characters is a stream name, one of 65 is not found', () => {
    expect(routeOf(`/live/${'x'.repeat(64)}.flv`)).toEqual({ kind: 'flv', channelId: null, rateType: null });
    expect(routeOf(`/live/${'x'.repeat(65)}.flv`)).toEqual({ kind: 'not-found' });
  });
});

describe('WS-FLV upgrades', () => {
  it.each([
    [`/live/${ID}.flv`, ID],
    [`/live/${ID}_r10.flv?token=x`, ID],
    ['/live/abc.flv', null],
    [`/hls/${ID}/index.m3u8`, null],
    ['/healthz', null],
    ['/live/%00.flv', null],
  ])('%s asks for channel %j', (url, channelId) => {
    expect(upgradeChannelOf(url)).toBe(channelId);
  });
});
