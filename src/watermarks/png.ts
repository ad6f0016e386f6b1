import zlib from 'node:zlib';

/** What a PNG's header says. */
export interface PngInfo {
  width: number;
  height: number;
  bitDepth: number;
  colorType: number;
}

/** Limits an inspection applies; each defaults to none. */
export interface PngLimits {
  /** Largest width and height, in pixels. */
  maxSide?: number;
  /** Largest decoded size, in bytes (see `decodedBytes`); checked on the header, before anything is inflated. */
  maxDecodedBytes?: number;
  /** Bytes of each piece the image data is inflated into and dropped (what one inspection holds); 64 KiB. */
  chunkBytes?: number;
}

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };
const MIB = 1024 * 1024;
const CHUNK_BYTES = 64 * 1024;

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

/** Scanlines of one image or Adam7 pass: `rows` lines of `rowBytes` bytes each (a filter byte, then pixels). */
interface Scanlines {
  rows: number;
  rowBytes: number;
}

/** The scanlines the image data inflates to: one run, or one per non-empty Adam7 pass when interlaced. */
function scanlines(info: PngInfo, interlaced: boolean): Scanlines[] {
  const bits = CHANNELS[info.colorType]! * info.bitDepth;
  const lines = (w: number, h: number) => ({ rows: w > 0 ? h : 0, rowBytes: 1 + Math.ceil((w * bits) / 8) });
  const all = interlaced
    ? ADAM7.map(([x0, y0, dx, dy]) => lines(Math.ceil((info.width - x0) / dx), Math.ceil((info.height - y0) / dy)))
    : [lines(info.width, info.height)];
  return all.filter((s) => s.rows > 0);
}

/** Bytes the image data inflates to: each scanline (of each Adam7 pass when interlaced) is a filter byte and pixels. */
export function rawImageBytes(info: PngInfo, interlaced: boolean): number {
  return scanlines(info, interlaced).reduce((n, s) => n + s.rows * s.rowBytes, 0);
}

/**
 * Bytes the image takes once decoded (what ffmpeg holds of it for an overlay): width × height × bytes per pixel,
 * where a pixel is its channels × 2 bytes at 16 bits and × 1 byte below, and a palette pixel 4 bytes (RGBA).
 */
export function decodedBytes(info: PngInfo): number {
  const perPixel = info.colorType === 3 ? 4 : CHANNELS[info.colorType]! * (info.bitDepth === 16 ? 2 : 1);
  return info.width * info.height * perPixel;
}

/** Bytes as MiB for messages: whole when whole, else one decimal. */
const mib = (bytes: number): string => String(Number((bytes / MIB).toFixed(1)));

/**
 * Inflates the image data as a stream, `chunkBytes` at a time, counting the bytes and checking each scanline's filter
 * type (0–4), and drops every piece: memory stays O(chunkBytes) whatever the image's size, and zlib works off the
 * event loop. Stops one piece past the expected size. Resolves null when the data is exactly `layout`, else why not.
 */
function checkImageData(idat: readonly Buffer[], layout: readonly Scanlines[], chunkBytes: number) {
  const expected = layout.reduce((n, s) => n + s.rows * s.rowBytes, 0);
  return new Promise<string | null>((resolve) => {
    const inflate = zlib.createInflate({ chunkSize: chunkBytes });
    let seen = 0; // bytes inflated so far
    let pass = 0; // the Adam7 pass (or the one run) the next filter byte belongs to, its rows left, and its position
    let rowsLeft = layout[0]?.rows ?? 0;
    let filterAt = 0;
    let settled = false;
    const finish = (why: string | null) => {
      if (settled) return;
      settled = true;
      inflate.destroy();
      resolve(why);
    };
    inflate.on('data', (out: Buffer) => {
      if (settled) return;
      if (seen + out.length > expected) return finish('image data inflates past the size the header promises');
      while (rowsLeft > 0 && filterAt < seen + out.length) {
        const filter = out[filterAt - seen]!;
        if (filter > 4) return finish(`bad scanline filter type ${filter}`);
        filterAt += layout[pass]!.rowBytes;
        if (--rowsLeft === 0 && ++pass < layout.length) rowsLeft = layout[pass]!.rows;
      }
      seen += out.length;
    });
    inflate.on('error', () => finish('image data does not decompress'));
    inflate.on('end', () => finish(seen === expected ? null : 'image data size does not match the header'));
    for (const d of idat) inflate.write(d);
    inflate.end();
  });
}

/**
 * Checks that a buffer is a whole, well-formed PNG: signature, every chunk's CRC, an IHDR first and an IEND last, a
 * size within `maxSide` pixels a side and `maxDecodedBytes` decoded (both read from the header, before anything is
 * inflated), and image data that inflates to exactly the scanlines the header promises, each with a valid filter
 * type. The inflate is a stream of `chunkBytes` pieces that are counted and dropped (see `checkImageData`), so neither
 * a decompression bomb nor a huge valid image is ever held in memory. Returns the header, or a reason it is refused.
 */
export async function inspectPng(buf: Buffer, limits: PngLimits = {}): Promise<PngInfo | { error: string }> {
  const { maxSide = Infinity, maxDecodedBytes = Infinity, chunkBytes = CHUNK_BYTES } = limits;
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
  const decoded = decodedBytes(info);
  if (decoded > maxDecodedBytes)
    return {
      error:
        `${info.width}x${info.height} pixels of ${decoded / (info.width * info.height)} bytes decodes to ` +
        `${mib(decoded)} MiB, over the budget of ${mib(maxDecodedBytes)} MiB`,
    };
  const why = await checkImageData(idat, scanlines(info, interlaced), chunkBytes);
  return why ? { error: why } : info;
}
