import zlib from 'node:zlib';

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

/**
 * Checks that a buffer is a whole, well-formed PNG: signature, every chunk's CRC, an IHDR first and an IEND last, and
 * image data that inflates to the size the header promises. Returns its header, or a reason it is not one.
 */
export function inspectPng(buf: Buffer): PngInfo | { error: string } {
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
  const channels = CHANNELS[info.colorType];
  if (!channels || info.width === 0 || info.height === 0)
    return { error: 'unsupported PNG colour type or empty image' };
  let raw: Buffer;
  try {
    raw = zlib.inflateSync(Buffer.concat(idat));
  } catch {
    return { error: 'image data does not decompress' };
  }
  const stride = Math.ceil((info.width * channels * info.bitDepth) / 8);
  if (!interlaced && raw.length !== info.height * (stride + 1))
    return { error: 'image data size does not match the header' };
  return info;
}
