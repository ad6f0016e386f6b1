/**
 * The checks an external upstream URL passes when it is registered and again at each start: an allowed scheme or a
 * file inside the upstream folder (50002), a file that exists (50002), what the relay's ffmpeg needs to read it
 * (50008, naming what it lacks), and the egress policy for network URLs (50002).
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { RelayError } from '../errors/index.js';
import { assertEgressAllowed, type EgressPolicy } from '../egress/index.js';
import { describeCapability, type FfmpegInfo } from '../media/ffmpeg/capabilities.js';
import { missingForUpstream } from '../media/ffmpeg/needs.js';
import { resolveUpstreamInput, type UpstreamInput } from './model.js';

/** What the checks need: the upstream folder, the egress policy and, when known, the relay's ffmpeg. */
export interface UpstreamCheckDeps {
  fileUpstreamDir: string;
  egress: EgressPolicy;
  /** The ffmpeg that will read the upstream; without it no capability is checked. */
  ffmpeg?: () => Promise<FfmpegInfo>;
}

/**
 * Checks an upstream URL (as registered) and returns how ffmpeg reads it; throws RelayError 50002 (refused URL,
 * missing file, internal host) or 50008 (the relay's ffmpeg lacks the protocol or demuxer it needs).
 */
export async function checkUpstream(raw: string, deps: UpstreamCheckDeps): Promise<UpstreamInput> {
  const input = resolveUpstreamInput(raw, deps.fileUpstreamDir);
  const isFile = input.protocolWhitelist.startsWith('file');
  if (isFile) await assertFileExists(input.url, deps.fileUpstreamDir);
  const ffmpeg = await deps.ffmpeg?.();
  const missing = ffmpeg?.caps ? missingForUpstream(ffmpeg.caps, isFile ? input.url : raw) : null;
  if (missing) {
    const v = ffmpeg!.version;
    const what = isFile
      ? `.${path.extname(input.url).slice(1)} upstreams`
      : `${raw.split(':')[0]!.toLowerCase()}:// upstreams`;
    throw new RelayError(
      50008,
      `${what} need ${describeCapability(missing)}, which the relay's ffmpeg${v ? ` ${v.major}.${v.minor}` : ''} lacks`,
    );
  }
  // files are the operator's (inside RELAY_FILE_UPSTREAM_DIR); network URLs must stay off internal addresses
  if (!isFile) await assertEgressAllowed(raw, deps.egress, 'upstream url');
  return input;
}

async function assertFileExists(file: string, dir: string): Promise<void> {
  const stat = await fs.stat(file).catch(() => null);
  if (stat?.isFile()) return;
  const shown = path.relative(dir, file);
  throw new RelayError(
    50002,
    stat ? `upstream file ${shown} is not a regular file` : `upstream file ${shown} does not exist`,
    { hint: `put the file in ${dir} (RELAY_FILE_UPSTREAM_DIR) first, or check its name` },
  );
}
