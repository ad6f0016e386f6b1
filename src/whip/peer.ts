import {
  RTCPeerConnection,
  useAbsSendTime,
  useFIR,
  useH264,
  useNACK,
  useOPUS,
  usePLI,
  useSdesMid,
  useVP8,
  type RTCRtpTransceiver,
} from 'werift';
import type { ChosenCodecs } from './sdp.js';

/** How long the answer waits for the relay's ICE candidates (host candidates: a few ms). */
const GATHER_TIMEOUT_MS = 3000;

/** ICE settings of the relay's side. */
export interface IceOptions {
  /** Addresses announced as host candidates besides the machine's own (e.g. the public IP of a 1:1 NAT). */
  extraHosts: readonly string[];
}

/** A receive-only peer connection answering a WHIP offer, and its answer. */
export interface AnsweredPeer {
  pc: RTCPeerConnection;
  answer: string;
  video: RTCRtpTransceiver;
  audio: RTCRtpTransceiver | null;
}

/**
 * Answers a WHIP offer with werift: receive only, BUNDLE, the one video and audio codec chosen from the offer (with
 * NACK, PLI and FIR feedback, so the publisher retransmits losses and sends keyframes on request), no STUN server
 * (werift 0.22 otherwise asks stun.l.google.com and waits 5 s for it: a WHIP server announces its own addresses).
 *
 * No transport-cc: with werift 0.22's transport-wide feedback, Chromium's estimate collapsed (a fake 640x360 camera
 * fell from 99 to 27 kbit/s within 10 s); without it Chromium's loss-based estimate from werift's receiver reports
 * climbs (340 → 518 kbit/s in 20 s, measured the same way).
 */
export async function answerOffer(offer: string, codecs: ChosenCodecs, ice: IceOptions): Promise<AnsweredPeer> {
  const pc = new RTCPeerConnection({
    iceServers: [],
    bundlePolicy: 'max-bundle',
    iceAdditionalHostAddresses: ice.extraHosts.length ? [...ice.extraHosts] : undefined,
    codecs: { video: [useH264(), useVP8()], audio: [useOPUS()] },
    headerExtensions: {
      video: [useSdesMid(), useAbsSendTime()],
      audio: [useSdesMid()],
    },
  });
  try {
    await pc.setRemoteDescription({ type: 'offer', sdp: offer });
    let video: RTCRtpTransceiver | null = null;
    let audio: RTCRtpTransceiver | null = null;
    for (const t of pc.getTransceivers()) {
      const chosen = t.kind === 'video' ? codecs.video : codecs.audio;
      const keep = chosen ? t.codecs.filter((c) => c.payloadType === chosen.payloadType) : [];
      if (!keep.length) {
        t.setDirection('inactive');
        continue;
      }
      for (const c of keep) c.rtcpFeedback = t.kind === 'video' ? [useNACK(), usePLI(), useFIR()] : [];
      t.codecs = keep;
      t.setDirection('recvonly');
      if (t.kind === 'video') video ??= t;
      else audio ??= t;
    }
    if (!video) throw new Error('the offer video section was not negotiated');
    for (const t of pc.iceTransports) (t.connection as { stunServer?: unknown }).stunServer = undefined;
    const answer = await pc.createAnswer();
    await withTimeout(pc.setLocalDescription(answer), GATHER_TIMEOUT_MS);
    const sdp = pc.localDescription?.sdp;
    if (!sdp) throw new Error('no local description');
    return { pc, answer: sdp, video, audio };
  } catch (e) {
    await pc.close().catch(() => undefined);
    throw e;
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`ICE gathering took over ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
