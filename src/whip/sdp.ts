import { RelayError } from '../errors/index.js';

/** One codec an SDP media section offers: `a=rtpmap` with its `a=fmtp` parameters. */
export interface SdpCodec {
  payloadType: number;
  /** Encoding name as written (`H264`, `VP8`, `opus`, `rtx` …). */
  name: string;
  clockRate: number;
  channels: number | null;
  /** `a=fmtp` parameters, keys lower-cased. */
  fmtp: Record<string, string>;
}

/** One `m=` section of an SDP. */
export interface SdpMedia {
  kind: string;
  /** Port 0 marks a section the offerer rejected or disabled. */
  port: number;
  direction: 'sendrecv' | 'sendonly' | 'recvonly' | 'inactive';
  codecs: SdpCodec[];
}

/** The codecs the relay receives from a WHIP publisher, chosen from its offer. */
export interface ChosenCodecs {
  video: SdpCodec & { kind: 'h264' | 'vp8'; copy: boolean };
  audio: (SdpCodec & { kind: 'opus' }) | null;
}

/** What WHIP accepts, as said in a 406 refusal. */
export const ACCEPTED_CODECS = ['H264 (packetization-mode=1)', 'VP8', 'opus'] as const;

/** H.264 profiles (profile_idc of profile-level-id) that FLV, MPEG-TS and MP4 carry as they come: baseline, main, high. */
const COPIED_H264_PROFILES = new Set([0x42, 0x4d, 0x64]);

/** Parses the media sections of an SDP (session-level lines are ignored). */
export function parseSdpMedia(sdp: string): SdpMedia[] {
  const out: SdpMedia[] = [];
  let cur: SdpMedia | null = null;
  const fmtps = new Map<SdpMedia, Map<number, string>>();
  for (const raw of sdp.split(/\r?\n/)) {
    const line = raw.trim();
    const m = /^m=(\w+) (\d+)(?:\/\d+)? \S+((?: \d+)*)$/.exec(line);
    if (m) {
      cur = { kind: m[1]!, port: Number(m[2]), direction: 'sendrecv', codecs: [] };
      out.push(cur);
      fmtps.set(cur, new Map());
      continue;
    }
    if (!cur) continue;
    const dir = /^a=(sendrecv|sendonly|recvonly|inactive)$/.exec(line);
    if (dir) cur.direction = dir[1] as SdpMedia['direction'];
    const map = /^a=rtpmap:(\d+) ([\w.-]+)\/(\d+)(?:\/(\d+))?$/.exec(line);
    if (map)
      cur.codecs.push({
        payloadType: Number(map[1]),
        name: map[2]!,
        clockRate: Number(map[3]),
        channels: map[4] ? Number(map[4]) : null,
        fmtp: {},
      });
    const fmtp = /^a=fmtp:(\d+) (.*)$/.exec(line);
    if (fmtp) fmtps.get(cur)!.set(Number(fmtp[1]), fmtp[2]!);
  }
  for (const media of out) for (const c of media.codecs) c.fmtp = parseFmtp(fmtps.get(media)!.get(c.payloadType) ?? '');
  return out;
}

/** `key=value;key=value` of an `a=fmtp` line, keys lower-cased. */
export function parseFmtp(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of text.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0) out[part.slice(0, eq).trim().toLowerCase()] = part.slice(eq + 1).trim();
  }
  return out;
}

/** Whether an H.264 codec can be copied into FLV/MPEG-TS/MP4: packetization-mode 1, baseline/main/high profile. */
export function h264Copyable(c: Pick<SdpCodec, 'fmtp'>): boolean {
  const profile = parseInt((c.fmtp['profile-level-id'] ?? '42e01f').slice(0, 2), 16);
  return c.fmtp['packetization-mode'] === '1' && COPIED_H264_PROFILES.has(profile);
}

/**
 * Refuses (50002) a body that is not a complete SDP offer: not a session description (RFC 8866 5: `v=0` first, at
 * least one `m=` section), or one without ICE credentials or a DTLS fingerprint (RFC 8829: browsers and OBS always
 * send both), before the WebRTC stack sees it.
 */
