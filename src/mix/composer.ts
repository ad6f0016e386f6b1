/**
 * Composes a mix's canvas from its members' latest frames (yuv420p, planar) by copying plane rows, and mixes their
 * audio (s16le stereo 48 kHz) in 20 ms chunks. Pure: no timers, no processes.
 */
import { colourYuv, type Tile } from './layout.js';

/** A yuv420p picture: Y plane w×h, then U and V planes (w/2)×(h/2). */
export interface Frame {
  w: number;
  h: number;
  data: Buffer;
}

export const frameBytes = (w: number, h: number): number => w * h + 2 * (w / 2) * (h / 2);

/** A picture of one colour. */
export function solidFrame(w: number, h: number, yuv: readonly [number, number, number]): Frame {
  const data = Buffer.alloc(frameBytes(w, h));
  data.fill(yuv[0], 0, w * h);
  data.fill(yuv[1], w * h, w * h + (w * h) / 4);
  data.fill(yuv[2], w * h + (w * h) / 4);
  return { w, h, data };
}

/**
 * The placeholder of a member that stopped publishing: its last frame dimmed to greyscale (luma halved toward
 * black, chroma neutral), or flat grey when it never sent a frame.
 */
export function slateOf(last: Frame | null, w: number, h: number): Frame {
  if (!last) return solidFrame(w, h, [80, 128, 128]);
  const data = Buffer.from(last.data);
  const ySize = last.w * last.h;
  for (let i = 0; i < ySize; i++) data[i] = 16 + ((data[i]! - 16) >> 1);
  data.fill(128, ySize);
  return { w: last.w, h: last.h, data };
}

/** `src` resized to `w`×`h` (even) by nearest neighbour: a stand-in for a moment, not a picture to keep. */
export function scaleFrame(src: Frame, w: number, h: number): Frame {
  const out = Buffer.alloc(frameBytes(w, h));
  const planes = [
    { so: 0, sw: src.w, sh: src.h, o: 0, pw: w, ph: h },
    { so: src.w * src.h, sw: src.w / 2, sh: src.h / 2, o: w * h, pw: w / 2, ph: h / 2 },
    { so: (src.w * src.h * 5) / 4, sw: src.w / 2, sh: src.h / 2, o: (w * h * 5) / 4, pw: w / 2, ph: h / 2 },
  ];
  for (const p of planes)
    for (let y = 0; y < p.ph; y++) {
      const sy = Math.floor((y * p.sh) / p.ph);
      for (let x = 0; x < p.pw; x++)
        out[p.o + y * p.pw + x] = src.data[p.so + sy * p.sw + Math.floor((x * p.sw) / p.pw)]!;
    }
  return { w, h, data: out };
}

/** Copies `src` onto `dst` at (x, y), clipped to the rectangle `clip` (even coordinates) and to `dst`. */
export function blit(
  dst: Frame,
  src: Frame,
  x: number,
  y: number,
  clip: { x: number; y: number; w: number; h: number },
) {
  const x0 = Math.max(x, clip.x, 0);
  const y0 = Math.max(y, clip.y, 0);
  const x1 = Math.min(x + src.w, clip.x + clip.w, dst.w);
  const y1 = Math.min(y + src.h, clip.y + clip.h, dst.h);
  if (x1 <= x0 || y1 <= y0) return;
  for (let row = y0; row < y1; row++)
    src.data.copy(dst.data, row * dst.w + x0, (row - y) * src.w + (x0 - x), (row - y) * src.w + (x1 - x));
  const dYs = dst.w * dst.h;
  const sYs = src.w * src.h;
  const [dcw, dch, scw] = [dst.w / 2, dst.h / 2, src.w / 2];
  const [cx0, cx1, cy0, cy1, cx, cy] = [x0 / 2, x1 / 2, y0 / 2, y1 / 2, x / 2, y / 2];
  for (let plane = 0; plane < 2; plane++) {
    const dOff = dYs + plane * dcw * dch;
    const sOff = sYs + plane * scw * (src.h / 2);
    for (let row = cy0; row < cy1; row++)
      src.data.copy(
        dst.data,
        dOff + row * dcw + cx0,
        sOff + (row - cy) * scw + (cx0 - cx),
        sOff + (row - cy) * scw + (cx1 - cx),
      );
  }
}

/** What a tile shows: a member's frame (of any size: an older tile size shows clipped until the new one comes). */
export type TileContent = { frame: Frame | null; placeholder: boolean };

/** The canvas of a mix: a background, then each tile in order (lowest zOrder first). */
export class Composer {
  private out: Frame;

  /** `background` is canvas-sized (a colour, or a registered image scaled to the canvas). */
  constructor(
    w: number,
    h: number,
    private readonly background: Frame,
  ) {
    this.out = { w, h, data: Buffer.alloc(frameBytes(w, h)) };
  }

  /**
   * Composes one canvas into `into` (a canvas-sized buffer the caller owns, e.g. one back from the encoder's pipe), or
   * a new buffer; `content(key)` is what each tile shows.
   */
  compose(tiles: readonly Tile[], content: (key: string) => TileContent, into?: Buffer): Buffer {
    this.out = { w: this.out.w, h: this.out.h, data: into ?? Buffer.allocUnsafe(this.out.data.length) };
    this.background.data.copy(this.out.data);
    for (const t of tiles) {
      const c = content(t.key);
      if (!c.frame) continue;
      // a frame of an older tile size: the background under the tile first, then the frame clipped to it
      if (c.frame.w !== t.w || c.frame.h !== t.h) blit(this.out, this.background, 0, 0, t);
      blit(this.out, c.frame, t.x, t.y, t);
    }
    return this.out.data;
  }
}

/** A background of `w`×`h` in a `#rrggbb` colour. */
export const colourBackground = (w: number, h: number, hex?: string): Frame => solidFrame(w, h, colourYuv(hex));
