import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { existsSync } from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import type { Logger } from '../../log.js';
import { redact } from '../../log.js';
import { LineSplitter, ProgressParser, type Progress } from './progress.js';
import { classifyStartFailure, decisiveLine, StderrKeeper, type StartFailureKind } from './stderr.js';
import { parseReportedCodecs, type ReportedCodecs } from './streams.js';

export { classifyStartFailure, decisiveLine, type StartFailureKind } from './stderr.js';

/**
 * A failure to start (distinct from a later death, which is the `exit` event). `reason` is ffmpeg's own line that
 * says why (redacted, without `@ 0x…` addresses), when one does.
 */
export class FfmpegStartError extends Error {
  constructor(
    readonly kind: StartFailureKind,
    message: string,
    readonly stderrTail: readonly string[],
    readonly reason: string | null = null,
  ) {
    super(message);
    this.name = 'FfmpegStartError';
  }
}

/**
 * How an ffmpeg process ended; `expected` is true when close() or kill() asked for it. `stderrTail` holds the last
 * lines and, before them, earlier lines naming a problem; `reason` is the line that says why it ended, if any.
 */
export interface FfmpegExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  expected: boolean;
  stderrTail: readonly string[];
  reason: string | null;
}

/** Typed events of an ffmpeg process. */
export interface FfmpegEvents {
  progress: [Progress];
  exit: [FfmpegExit];
}

/** Options of one ffmpeg process. */
export interface FfmpegOptions {
  ffmpegPath: string;
  args: readonly string[];
  logger: Logger;
  /** start() rejects with `timeout` when no media has been written by then. */
  startTimeoutMs: number;
  /** Time SIGINT has to finalise the outputs before SIGKILL. */
  killGraceMs?: number;
  /** Environment variables set for this ffmpeg on top of the process's own (e.g. `http_proxy`). */
  env?: Readonly<Record<string, string>>;
  /**
   * Extra pipes (a mix): `encoder` writes raw input on stdin and fd 3 (progress stays on stdout); `feeder` reads raw
   * output on stdout and fd 3 (no progress: start() resolves on `flowing`). `onSpawn` gets them as soon as it runs.
   */
  pipes?: { kind: 'encoder' | 'feeder'; onSpawn(io: FfmpegPipes): void };
  /** Cleans its command line and stderr lines before they are logged or kept (default `redact`). */
  redactor?: (text: string) => string;
}

/** The extra pipes of an ffmpeg spawned with `pipes`. */
export interface FfmpegPipes {
  stdin: Writable | null;
  stdout: Readable | null;
  fd3: Writable | Readable | null;
}

const SETPRIV = '/usr/bin/setpriv';
const INPUT_REPORT_LINES = 200;
const live = new Set<ChildProcess>();

// Last resort when the owning process exits without closing its children: signal each process group.
process.once('exit', () => void killAllFfmpegs());

/**
 * Kills every ffmpeg this process runs, at once (SIGKILL to each process group), without waiting: a shutdown asked
 * to hurry (a second signal). Their owners see them exit as after close() and finish their records. Returns how many.
 */
export function killAllFfmpegs(): number {
  let n = 0;
  for (const c of live)
    if (c.pid && c.exitCode === null && c.signalCode === null)
      try {
        process.kill(-c.pid, 'SIGKILL');
        n++;
      } catch {
        /* already gone */
      }
  return n;
}

/** The upstream's video as ffmpeg reported it when it opened the input. */
export interface InputVideo {
  codec: string;
  profile: string | null;
  width: number;
  height: number;
}

const INPUT_VIDEO = /^\s*Stream #0:\d+.*?: Video: (\w+)(?: \(([^)]*)\))?.*?, (\d{2,5})x(\d{2,5})/;

/** Parses an input video stream line of ffmpeg's stream report, or null. */
export function parseInputVideo(line: string): InputVideo | null {
  const m = INPUT_VIDEO.exec(line);
  return m ? { codec: m[1]!, profile: m[2] ?? null, width: Number(m[3]), height: Number(m[4]) } : null;
}

/**
 * Owns one ffmpeg child: spawned in its own process group and tied to this process's life (pdeathsig), so an
 * ffmpeg never outlives its worker. start() resolves when media flows; close() is idempotent.
 */
export class FfmpegProcess extends EventEmitter<FfmpegEvents> {
  private child: ChildProcess | null = null;
  private closing = false;
  private exited: Promise<FfmpegExit> | null = null;
  private readonly stderr = new StderrKeeper();
  private lastProgress: Progress | null = null;
  private input: InputVideo | null = null;
  private inOutputs = false;
  /** ffmpeg's report of its input (the lines before its outputs), at most INPUT_REPORT_LINES. */
  private readonly inputReport: string[] = [];

  constructor(private readonly opts: FfmpegOptions) {
    super();
  }

  /** The latest progress block, if any. */
  get progress(): Progress | null {
    return this.lastProgress;
  }

  /** The upstream's video (from ffmpeg's stream report), once known. */
  get inputVideo(): InputVideo | null {
    return this.input;
  }

  /** The upstream's codecs and rotation from ffmpeg's input report, once it has reported a video track. */
  get inputCodecs(): ReportedCodecs | null {
    return parseReportedCodecs(this.inputReport);
  }

