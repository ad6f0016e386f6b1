import fs from 'node:fs';
import zlib from 'node:zlib';

/** PNG chunk: length, type, data, CRC-32 of type and data. */
function chunk(type: string, data: Buffer): Buffer {
  const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(zlib.crc32(td));
  return Buffer.concat([len, td, crc]);
}

/**
 * A PNG of the given header whose image data is `raw` deflated (default: every byte 0, i.e. filter 0 and black
 * pixels, of exactly the size a non-interlaced image of that header inflates to: `height × (1 + width × bytes per
 * pixel)`). colorType 6 = RGBA, 2 = RGB, 0 = gray; bitDepth 8 or 16.
 */
export function pngOf(
  width: number,
  height: number,
  o: { bitDepth?: number; colorType?: number; interlace?: 0 | 1; raw?: Buffer } = {},
): Buffer {
  const bitDepth = o.bitDepth ?? 8;
  const colorType = o.colorType ?? 6;
  const channels = { 0: 1, 2: 3, 4: 2, 6: 4 }[colorType as 0 | 2 | 4 | 6];
  const raw = o.raw ?? Buffer.alloc(height * (1 + Math.ceil((width * channels * bitDepth) / 8)));
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([bitDepth, colorType, 0, 0, o.interlace ?? 0], 8);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', zlib.deflateSync(raw, { level: 9 })),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** A process's resident memory and its peak, in bytes (Linux /proc; the peak since the last `resetPeak`). */
export function memoryOf(pid: number): { rss: number; peak: number } {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) * 1024;
  return { rss: kib('VmRSS'), peak: kib('VmHWM') };
}

/** Resets a process's peak RSS (VmHWM) to its current RSS; false when not permitted. */
export function resetPeak(pid: number): boolean {
  try {
    fs.writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}
