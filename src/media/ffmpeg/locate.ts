/**
 * Which ffmpeg the relay runs, chosen on purpose: `FFMPEG_PATH` when set, else a system `ffmpeg` ≥ 5 on PATH (Debian
 * 12's is 5.1: SRT, libopus, libvpx, dav1d …), else the static build bundled by `@ffmpeg-installer/ffmpeg` (2018-12,
 * version 4.1: no SRT, no setts, no security fixes since). README "ffmpeg" says what each one can do.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

/** The lowest major version of a system ffmpeg the relay prefers over the bundled one. */
export const MIN_SYSTEM_MAJOR = 5;

/** An ffmpeg's version as `ffmpeg -version` states it. */
export interface FfmpegVersion {
  /** The version word as printed: `5.1.9-0+deb12u1`, `N-47683-g0e8eb07980-static`. */
  text: string;
  /** Release major and minor; for a git snapshot (`N-…`), the release its libavutil belongs to. */
  major: number;
  minor: number;
}

/** Where the chosen ffmpeg came from. */
export type FfmpegSource = 'FFMPEG_PATH' | 'system' | 'bundled' | 'PATH (fallback)';

/** The ffmpeg the relay runs. */
export interface FfmpegChoice {
  /** Executable path (or a bare name resolved through PATH, only as the last fallback). */
  path: string;
  source: FfmpegSource;
  /** Null when `-version` could not be run or read. */
  version: FfmpegVersion | null;
  /** An `ffprobe` beside the chosen ffmpeg, if there is one (the bundled build has none). */
  ffprobePath: string | null;
  /** Candidates passed over and why ("/usr/local/bin/ffmpeg is 4.4, older than 5"), for the start-up log. */
  passedOver: string[];
}

// libavutil's major version names the ffmpeg release of a git snapshot, whose version word has no number.
const AVUTIL_RELEASE: Record<number, [number, number]> = {
  55: [3, 0],
  56: [4, 0],
  57: [5, 0],
  58: [6, 0],
  59: [7, 0],
  60: [8, 0],
};
// within libavutil 56, the minor tells 4.0 … 4.4 apart (4.1 shipped 56.22, 4.2 56.31, 4.3 56.51, 4.4 56.70)
const AVUTIL56_MINORS: [number, number][] = [
  [70, 4],
  [51, 3],
  [31, 2],
  [22, 1],
];

/** Reads `ffmpeg -version` output: the version word, and its major/minor (from libavutil for a git snapshot). */
export function parseVersion(output: string): FfmpegVersion | null {
  const word = /^ffmpeg version (\S+)/m.exec(output)?.[1];
  if (!word) return null;
  const release = /^n?(\d+)\.(\d+)/.exec(word);
  if (release) return { text: word, major: Number(release[1]), minor: Number(release[2]) };
  const avutil = /^libavutil\s+(\d+)\.\s*(\d+)\./m.exec(output);
  const known = avutil ? AVUTIL_RELEASE[Number(avutil[1])] : undefined;
  if (!avutil || !known) return null;
  let minor = known[1];
  if (Number(avutil[1]) === 56) minor = AVUTIL56_MINORS.find(([m]) => Number(avutil[2]) >= m)?.[1] ?? 0;
  return { text: word, major: known[0], minor };
}

/** Runs `<path> -version` (at most 5 s); null when it cannot run or says nothing readable. */
export function readVersion(ffmpegPath: string): FfmpegVersion | null {
  try {
    const out = execFileSync(ffmpegPath, ['-hide_banner', '-version'], {
      encoding: 'utf8',
      timeout: 5000,
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    return parseVersion(out);
  } catch {
    return null;
  }
}

function executable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

/** The first executable named `name` in the PATH list `searchPath`, or null. */
export function onPath(name: string, searchPath: string | undefined): string | null {
  for (const dir of (searchPath ?? '').split(path.delimiter).filter(Boolean)) {
    const file = path.join(dir, name);
    if (executable(file)) return file;
  }
  return null;
}

/** The executable of `@ffmpeg-installer/ffmpeg` (the static 4.1 build), or null when the package is missing. */
export function bundledFfmpeg(): string | null {
  try {
    const p = (createRequire(import.meta.url)('@ffmpeg-installer/ffmpeg') as { path: string }).path;
    return executable(p) ? p : null;
  } catch {
    return null;
  }
}

/** An `ffprobe` in the same folder as the ffmpeg at `ffmpegPath`, or null. */
export function ffprobeBeside(ffmpegPath: string): string | null {
  if (!path.isAbsolute(ffmpegPath)) return null;
  const probe = path.join(path.dirname(ffmpegPath), path.basename(ffmpegPath).replace(/ffmpeg/, 'ffprobe'));
  return probe !== ffmpegPath && executable(probe) ? probe : null;
}

/** How locateFfmpeg looks around; tests replace the parts that touch the machine. */
export interface LocateDeps {
  which: (name: string) => string | null;
  bundled: () => string | null;
  version: (ffmpegPath: string) => FfmpegVersion | null;
  ffprobe: (ffmpegPath: string) => string | null;
}

/**
 * Chooses the ffmpeg: `FFMPEG_PATH` as given (whatever its version), else the first `ffmpeg` on PATH when its major
 * version is at least 5, else the bundled one, else an older system one, else the bare name `ffmpeg`.
 */
export function chooseFfmpeg(ffmpegPathSetting: string | undefined, deps: LocateDeps): FfmpegChoice {
  const choice = (p: string, source: FfmpegSource, passedOver: string[], version = deps.version(p)): FfmpegChoice => ({
    path: p,
    source,
    version,
    ffprobePath: deps.ffprobe(p),
    passedOver,
  });
  if (ffmpegPathSetting) return choice(ffmpegPathSetting, 'FFMPEG_PATH', []);
  const passedOver: string[] = [];
  const system = deps.which('ffmpeg');
  const systemVersion = system ? deps.version(system) : null;
  if (system && systemVersion && systemVersion.major >= MIN_SYSTEM_MAJOR)
    return choice(system, 'system', passedOver, systemVersion);
  if (system)
    passedOver.push(
      systemVersion
        ? `${system} is ${systemVersion.major}.${systemVersion.minor}, older than ${MIN_SYSTEM_MAJOR}`
        : `${system} did not answer -version`,
    );
  const bundled = deps.bundled();
  if (bundled) return choice(bundled, 'bundled', passedOver);
  if (system && systemVersion) return choice(system, 'system', passedOver, systemVersion);
  return choice('ffmpeg', 'PATH (fallback)', passedOver);
}

const chosen = new Map<string, FfmpegChoice>();

/**
 * The ffmpeg of this process for the environment `env` (`FFMPEG_PATH`, `PATH`; PATH falls back to this process's),
 * chosen once per pair of values: runs `ffmpeg -version` synchronously (tens of ms) the first time.
 */
export function locateFfmpeg(env: Record<string, string | undefined> = process.env): FfmpegChoice {
  const searchPath = env.PATH ?? process.env.PATH;
  const key = `${env.FFMPEG_PATH ?? ''}\0${searchPath ?? ''}`;
  let c = chosen.get(key);
  if (!c) {
    c = chooseFfmpeg(env.FFMPEG_PATH || undefined, {
      which: (name) => onPath(name, searchPath),
      bundled: bundledFfmpeg,
      version: readVersion,
      ffprobe: ffprobeBeside,
    });
    chosen.set(key, c);
  }
  return c;
}
