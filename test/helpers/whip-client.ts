import dgram from 'node:dgram';
import {
  MediaStreamTrack,
  RTCPeerConnection,
  useFIR,
  useH264,
  useNACK,
  useOPUS,
  usePLI,
  useVP8,
  type RTCRtpCodecParameters,
} from 'werift';
import { FfmpegProcess } from '../../src/media/ffmpeg/process.js';
import { createLogger } from '../../src/log.js';
import { FFMPEG } from './stack.js';

/** What a test WHIP publisher offers and sends. */
export interface WhipClientOptions {
  video?: 'vp8' | 'h264' | 'none';
  audio?: boolean;
  /** Offer only this (refused) codec for video, e.g. VP9: what a 406 looks like. */
  onlyVideoCodec?: RTCRtpCodecParameters;
  /** Send generated media (ffmpeg test pattern and tone, RTP into the tracks); false: a silent publisher. */
  media?: boolean;
  /** Keyframe interval of the generated video, frames at 30 fps (ffmpeg cannot answer a PLI). */
  gop?: number;
}

/** One WHIP publisher built on werift, as the relay's own tests use it. */
export class WhipClient {
  readonly pc: RTCPeerConnection;
  private readonly sockets: dgram.Socket[] = [];
  private feeder: FfmpegProcess | null = null;
  /** The session URL the relay answered. */
  location: string | null = null;

  constructor(private readonly opts: WhipClientOptions = {}) {
    const video = opts.onlyVideoCodec ? [opts.onlyVideoCodec] : opts.video === 'h264' ? [h264()] : [vp8()];
    this.pc = new RTCPeerConnection({ iceServers: [], codecs: { video, audio: [useOPUS()] } });
  }

  /** POSTs the offer; answers the HTTP status, headers and body, and applies the answer on 201. */
  async publish(url: string, token: string | null): Promise<{ status: number; headers: Headers; body: string }> {
    const { video = 'vp8', audio = true } = this.opts;
    const vtrack = new MediaStreamTrack({ kind: 'video' });
    const atrack = new MediaStreamTrack({ kind: 'audio' });
    if (video !== 'none') this.pc.addTransceiver(vtrack, { direction: 'sendonly' });
    if (audio) this.pc.addTransceiver(atrack, { direction: 'sendonly' });
    for (const t of this.pc.iceTransports) (t.connection as { stunServer?: unknown }).stunServer = undefined;
    await this.pc.setLocalDescription(await this.pc.createOffer());
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/sdp', ...(token !== null ? { authorization: `Bearer ${token}` } : {}) },
      body: this.pc.localDescription!.sdp,
    });
    const body = await res.text();
    if (res.status !== 201) return { status: res.status, headers: res.headers, body };
    this.location = new URL(res.headers.get('location')!, url).toString();
    await this.pc.setRemoteDescription({ type: 'answer', sdp: body });
    if (this.opts.media !== false) await this.feed(video === 'none' ? null : vtrack, audio ? atrack : null, video);
    return { status: res.status, headers: res.headers, body };
  }

  // ffmpeg generates a test pattern and a tone as RTP to local ports; each packet goes into its track.
  private async feed(v: MediaStreamTrack | null, a: MediaStreamTrack | null, codec: string): Promise<void> {
    const port = async (track: MediaStreamTrack) => {
      const s = dgram.createSocket('udp4');
      this.sockets.push(s);
      await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
      s.on('message', (m) => track.writeRtp(m));
      return s.address().port;
    };
    const gop = String(this.opts.gop ?? 30);
    const args = ['-hide_banner', '-nostdin', '-loglevel', 'error', '-progress', 'pipe:1', '-re'];
    args.push(
      '-f',
      'lavfi',
      '-i',
      'testsrc2=size=640x360:rate=30',
      '-f',
      'lavfi',
      '-i',
      'sine=f=440:sample_rate=48000',
    );
    if (v) {
      const enc =
        codec === 'h264'
          ? ['-c:v', 'libx264', '-profile:v', 'baseline', '-preset', 'ultrafast', '-tune', 'zerolatency']
          : ['-c:v', 'libvpx', '-deadline', 'realtime', '-cpu-used', '8', '-b:v', '800k'];
      const url = `rtp://127.0.0.1:${await port(v)}?pkt_size=1200`;
      args.push('-map', '0:v', ...enc, '-g', gop, '-pix_fmt', 'yuv420p', '-f', 'rtp', '-payload_type', '96', url);
    }
    if (a) {
      const url = `rtp://127.0.0.1:${await port(a)}?pkt_size=1200`;
      args.push('-map', '1:a', '-c:a', 'libopus', '-b:a', '64k', '-f', 'rtp', '-payload_type', '111', url);
    }
    this.feeder = new FfmpegProcess({
      ffmpegPath: FFMPEG,
      args,
      logger: createLogger('silent', 'whip-feeder'),
      startTimeoutMs: 10000,
    });
    await this.feeder.start();
  }

  /** Stops sending media (the session stays open: a silent publisher). */
  async mute(): Promise<void> {
    await this.feeder?.close();
  }

  /** DELETEs the session; answers the status. */
  async delete(): Promise<number> {
    if (!this.location) throw new Error('not published');
    const status = (await fetch(this.location, { method: 'DELETE' })).status;
    this.location = null;
    return status;
  }

  /** Ends its session (DELETE, as a WHIP client does) and stops everything this client runs. */
  async close(): Promise<void> {
    if (this.location) await fetch(this.location, { method: 'DELETE' }).catch(() => undefined);
    this.location = null;
    await this.feeder?.close();
    await this.pc.close().catch(() => undefined);
    for (const s of this.sockets) s.close();
  }
}

const feedback = () => [useNACK(), usePLI(), useFIR()];
const vp8 = () => useVP8({ rtcpFeedback: feedback() });
const h264 = () => useH264({ rtcpFeedback: feedback() });
