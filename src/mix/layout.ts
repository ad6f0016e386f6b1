/**
 * Mix layouts: the record's description of a mix (members, layout, canvas) and the pure geometry that turns it into
 * tiles on the canvas. Every tile has even x, y, width and height (4:2:0 chroma is subsampled by two both ways).
 */
import { RelayError } from '../errors/index.js';

export const MIX_LAYOUTS = ['grid', 'float', 'custom'] as const;
export type MixLayoutKind = (typeof MIX_LAYOUTS)[number];
/** How a member's picture fills its tile: `letterbox` keeps it whole (bars in the background colour), `crop` fills. */
export type MixFit = 'crop' | 'letterbox';

/** One member of a mix: whose upstream, and (custom layout) where; audio volume 0–200 % (default 100) or muted. */
export interface MixMember {
  userId: string;
  srcType: 0 | 1;
  volume?: number;
  mute?: boolean;
  /** float: the member shown full canvas (default: the first). */
  main?: boolean;
  /**
   * custom: fractions of the canvas when all four of x, y, width, height are ≤ 1, otherwise all four are pixels
   * (integers); width and height > 0 and at least 2 px once resolved.
   */
  x?: number;
  y?: number;
  width?: number;
  height?: number;
  zOrder?: number;
  fit?: MixFit;
}

/** The picture a mix encodes: size, frame rate, and what shows where no member does. */
export interface MixCanvas {
  width: number;
  height: number;
  fps: number;
  /** `#rrggbb` (default black). */
  background?: string;
  /** A registered image (watermark registry id) scaled to the canvas; its file is resolved at start. */
  backgroundImageId?: number;
  backgroundImageFile?: string;
}

/** A mix as its channel record keeps it; `version` grows with each layout update. */
export interface MixSpec {
  members: MixMember[];
  layout: MixLayoutKind;
  canvas: MixCanvas;
  /** float: where the small tiles go (default `right`). */
  floatPosition?: 'right' | 'bottom';
  version: number;
}

/** One member's place on the canvas, drawn in zOrder (higher on top). */
export interface Tile {
  key: string;
  x: number;
  y: number;
  w: number;
  h: number;
  z: number;
  fit: MixFit;
}

/** Limits of a mix canvas. */
export const CANVAS_LIMITS = { minWidth: 160, minHeight: 90, maxWidth: 1920, maxHeight: 1080, minFps: 10, maxFps: 30 };

/** `<userId>/<camera|screen>`: a member's key in a mix. */
export const memberKey = (m: { userId: string; srcType: 0 | 1 }): string =>
  `${m.userId}/${m.srcType === 1 ? 'screen' : 'camera'}`;

const even = (n: number) => Math.max(2, Math.round(n / 2) * 2);
const evenFloor = (n: number) => Math.max(0, Math.floor(n / 2) * 2);

/** The tiles of a mix, lowest zOrder first. */
export function layoutTiles(spec: Pick<MixSpec, 'members' | 'layout' | 'canvas' | 'floatPosition'>): Tile[] {
  const { width: W, height: H } = spec.canvas;
  const ms = spec.members;
  let tiles: Tile[];
  if (spec.layout === 'grid') {
    const cols = ms.length <= 1 ? 1 : 2;
    const rows = ms.length <= 2 ? 1 : 2;
    const w = evenFloor(W / cols);
    const h = evenFloor(H / rows);
    tiles = ms.map((m, i) => ({
      key: memberKey(m),
      x: (i % cols) * w,
      y: Math.floor(i / cols) * h,
      w,
      h,
      z: 0,
      fit: m.fit ?? 'letterbox',
    }));
  } else if (spec.layout === 'float') {
    const mainIndex = Math.max(
      0,
      ms.findIndex((m) => m.main),
    );
    const main = ms[mainIndex]!;
    const small = ms.filter((_, i) => i !== mainIndex);
    const w = even(W / 4);
    const h = even((w * 9) / 16);
    const gap = even(Math.min(W, H) / 40);
    const bottom = spec.floatPosition === 'bottom';
    tiles = [{ key: memberKey(main), x: 0, y: 0, w: W, h: H, z: 0, fit: main.fit ?? 'crop' }];
    small.forEach((m, i) =>
      tiles.push({
        key: memberKey(m),
        x: bottom ? gap + i * (w + gap) : W - w - gap,
        y: bottom ? H - h - gap : gap + i * (h + gap),
        w,
        h,
        z: 1 + i,
        fit: m.fit ?? 'crop',
      }),
    );
  } else {
    tiles = ms.map((m, i) => {
      const px = customPixels(m, W, H);
      return {
        key: memberKey(m),
        x: evenFloor(px.x),
        y: evenFloor(px.y),
        w: even(px.w),
        h: even(px.h),
        z: m.zOrder ?? i,
        fit: m.fit ?? 'letterbox',
      };
    });
  }
  // a stable sort: equal zOrder draws in list order (the later on top)
  return tiles.sort((a, b) => a.z - b.z);
}

/** Whether a custom member's place is in fractions of the canvas: all four of x, y, width, height ≤ 1. */
export const isFractional = (m: Pick<MixMember, 'x' | 'y' | 'width' | 'height'>): boolean =>
  (m.x ?? 0) <= 1 && (m.y ?? 0) <= 1 && (m.width ?? 1) <= 1 && (m.height ?? 1) <= 1;

