import { fmtpLine, type ChosenCodecs, type SdpCodec } from './sdp.js';

/** The local UDP ports a session forwards RTP to (RTCP goes to each port + 1, as ffmpeg's RTP demuxer expects). */
export interface BridgePorts {
  video: number;
  audio: number | null;
}

/** What one bridge ffmpeg run is built from. */
export interface BridgeInput {
  sdpPath: string;
  codecs: ChosenCodecs;
  /** The ingest URL of the member with a single-use bridge token. */
  rtmpUrl: string;
  /** Keyframe interval of converted video, seconds. */
  gopSeconds: number;
  /** Bitrate of converted video, kbit/s. */
  videoKbps: number;
}

/** Frame rate of converted video: browsers send 15-30 fps (more is dropped, less repeated). */
export const CONVERTED_FPS = 30;
/** Receive buffer asked for each UDP socket of ffmpeg: a 1080p keyframe arrives as a burst of ~100 packets. */
const UDP_BUFFER_BYTES = 2 * 1024 * 1024;
/** How long ffmpeg's RTP demuxer holds packets to put them back in order (µs): below one frame at 30 fps. */
const REORDER_DELAY_US = 30_000;

/** The SDP ffmpeg reads the session's RTP by: the chosen codecs on local ports, as the publisher negotiated them. */
export function bridgeSdp(ports: BridgePorts, codecs: ChosenCodecs): string {
  const lines = ['v=0', 'o=- 0 0 IN IP4 127.0.0.1', 's=whip bridge', 'c=IN IP4 127.0.0.1', 't=0 0'];
  const section = (kind: string, port: number, c: SdpCodec) => {
    lines.push(`m=${kind} ${port} RTP/AVP ${c.payloadType}`);
    lines.push(`a=rtpmap:${c.payloadType} ${c.name}/${c.clockRate}${c.channels ? `/${c.channels}` : ''}`);
    const fmtp = fmtpLine(c);
    if (fmtp) lines.push(`a=fmtp:${c.payloadType} ${fmtp}`);
    lines.push('a=recvonly');
  };
  section('video', ports.video, codecs.video);
  if (codecs.audio && ports.audio !== null) section('audio', ports.audio, codecs.audio);
  return lines.join('\r\n') + '\r\n';
}

/**
 * The bridge ffmpeg: reads the session's RTP through its SDP and publishes H.264 + AAC into the member's ingest
 * stream. H.264 that fits is copied; VP8 (or H.264 of another profile) is converted with libx264 (veryfast,
 * zerolatency, a keyframe every `gopSeconds`); Opus becomes AAC 48 kHz stereo. Without audio the ingest gets video
 * only (the relay's channels add silent AAC themselves).
 */
export function bridgeArgs(b: BridgeInput): readonly string[] {
  const { video, audio } = b.codecs;
  const input = [
    '-hide_banner',
    '-nostdin',
    '-loglevel',
    'warning',
    '-progress',
    'pipe:1',
    '-protocol_whitelist',
    'file,udp,rtp',
    '-buffer_size',
    String(UDP_BUFFER_BYTES),
    '-max_delay',
    String(REORDER_DELAY_US),
    // a keyframe is asked for as the bridge starts: stream parameters come with it, no need to probe longer
    '-analyzeduration',
    '1000000',
    // no frame-rate probe (it waited ~20 frames: 0.5-0.9 s of each start); converted video gets a fixed rate instead
    '-fpsprobesize',
    '0',
    '-fflags',
    '+genpts+discardcorrupt',
    '-i',
    b.sdpPath,
    '-map',
    '0:v:0',
    ...(audio ? ['-map', '0:a:0'] : []),
  ];
  const v = video.copy
    ? ['-c:v', 'copy']
    : [
        '-c:v',
        'libx264',
        '-preset',
        'veryfast',
        '-tune',
        'zerolatency',
        '-profile:v',
        'main',
        '-pix_fmt',
        'yuv420p',
        // WebRTC video has no nominal rate (RTP 90 kHz clock): libx264's rate control needs one, or it budgets
        // every frame as 1/90000 s and the picture starves (measured: 5 kbit/s of a 2 Mbit/s target)
        '-r',
        String(CONVERTED_FPS),
        '-b:v',
        `${b.videoKbps}k`,
        '-maxrate',
        `${Math.round(b.videoKbps * 1.25)}k`,
        '-bufsize',
        `${b.videoKbps}k`,
        '-force_key_frames',
        `expr:gte(t,n_forced*${b.gopSeconds})`,
        '-sc_threshold',
        '0',
      ];
  const a = audio ? ['-c:a', 'aac', '-b:a', '128k', '-ar', '48000', '-ac', '2'] : ['-an'];
  return [...input, ...v, ...a, '-f', 'flv', b.rtmpUrl];
}