  /** Last lines ffmpeg wrote to stderr, after the earlier ones that named a problem. */
  get stderrTail(): readonly string[] {
    return this.stderr.all;
  }

  /**
   * Spawns ffmpeg and resolves once media flows: its first progress block with frames or output time, or `flowing`
   * resolving first (someone who sees the output, e.g. the media server receiving a keyframe). A rejected `flowing`
   * counts for nothing.
   */
  start(opts: { flowing?: Promise<unknown> } = {}): Promise<void> {
    if (this.child) throw new Error('ffmpeg already started');
    const { ffmpegPath, args, logger } = this.opts;
    const [cmd, argv] = existsSync(SETPRIV)
      ? [SETPRIV, ['--pdeathsig', 'SIGKILL', '--', ffmpegPath, ...args]]
      : [ffmpegPath, [...args]];
    const clean = this.opts.redactor ?? redact;
    logger.debug({ cmd: clean([ffmpegPath, ...args].join(' ')) }, 'spawning ffmpeg');
    // TZ=UTC: recording file names carry their start time in UTC (strftime)
    const pipes = this.opts.pipes;
    const child = spawn(cmd, argv, {
      detached: true,
      stdio: pipes
        ? [pipes.kind === 'encoder' ? 'pipe' : 'ignore', 'pipe', 'pipe', 'pipe']
        : ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...this.opts.env, TZ: 'UTC' },
    });
    this.child = child;
    live.add(child);

    const progress = new ProgressParser((p) => {
      this.lastProgress = p;
      this.emit('progress', p);
    });
    const out = new LineSplitter((l) => progress.line(l));
    const err = new LineSplitter((l) => {
      const line = clean(l);
      if (/^(?:Output #|Stream mapping:)/.test(line)) this.inOutputs = true;
      if (!this.inOutputs && this.inputReport.length < INPUT_REPORT_LINES) this.inputReport.push(line);
      if (!this.input && !this.inOutputs) this.input = parseInputVideo(line);
      this.stderr.push(line);
      logger.debug({ ffmpeg: line }, 'ffmpeg');
    });
    if (pipes?.kind !== 'feeder') child.stdout!.on('data', (d: Buffer) => out.push(d));
    const fd3 = (child.stdio[3] ?? null) as Writable | Readable | null;
    pipes?.onSpawn({ stdin: child.stdin, stdout: pipes.kind === 'feeder' ? child.stdout : null, fd3 });
    child.stderr!.on('data', (d: Buffer) => err.push(d));

    this.exited = new Promise<FfmpegExit>((resolve) => {
      child.once('close', (code, signal) => {
        out.flush();
        err.flush();
        live.delete(child);
        const stderrTail = this.stderrTail;
        const exit: FfmpegExit = { code, signal, expected: this.closing, stderrTail, reason: decisiveLine(stderrTail) };
        this.emit('exit', exit);
        resolve(exit);
      });
    });

    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const settle = (e?: FfmpegStartError) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.off('progress', onProgress);
        this.off('exit', onExit);
        if (e) reject(e);
        else resolve();
      };
      const onProgress = (p: Progress) => {
        if (p.frame > 0 || p.outTimeUs > 0) settle();
      };
      opts.flowing?.then(
        () => settle(),
        () => undefined,
      );
      const onExit = (exit: FfmpegExit) => {
        const why = exit.reason ?? (exit.stderrTail.slice(-3).join(' | ') || 'no output');
        const kind = classifyStartFailure(exit.stderrTail);
        settle(new FfmpegStartError(kind, `ffmpeg exited before media flowed: ${why}`, exit.stderrTail, exit.reason));
      };
      const timer = setTimeout(() => {
        const tail = this.stderrTail;
        const reason = decisiveLine(tail);
        const why = `no media within ${this.opts.startTimeoutMs} ms${reason ? ` (last error: ${reason})` : ''}`;
        settle(new FfmpegStartError('timeout', why, tail, reason));
        void this.close();
      }, this.opts.startTimeoutMs);
      child.once('error', (e) =>
        settle(new FfmpegStartError('exited', `cannot run ffmpeg at ${ffmpegPath}: ${e.message}`, [])),
      );
      this.on('progress', onProgress);
      this.on('exit', onExit);
    });
  }

  /** Resolves when the process has ended, however it ended (also when it already has). */
  get done(): Promise<FfmpegExit> {
    if (!this.exited) throw new Error('ffmpeg not started');
    return this.exited;
  }

  /** Whether the child is still running. */
  get running(): boolean {
    return this.child !== null && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Stops ffmpeg: SIGINT to its group so it finalises its outputs, SIGKILL after the grace period. Idempotent. */
  async close(): Promise<void> {
    this.closing = true;
    const child = this.child;
    if (!child || !this.exited) return;
    if (this.running) this.signal('SIGINT');
    const grace = setTimeout(() => this.signal('SIGKILL'), this.opts.killGraceMs ?? 5000);
    await this.exited;
    clearTimeout(grace);
  }

  /** Kills at once, without finalising (used when the lock on the job is lost). */
  async kill(): Promise<void> {
    this.closing = true;
    if (this.running) this.signal('SIGKILL');
    await this.exited;
  }

  private signal(sig: NodeJS.Signals): void {
    const pid = this.child?.pid;
    if (!pid) return;
    try {
      process.kill(-pid, sig);
    } catch {
      /* group already gone */
    }
  }
}
