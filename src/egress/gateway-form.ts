/**
 * The gateway form of an upstream URL: how a run's ffmpeg names an http(s) origin URL so that it asks the run's
 * egress gateway for it. `https://cdn.example:8443/live/a.m3u8?t=1` becomes
 * `http://127.0.0.1:<gateway port>/https/cdn.example:8443/live/a.m3u8?t=1` (user and password, if any, stay in the
 * URL's user info, so ffmpeg authenticates as it would with the origin). The form carries no secret: the gateway
 * applies the egress policy to whatever origin a request names, so a crafted gateway URL reaches nothing more.
 */

/** Schemes the gateway fetches. */
const SCHEMES = new Set(['http:', 'https:']);

/** Whether a URL is one the gateway fetches (http or https). */
export function isGatewayScheme(url: URL): boolean {
  return SCHEMES.has(url.protocol);
}

/**
 * The gateway URL of an http(s) origin URL (`gateway`: `http://127.0.0.1:<port>`). The fragment is dropped (never
 * sent to a server anyway). Throws on any other scheme.
 */
export function toGatewayUrl(gateway: string, origin: URL): string {
  if (!isGatewayScheme(origin)) throw new Error(`the gateway fetches http and https only, not ${origin.protocol}`);
  const auth =
    origin.username || origin.password ? `${origin.username}${origin.password ? `:${origin.password}` : ''}@` : '';
  const scheme = origin.protocol.slice(0, -1);
  return `http://${auth}${new URL(gateway).host}/${scheme}/${origin.host}${origin.pathname}${origin.search}`;
}

/**
 * The origin URL a gateway request names: its path and query (`/https/cdn.example:8443/live/a.m3u8?t=1`) read back
 * into `https://cdn.example:8443/live/a.m3u8?t=1`. Null when the path is not in gateway form (no http/https scheme
 * segment, no host, or user info in the host segment).
 */
export function fromGatewayPath(pathAndQuery: string): URL | null {
  const m = /^\/(https?)\/([^/?#@]+)([/?][^#]*)?$/i.exec(pathAndQuery);
  if (!m) return null;
  try {
    const url = new URL(`${m[1]!.toLowerCase()}://${m[2]!}${m[3]?.startsWith('?') ? `/${m[3]}` : (m[3] ?? '/')}`);
    return url.hostname ? url : null;
  } catch {
    return null;
  }
}

/**
 * A `Set-Cookie` value of an origin, scoped to that origin's gateway path so that ffmpeg (which keys cookies by the
 * gateway's host, 127.0.0.1) sends it back to that origin only: the Domain attribute is dropped and the Path is put
 * under `/<scheme>/<host>` (RFC 6265 5.2: attributes are `;`-separated, names case-insensitive).
 */
export function scopeSetCookie(value: string, origin: URL): string {
  const [pair, ...attrs] = value.split(';');
  const kept = attrs.map((a) => a.trim()).filter((a) => a && !/^(domain|path)\s*=/i.test(a));
  const path = /^path\s*=\s*(\/[^;]*)$/i.exec(attrs.map((a) => a.trim()).find((a) => /^path\s*=/i.test(a)) ?? '');
  const scoped = `/${origin.protocol.slice(0, -1)}/${origin.host}${path?.[1] ?? '/'}`;
  return [pair!.trim(), `Path=${scoped}`, ...kept].join('; ');
}
