/**
 * Which addresses are internal: the networks of the IANA special-purpose address registries (RFC 6890 and its
 * updates) that are not globally reachable, in IPv4 and IPv6, and every IPv6 spelling that carries an IPv4 address
 * (IPv4-mapped, IPv4-compatible, IPv4-translated, NAT64, 6to4, Teredo), which is judged by the IPv4 address it carries.
 */
import net from 'node:net';

/** IPv4 networks no tenant URL may reach (IANA IPv4 special-purpose registry, RFC 6890). */
const BLOCKED_V4: readonly [string, number][] = [
  ['0.0.0.0', 8], // "this network", unspecified
  ['10.0.0.0', 8], // private
  ['100.64.0.0', 10], // CGNAT
  ['127.0.0.0', 8], // loopback
  ['169.254.0.0', 16], // link-local, cloud metadata
  ['172.16.0.0', 12], // private
  ['192.0.0.0', 24], // IETF protocol assignments
  ['192.0.2.0', 24], // documentation
  ['192.88.99.0', 24], // 6to4 relay anycast
  ['192.168.0.0', 16], // private
  ['198.18.0.0', 15], // benchmarking
  ['198.51.100.0', 24], // documentation
  ['203.0.113.0', 24], // documentation
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, broadcast
];

/**
 * IPv6 networks no tenant URL may reach (IANA IPv6 special-purpose registry), besides everything outside global
 * unicast 2000::/3 and the IPv4-carrying prefixes judged by their IPv4 address (see isInternalAddress).
 */
const BLOCKED_V6: readonly [string, number][] = [
  ['::', 128], // unspecified
  ['::1', 128], // loopback
  ['64:ff9b:1::', 48], // local-use NAT64 (RFC 8215): translates to whatever the local network decides
  ['100::', 64], // discard-only (RFC 6666)
  ['100:0:0:1::', 64], // dummy prefix (RFC 9780)
  ['2001::', 23], // IETF protocol assignments (Teredo 2001::/32 is judged before, by its IPv4 addresses)
  ['2001:db8::', 32], // documentation
  ['3fff::', 20], // documentation (RFC 9637)
  ['5f00::', 16], // segment routing SIDs (RFC 9602)
  ['fc00::', 7], // unique local (holds fd00:ec2::254, a metadata address)
  ['fe80::', 10], // link-local
  ['fec0::', 10], // site-local (deprecated)
  ['ff00::', 8], // multicast
];

const BLOCKED = new net.BlockList();
for (const [a, p] of BLOCKED_V4) BLOCKED.addSubnet(a, p, 'ipv4');
for (const [a, p] of BLOCKED_V6) BLOCKED.addSubnet(a, p, 'ipv6');
const GLOBAL_UNICAST = new net.BlockList();
GLOBAL_UNICAST.addSubnet('2000::', 3, 'ipv6');

/** The eight 16-bit groups of an IPv6 address text (any valid spelling, zone id ignored); null when malformed. */
export function ipv6Groups(text: string): number[] | null {
  let s = text.toLowerCase().replace(/%.*$/, '');
  const dotted = /^(.*:)(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (dotted) {
    const b = dotted.slice(2).map(Number);
    if (b.some((n) => n > 255)) return null;
    s = `${dotted[1]}${((b[0]! << 8) | b[1]!).toString(16)}:${((b[2]! << 8) | b[3]!).toString(16)}`;
  }
  const halves = s.split('::');
  if (halves.length > 2) return null;
  const parse = (p: string) =>
    p === '' ? [] : p.split(':').map((h) => (/^[0-9a-f]{1,4}$/.test(h) ? parseInt(h, 16) : NaN));
  const head = parse(halves[0]!);
  const tail = halves.length === 2 ? parse(halves[1]!) : [];
  const missing = 8 - head.length - tail.length;
  if ([...head, ...tail].some(Number.isNaN) || (halves.length === 2 ? missing < 1 : missing !== 0)) return null;
  return [...head, ...new Array<number>(halves.length === 2 ? missing : 0).fill(0), ...tail];
}

const v4 = (hi: number, lo: number) => `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;

/**
 * The IPv4 addresses an IPv6 address carries, to be judged in its place: IPv4-mapped `::ffff:a.b.c.d`,
 * IPv4-translated `::ffff:0:a.b.c.d`, IPv4-compatible `::a.b.c.d` (::/96, which holds :: and ::1 as 0.0.0.0 and
 * 0.0.0.1), NAT64 `64:ff9b::a.b.c.d` (RFC 6052), 6to4 `2002:aabb:ccdd::` (RFC 3056) and Teredo `2001:0:<server>::
 * <client xor ffff:ffff>` (RFC 4380: both the server and the client address). Null when it carries none.
 */
export function embeddedV4(groups: readonly number[]): string[] | null {
  const [g0, g1, g2, g3, g4, g5, g6, g7] = groups as [number, number, number, number, number, number, number, number];
  const zeroTo = (n: number) => groups.slice(0, n).every((g) => g === 0);
  if (zeroTo(5) && g5 === 0xffff) return [v4(g6, g7)];
  if (zeroTo(4) && g4 === 0xffff && g5 === 0) return [v4(g6, g7)];
  if (zeroTo(6)) return [v4(g6, g7)];
  if (g0 === 0x64 && g1 === 0xff9b && g2 === 0 && g3 === 0 && g4 === 0 && g5 === 0) return [v4(g6, g7)];
  if (g0 === 0x2002) return [v4(g1, g2)];
  if (g0 === 0x2001 && g1 === 0) return [v4(g2, g3), v4(g6 ^ 0xffff, g7 ^ 0xffff)];
  return null;
}

/**
 * Whether an address (an IPv4 or IPv6 text, as resolved or as written in a URL) is one no tenant may reach: in a
 * blocked network, outside IPv6 global unicast, or an IPv6 spelling of an internal IPv4 address. Anything that is not
 * an address at all counts as internal (refuse rather than guess).
 */
export function isInternalAddress(address: string): boolean {
  const family = net.isIP(address);
  if (family === 4) return BLOCKED.check(address, 'ipv4');
  if (family !== 6) return true;
  const groups = ipv6Groups(address);
  if (!groups) return true;
  const carried = embeddedV4(groups);
  if (carried) return carried.some((a) => BLOCKED.check(a, 'ipv4'));
  const canonical = groups.map((g) => g.toString(16)).join(':');
  return BLOCKED.check(canonical, 'ipv6') || !GLOBAL_UNICAST.check(canonical, 'ipv6');
}
