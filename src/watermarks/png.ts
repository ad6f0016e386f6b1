import { promisify } from 'node:util';
import zlib from 'node:zlib';

const inflate = promisify(zlib.inflate) as (buf: Buffer, o: zlib.ZlibOptions) => Promise<Buffer>;

/** What a PNG's header says. */
export interface PngInfo {
  width: number;
  height: number;
  bitDepth: number;
  colorType: number;
}

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(buf: Buffer): number {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** Adam7 passes: x offset, y offset, x step, y step (PNG spec, section 8.2). */
const ADAM7 = [
  [0, 0, 8, 8],
  [4, 0, 8, 8],
  [0, 4, 4, 8],
  [2, 0, 4, 4],
  [0, 2, 2, 4],
  [1, 0, 2, 2],
  [0, 1, 1, 2],
] as const;

/** Bytes the image data inflates to: each scanline (of each Adam7 pass when interlaced) is a filter byte and pixels. */
export function rawImageBytes(info: PngInfo, interlaced: boolean): number {
  const bits = CHANNELS[info.colorType]! * info.bitDepth;
  const lines = (w: number, h: number) => (w > 0 && h > 0 ? h * (1 + Math.ceil((w * bits) / 8)) : 0);
  if (!interlaced) return lines(info.width, info.height);
  return ADAM7.reduce(
    (n, [x0, y0, dx, dy]) => n + lines(Math.ceil((info.width - x0) / dx), Math.ceil((info.height - y0) / dy)),
    0,
  );
}

/**
 * Checks that a buffer is a whole, well-formed PNG: signature, every chunk's CRC, an IHDR first and an IEND last, a
 * size within `maxSide` pixels a side, and image data that inflates to exactly the size the header promises. The
 * inflate runs off the event loop and stops one byte past that size, so a decompression bomb costs neither memory
 * nor time. Returns the header, or a reason the file is refused.
 */
export async function inspectPng(buf: Buffer, maxSide = Infinity): Promise<PngInfo | { error: string }> {
  if (buf.length < 8 + 25 + 12 || !buf.subarray(0, 8).equals(SIGNATURE)) return { error: 'not a PNG (bad signature)' };
  let off = 8;
  let info: PngInfo | null = null;
  let interlaced = false;
  const idat: Buffer[] = [];
  let ended = false;
  while (off + 12 <= buf.length) {
    const len = buf.readUInt32BE(off);
    const type = buf.toString('latin1', off + 4, off + 8);
    if (off + 12 + len > buf.length) return { error: `truncated ${type} chunk` };
    const data = buf.subarray(off + 8, off + 8 + len);
    if (crc32(buf.subarray(off + 4, off + 8 + len)) !== buf.readUInt32BE(off + 8 + len))
      return { error: `bad CRC in ${type} chunk` };
    if (!info && type !== 'IHDR') return { error: 'IHDR is not the first chunk' };
    if (type === 'IHDR') {
      if (len !== 13) return { error: 'bad IHDR' };
      info = { width: data.readUInt32BE(0), height: data.readUInt32BE(4), bitDepth: data[8]!, colorType: data[9]! };
      interlaced = data[12] === 1;
    } else if (type === 'IDAT') idat.push(data);
    else if (type === 'IEND') {
      ended = true;
      break;
    }
    off += 12 + len;
  }
  if (!info || !ended) return { error: 'no IEND chunk: the file is incomplete' };
  if (!CHANNELS[info.colorType] || ![1, 2, 4, 8, 16].includes(info.bitDepth) || info.width === 0 || info.height === 0)
    return { error: 'unsupported PNG colour type or bit depth, or an empty image' };
  if (info.width > maxSide || info.height > maxSide) return { error: `larger than ${maxSide}x${maxSide} pixels` };
  const expected = rawImageBytes(info, interlaced);
  let raw: Buffer;
  try {
    raw = await inflate(Buffer.concat(idat), { maxOutputLength: expected + 1 });
  } catch (e) {
    if ((e as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE')
      return { error: 'image data inflates past the size the header promises' };
    return { error: 'image data does not decompress' };
  }
  if (raw.length !== expected) return { error: 'image data size does not match the header' };
  return info;
}
