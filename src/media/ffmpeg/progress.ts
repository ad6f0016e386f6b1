/** One block of ffmpeg `-progress` output. */
export interface Progress {
  frame: number;
  fps: number;
  /** Output time in microseconds. */
  outTimeUs: number;
  /** Speed relative to real time (1 = real time); 0 when ffmpeg reports N/A. */
  speed: number;
  totalSize?: number;
  ended: boolean;
}

/** The figures of a progress block as the relay reports them (frames, fps, speed, output time in ms), at `now`. */
export function progressFigures(
  p: Progress,
  now: number,
): { frames: number; fps: number; speed: number; outTimeMs: number; updatedAt: number } {
  return { frames: p.frame, fps: p.fps, speed: p.speed, outTimeMs: Math.round(p.outTimeUs / 1000), updatedAt: now };
}

/** Splits a byte stream into lines, carrying partial lines across chunks; lines longer than `max` are cut. */
export class LineSplitter {
  private rest = '';
  constructor(
    private readonly onLine: (line: string) => void,
    private readonly max = 4096,
  ) {}

  push(chunk: Buffer | string): void {
    const text = this.rest + chunk.toString();
    const lines = text.split(/\r?\n|\r/);
    this.rest = (lines.pop() ?? '').slice(-this.max);
    for (const l of lines) if (l.length > 0) this.onLine(l.slice(0, this.max));
  }

  flush(): void {
    if (this.rest) this.onLine(this.rest);
    this.rest = '';
  }
}

const num = (v: string | undefined): number => {
  const n = Number.parseFloat(v ?? '');
  return Number.isFinite(n) ? n : 0;
};

/** Collects `key=value` lines into Progress blocks, each ended by a `progress=` line. */
export class ProgressParser {
  private block = new Map<string, string>();
  constructor(private readonly onProgress: (p: Progress) => void) {}

  line(line: string): void {
    const eq = line.indexOf('=');
    if (eq <= 0) return;
    const key = line.slice(0, eq).trim();
    const value = line.slice(eq + 1).trim();
    this.block.set(key, value);
    if (key !== 'progress') return;
    const b = this.block;
    this.block = new Map();
    const size = b.get('total_size');
    this.onProgress({
      frame: num(b.get('frame')),
      fps: num(b.get('fps')),
      outTimeUs: num(b.get('out_time_us') ?? b.get('out_time_ms')),
      speed: num(b.get('speed')?.replace(/x$/, '')),
      ...(size && size !== 'N/A' ? { totalSize: num(size) } : {}),
      ended: value === 'end',
    });
  }
}