/** A custom member's place in canvas pixels, before rounding to even values. */
function customPixels(m: MixMember, W: number, H: number): { x: number; y: number; w: number; h: number } {
  const [x, y, w, h] = [m.x ?? 0, m.y ?? 0, m.width ?? 1, m.height ?? 1];
  return isFractional(m) ? { x: x * W, y: y * H, w: w * W, h: h * H } : { x, y, w, h };
}

const bad = (message: string, hint: string) => new RelayError(50002, message, { hint });

/** Checks a mix (throws 50002 with a hint); `canvas` only on start (an update keeps the running canvas). */
export function validateMix(spec: Omit<MixSpec, 'version'>, maxMembers: number): void {
  const c = spec.canvas;
  const L = CANVAS_LIMITS;
  for (const [name, v, min, max] of [
    ['width', c.width, L.minWidth, L.maxWidth],
    ['height', c.height, L.minHeight, L.maxHeight],
    ['fps', c.fps, L.minFps, L.maxFps],
  ] as const)
    if (!Number.isInteger(v) || v < min || v > max)
      throw bad(`canvas.${name} ${v} is out of range`, `give an integer from ${min} to ${max}`);
  if (c.width % 2 || c.height % 2)
    throw bad(`canvas ${c.width}x${c.height} has an odd side`, 'give an even width and height (4:2:0 video)');
  if (c.background !== undefined && !/^#[0-9a-fA-F]{6}$/.test(c.background))
    throw bad(`canvas.background ${String(c.background).slice(0, 16)} is not a colour`, 'give it as #rrggbb');
  if (!MIX_LAYOUTS.includes(spec.layout))
    throw bad(`unknown layout ${String(spec.layout).slice(0, 16)}`, `one of ${MIX_LAYOUTS.join(', ')}`);
  if (spec.members.length < 1 || spec.members.length > maxMembers)
    throw bad(`a mix has 1 to ${maxMembers} members, not ${spec.members.length}`, 'list fewer members');
  const keys = new Set(spec.members.map(memberKey));
  if (keys.size !== spec.members.length) throw bad('a member is listed twice', 'list each userId/srcType once');
  if (spec.members.filter((m) => m.main).length > 1) throw bad('more than one member is main', 'flag one main');
  for (const m of spec.members) {
    if (m.volume !== undefined && !(m.volume >= 0 && m.volume <= 200))
      throw bad(`volume ${m.volume} of ${memberKey(m)} is out of range`, 'give 0 to 200 (per cent)');
    if (spec.layout === 'custom') validatePlace(m, c);
  }
  for (const t of layoutTiles(spec))
    if (t.x + t.w > c.width || t.y + t.h > c.height || t.w < 2 || t.h < 2)
      throw bad(
        `tile of ${t.key} (${t.x},${t.y} ${t.w}x${t.h}) is not within the ${c.width}x${c.height} canvas`,
        'give positions and sizes inside the canvas (pixels, or fractions when all four are ≤ 1)',
      );
}

const PLACE_RULE = 'fractions of the canvas when all four of x, y, width, height are ≤ 1, otherwise integer pixels';

/** A custom member's place: all four given, ≥ 0, sizes > 0; pixels are integers; at least 2×2 px once resolved. */
function validatePlace(m: MixMember, c: MixCanvas): void {
  const key = memberKey(m);
  for (const f of ['x', 'y', 'width', 'height'] as const)
    if (m[f] === undefined || !(m[f] >= 0))
      throw bad(`${key} has no valid ${f}`, `custom needs x, y, width, height ≥ 0: ${PLACE_RULE}`);
  if (!(m.width! > 0 && m.height! > 0))
    throw bad(`${key} has an empty tile (${m.width}x${m.height})`, `give a width and height > 0: ${PLACE_RULE}`);
  const fractional = isFractional(m);
  if (!fractional)
    for (const f of ['x', 'y', 'width', 'height'] as const)
      if (!Number.isInteger(m[f]))
        throw bad(`${key} ${f} ${m[f]} is not a whole pixel`, `${PLACE_RULE}; one value > 1 makes all four pixels`);
  const px = customPixels(m, c.width, c.height);
  if (px.w < 2 || px.h < 2)
    throw bad(
      `${key} tile is ${Math.round(px.w * 10) / 10}x${Math.round(px.h * 10) / 10} px`,
      `give a tile of at least 2x2 px: ${PLACE_RULE}`,
    );
}

/** The Y, U, V values (BT.601, limited range) of a `#rrggbb` colour. */
export function colourYuv(hex = '#000000'): [number, number, number] {
  const n = parseInt(hex.slice(1), 16);
  const r = (n >> 16) & 255;
  const g = (n >> 8) & 255;
  const b = n & 255;
  const clamp = (v: number) => Math.max(0, Math.min(255, Math.round(v)));
  return [
    clamp(16 + 0.257 * r + 0.504 * g + 0.098 * b),
    clamp(128 - 0.148 * r - 0.291 * g + 0.439 * b),
    clamp(128 + 0.439 * r - 0.368 * g - 0.071 * b),
  ];
}
