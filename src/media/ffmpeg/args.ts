/**
 * A relay ffmpeg reads its *sources* (ffmpeg input i is sources[i]), makes each *tier* from them and writes it to the
 * tier's *sinks*. One source today; a mix reads up to four, and push destinations are further sinks.
 */
import { clockFaultArgs, inputArgs, type SourceSpec } from './input.js';

export { inputArgs, type SourceSpec } from './input.js';

export {
  sinkOutputArgs,
  teeSlave,
  type HlsSink,
  type RecordFileSink,
  type RecordHlsSink,
  type RtmpSink,
  type Sink,
} from './sinks.js';
import { sinkOutputArgs, teeSlave, type Sink } from './sinks.js';

/** How a tier is encoded; absent for a tier that copies the upstream as is. */
export interface EncodeSpec {
  /** Output height; never more than the upstream's (no upscaling). Absent: the upstream's size. */
  maxHeight?: number;
  videoKbps: number;
  audioKbps: number;
  /** Keyframe interval, aligned with the HLS segment length so every tier switches at the same points. */
  keyframeSeconds: number;
}

/** One output stream of the channel (a rate tier) and its sinks. */
export interface TierSpec {
  encode?: EncodeSpec;
  /**
   * The audio track, when not the tier's default (a copied tier copies it, an encoded tier encodes AAC): `aac`
   * converts the audio of a copied tier (Opus, PCM … that FLV/TS cannot carry), `copy` keeps the upstream's (already
   * fitting) audio in an encoded tier.
   */
  audio?: 'copy' | 'aac';
  sinks: readonly Sink[];
}

/** A watermark image overlaid on the upstream before any tier is made from it. */
export interface WatermarkSpec {
  file: string;
  /** Watermark width as a fraction of the video width. */
  relativeWidth: number;
  /** Height / width of the image. */
  aspect: number;
  corner: 'top-left' | 'top-right' | 'bottom-left' | 'bottom-right';
  /** Distance from the corner as a fraction of the video width. */
  margin: number;
}

/** Everything one relay ffmpeg does. */
export interface RelayPlan {
  /** What it reads, in ffmpeg input order. */
  sources: readonly SourceSpec[];
  /** Drawn on the picture before any tier is made from it. */
  watermark?: WatermarkSpec;
  /** The output streams (rate tiers), each with its sinks. */
  tiers: readonly TierSpec[];
  /**
   * The upstream has no audio: every tier gets a silent AAC track (48 kHz stereo, `anullsrc`, the input after the
   * sources and the watermark), so FLV players and CDNs that expect audio play it.
   */
  silentAudio?: boolean;
  /** The input whose first audio track every tier maps (default 0); a mix reads its audio from a second raw input. */
  audioInput?: number;
}

/** The silent audio input of a plan with `silentAudio`, read at its native rate (`-re`) to keep pace with the video. */
const SILENT_AUDIO = 'anullsrc=channel_layout=stereo:sample_rate=48000';

/** AAC audio at `kbps` kbit/s, 48 kHz stereo. */
export function aacArgs(kbps: number): readonly string[] {
  return ['-c:a', 'aac', '-b:a', `${kbps}k`, '-ar', '48000', '-ac', '2'];
}

/** x264's -maxrate over the tier's video bit rate (VBV, with a 2 s -bufsize): the peak a master playlist declares. */
export const MAXRATE_FACTOR = 1.2;

/** Encoder options of an encoded tier: x264 for live, keyframes on segment boundaries, AAC audio (or a copy). */
export function encoderArgs(e: EncodeSpec, audio: 'copy' | 'aac' = 'aac'): readonly string[] {
  const kbps = e.videoKbps;
  return [
    '-c:v',
    'libx264',
    '-preset',
    'veryfast',
    '-tune',
    'zerolatency',
    '-pix_fmt',
    'yuv420p',
    '-profile:v',
    'main',
    '-b:v',
    `${kbps}k`,
    '-maxrate',
    `${Math.round(kbps * MAXRATE_FACTOR)}k`,
    '-bufsize',
    `${kbps * 2}k`,
    '-force_key_frames',
    `expr:gte(t,n_forced*${e.keyframeSeconds})`,
    '-sc_threshold',
    '0',
    '-g',
    '600',
    ...(audio === 'copy' ? ['-c:a', 'copy'] : aacArgs(e.audioKbps)),
  ];
}

/**
 * The filter graph of a plan: the watermark (scaled to a fraction of the video width) goes on first, then one
 * decode feeds every encoded tier through `split`, each scaled down to its height (never up). Returns the graph and
 * the label each encoded tier maps; copy tiers get no label.
 */
