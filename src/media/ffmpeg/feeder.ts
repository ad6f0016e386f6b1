/**
 * The command line of a mix feeder: an ffmpeg that reads one member's upstream as a channel would, and hands the
 * worker decoded frames of the member's tile size (yuv420p rawvideo on stdout) and its audio (s16le stereo 48 kHz on
 * fd 3). The worker composes the canvas from them. A member without one of the tracks is read without that output.
 */
import { inputArgs, type SourceSpec } from './input.js';

/** What one feeder makes of its member. */
export interface FeederSpec {
  /** Tile size (even). */
  width: number;
  height: number;
  fps: number;
  /** letterbox: the whole picture, bars in `padColour`; crop: the tile filled, the overflow cut. */
  fit: 'crop' | 'letterbox';
  /** `#rrggbb` of the letterbox bars. */
  padColour: string;
  /** Whether to write the audio (false for a member without audio: ffmpeg refuses an output without streams). */
  audio: boolean;
  /** Whether to write the picture (false for an audio-only member: its tile shows the placeholder). Default true. */
  video?: boolean;
}

/** The picture filter of a feeder: frame rate, tile size with its fit, yuv420p. */
export function feederFilter(f: Pick<FeederSpec, 'width' | 'height' | 'fps' | 'fit' | 'padColour'>): string {
  const { width: w, height: h } = f;
  const fit =
    f.fit === 'crop'
      ? `scale=${w}:${h}:force_original_aspect_ratio=increase,crop=${w}:${h}`
      : `scale=${w}:${h}:force_original_aspect_ratio=decrease,pad=${w}:${h}:(ow-iw)/2:(oh-ih)/2:color=0x${f.padColour.slice(1)}`;
  return `fps=${f.fps},${fit},setsar=1,format=yuv420p`;
}

/** The whole command line of a feeder reading `src`. */
export function feederArgs(src: SourceSpec, f: FeederSpec): readonly string[] {
  return [
    '-hide_banner',
    '-nostdin',
    '-loglevel',
    'error',
    '-nostats',
    '-fflags',
    '+nobuffer',
    ...inputArgs(src),
    ...(f.video !== false ? ['-map', '0:v:0', '-vf', feederFilter(f), '-f', 'rawvideo', 'pipe:1'] : []),
    ...(f.audio
      ? ['-map', '0:a:0', '-af', 'aresample=48000', '-ar', '48000', '-ac', '2', '-f', 's16le', 'pipe:3']
      : []),
  ];
}

/** ffmpeg's complaint when a mapped audio track does not exist: the member has no audio. */
export const NO_AUDIO = /Stream map '0:a:0' matches no streams|does not contain any stream/;
/** … and when the mapped video track does not exist: an audio-only member. */
export const NO_VIDEO = /Stream map '0:v:0' matches no streams/;

/** A one-shot decode of an image to a `width`×`height` yuv420p frame on stdout (a mix's background image). */
export function imageFrameArgs(file: string, width: number, height: number): readonly string[] {
  return [
    '-hide_banner',
    '-nostdin',
    '-loglevel',
    'error',
    '-i',
    file,
    '-vf',
    `scale=${width}:${height},setsar=1,format=yuv420p`,
    '-frames:v',
    '1',
    '-f',
    'rawvideo',
    'pipe:1',
  ];
}
