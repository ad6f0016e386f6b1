import { Type, type Static } from 'typebox';
import { MAX_ROOM_ID, USER_ID_PATTERN } from '../rooms/model.js';
import { CANVAS_LIMITS, MIX_LAYOUTS } from '../mix/layout.js';
import { PushOption } from './schemas.js';

const L = CANVAS_LIMITS;
const PLACE =
  'x, y, width and height are fractions of the canvas when all four are ≤ 1, otherwise all four are integer pixels';

/** One member of a mix: whose upstream, its audio, and (custom layout) its place. */
export const MixMemberSchema = Type.Object(
  {
    userId: Type.String({ pattern: USER_ID_PATTERN }),
    srcType: Type.Union([Type.Literal(0), Type.Literal(1)]),
    volume: Type.Optional(Type.Number({ minimum: 0, maximum: 200, description: 'Audio volume, per cent (100)' })),
    mute: Type.Optional(Type.Boolean()),
    main: Type.Optional(Type.Boolean({ description: 'float: the member shown full canvas (default the first)' })),
    x: Type.Optional(Type.Number({ minimum: 0, description: `custom: left edge; ${PLACE}` })),
    y: Type.Optional(Type.Number({ minimum: 0, description: `custom: top edge; ${PLACE}` })),
    width: Type.Optional(
      Type.Number({ minimum: 0, description: `custom: > 0, at least 2 px once resolved; ${PLACE}` }),
    ),
    height: Type.Optional(
      Type.Number({ minimum: 0, description: `custom: > 0, at least 2 px once resolved; ${PLACE}` }),
    ),
    zOrder: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: 100,
        description: 'custom: higher on top; equal zOrder draws in list order',
      }),
    ),
    fit: Type.Optional(
      Type.Union([Type.Literal('crop'), Type.Literal('letterbox')], {
        description: 'crop fills the tile; letterbox keeps the whole picture, bars in the canvas background colour',
      }),
    ),
  },
  { additionalProperties: false },
);

const Layout = Type.Union(
  MIX_LAYOUTS.map((l) => Type.Literal(l)),
  { description: 'grid (2×2), float (one full canvas, the others small over it) or custom' },
);
const FloatPosition = Type.Optional(Type.Union([Type.Literal('right'), Type.Literal('bottom')]));
const Members = Type.Array(MixMemberSchema, { minItems: 1, maxItems: 16 });

/** Body of POST /v1/mix/start. */
export const MixStartBody = Type.Object(
  {
    roomId: Type.Integer({ minimum: 1, maximum: MAX_ROOM_ID }),
    members: Members,
    layout: Layout,
    floatPosition: FloatPosition,
    canvas: Type.Object(
      {
        width: Type.Integer({ minimum: L.minWidth, maximum: L.maxWidth }),
        height: Type.Integer({ minimum: L.minHeight, maximum: L.maxHeight }),
        fps: Type.Integer({ minimum: L.minFps, maximum: L.maxFps }),
        background: Type.Optional(Type.String({ pattern: '^#[0-9a-fA-F]{6}$', description: '#rrggbb (black)' })),
        backgroundImageId: Type.Optional(Type.Integer({ minimum: 1, description: 'a registered watermark image' })),
      },
      { additionalProperties: false },
    ),
    option: PushOption,
  },
  {
    additionalProperties: false,
    examples: [
      {
        roomId: 1001,
        members: [
          { userId: 'alice', srcType: 0 },
          { userId: 'bob', srcType: 0, volume: 80 },
        ],
        layout: 'grid',
        canvas: { width: 1280, height: 720, fps: 25, background: '#202020' },
        option: { encode: 3 },
      },
    ],
  },
);
export type MixStartBody = Static<typeof MixStartBody>;

/** Body of POST /v1/mix/{channelId}/layout. */
export const MixLayoutBody = Type.Object(
  { members: Members, layout: Layout, floatPosition: FloatPosition },
  { additionalProperties: false },
);
export type MixLayoutBody = Static<typeof MixLayoutBody>;
