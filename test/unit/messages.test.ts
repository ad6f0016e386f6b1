import { describe, expect, it } from 'vitest';
import { CHANNEL_STATES } from '../../src/channels/types.js';
import { memberLabel, parseChannelEvent, parseControlMessage, parseMediaEvent } from '../../src/channels/messages.js';

const ID = 'ch_0123456789abcdef0123';
const json = (v: unknown) => JSON.stringify(v);

/** Text that is not a message of any topic. */
const FOREIGN = [
  '',
  'not json',
  '{',
  'null',
  '42',
  '"text"',
  '[]',
  json([{ channelId: ID }]),
  json({}),
  json({ hello: 'world' }),
];

describe('channel events', () => {
  it.each(CHANNEL_STATES.map((state) => ({ state })))('an event of state $state parses', ({ state }) => {
    expect(parseChannelEvent(json({ channelId: ID, state }))).toEqual({ channelId: ID, state });
  });

  it('code, message and resumed are kept when well-typed', () => {
    const ev = { channelId: ID, state: 'failed', code: 6012, message: 'ffmpeg failed', resumed: true };
    expect(parseChannelEvent(json(ev))).toEqual(ev);
  });

  it('ill-typed optional fields are dropped, the event is kept', () => {
    expect(parseChannelEvent(json({ channelId: ID, state: 'live', code: '6012', message: 7, resumed: 'yes' }))).toEqual(
      { channelId: ID, state: 'live' },
    );
    expect(parseChannelEvent(json({ channelId: ID, state: 'failed', code: 1.5 }))).toEqual({
      channelId: ID,
      state: 'failed',
    });
  });

  it.each(FOREIGN)('%j is no channel event', (raw) => {
    expect(parseChannelEvent(raw)).toBeNull();
  });

  it.each(['ch_x', 'ch_0123456789ABCDEF0123', `${ID}0`, 'ch_0123456789abcdef012', '', 42])(
    'channel id %j is refused',
    (channelId) => {
      expect(parseChannelEvent(json({ channelId, state: 'live' }))).toBeNull();
    },
  );

  it.each(['paused', 'LIVE', '', null, 1])('state %j is refused', (state) => {
    expect(parseChannelEvent(json({ channelId: ID, state }))).toBeNull();
  });
});

describe('media events', () => {
  const keyframe = { type: 'keyframe', channelId: ID, stream: `${ID}_r10`, at: 1_700_000_000_000 };
  const member = {
    type: 'member-published',
    sdkAppId: '1400000001',
    roomId: 1001,
    userId: 'alice',
    srcType: 0,
    at: 1_700_000_000_000,
  };

  it('a keyframe event parses', () => {
    expect(parseMediaEvent(json(keyframe))).toEqual(keyframe);
  });

  it.each([0, 1])('a member-published event of srcType %i parses', (srcType) => {
    expect(parseMediaEvent(json({ ...member, srcType }))).toEqual({ ...member, srcType });
  });

  it('unknown fields are not carried over', () => {
    expect(parseMediaEvent(json({ ...keyframe, extra: 'x' }))).toEqual(keyframe);
  });

  it.each(FOREIGN)('%j is no media event', (raw) => {
    expect(parseMediaEvent(raw)).toBeNull();
  });

  it('the keyframe message of the old shape ({channelId, stream, keyframeAt}) is no media event', () => {
    expect(parseMediaEvent(json({ channelId: ID, stream: ID, keyframeAt: 1 }))).toBeNull();
  });

  it.each(['stopped', 'Keyframe', '', null])('type %j is refused', (type) => {
    expect(parseMediaEvent(json({ ...keyframe, type }))).toBeNull();
  });

  it.each<[string, Record<string, unknown>]>([
    ['a keyframe of a malformed channel id', { ...keyframe, channelId: 'ch_nope' }],
    ['a keyframe without a stream', { ...keyframe, stream: undefined }],
    ['a keyframe with a text time', { ...keyframe, at: '1700000000000' }],
    ['a keyframe with a fractional time', { ...keyframe, at: 1.5 }],
    ['a member with a numeric sdkAppId', { ...member, sdkAppId: 1400000001 }],
    ['a member with a text room id', { ...member, roomId: '1001' }],
    ['a member without a userId', { ...member, userId: undefined }],
    ['a member with srcType 2', { ...member, srcType: 2 }],
    ['a member with srcType "camera"', { ...member, srcType: 'camera' }],
    ['a member without a time', { ...member, at: undefined }],
  ])('%s is refused', (_name, msg) => {
    expect(parseMediaEvent(json(msg))).toBeNull();
  });
});

describe('control messages', () => {
  it('a stop parses', () => {
    expect(parseControlMessage(json({ type: 'stop', channelId: ID }))).toEqual({ type: 'stop', channelId: ID });
  });

  it.each(FOREIGN)('%j is no control message', (raw) => {
    expect(parseControlMessage(raw)).toBeNull();
  });

  it.each([
    ['start', ID],
    ['STOP', ID],
    ['stop', 'ch_short'],
    ['stop', undefined],
  ])('type %j for channel %j is refused', (type, channelId) => {
    expect(parseControlMessage(json({ type, channelId }))).toBeNull();
  });
});

describe('member labels', () => {
  it.each([
    [0, 'alice/camera'],
    [1, 'alice/screen'],
  ] as const)('srcType %i reads %s', (srcType, label) => {
    expect(memberLabel({ userId: 'alice', srcType })).toBe(label);
  });
});