export function checkOfferShape(offer: string): void {
  // not an SDP session description at all (RFC 8866 5: it starts with v=0), or one without ICE credentials
  if (!/^v=0\r?$/m.test(offer.split('\n')[0] ?? '') || !/^m=/m.test(offer))
    throw new RelayError(50002, 'the body is not an SDP offer', {
      hint: 'POST the RTCPeerConnection offer (application/sdp, starting with v=0) as browsers and OBS do',
    });
  if (!/^a=ice-ufrag:/m.test(offer) || !/^a=ice-pwd:/m.test(offer))
    throw new RelayError(50002, 'the offer has no ICE credentials (a=ice-ufrag, a=ice-pwd)', {
      hint: 'send a complete SDP offer (ICE credentials, DTLS fingerprint, BUNDLE) as browsers and OBS do',
    });
  if (!/^a=fingerprint:/m.test(offer))
    throw new RelayError(50002, 'the offer has no DTLS fingerprint (a=fingerprint): media would not be encrypted', {
      hint: 'send a complete SDP offer (ICE credentials, DTLS fingerprint, BUNDLE) as browsers and OBS do',
    });
}

/**
 * Picks what the relay receives from an offer: one video codec (H.264 in packetization-mode 1 first, copied when its
 * profile fits; else VP8, converted) and Opus audio when the offer has audio. An offer without a video section is
 * refused with 40000004 (video is mandatory); one with nothing the relay accepts with 406.
 */
export function chooseCodecs(offer: string): ChosenCodecs {
  const media = parseSdpMedia(offer);
  const sending = (m: SdpMedia) => m.port !== 0 && (m.direction === 'sendonly' || m.direction === 'sendrecv');
  const videos = media.filter((m) => m.kind === 'video' && sending(m));
  const audios = media.filter((m) => m.kind === 'audio' && sending(m));
  if (videos.length === 0)
    throw new RelayError(40000004, 'the offer has no video track: video is mandatory (audio is optional)', {
      hint: 'publish a camera or screen track (and optionally one audio track)',
    });
  if (videos.length > 1 || audios.length > 1)
    throw new RelayError(50002, 'the offer has more than one video or audio track', {
      hint: 'publish one video track and at most one audio track',
    });
  const offered = videos[0]!.codecs;
  const h264 = offered.filter((c) => /^h264$/i.test(c.name) && c.fmtp['packetization-mode'] === '1');
  const h264Best = h264.find(h264Copyable) ?? h264[0];
  const vp8 = offered.find((c) => /^vp8$/i.test(c.name));
  const opus = audios.length ? audios[0]!.codecs.find((c) => /^opus$/i.test(c.name) && c.clockRate === 48000) : null;
  const refused = [
    ...(!h264Best && !vp8 ? [`video: ${namesOf(offered)}`] : []),
    ...(audios.length && !opus ? [`audio: ${namesOf(audios[0]!.codecs)}`] : []),
  ];
  if (refused.length)
    throw new RelayError(50002, `no accepted codec in the offer (${refused.join('; ')})`, {
      status: 406,
      hint: `offer ${ACCEPTED_CODECS.join(', ')}`,
      details: { accepted: [...ACCEPTED_CODECS] },
    });
  const video = h264Best
    ? { ...h264Best, kind: 'h264' as const, copy: h264Copyable(h264Best) }
    : { ...vp8!, kind: 'vp8' as const, copy: false };
  return { video, audio: opus ? { ...opus, kind: 'opus' } : null };
}

function namesOf(codecs: readonly SdpCodec[]): string {
  const names = [...new Set(codecs.map((c) => c.name).filter((n) => !/^(rtx|red|ulpfec|flexfec-03)$/i.test(n)))];
  return names.join(', ') || 'none';
}

/** The fmtp line of a codec, as SDP writes it. */
export function fmtpLine(c: Pick<SdpCodec, 'fmtp'>): string {
  return Object.entries(c.fmtp)
    .map(([k, v]) => `${k}=${v}`)
    .join(';');
}
