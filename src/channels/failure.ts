import type { StartFailureKind } from '../media/ffmpeg/process.js';
import type { ErrorCode } from '../errors/index.js';

/** The SPEC code and message a failed start answers with, by why ffmpeg could not deliver media. */
export function startFailureCode(kind: StartFailureKind): { code: ErrorCode; message: string } {
  switch (kind) {
    case 'no-video':
      return {
        code: 40000004,
        message: 'the upstream has no video track: a bypass channel needs one video track (audio is optional)',
      };
    case 'timeout':
      return { code: 6012, message: 'push timed out: no media from the upstream within the start timeout' };
    case 'unreadable':
      return { code: 6012, message: 'push timed out: the upstream could not be read as media' };
    case 'exited':
      return { code: 6012, message: 'push timed out: the relay process ended before media flowed' };
  }
}
