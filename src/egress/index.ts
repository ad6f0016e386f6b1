/**
 * The egress policy: where the relay may connect on a tenant's behalf (upstream URLs, webhook URLs; push destinations
 * later). A tenant's URL must not reach the relay's own network: every address its host resolves to is checked, and
 * loopback, private (RFC 1918, RFC 4193), link-local (which holds the cloud metadata services), CGNAT (RFC 6598),
 * multicast, reserved and unspecified addresses are refused, in IPv4 and IPv6 and in every spelling (decimal, octal,
 * hex, and the IPv6 forms that carry an IPv4 address: see addresses.ts), unless the operator allow-lists them with RELAY_UPSTREAM_ALLOW. SRS, nginx-rtmp
 * and MediaMTX take pull sources from operator configuration only; a relay that takes them from tenants has to draw
 * this line itself.
 */
import dns from 'node:dns/promises';
import net from 'node:net';
import { RelayError } from '../errors/index.js';
import { isInternalAddress } from './addresses.js';

export { isInternalAddress } from './addresses.js';

/** The setting that allow-lists hosts, addresses and networks (comma separated). */
export const ALLOW_SETTING = 'RELAY_UPSTREAM_ALLOW';

/** The hint of every refusal of the egress policy (the `hint` field of a 50002 answer). */
export const EGRESS_HINT =
  `use a public host that resolves in DNS; an operator may allow internal hosts, addresses or networks with ` +
  `${ALLOW_SETTING} (comma separated)`;

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

/** A refusal of the egress policy: RelayError 50002 with the policy's hint (naming RELAY_UPSTREAM_ALLOW). */
export function egressRefusal(message: string): RelayError {
  return new RelayError(50002, message, { hint: EGRESS_HINT });
}

/** Resolves a host to every address it has (a literal address resolves to itself, in canonical form). */
export type Resolver = (host: string) => Promise<string[]>;
export const systemResolver: Resolver = async (host) =>
  (await dns.lookup(host, { all: true, verbatim: true })).map((a) => a.address);

/**
 * Resolves a host (a name, or an address literal without brackets) once and returns its addresses, every one checked:
 * throws RelayError 50002 (hint naming RELAY_UPSTREAM_ALLOW) when it does not resolve or any address is internal and
 * not allowed. A host name the policy allows is resolved but not checked. Connect to the returned addresses only (the
 * run's gateway and RTSP relays do), so a second lookup cannot answer differently (DNS rebinding). `what` names it in messages.
 */
export async function resolveAllowed(
  host: string,
  policy: EgressPolicy,
  what: string,
  resolve: Resolver = systemResolver,
): Promise<string[]> {
  host = host.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  if (!host) throw egressRefusal(`${what} has no host`);
  let addresses: string[] = [];
  try {
    addresses = await resolve(host);
  } catch {
    /* refused below */
  }
  if (addresses.length === 0) throw egressRefusal(`${what}: host ${host} does not resolve`);
  if (policy.hosts.has(host)) return addresses;
  for (const a of addresses) {
    const family = net.isIP(a) === 6 ? 'ipv6' : 'ipv4';
    if (isInternalAddress(a) && !policy.nets.check(a, family))
      throw egressRefusal(`${what} points at an internal address (${host} → ${a}), which tenants may not reach`);
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
    throw egressRefusal(`${what} is not a valid URL`);
  }
  if (policy.hosts.has(host.toLowerCase())) return;
  await resolveAllowed(host, policy, what, resolve);
}
