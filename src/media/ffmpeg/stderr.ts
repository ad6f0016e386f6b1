/**
 * Reading ffmpeg's error output: which lines matter (kept apart from the tail, so a burst of warnings cannot push them
 * out), why a start failed, and the one line that says so. Worded for ffmpeg 4.1 to 7.x.
 */

/**
 * Why an ffmpeg did not start delivering media. `unsupported`: this ffmpeg lacks what the upstream needs (a protocol,
 * demuxer, decoder) or an output cannot carry its codec; `invalid`: the upstream is not media ffmpeg can read (not
 * media, truncated, no such file, a refused protocol, an HTTP 4xx); `unreadable`: the network or the upstream's
 * server failed (may get better); `exited`: any other early end; `timeout`: no media in time.
 */
export type StartFailureKind = 'no-video' | 'unsupported' | 'invalid' | 'timeout' | 'unreadable' | 'exited';

/** Lines of each failure kind, most telling first. */
const KIND_LINES: readonly [Exclude<StartFailureKind, 'timeout' | 'exited'>, RegExp][] = [
  [
    'no-video',
    /Stream map '0:v:0' matches no streams|Stream specifier ':v:0' .*matches no streams|does not contain any stream/i,
  ],
  [
    'unsupported',
    /Protocol not found|Unknown (?:decoder|encoder|input format)|(?:Decoder|Encoder) \(codec [\w-]+\) not found|No such filter|Unrecognized option|not compatible with|not currently supported in container|Could not find tag for codec|Malformed AAC bitstream detected/i,
  ],
  [
    'invalid',
    /Invalid data found when processing input|moov atom not found|No such file or directory|not on whitelist|not in whitelist|Server returned 4\d\d|HTTP error 4\d\d/i,
  ],
  [
    'unreadable',
    /Input\/output error|Connection refused|Connection reset|Connection timed out|End of file|could not find codec parameters|Server returned 5\d\d|HTTP error 5\d\d|Network is unreachable|Name or service not known|Failed to resolve/i,
  ],
];
// A header that could not be written names no codec itself; the line before it (above) usually does.
const HEADER_FAILED = /Could not write header for output file/i;
/** A header failure whose errno says the codec cannot go there (Opus into FLV says nothing more). */
const CODEC_HEADER = /Could not write header for output file.*: (?:Function not implemented|Invalid argument)\s*$/i;
/** Lines about an output (a file, the media server), which say nothing of whether the upstream is media. */
const OUTPUT_LINE =
  /Could not write header|av_interleaved_write_frame|Error writing trailer|Failed to open (?:segment|file)|Error opening output|Failure occurred when ending segment|Error submitting a packet to the muxer/i;
/** A full disk says why an ffmpeg ended before anything else it says (the run handles it apart: 50007). */
const DISK_FULL = /No space left on device|Disk quota exceeded/i;
/** ffmpeg's closing words, which never say why. */
const GENERIC = /^(?:Conversion failed!|Exiting normally.*)$/;

/** Whether a line names a codec, protocol, stream or I/O problem worth keeping beyond the tail. */
export function isNotable(line: string): boolean {
  if (GENERIC.test(line.trim())) return false;
  return (
    DISK_FULL.test(line) ||
    KIND_LINES.some(([, re]) => re.test(line)) ||
    HEADER_FAILED.test(line) ||
    /\b(?:error|failed|invalid|not found|unsupported|not supported|incompatible)\b/i.test(line)
  );
}

// The first line of the most specific kind any line names (an output's line never makes the upstream `invalid`).
function firstOfKind(stderr: readonly string[]): { kind: StartFailureKind; line: string } | null {
  for (const [kind, re] of KIND_LINES) {
    const line = stderr.find((l) => re.test(l) && (kind !== 'invalid' || !OUTPUT_LINE.test(l)));
    if (line) return { kind, line };
  }
  const header = stderr.find((l) => CODEC_HEADER.test(l));
  return header ? { kind: 'unsupported', line: header } : null;
}

/** Classifies ffmpeg's error output of a failed start (the most specific kind any line names). */
export function classifyStartFailure(stderr: readonly string[]): StartFailureKind {
  return firstOfKind(stderr)?.kind ?? 'exited';
}

/** A line as shown to a tenant: no `[flv @ 0x55d…]` addresses, at most 300 characters. */
export function tidyLine(line: string): string {
  const t = line.replace(/^\[([\w,-]+) @ 0x[0-9a-f]+\]\s*/i, '[$1] ').trim();
  return t.length > 300 ? `${t.slice(0, 299)}…` : t;
}

/**
 * The line that says why ffmpeg failed: a full disk, else the first line of the most specific kind, else the first
 * header failure, else the last line that looks like an error; null when none does.
 */
export function decisiveLine(stderr: readonly string[]): string | null {
  const line =
    stderr.find((l) => DISK_FULL.test(l)) ??
    firstOfKind(stderr)?.line ??
    stderr.find((l) => HEADER_FAILED.test(l)) ??
    [...stderr].reverse().find(isNotable);
  return line ? tidyLine(line) : null;
}

/** Lines kept of one ffmpeg's stderr: the last `tail` lines, and the last `notable` lines that name a problem. */
export class StderrKeeper {
  private readonly tailLines: string[] = [];
  private readonly notableLines: string[] = [];

  constructor(
    private readonly tail = 40,
    private readonly notable = 30,
  ) {}

  /** Keeps a line (already redacted). */
  push(line: string): void {
    this.tailLines.push(line);
    if (this.tailLines.length > this.tail) this.tailLines.shift();
    if (!isNotable(line) || this.notableLines.at(-1) === line) return;
    this.notableLines.push(line);
    if (this.notableLines.length > this.notable) this.notableLines.shift();
  }

  /** The last lines, in order. */
  get lines(): readonly string[] {
    return [...this.tailLines];
  }

  /** Every kept line in the order ffmpeg wrote them: notable lines the tail lost, then the tail. */
  get all(): readonly string[] {
    const lost = this.notableLines.filter((l) => !this.tailLines.includes(l));
    return [...lost, ...this.tailLines];
  }
}
