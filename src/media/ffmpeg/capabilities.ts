/**
 * What the chosen ffmpeg can do, asked once per executable with `ffmpeg -hide_banner -protocols | -formats | -encoders |
 * -decoders | -filters | -bsfs`, and what the relay needs of it. The parsers are pure (tested on the outputs of the
 * bundled 4.1 and Debian's 5.1).
 */
import { execFile } from 'node:child_process';
import { readVersion, type FfmpegVersion } from './locate.js';

/** Everything one ffmpeg build lists. Encoders and decoders map their name to the codec they handle. */
export interface FfmpegCapabilities {
  protocols: { input: ReadonlySet<string>; output: ReadonlySet<string> };
  demuxers: ReadonlySet<string>;
  muxers: ReadonlySet<string>;
  encoders: ReadonlyMap<string, string>;
  decoders: ReadonlyMap<string, string>;
  filters: ReadonlySet<string>;
  bsfs: ReadonlySet<string>;
}

/**
 * One thing the relay may ask of ffmpeg. `protocol` means an input protocol; `decoder` names a codec (any decoder of
 * it will do: `av1` is met by `libdav1d` or `libaom-av1`); `encoder` names an encoder (`libx264`).
 */
export interface Capability {
  kind: 'protocol' | 'demuxer' | 'muxer' | 'encoder' | 'decoder' | 'filter' | 'bsf';
  name: string;
}

/** Parses `ffmpeg -protocols`: the names listed under `Input:` and under `Output:`. */
export function parseProtocols(text: string): FfmpegCapabilities['protocols'] {
  const input = new Set<string>();
  const output = new Set<string>();
  let into: Set<string> | null = null;
  for (const line of text.split('\n')) {
    if (/^Input:/.test(line)) into = input;
    else if (/^Output:/.test(line)) into = output;
    else if (into && /^\s+\w+\s*$/.test(line)) into.add(line.trim());
  }
  return { input, output };
}

/** Parses `ffmpeg -formats` (` DE flv …`): demuxer and muxer names, each alias of `mov,mp4,m4a` listed alone. */
export function parseFormats(text: string): { demuxers: Set<string>; muxers: Set<string> } {
  const demuxers = new Set<string>();
  const muxers = new Set<string>();
  for (const line of text.split('\n')) {
    const m = /^ ([D. ])([E. ])[d. ]?\s+([A-Za-z0-9][\w,-]*)\s/.exec(line);
    if (!m) continue;
    for (const name of m[3]!.split(',')) {
      if (m[1] === 'D') demuxers.add(name);
      if (m[2] === 'E') muxers.add(name);
    }
  }
  return { demuxers, muxers };
}

/** Parses `ffmpeg -encoders` or `-decoders` (` V....D libvpx  libvpx VP8 (codec vp8)`): name → codec. */
export function parseCodecList(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^ [VAS][A-Z.]{5}\s+([A-Za-z0-9][\w-]*)\s+(.*)$/.exec(line);
    if (m) out.set(m[1]!, /\(codec (\w+)\)\s*$/.exec(m[2]!)?.[1] ?? m[1]!);
  }
  return out;
}

/** Parses `ffmpeg -filters` (` TSC overlay  VV->V  …`): filter names. */
export function parseFilters(text: string): Set<string> {
  const out = new Set<string>();
  for (const line of text.split('\n')) {
    const m = /^ [T.][S.][C.]\s+(\w+)\s+\S*->\S*\s/.exec(line);
    if (m) out.add(m[1]!);
  }
  return out;
}

/** Parses `ffmpeg -bsfs`: the names listed after `Bitstream filters:`. */
export function parseBsfs(text: string): Set<string> {
  const lines = text.split('\n');
  const from = lines.findIndex((l) => /^Bitstream filters:/.test(l));
  return new Set(
    lines
      .slice(from + 1)
      .map((l) => l.trim())
      .filter((l) => /^\w+$/.test(l)),
  );
}

/** The outputs of the six listing runs, by option name (without the dash). */
export type ListingOutputs = Record<'protocols' | 'formats' | 'encoders' | 'decoders' | 'filters' | 'bsfs', string>;

/** Builds the capabilities from the six listings. */
export function parseCapabilities(out: ListingOutputs): FfmpegCapabilities {
  return {
    protocols: parseProtocols(out.protocols),
    ...parseFormats(out.formats),
    encoders: parseCodecList(out.encoders),
    decoders: parseCodecList(out.decoders),
    filters: parseFilters(out.filters),
    bsfs: parseBsfs(out.bsfs),
  };
}

/** Whether the build has the capability. */
export function has(caps: FfmpegCapabilities, c: Capability): boolean {
  switch (c.kind) {
    case 'protocol':
      return caps.protocols.input.has(c.name);
    case 'demuxer':
      return caps.demuxers.has(c.name);
    case 'muxer':
      return caps.muxers.has(c.name);
    case 'encoder':
      return caps.encoders.has(c.name);
    case 'decoder':
      return [...caps.decoders.values()].includes(c.name);
    case 'filter':
      return caps.filters.has(c.name);
    case 'bsf':
      return caps.bsfs.has(c.name);
  }
}

const KIND_WORDS: Record<Capability['kind'], string> = {
  protocol: 'protocol',
  demuxer: 'demuxer',
  muxer: 'muxer',
  encoder: 'encoder',
  decoder: 'decoder',
  filter: 'filter',
  bsf: 'bitstream filter',
};

/** "the srt protocol", "an av1 decoder", "the setts bitstream filter". */
export function describeCapability(c: Capability): string {
  return c.kind === 'decoder' ? `a decoder of ${c.name}` : `the ${c.name} ${KIND_WORDS[c.kind]}`;
}

const probes = new Map<string, Promise<FfmpegCapabilities | null>>();

function listing(ffmpegPath: string, option: string): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(
      ffmpegPath,
      ['-hide_banner', `-${option}`],
      { timeout: 10_000, maxBuffer: 8 << 20 },
      (err, stdout, stderr) => (err ? reject(err) : resolve(stdout + stderr)),
    ),
  );
}

/**
 * The capabilities of the ffmpeg at `ffmpegPath`, probed once per path (six runs in parallel: 0.02 s for the static
 * 4.1, 0.2 s for Debian's 5.1); null when it cannot be run. Every later call gets the same answer.
 */
export function probeCapabilities(ffmpegPath: string): Promise<FfmpegCapabilities | null> {
  let p = probes.get(ffmpegPath);
  if (!p) {
    const options = ['protocols', 'formats', 'encoders', 'decoders', 'filters', 'bsfs'] as const;
    p = Promise.all(options.map((o) => listing(ffmpegPath, o))).then(
      (texts) => parseCapabilities(Object.fromEntries(options.map((o, i) => [o, texts[i]!])) as ListingOutputs),
      () => null,
    );
    probes.set(ffmpegPath, p);
  }
  return p;
}

/** An ffmpeg executable with its version and capabilities (either null when it cannot be run). */
export interface FfmpegInfo {
  path: string;
  version: FfmpegVersion | null;
  caps: FfmpegCapabilities | null;
}

/** The version and capabilities of the ffmpeg at `ffmpegPath`, each asked once per path. */
export async function probeFfmpeg(ffmpegPath: string): Promise<FfmpegInfo> {
  let version = versions.get(ffmpegPath);
  if (version === undefined) versions.set(ffmpegPath, (version = readVersion(ffmpegPath)));
  return { path: ffmpegPath, version, caps: await probeCapabilities(ffmpegPath) };
}
const versions = new Map<string, FfmpegVersion | null>();
