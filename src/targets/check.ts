/**
 * The checks a push target URL passes when it is added (at start or on a running channel): its form (rtmp://, rtmps://
 * or srt:// only, no file, no credentials in the authority, no control characters, at most 2048 characters), what the
 * relay's ffmpeg can write (srt only where it has libsrt: 50008), and the egress policy (50002, the same allow list as
 * upstreams: RELAY_UPSTREAM_ALLOW). Every refusal carries code, message and hint; none repeats the URL (a secret).
 */
import crypto from 'node:crypto';
import { RelayError } from '../errors/index.js';
import { assertEgressAllowed, type EgressPolicy } from '../egress/index.js';
import type { FfmpegInfo } from '../media/ffmpeg/capabilities.js';
import type { PushTarget, RateType } from '../channels/types.js';

/** Most push targets a channel has at once. */
export const MAX_PUSH_TARGETS = 5;
/** Longest push target URL. */
export const MAX_TARGET_URL = 2048;
export type TargetScheme = 'rtmp' | 'rtmps' | 'srt';
/** The container each scheme carries, and the only protocols ffmpeg may open for it. */
export const TARGET_SCHEMES: Record<TargetScheme, { format: 'flv' | 'mpegts'; protocols: string }> = {
  rtmp: { format: 'flv', protocols: 'rtmp,tcp' },
  rtmps: { format: 'flv', protocols: 'rtmps,rtmp,tcp,tls' },
  srt: { format: 'mpegts', protocols: 'srt,udp' },
};
const HINT = 'give the rtmp://, rtmps:// or srt:// URL (with its stream key) your streaming service shows';
const refuse = (message: string, hint = HINT) => new RelayError(50002, `push target url ${message}`, { hint });

/** A new target id: `tg_` and 16 hex digits. */
export function newTargetId(): string {
  return `tg_${crypto.randomBytes(8).toString('hex')}`;
}
export const TARGET_ID_PATTERN = /^tg_[0-9a-f]{16}$/;

/** Checks the form of a push target URL (no network, no ffmpeg); returns its scheme. Throws RelayError 50002. */
export function checkTargetForm(raw: unknown): TargetScheme {
  if (typeof raw !== 'string' || raw.length === 0) throw refuse('is missing');
  if (raw.length > MAX_TARGET_URL) throw refuse(`is longer than ${MAX_TARGET_URL} characters`);
  // eslint-disable-next-line no-control-regex
  if (/[\s\u0000-\u001f\u007f-\u009f\\]/.test(raw)) throw refuse('has spaces, backslashes or control characters');
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(raw)?.[1]?.toLowerCase();
  if (!scheme) throw refuse('is not a network URL (files and ffmpeg pseudo-protocols are refused)');
  if (!(scheme in TARGET_SCHEMES)) throw refuse(`scheme ${scheme.slice(0, 16)}: is not allowed`);
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw refuse('is not a valid URL');
  }
  if (!u.hostname) throw refuse('has no host');
  const authority = /^[^:]+:\/\/([^/?#]*)/.exec(raw)?.[1] ?? '';
  if (u.username || u.password || authority.includes('@'))
    throw refuse('carries credentials before its host (user:password@)', 'put the stream key in the path or query');
  if (scheme === 'srt') {
    if (!u.port) throw refuse('of srt needs a port (srt://host:port)');
    const mode = u.searchParams.get('mode');
    if (mode && mode !== 'caller') throw refuse(`of srt may only call out (mode=${mode.slice(0, 16)} refused)`);
  } else if (u.pathname.split('/').filter(Boolean).length < 2)
    throw refuse('needs an application and a stream key (rtmp://host/app/key)');
  return scheme as TargetScheme;
}

const DEFAULT_PORTS: Record<string, string> = { rtmp: '1935', rtmps: '443' };

/**
 * A checked target URL as the relay stores and uses it: scheme and host in lower case (ffmpeg knows `rtmp`, not
 * `RTMP`), no default port, no empty query or fragment; its path and query (the stream key) as given.
 */
export function normaliseTargetUrl(url: string): string {
  const m = /^([a-z][a-z0-9+.-]*):\/\/([^/?#]*)(.*)$/is.exec(url);
  if (!m) return url;
  const scheme = m[1]!.toLowerCase();
  let host = m[2]!.toLowerCase();
  if (host.endsWith(`:${DEFAULT_PORTS[scheme]}`)) host = host.slice(0, host.lastIndexOf(':'));
  return `${scheme}://${host}${m[3]!.replace(/[?#]+$/, '')}`;
}

/** The refusal of a destination the channel pushes to already (at start and when adding one). */
export function duplicateTarget(): RelayError {
  return new RelayError(50002, 'the channel already pushes to this url', {
    status: 409,
    hint: 'give each destination once (URLs that differ only in the case of scheme or host are the same)',
  });
}

/** What the full check needs: the egress policy and, when known, the relay's ffmpeg. */
export interface TargetCheckDeps {
  egress: EgressPolicy;
  ffmpeg?: () => Promise<FfmpegInfo>;
}

/** Checks a push target URL fully: form, the ffmpeg's output protocols (50008), the egress policy (50002). */
export async function checkPushTarget(raw: unknown, deps: TargetCheckDeps): Promise<TargetScheme> {
  const scheme = checkTargetForm(raw);
  const ffmpeg = await deps.ffmpeg?.();
  if (ffmpeg?.caps && !ffmpeg.caps.protocols.output.has(scheme)) {
    const v = ffmpeg.version;
    throw new RelayError(
      50008,
      `${scheme}:// push targets need the ${scheme} protocol, which the relay's ffmpeg${v ? ` ${v.major}.${v.minor}` : ''} lacks`,
      { hint: 'use an rtmp:// or rtmps:// URL, or run the relay with an ffmpeg that has it (README "ffmpeg")' },
    );
  }
  await assertEgressAllowed(raw as string, deps.egress, 'push target url');
  return scheme;
}

/** Makes checked targets (URLs normalised) of a start's or an add's entries, refusing a destination given twice (409);
 * `rateTypes` are the channel's tiers. */
export async function makePushTargets(
  entries: readonly { url: string; rateType?: number }[],
  rateTypes: readonly RateType[],
  deps: TargetCheckDeps,
  now = Date.now(),
): Promise<PushTarget[]> {
  const out: PushTarget[] = [];
  for (const e of entries) {
    await checkPushTarget(e.url, deps);
    const url = normaliseTargetUrl(e.url);
    if (out.some((t) => t.url === url)) throw duplicateTarget();
    if (e.rateType !== undefined && !rateTypes.includes(e.rateType as RateType))
      throw new RelayError(50002, `push target rateType ${e.rateType} is not among the channel's tiers`, {
        hint: `use one of ${rateTypes.join(', ')} or leave it out (the best tier)`,
      });
    out.push({
      targetId: newTargetId(),
      url,
      ...(e.rateType !== undefined ? { rateType: e.rateType as RateType } : {}),
      addedAt: now,
    });
  }
  return out;
}
