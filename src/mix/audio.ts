/**
 * The audio of a mix: per member a FIFO of s16le stereo 48 kHz PCM, and every 20 ms one chunk of each summed with the
 * member's volume and clamped to int16. A member whose FIFO runs dry (underrun, or gone) is silent until it has
 * buffered the jitter target again; a FIFO past its cap drops its oldest audio (a member running ahead).
 */
export const SAMPLE_RATE = 48000;
export const CHANNELS = 2;
export const CHUNK_MS = 20;
/** Bytes of one 20 ms chunk: 960 frames × 2 channels × 2 bytes. */
export const CHUNK_BYTES = ((SAMPLE_RATE * CHUNK_MS) / 1000) * CHANNELS * 2;
const bytesOf = (ms: number) => ((SAMPLE_RATE * ms) / 1000) * CHANNELS * 2;

export class PcmFifo {
  private chunks: Buffer[] = [];
  private size = 0;
  private primed = false;
  /** Audio dropped for running ahead, in bytes (for logs and tests). */
  dropped = 0;

  constructor(
    private readonly targetBytes = bytesOf(80),
    private readonly capBytes = bytesOf(500),
  ) {}

  get bytes(): number {
    return this.size;
  }

  push(b: Buffer): void {
    this.chunks.push(b);
    this.size += b.length;
    if (this.size > this.capBytes) this.take(this.size - this.targetBytes, true);
  }

  /** The next 20 ms, or null (silence) while it buffers up to the jitter target. */
  pull(): Buffer | null {
    if (!this.primed && this.size < this.targetBytes) return null;
    if (this.size < CHUNK_BYTES) {
      this.primed = false; // underrun: buffer up again
      return null;
    }
    this.primed = true;
    return this.take(CHUNK_BYTES, false);
  }

  clear(): void {
    this.chunks = [];
    this.size = 0;
    this.primed = false;
  }

  private take(n: number, drop: boolean): Buffer {
    n -= n % 4; // whole stereo frames
    const out = Buffer.allocUnsafe(drop ? 0 : n);
    let off = 0;
    while (off < n) {
      const c = this.chunks[0]!;
      const k = Math.min(c.length, n - off);
      if (!drop) c.copy(out, off, 0, k);
      off += k;
      if (k === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(k);
    }
    this.size -= n;
    if (drop) this.dropped += n;
    return out;
  }
}

/** Sums 20 ms chunks with gains (1 = 100 %), clamped to int16; no chunk gives silence. */
export function mixChunks(parts: readonly { pcm: Buffer | null; gain: number }[]): Buffer {
  const out = Buffer.alloc(CHUNK_BYTES);
  const live = parts.filter((p) => p.pcm && p.gain > 0);
  if (live.length === 0) return out;
  const n = CHUNK_BYTES / 2;
  const sum = new Float64Array(n);
  for (const p of live) {
    const b = p.pcm!;
    // an aligned copy when the chunk is not 2-byte aligned in its memory
    const src =
      b.byteOffset % 2 ? new Int16Array(Uint8Array.from(b).buffer) : new Int16Array(b.buffer, b.byteOffset, n);
    for (let i = 0; i < n; i++) sum[i]! += src[i]! * p.gain;
  }
  const dst = new Int16Array(out.buffer, out.byteOffset, n);
  for (let i = 0; i < n; i++) {
    const s = sum[i]!;
    dst[i] = s > 32767 ? 32767 : s < -32768 ? -32768 : Math.round(s);
  }
  return out;
}
