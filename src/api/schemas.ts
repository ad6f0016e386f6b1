import { Type, type Static } from 'typebox';
import { MAX_ROOM_ID, USER_ID_PATTERN } from '../rooms/model.js';
import { ENCODES, OPTION_DEFAULTS, RATE_TYPES, SDK_TYPES } from '../channels/types.js';

const RoomId = Type.Integer({
  minimum: 1,
  maximum: MAX_ROOM_ID,
  description: 'Room id, 1 to 4294967294',
  examples: [1001],
});
const UserId = Type.String({
  pattern: USER_ID_PATTERN,
  description: 'Member id: 1-32 letters, digits, _ or -',
  examples: ['alice'],
});
const SrcType = Type.Union([Type.Literal(0), Type.Literal(1)], { description: 'Video source: 0 camera, 1 screen' });

/** option of push/start; every field documented with its default (SPEC "API"). */
const RateTypeSchema = Type.Union(
  RATE_TYPES.map((n) => Type.Literal(n)),
  { description: 'ORIGINAL=0 (copy), 550=10 (360p), 900=20 (540p)' },
);

/** One push target (issue 14): an external destination, e.g. a CDN's ingest URL with its stream key. */
export const PushTargetBody = Type.Object(
  {
    url: Type.String({
      minLength: 1,
      maxLength: 2048,
      description:
        "rtmp://host/app/key, rtmps://…, or srt://host:port?… (when the relay's ffmpeg has SRT). A secret: shown only " +
        'to the owning app',
    }),
    rateType: Type.Optional(RateTypeSchema),
  },
  { additionalProperties: false, examples: [{ url: 'rtmp://a.rtmp.youtube.com/live2/xxxx-xxxx-xxxx-xxxx' }] },
);
export type PushTargetBody = Static<typeof PushTargetBody>;
export const TargetParams = Type.Object({
  channelId: Type.String({ maxLength: 64 }),
  targetId: Type.String({ maxLength: 64 }),
});

export const PushOption = Type.Object(
  {
    encode: Type.Union(
      ENCODES.map((n) => Type.Literal(n)),
      {
        description:
          'Output: HLS=1, FLV=2, HLS_AND_FLV=3, RAW=4 (RTMP + FLV, no HLS), RTMP=5, HLS_AND_RTMP=6. Required.',
      },
    ),
    rateType: Type.Optional(RateTypeSchema), // no schema default: it would clash with rateTypes; resolveOption fills it
    rateTypes: Type.Optional(
      Type.Array(RateTypeSchema, {
        minItems: 1,
        maxItems: RATE_TYPES.length,
        uniqueItems: true,
        description: 'Several tiers from one decode; HLS gets a master playlist',
      }),
    ),
    record: Type.Optional(Type.Boolean({ default: OPTION_DEFAULTS.record })),
    recordFileType: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 7,
        default: OPTION_DEFAULTS.recordFileType,
        description: 'HLS=1, FLV=2, MP4=4 and their sums',
      }),
    ),
    waterMark: Type.Optional(Type.Boolean({ default: OPTION_DEFAULTS.waterMark })),
    waterMarkId: Type.Optional(Type.Integer({ minimum: 1, maximum: 4294967295 })),
    sdkType: Type.Optional(
      Type.Union(
        SDK_TYPES.map((n) => Type.Literal(n)),
        { default: OPTION_DEFAULTS.sdkType, description: 'Normal=1, IOTCamera=2, CoastCamera=3' },
      ),
    ),
    channelName: Type.Optional(Type.String({ maxLength: 64 })),
    channelDesc: Type.Optional(Type.String({ maxLength: 256 })),
    channelPassword: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    autoResume: Type.Optional(
      Type.Boolean({
        default: OPTION_DEFAULTS.autoResume,
        description: 'Resume by itself when the member publishes again within the retention time',
      }),
    ),
    pushTargets: Type.Optional(
      Type.Array(PushTargetBody, {
        minItems: 1,
        maxItems: 5,
        description: 'External destinations the channel is relayed to (each gets the best tier, or its rateType)',
      }),
    ),
  },
  { additionalProperties: false },
);

/** Body of POST /v1/push/start. */
export const StartBody = Type.Object(
  {
    roomId: RoomId,
    userId: UserId,
    srcType: SrcType,
    option: PushOption,
  },
  {
    additionalProperties: false,
    examples: [
      { roomId: 1001, userId: 'alice', srcType: 0, option: { encode: 3, channelName: 'demo' } },
      {
        roomId: 1001,
        userId: 'bob',
        srcType: 1,
        option: {
          encode: 1,
          rateTypes: [0, 10, 20],
          record: true,
          recordFileType: 4,
          channelPassword: 's3cret',
          autoResume: true,
        },
      },
    ],
  },
);
export type StartBody = Static<typeof StartBody>;

/** Body of POST /v1/push/stop. */
export const StopBody = Type.Object(
  {
    channelIds: Type.Array(Type.String({ minLength: 1, maxLength: 64 }), { minItems: 1, maxItems: 100 }),
  },
  { additionalProperties: false, examples: [{ channelIds: ['ch_3ecf3dd00ae96d59276d'] }] },
);
export type StopBody = Static<typeof StopBody>;

export const ChannelParams = Type.Object({ channelId: Type.String({ maxLength: 64 }) });
export const RoomParams = Type.Object({ roomId: Type.String({ pattern: '^[0-9]{1,10}$' }) });
export const UpstreamParams = Type.Object({
  roomId: Type.String({ pattern: '^[0-9]{1,10}$' }),
  userId: Type.String({ maxLength: 64 }),
  srcType: Type.String({ pattern: '^[01]$' }),
});

/** Body of PUT /v1/rooms/{roomId}/upstreams: registers an external upstream URL. */
export const UpstreamBody = Type.Object(
  {
    userId: UserId,
    srcType: SrcType,
    url: Type.String({
      minLength: 1,
      maxLength: 2048,
      description:
        'rtmp://, rtmps://, rtsp://, srt://, http(s)://, or a file inside RELAY_FILE_UPSTREAM_DIR (an .sdp file for RTP)',
    }),
  },
  { additionalProperties: false, examples: [{ userId: 'cam1', srcType: 0, url: 'rtsp://10.0.0.7:554/stream' }] },
);
export type UpstreamBody = Static<typeof UpstreamBody>;

export const IngestQuery = Type.Object(
  { userId: UserId, srcType: Type.Optional(Type.String({ pattern: '^[01]$' })) },
  { additionalProperties: false },
);