export function filterGraph(plan: RelayPlan): { graph: string | null; labels: (string | null)[] } {
  const encoded = plan.tiers.map((t, i) => (t.encode ? i : -1)).filter((i) => i >= 0);
  if (encoded.length === 0) return { graph: null, labels: plan.tiers.map(() => null) };
  const parts: string[] = [];
  let base = '[0:v:0]';
  const w = plan.watermark;
  if (w) {
    const image = `[${plan.sources.length}:v]`; // the watermark image is the input after the sources
    const x = w.corner.endsWith('left') ? `W*${w.margin}` : `W-w-W*${w.margin}`;
    const y = w.corner.startsWith('top') ? `W*${w.margin}` : `H-h-W*${w.margin}`;
    // in scale2ref, iw is the reference (video) width
    parts.push(`${image}[0:v:0]scale2ref=w='trunc(iw*${w.relativeWidth}/2)*2':h='trunc(ow*${w.aspect}/2)*2'[wm][base]`);
    parts.push(`[base][wm]overlay=x='${x}':y='${y}':eof_action=repeat[wmd]`);
    base = '[wmd]';
  }
  const splitOuts = encoded.map((i) => `[s${i}]`);
  parts.push(encoded.length > 1 ? `${base}split=${encoded.length}${splitOuts.join('')}` : `${base}null${splitOuts[0]}`);
  const labels = plan.tiers.map(() => null as string | null);
  for (const i of encoded) {
    const h = plan.tiers[i]!.encode!.maxHeight;
    // full size (ORIGINAL encoded): an odd size loses its last row or column, as 4:2:0 H.264 needs even sizes
    // even sizes: x264 refuses odd ones (4:2:0); an upstream of 241 lines below the tier's height gives 240
    const scale = h ? `scale=-2:'trunc(min(${h},ih)/2)*2':flags=bicubic` : "scale='trunc(iw/2)*2':'trunc(ih/2)*2'";
    parts.push(`[s${i}]${scale},setsar=1,format=yuv420p[v${i}]`);
    labels[i] = `[v${i}]`;
  }
  return { graph: parts.join(';'), labels };
}

/** Bitrate of audio converted to AAC in a copied tier, kbit/s. */
export const CONVERTED_AUDIO_KBPS = 128;

/** The output arguments of one tier: copies go to each sink directly; an encoded tier is encoded once and teed. */
export function tierOutputArgs(t: TierSpec, label: string | null, silent?: string, audioInput = 0): readonly string[] {
  const audioMap = silent ?? `${audioInput}:a:0?`; // video is mandatory (a missing one fails the map), audio optional
  if (!t.encode) {
    const codecs = t.audio === 'aac' || silent ? ['-c:v', 'copy', ...aacArgs(CONVERTED_AUDIO_KBPS)] : ['-c', 'copy'];
    const maps = ['-map', '0:v:0', '-map', audioMap];
    return t.sinks.flatMap((s) => [...maps, ...codecs, ...sinkOutputArgs(s)]);
  }
  return [
    '-map',
    label!,
    '-map',
    audioMap,
    ...encoderArgs(t.encode, t.audio === 'copy' && !silent ? 'copy' : 'aac'),
    '-flags',
    '+global_header',
    '-f',
    'tee',
    t.sinks.map(teeSlave).join('|'),
  ];
}

/**
 * The whole command line of a relay ffmpeg; stream info goes to stderr once, progress to stdout as key=value blocks.
 */
export function buildRelayArgs(plan: RelayPlan): readonly string[] {
  // one source, or a mix's composed canvas: raw video and raw audio, composed by the worker
  const mix =
    plan.sources.length === 2 && plan.sources[0]!.raw?.kind === 'video' && plan.sources[1]!.raw?.kind === 'audio';
  if (plan.sources.length !== 1 && !mix)
    throw new Error(`a relay reads one source or a composed mix, not ${plan.sources.length} sources`);
  if (mix && plan.tiers.some((t) => !t.encode)) throw new Error('a mix needs every tier encoded');
  if (plan.tiers.length === 0 || plan.tiers.some((t) => t.sinks.length === 0))
    throw new Error('every tier of a relay needs at least one output');
  if (plan.watermark && plan.tiers.some((t) => !t.encode)) throw new Error('a watermark needs every tier encoded');
  const { graph, labels } = filterGraph(plan);
  const silent = plan.silentAudio ? `${plan.sources.length + (plan.watermark ? 1 : 0)}:a:0` : undefined;
  return [
    '-hide_banner',
    '-nostdin',
    '-loglevel',
    'info',
    '-nostats',
    '-progress',
    'pipe:1',
    ...clockFaultArgs(plan.sources),
    ...plan.sources.flatMap(inputArgs),
    ...(plan.watermark ? ['-i', plan.watermark.file] : []),
    ...(plan.silentAudio ? ['-re', '-f', 'lavfi', '-i', SILENT_AUDIO] : []),
    ...(graph ? ['-filter_complex', graph] : []),
    ...plan.tiers.flatMap((t, i) => tierOutputArgs(t, labels[i] ?? null, silent, plan.audioInput)),
  ];
}

/** A member's stand-in: a media file replayed in a loop at native rate and published, as is, to an RTMP URL. */
export function loopPublishArgs(file: string, rtmpUrl: string): readonly string[] {
  return [
    '-hide_banner',
    '-nostdin',
    '-loglevel',
    'error',
    '-progress',
    'pipe:1',
    '-re',
    '-stream_loop',
    '-1',
    '-i',
    file,
    '-c',
    'copy',
    '-f',
    'flv',
    rtmpUrl,
  ];
}
