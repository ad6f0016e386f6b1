import path from 'node:path';
import type { StartFailureKind } from '../media/ffmpeg/process.js';
import type { ErrorCode } from '../errors/index.js';

/**
 * The SPEC code and message a failed start answers with, by why ffmpeg could not deliver media; `reason` is ffmpeg's
 * own line saying why (redacted), put in the message. Deterministic failures (no video, a capability ffmpeg lacks, an
 * upstream that is not media) get codes whose hint does not say to retry; 6012 is for an upstream that sent nothing
 * in time or could not be reached. A file upstream is named by its path inside `fileDir`, as it was registered.
 */
export function startFailureCode(
  kind: StartFailureKind,
  reason: string | null = null,
  fileDir?: string,
): { code: ErrorCode; message: string } {
  const shown = fileDir && reason ? reason.replaceAll(fileDir + path.sep, '') : reason;
  const because = shown ? ` (ffmpeg: ${shown})` : '';
  switch (kind) {
    case 'no-video':
      return {
        code: 40000004,
        message: `the upstream has no video track: a bypass channel needs one video track (audio is optional)${because}`,
      };
    case 'unsupported':
      return { code: 50008, message: `the relay's ffmpeg cannot relay this upstream${because}` };
    case 'invalid':
      return { code: 50009, message: `the upstream cannot be read as media${because}` };
    case 'timeout':
      return { code: 6012, message: `push timed out: no media from the upstream within the start timeout${because}` };
    case 'unreadable':
      return { code: 6012, message: `push timed out: the upstream could not be read${because}` };
    case 'exited':
      return { code: 6012, message: `push timed out: the relay process ended before media flowed${because}` };
  }
}
