/**
 * The egress policy: where the relay may connect on a tenant's behalf (upstream URLs, webhook URLs; push destinations
 * later). A tenant's URL must not reach the relay's own network: every address its host resolves to is checked, and
 * loopback, private (RFC 1918, RFC 4193), link-local (which holds the cloud metadata services), CGNAT (RFC 6598),
 * multicast, reserved and unspecified addresses are refused, in IPv4 and IPv6 and in every spelling (decimal, octal,
 * hex, IPv4-mapped and NAT64 IPv6), unless the operator allow-lists them with RELAY_UPSTREAM_ALLOW. SRS, nginx-rtmp
 * and MediaMTX take pull sources from operator configuration only; a relay that takes them from tenants has to draw
 * this line itself.
 */
import dns from 'node:dns/promises';
import net from 'node:net';
import { RelayError } from '../errors/index.js';

/** The setting that allow-lists hosts, addresses and networks (comma separated). */
export const ALLOW_SETTING = 'RELAY_UPSTREAM_ALLOW';

/** Networks no tenant URL may reach (IANA special-purpose registries, RFC 6890). */
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
const BLOCKED_V6: readonly [string, number][] = [
  ['::', 128], // unspecified
  ['::1', 128], // loopback
  ['100::', 64], // discard-only
  ['2001:db8::', 32], // documentation
  ['fc00::', 7], // unique local (holds fd00:ec2::254, a metadata address)
  ['fe80::', 10], // link-local
  ['fec0::', 10], // site-local (deprecated)
  ['ff00::', 8], // multicast
];

const BLOCKED = new net.BlockList();
for (const [a, p] of BLOCKED_V4) BLOCKED.addSubnet(a, p, 'ipv4');
for (const [a, p] of BLOCKED_V6) BLOCKED.addSubnet(a, p, 'ipv6');

/** The IPv4 address an IPv6 address carries (IPv4-mapped ::ffff:a.b.c.d, NAT64 64:ff9b::/96), if any. */
function embeddedV4(v6: string): string | null {
  const lower = v6.toLowerCase();
  const dotted = /^(?:::ffff:|64:ff9b::)(\d+\.\d+\.\d+\.\d+)$/.exec(lower);
  if (dotted) return dotted[1]!;
  const hex = /^(?:::ffff:|64:ff9b::)([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(lower);
  if (!hex) return null;
  const hi = parseInt(hex[1]!, 16);
  const lo = parseInt(hex[2]!, 16);
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}

/** Whether an address (as resolved: a canonical IPv4 or IPv6 text) is in a network no tenant may reach. */
export function isInternalAddress(address: string): boolean {
  const family = net.isIP(address);
  if (family === 4) return BLOCKED.check(address, 'ipv4');
  if (family !== 6) return true; // not an address at all: refuse rather than guess
  const v4 = embeddedV4(address);
  if (v4) return BLOCKED.check(v4, 'ipv4');
  return BLOCKED.check(address, 'ipv6');
}

/** What the operator allows beyond the public internet. */
export interface EgressPolicy {
  /** Host names allowed as written (lower case). */
  hosts: ReadonlySet<string>;
  /** Addresses and networks allowed. */
  nets: net.BlockList;
  /** The setting as given, for messages. */
  spec: string;
}

/**
 * Parses RELAY_UPSTREAM_ALLOW: comma-separated host names (`cams.internal`), addresses (`127.0.0.1`, `::1`) and
 * networks in CIDR notation (`10.0.0.0/8`). Throws on an entry that is none of these.
 */
export function parseEgressAllow(spec: string): EgressPolicy {
  const hosts = new Set<string>();
  const nets = new net.BlockList();
  for (const raw of spec
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const [addr, bits] = raw.split('/');
    const family = net.isIP(addr!);
    if (family && bits === undefined) nets.addAddress(addr!, family === 4 ? 'ipv4' : 'ipv6');
    else if (family && /^\d{1,3}$/.test(bits!) && Number(bits) <= (family === 4 ? 32 : 128))
      nets.addSubnet(addr!, Number(bits), family === 4 ? 'ipv4' : 'ipv6');
    else if (/^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/i.test(raw)) hosts.add(raw.toLowerCase());
    else throw new Error(`${ALLOW_SETTING}: "${raw}" is not a host name, an address or a network (a.b.c.d/n)`);
  }
  return { hosts, nets, spec };
}

/** Resolves a host to every address it has (a literal address resolves to itself, in canonical form). */
export type Resolver = (host: string) => Promise<string[]>;
export const systemResolver: Resolver = async (host) =>
  (await dns.lookup(host, { all: true, verbatim: true })).map((a) => a.address);

/**
 * Resolves a host (a name, or an address literal without brackets) once and returns its addresses, every one checked:
 * throws RelayError 50002 (hint naming RELAY_UPSTREAM_ALLOW) when it does not resolve or any address is internal and
 * not allowed. A host name the policy allows is resolved but not checked. Connect to the returned addresses only (the
 * egress proxy does), so a second lookup cannot answer differently (DNS rebinding). `what` names it in messages.
 */
export async function resolveAllowed(
  host: string,
  policy: EgressPolicy,
  what: string,
  resolve: Resolver = systemResolver,
): Promise<string[]> {
  host = host.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  if (!host) throw new RelayError(50002, `${what} has no host`);
  let addresses: string[];
  try {
    addresses = await resolve(host);
  } catch {
    throw new RelayError(50002, `${what}: host ${host} does not resolve`, {
      hint: 'use a host name that resolves in public DNS',
    });
  }
  if (addresses.length === 0) throw new RelayError(50002, `${what}: host ${host} does not resolve`);
  if (policy.hosts.has(host)) return addresses;
  for (const a of addresses) {
    const family = net.isIP(a) === 6 ? 'ipv6' : 'ipv4';
    if (isInternalAddress(a) && !policy.nets.check(a, family)) {
      throw new RelayError(
        50002,
        `${what} points at an internal address (${host} → ${a}), which tenants may not reach`,
        {
          hint: `an operator may allow it with ${ALLOW_SETTING} (host names, addresses or networks, comma separated)`,
        },
      );
    }
  }
  return addresses;
}

/**
 * Refuses (RelayError 50002, with a hint naming RELAY_UPSTREAM_ALLOW) a URL whose host is, or resolves to, an internal
 * address the policy does not allow, or does not resolve at all. `what` names the URL in the message ("upstream url").
 */
export async function assertEgressAllowed(
  url: string,
  policy: EgressPolicy,
  what: string,
  resolve: Resolver = systemResolver,
): Promise<void> {
  let host: string;
  try {
    host = new URL(url).hostname;
  } catch {
    throw new RelayError(50002, `${what} is not a valid URL`);
  }
  if (policy.hosts.has(host.toLowerCase())) return;
  await resolveAllowed(host, policy, what, resolve);
}
