import fs from 'node:fs';
import path from 'node:path';
import {
  parseCapabilities,
  type FfmpegCapabilities,
  type ListingOutputs,
} from '../../../src/media/ffmpeg/capabilities.js';

/** Folder of captured `ffmpeg -hide_banner -<option>` outputs: the bundled static 4.1 (2018) and Debian 12's 5.1. */
const DIR = path.dirname(new URL(import.meta.url).pathname);

/** A captured output (`version`, `protocols`, `formats`, `encoders`, `decoders`, `filters`, `bsfs`) of a build. */
export function captured(build: '4.1' | '5.1', option: string): string {
  return fs.readFileSync(path.join(DIR, build, `${option}.txt`), 'utf8');
}

/** The six listings of a build. */
export function listingsOf(build: '4.1' | '5.1'): ListingOutputs {
  const of = (o: keyof ListingOutputs) => captured(build, o);
  return {
    protocols: of('protocols'),
    formats: of('formats'),
    encoders: of('encoders'),
    decoders: of('decoders'),
    filters: of('filters'),
    bsfs: of('bsfs'),
  };
}

/** The capabilities of a build, parsed from its captured listings. */
export function capsOf(build: '4.1' | '5.1'): FfmpegCapabilities {
  return parseCapabilities(listingsOf(build));
}
