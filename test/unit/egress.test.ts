import { describe, expect, it } from 'vitest';
import {
  assertEgressAllowed,
  isInternalAddress,
  parseEgressAllow,
  systemResolver,
  type Resolver,
} from '../../src/egress/index.js';
import { RelayError } from '../../src/errors/index.js';

const none = parseEgressAllow('');
// A resolver for host names that are not literal addresses (literal ones go through the system resolver, which
// only parses them: no DNS traffic in unit tests).
const dnsOf =
  (names: Record<string, string[]>): Resolver =>
  async (host) =>
    names[host] ?? systemResolver(host);

async function refusal(url: string, policy = none, resolve: Resolver = dnsOf({})): Promise<RelayError | null> {
  try {
    await assertEgressAllowed(url, policy, 'upstream url', resolve);
    return null;
  } catch (e) {
    return e as RelayError;
  }
}

describe('egress policy', () => {
  it.each([
    '127.0.0.1',
    '127.1.2.3',
    '10.1.2.3',
    '172.16.0.1',
    '172.31.255.255',
    '192.168.1.10',
    '169.254.169.254',
    '100.64.0.1',
    '0.0.0.0',
    '224.0.0.1',
    '255.255.255.255',
    '::1',
    '::',
    'fe80::1',
    'fd00:ec2::254',
    'fc00::1',
    'ff02::1',
    '::ffff:127.0.0.1',
    '::ffff:7f00:1',
    '::ffff:a9fe:a9fe',
    '64:ff9b::a9fe:a9fe',
    '::127.0.0.1', // IPv4-compatible (::/96)
    '::a9fe:a9fe',
    '::ffff:0:10.0.0.1', // IPv4-translated
    '2002:7f00:1::', // 6to4 of 127.0.0.1
    '2002:a9fe:a9fe:1::5', // 6to4 of 169.254.169.254
    '64:ff9b:1::8.8.8.8', // local-use NAT64: whatever the local network translates it to
    '2001:0:a9fe:a9fe::1', // Teredo, server 169.254.169.254
    '2001:0:808:808::f5ff:fffe', // Teredo, server 8.8.8.8, client 10.0.0.1 (xor ffff:ffff)
    '2001:2::1', // IETF protocol assignments (2001::/23)
    '2001:db8::1', // documentation
    '3fff::1', // documentation (RFC 9637)
    '5f00::1', // segment routing
    '100::1', // discard-only
    'fec0::1', // site-local
    '4000::1', // reserved by IETF (outside 2000::/3)
    '::2', // IPv4-compatible 0.0.0.2
    'fe80::1%eth0',
  ])('%s is internal', (a) => {
    expect(isInternalAddress(a)).toBe(true);
  });

  it.each([
    '8.8.8.8',
    '1.1.1.1',
    '172.32.0.1',
    '192.169.0.1',
    '2001:4860:4860::8888',
    '::ffff:8.8.8.8',
    '64:ff9b::8.8.8.8',
    '2002:808:808::1', // 6to4 of 8.8.8.8
    '2001:0:808:808::f7f7:f7f7', // Teredo, server 8.8.8.8, client 8.8.8.8
    '2a00:1450:4001::1',
  ])('%s is public', (a) => {
    expect(isInternalAddress(a)).toBe(false);
  });

  it.each([
    'http://169.254.169.254/latest/x.m3u8',
    'http://2852039166/x.m3u8', // 169.254.169.254 as one decimal number
    'http://0xa9fea9fe/x.m3u8', // the same in hex
    'http://0251.0376.0251.0376/x.m3u8', // the same in octal
    'http://127.0.0.1:9/x.m3u8',
    'http://127.1/x.m3u8',
    'http://[::1]:9/x.m3u8',
    'http://[::ffff:127.0.0.1]/x.m3u8',
    'http://10.1.2.3/x.m3u8',
    'rtmp://192.168.1.10/live/x',
    'rtmp://2852039166/live/x', // non-special schemes keep the host as written: the resolver reads it
    'rtsp://localhost:554/cam',
    'srt://0.0.0.0:9000',
    'http://[::127.0.0.1]/x.m3u8',
    'http://[2002:7f00:1::]/x.m3u8',
    'rtsp://[64:ff9b:1::a00:1]/cam',
    'http://[2001:0:a9fe:a9fe::1]/x',
  ])('%s is refused with 50002 and a hint naming RELAY_UPSTREAM_ALLOW', async (url) => {
    const e = await refusal(url);
    expect(e).toBeInstanceOf(RelayError);
    expect(e).toMatchObject({ code: 50002, hint: expect.stringContaining('RELAY_UPSTREAM_ALLOW') });
  });

  it('a host name is judged by every address it resolves to (one internal address is enough to refuse)', async () => {
    const resolve = dnsOf({ 'cams.example.com': ['203.0.114.7'], 'mixed.example.com': ['203.0.114.7', '10.0.0.5'] });
    expect(await refusal('rtsp://cams.example.com/a', none, resolve)).toBeNull();
    expect((await refusal('rtsp://mixed.example.com/a', none, resolve))?.message).toMatch(/10\.0\.0\.5/);
  });

  it('a host that does not resolve, or a URL without a host, is refused with the same hint', async () => {
    const resolve: Resolver = async () => {
      throw new Error('ENOTFOUND');
    };
    expect(await refusal('http://nowhere.invalid/x.m3u8', none, resolve)).toMatchObject({
      message: expect.stringMatching(/does not resolve/),
      hint: expect.stringContaining('RELAY_UPSTREAM_ALLOW'),
    });
    expect(await refusal('not a url')).toMatchObject({ hint: expect.stringContaining('RELAY_UPSTREAM_ALLOW') });
  });

  it('the operator allow-list admits hosts, addresses and networks, and nothing else', async () => {
    const policy = parseEgressAllow('127.0.0.1, 10.0.0.0/8, cams.internal, ::1');
    const resolve = dnsOf({ 'cams.internal': ['192.168.7.7'] });
    for (const url of ['http://127.0.0.1:9/x', 'rtmp://10.9.8.7/live/x', 'rtsp://cams.internal/a', 'http://[::1]:8/x'])
      expect(await refusal(url, policy, resolve), url).toBeNull();
    for (const url of ['http://127.0.0.2/x', 'http://169.254.169.254/x', 'rtmp://192.168.1.1/live/x'])
      expect(await refusal(url, policy, resolve), url).toBeInstanceOf(RelayError);
  });

  it.each(['10.0.0.0/33', 'not a host!', '1.2.3.4/x'])('the allow-list entry %s is a configuration error', (spec) => {
    expect(() => parseEgressAllow(spec)).toThrow(/RELAY_UPSTREAM_ALLOW/);
  });
});
