import { describe, expect, it } from 'vitest';
import { parseDuration } from '../../src/cli/play.js';
import { decoderArgs, snapshotArgs, AUDIO_GRAPH, VIDEO_GRAPH } from '../../src/player/args.js';
import { DecoderLog, FULL_SHOWINFO, isDecodeError, parseDecoderLine } from '../../src/player/decoder-log.js';
import { flvTags, isKeyframe, unitOfTag, type FlvTag, type MediaUnit } from '../../src/player/flv.js';
import { chooseVariant, parseMaster, parseMedia, startIndex } from '../../src/player/hls-playlist.js';
import { protocolOf, refusalReason, relayStatusOf, withPassword } from '../../src/player/sources.js';
import { redactParams as redactQuery } from '../../src/log.js';
import { outcomeOf, PLAY_EXIT, statsLine, type PlaybackStats } from '../../src/player/stats.js';
import { pesPtsMs, TsAccounting } from '../../src/player/ts.js';

describe('HLS master playlists', () => {
  const master = [
    '#EXTM3U',
    '#EXT-X-VERSION:3',
    '#EXT-X-STREAM-INF:BANDWIDTH=2800000,AVERAGE-BANDWIDTH=2500000,RESOLUTION=1280x720,CODECS="avc1.64001f,mp4a.40.2"',
    'ch_x.m3u8',
    '#EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=640x360',
    'ch_x_r10.m3u8',
    '#EXT-X-STREAM-INF:CODECS="avc1.4d401e,mp4a.40.2",BANDWIDTH=1400000,RESOLUTION=854x480',
    '',
    'ch_x_r20.m3u8',
  ].join('\r\n');

  it('lists the variants with bandwidth, resolution and height', () => {
    const v = parseMaster(master)!;
    expect(v).toEqual([
      { index: 0, uri: 'ch_x.m3u8', bandwidth: 2_800_000, resolution: '1280x720', height: 720 },
      { index: 1, uri: 'ch_x_r10.m3u8', bandwidth: 800_000, resolution: '640x360', height: 360 },
      { index: 2, uri: 'ch_x_r20.m3u8', bandwidth: 1_400_000, resolution: '854x480', height: 480 },
    ]);
  });

  it('is null for a media playlist', () => {
    expect(parseMaster('#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\nseg_1.ts\n')).toBeNull();
  });

  it('has no bandwidth or height where the playlist gives none', () => {
    const v = parseMaster('#EXTM3U\n#EXT-X-STREAM-INF:PROGRAM-ID=1\nlow/index.m3u8\n')!;
    expect(v).toEqual([{ index: 0, uri: 'low/index.m3u8', bandwidth: null, resolution: null, height: null }]);
  });

  it.each([
    ['best', 'ch_x.m3u8'],
    ['lowest', 'ch_x_r10.m3u8'],
    ['0', 'ch_x.m3u8'],
    ['2', 'ch_x_r20.m3u8'],
    ['720p', 'ch_x.m3u8'],
    ['480p', 'ch_x_r20.m3u8'],
    ['r10', 'ch_x_r10.m3u8'],
    ['r20', 'ch_x_r20.m3u8'],
  ])('chooses the variant %s', (choice, uri) => {
    expect(chooseVariant(parseMaster(master)!, choice)?.uri).toBe(uri);
  });

  it('chooses the best by default and nothing when nothing matches', () => {
    const v = parseMaster(master)!;
    expect(chooseVariant(v)?.uri).toBe('ch_x.m3u8');
    expect(chooseVariant(v, '1080p')).toBeNull();
    expect(chooseVariant(v, 'r99')).toBeNull();
    expect(chooseVariant([], 'best')).toBeNull();
  });
});

describe('HLS media playlists', () => {
  it('numbers segments from the media sequence and carries PROGRAM-DATE-TIME forward by EXTINF', () => {
    const p = parseMedia(
      [
        '#EXTM3U',
        '#EXT-X-VERSION:3',
        '#EXT-X-TARGETDURATION:2',
        '#EXT-X-MEDIA-SEQUENCE:41',
        '#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:00.000Z',
        '#EXTINF:2.000,',
        'seg_41.ts',
        '#EXTINF:1.960,',
        'seg_42.ts',
        '#EXTINF:2.040,',
        'seg_43.ts',
      ].join('\n'),
    );
    const t0 = Date.parse('2024-05-01T12:00:00.000Z');
    expect(p.targetDurationS).toBe(2);
    expect(p.mediaSequence).toBe(41);
    expect(p.ended).toBe(false);
    expect(p.segments).toEqual([
      { sequence: 41, uri: 'seg_41.ts', durationS: 2, programDateMs: t0, discontinuity: false },
      { sequence: 42, uri: 'seg_42.ts', durationS: 1.96, programDateMs: t0 + 2000, discontinuity: false },
      { sequence: 43, uri: 'seg_43.ts', durationS: 2.04, programDateMs: t0 + 3960, discontinuity: false },
    ]);
  });

  it('takes a segment own PROGRAM-DATE-TIME over the carried one', () => {
    const p = parseMedia(
      [
        '#EXTM3U',
        '#EXT-X-TARGETDURATION:2',
        '#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:00.000Z',
        '#EXTINF:2,',
        'a.ts',
        '#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:10.500Z',
        '#EXTINF:2,',
        'b.ts',
        '#EXTINF:2,',
        'c.ts',
      ].join('\n'),
    );
    const t = Date.parse('2024-05-01T12:00:10.500Z');
    expect(p.segments.map((s) => s.programDateMs)).toEqual([t - 10_500, t, t + 2000]);
  });

  it('stops carrying the date at a discontinuity, and reads ENDLIST', () => {
    const p = parseMedia(
      [
        '#EXTM3U',
        '#EXT-X-TARGETDURATION:2',
        '#EXT-X-MEDIA-SEQUENCE:7',
        '#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:00Z',
        '#EXTINF:2,',
        'a.ts',
        '#EXT-X-DISCONTINUITY',
        '#EXTINF:2,',
        'b.ts',
        '#EXTINF:2,',
        'c.ts',
        '#EXT-X-DISCONTINUITY',
        '#EXT-X-PROGRAM-DATE-TIME:2024-05-01T13:00:00Z',
        '#EXTINF:2,',
        'd.ts',
        '#EXT-X-ENDLIST',
      ].join('\n'),
    );
    expect(p.ended).toBe(true);
    expect(p.segments.map((s) => [s.sequence, s.discontinuity, s.programDateMs])).toEqual([
      [7, false, Date.parse('2024-05-01T12:00:00Z')],
      [8, true, null],
      [9, false, null],
      [10, true, Date.parse('2024-05-01T13:00:00Z')],
    ]);
  });

  it('has no date without PROGRAM-DATE-TIME, and starts at sequence 0 without MEDIA-SEQUENCE', () => {
    const p = parseMedia('#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF:4,\nx0.ts\n#EXTINF:4,\nx1.ts\n');
    expect(p.segments.map((s) => [s.sequence, s.programDateMs])).toEqual([
      [0, null],
      [1, null],
    ]);
  });
});

describe('where a client starts in a playlist (RFC 8216 6.3.3)', () => {
  const live = (durations: number[], target = 2, ended = false) =>
    parseMedia(
      [
        '#EXTM3U',
        `#EXT-X-TARGETDURATION:${target}`,
        '#EXT-X-MEDIA-SEQUENCE:100',
        ...durations.flatMap((d, i) => [`#EXTINF:${d},`, `s${i}.ts`]),
        ...(ended ? ['#EXT-X-ENDLIST'] : []),
      ].join('\n'),
    );

  it('starts three target durations from the end of a live playlist', () => {
    expect(startIndex(live([2, 2, 2, 2, 2, 2]))).toBe(3);
    // Segments shorter than the target duration: the start goes one further back.
    expect(startIndex(live([1.9, 1.9, 1.9, 1.9, 1.9, 1.9]))).toBe(2);
  });

  it('starts with the first segment of a short live playlist, or of an ended one', () => {
    expect(startIndex(live([2, 2]))).toBe(0);
    expect(startIndex(live([2, 2, 2, 2, 2, 2], 2, true))).toBe(0);
    expect(startIndex(live([]))).toBe(0);
  });
});

// MPEG-TS packets built by hand (ISO/IEC 13818-1).
const VIDEO_PID = 0x100;
const AUDIO_PID = 0x101;
const PMT_PID = 0x1000;

function tsPacket(pid: number, start: boolean, payload: Buffer, adaptation?: Buffer): Buffer {
  const p = Buffer.alloc(188, 0xff);
  p[0] = 0x47;
  p[1] = (start ? 0x40 : 0) | ((pid >> 8) & 0x1f);
  p[2] = pid & 0xff;
  p[3] = (adaptation ? 0x30 : 0x10) | 0; // continuity counter 0 (not checked)
  let off = 4;
  if (adaptation) {
    p[4] = adaptation.length;
    adaptation.copy(p, 5);
    off = 5 + adaptation.length;
  }
  payload.copy(p, off, 0, Math.min(payload.length, 188 - off));
  return p;
}

/** Bytes given in groups (one field or a few a line). */
const bytes = (...groups: number[][]): Buffer => Buffer.from(groups.flat());

const pat = () =>
  tsPacket(
    0,
    true,
    bytes(
      [0x00], // pointer field
      [0x00, 0xb0, 0x0d], // table 0, section length 13
      [0x00, 0x01, 0xc1, 0x00, 0x00], // transport stream id, version, section numbers
      [0x00, 0x01, 0xe0 | (PMT_PID >> 8), PMT_PID & 0xff], // program 1 → PMT PID
      [0xde, 0xad, 0xbe, 0xef], // CRC (not checked)
    ),
  );

const pmt = () =>
  tsPacket(
    PMT_PID,
    true,
    bytes(
      [0x00], // pointer field
      [0x02, 0xb0, 0x17], // table 2, section length 23
      [0x00, 0x01, 0xc1, 0x00, 0x00], // program 1, version, section numbers
      [0xe0 | (VIDEO_PID >> 8), VIDEO_PID & 0xff], // PCR PID
      [0xf0, 0x00], // no program info
      [0x1b, 0xe0 | (VIDEO_PID >> 8), VIDEO_PID & 0xff, 0xf0, 0x00], // H.264
      [0x0f, 0xe0 | (AUDIO_PID >> 8), AUDIO_PID & 0xff, 0xf0, 0x00], // AAC (ADTS)
      [0xde, 0xad, 0xbe, 0xef], // CRC (not checked)
    ),
  );

/** A PES header with a PTS (90 kHz ticks). */
function pesHeader(streamId: number, pts: number): Buffer {
  const hi = Math.floor(pts / 2 ** 30) & 0x07;
  const lo = pts % 2 ** 30;
  return bytes(
    [0x00, 0x00, 0x01, streamId], // start code, stream id
    [0x00, 0x00], // PES packet length: unbounded
    [0x80, 0x80, 0x05], // PTS only, 5 header bytes
    [0x21 | (hi << 1), (lo >> 22) & 0xff, (((lo >> 15) & 0x7f) << 1) | 1, (lo >> 7) & 0xff, ((lo & 0x7f) << 1) | 1],
    [0xaa, 0xbb], // some elementary stream data
  );
}

const pesStart = (pid: number, pts: number, adaptation?: Buffer) =>
  tsPacket(pid, true, pesHeader(pid === VIDEO_PID ? 0xe0 : 0xc0, pts), adaptation);
const pesMore = (pid: number) => tsPacket(pid, false, Buffer.alloc(184, 0x55));

describe('MPEG-TS accounting', () => {
  it('continues the PTS upwards past the 33-bit wrap (as ffmpeg does under -copyts), per PID', () => {
    const units: MediaUnit[] = [];
    const ts = new TsAccounting((u) => units.push(u));
    const top = 2 ** 33 - 90_000; // a second before the wrap
    ts.push(
      Buffer.concat([pat(), pmt(), pesStart(VIDEO_PID, top), pesStart(VIDEO_PID, 0), pesStart(VIDEO_PID, 90_000)]),
    );
    ts.flush();
    expect(units.map((u) => Math.round(u.ptsMs))).toEqual(
      [top / 90, 2 ** 33 / 90, (2 ** 33 + 90_000) / 90].map(Math.round),
    );
  });

  it('reads a PTS from a PES header, beyond 2^32 ticks too', () => {
    expect(pesPtsMs(pesHeader(0xe0, 90_000))).toBe(1000);
    expect(pesPtsMs(pesHeader(0xe0, 0))).toBe(0);
    expect(pesPtsMs(pesHeader(0xe0, 0x1_2345_6789))).toBeCloseTo(0x1_2345_6789 / 90, 6);
    expect(pesPtsMs(pesHeader(0xe0, 2 ** 33 - 1))).toBeCloseTo((2 ** 33 - 1) / 90, 6);
  });

  it('has no PTS for a header without one, or for bytes that are no PES header', () => {
    const h = pesHeader(0xe0, 90_000);
    h[7] = 0x00;
    expect(pesPtsMs(h)).toBeNull();
    expect(pesPtsMs(Buffer.from([0, 0, 1, 0xe0]))).toBeNull();
    expect(pesPtsMs(Buffer.alloc(20, 0x55))).toBeNull();
  });

  const stream = () =>
    Buffer.concat([
      pat(),
      pmt(),
      pesStart(VIDEO_PID, 90_000),
      pesMore(VIDEO_PID),
      pesMore(VIDEO_PID),
      pesStart(AUDIO_PID, 90_900),
      tsPacket(0x1fff, false, Buffer.alloc(184)), // null packet
      pesMore(VIDEO_PID),
      pesStart(VIDEO_PID, 93_000, Buffer.from([0x10, 0, 0, 0, 0, 0, 0])), // with an adaptation field (PCR)
      pesMore(AUDIO_PID),
    ]);

  it('reports each PES packet with its track, PTS and elementary stream bytes at the next PES start', () => {
    const units: MediaUnit[] = [];
    const ts = new TsAccounting((u) => units.push(u));
    ts.push(stream());
    // a packet carries 184 bytes of payload; the PES header (9 + 5 bytes) is no part of the stream
    expect(units).toEqual([{ track: 'video', ptsMs: 1000, bytes: 170 + 3 * 184 }]);
    ts.flush();
    expect(units).toHaveLength(3);
    expect(units.slice(1)).toContainEqual({ track: 'audio', ptsMs: 1010, bytes: 170 + 184 });
    const last = units.slice(1).find((u) => u.track === 'video')!;
    expect(last.ptsMs).toBeCloseTo(1033.333, 3);
    expect(last.bytes).toBe(184 - 8 - 14); // an 8-byte adaptation field too
    // Flushed units are not reported again.
    ts.flush();
    expect(units).toHaveLength(3);
  });

  it('reads the same from chunks split anywhere, and after garbage before a sync byte', () => {
    const whole: MediaUnit[] = [];
    const a = new TsAccounting((u) => whole.push(u));
    a.push(stream());
    a.flush();
    const bytes = Buffer.concat([Buffer.from([0x00, 0x01, 0x02]), stream()]);
    for (const size of [1, 100, 187, 189, 500]) {
      const split: MediaUnit[] = [];
      const b = new TsAccounting((u) => split.push(u));
      for (let i = 0; i < bytes.length; i += size) b.push(bytes.subarray(i, i + size));
      b.flush();
      expect(split).toEqual(whole);
    }
  });

  it('counts nothing before the PMT has told the PIDs, and drops a PES packet without a PTS', () => {
    const units: MediaUnit[] = [];
    const ts = new TsAccounting((u) => units.push(u));
    ts.push(Buffer.concat([pesStart(VIDEO_PID, 90_000), pesMore(VIDEO_PID), pat(), pmt()]));
    ts.flush();
    expect(units).toEqual([]);
    const noPts = pesHeader(0xe0, 0);
    noPts[7] = 0;
    ts.push(Buffer.concat([tsPacket(VIDEO_PID, true, noPts), pesMore(VIDEO_PID), pesStart(VIDEO_PID, 180_000)]));
    ts.flush();
    expect(units).toEqual([{ track: 'video', ptsMs: 2000, bytes: 170 }]);
  });
});

// FLV built by hand (FLV specification 10.1, E.2-E.4).
const flvHeader = () => Buffer.from([0x46, 0x4c, 0x56, 0x01, 0x05, 0, 0, 0, 0x09, 0, 0, 0, 0]);

function flvTag(type: number, ts: number, body: Buffer): Buffer {
  const t = Buffer.alloc(11 + body.length + 4);
  t[0] = type;
  t.writeUIntBE(body.length, 1, 3);
  t.writeUIntBE(ts & 0xffffff, 4, 3);
  t[7] = (ts >>> 24) & 0xff;
  body.copy(t, 11);
  t.writeUInt32BE(11 + body.length, 11 + body.length);
  return t;
}

const avc = (frameType: number, packetType: number, cts: number, size = 20) => {
  const b = Buffer.alloc(size, 0x65);
  b[0] = (frameType << 4) | 7;
  b[1] = packetType;
  b.writeIntBE(cts, 2, 3);
  return b;
};
const aac = (packetType: number, size = 10) => {
  const b = Buffer.alloc(size, 0x21);
  b[0] = 0xaf;
  b[1] = packetType;
  return b;
};

describe('FLV tags', () => {
  const tags = [
    flvTag(18, 0, Buffer.from('onMetaData')),
    flvTag(9, 0, avc(1, 0, 0, 30)), // AVC sequence header
    flvTag(8, 0, aac(0, 4)), // AAC sequence header
    flvTag(9, 0, avc(1, 1, 66, 200)), // keyframe, composition time +66
    flvTag(8, 21, aac(1, 50)),
    flvTag(9, 33, avc(2, 1, -33, 80)), // composition time -33
    flvTag(9, 0x01_000010, avc(2, 1, 0, 40)), // timestamp with the extended byte
    flvTag(9, 70, Buffer.from([0x22, 0xaa, 0xbb])), // Sorenson H.263: no composition time
  ];
  const file = Buffer.concat([flvHeader(), ...tags]);

  const readAll = (chunks: Buffer[]): FlvTag[] => {
    const out: FlvTag[] = [];
    const feed = flvTags((t) => void out.push({ ...t, body: Buffer.from(t.body) }));
    for (const c of chunks) feed(c);
    return out;
  };

  it('reads each tag with its type, timestamp and body', () => {
    const out = readAll([file]);
    expect(out.map((t) => [t.type, t.ts, t.body.length])).toEqual([
      [18, 0, 10],
      [9, 0, 30],
      [8, 0, 4],
      [9, 0, 200],
      [8, 21, 50],
      [9, 33, 80],
      [9, 0x01_000010, 40],
      [9, 70, 3],
    ]);
    expect(out[0]!.body.toString()).toBe('onMetaData');
  });

  it('reads the same from chunks split at awkward places', () => {
    const whole = readAll([file]);
    for (const size of [1, 2, 5, 11, 12, 13, 14, 17, 64]) {
      const chunks: Buffer[] = [];
      for (let i = 0; i < file.length; i += size) chunks.push(file.subarray(i, i + size));
      expect(readAll(chunks)).toEqual(whole);
    }
    // The header alone, a tag header alone, a body cut short of its PreviousTagSize.
    const cuts = [13, 13 + 11, 13 + 21 + 11 + 30 + 2];
    const points = [0, ...cuts, file.length];
    const pieces = points.slice(1).map((end, i) => file.subarray(points[i], end));
    expect(readAll(pieces)).toEqual(whole);
  });

  it('stops when the callback says so', () => {
    const seen: number[] = [];
    const feed = flvTags((t) => {
      seen.push(t.type);
      return t.type === 8;
    });
    feed(file.subarray(0, 100));
    feed(file.subarray(100));
    expect(seen).toEqual([18, 9, 8]);
  });

  it('makes media units: sequence headers and script data skipped, AVC composition time added', () => {
    const out = readAll([file]).map(unitOfTag);
    expect(out).toEqual([
      null,
      null,
      null,
      { track: 'video', ptsMs: 66, bytes: 195 }, // the coded frame: body less its 5-byte AVC packet header
      { track: 'audio', ptsMs: 21, bytes: 48 }, // less the 2-byte AAC packet header
      { track: 'video', ptsMs: 0, bytes: 75 },
      { track: 'video', ptsMs: 0x01_000010, bytes: 35 },
      { track: 'video', ptsMs: 70, bytes: 2 }, // another codec: a 1-byte header
    ]);
  });

  it('skips an AVC end of sequence, and reads a non-AAC audio tag', () => {
    expect(unitOfTag({ type: 9, ts: 5, body: avc(1, 2, 0, 5) })).toBeNull();
    expect(unitOfTag({ type: 8, ts: 7, body: Buffer.from([0x2f, 0x00, 0x11]) })).toEqual({
      track: 'audio',
      ptsMs: 7,
      bytes: 2,
    });
  });

  it('knows a keyframe', () => {
    const out = readAll([file]);
    expect(out.map(isKeyframe)).toEqual([false, false, false, true, false, false, false, false]);
  });
});

describe('the decoder log', () => {
  it('reads a frame of the full-size showinfo', () => {
    expect(FULL_SHOWINFO).toBe(0);
    expect(
      parseDecoderLine(
        '[Parsed_showinfo_0 @ 0x5600e12db740] [info] n:   0 pts:      0 pts_time:0       pos:    10289 fmt:yuv420p sar:1/1 s:1280x720 i:P iskey:1 type:I ',
      ),
    ).toEqual({ kind: 'video', ptsMs: 0, width: 1280, height: 720, key: true });
    const v = parseDecoderLine(
      '[Parsed_showinfo_0 @ 0x5600e12db740] [info] n:  31 pts:  93000 pts_time:1.03333 pos:   391234 fmt:yuv420p sar:1/1 s:640x360 i:P iskey:0 type:P ',
    );
    expect(v).toMatchObject({ kind: 'video', width: 640, height: 360, key: false });
    expect(v?.kind === 'video' && v.ptsMs).toBeCloseTo(1033.33, 2);
  });

  it('reads the mean luma of the grey copy', () => {
    const l = parseDecoderLine(
      '[Parsed_showinfo_3 @ 0x55] [info] n:   1 pts:    512 pts_time:0.0333333 pos:    26712 fmt:gray sar:1/1 s:32x18 i:P iskey:0 type:P checksum:12345678 plane_checksum:[12345678] mean:[123] stdev:[4.5]',
    );
    expect(l?.kind).toBe('luma');
    expect(l?.kind === 'luma' && l.mean).toBe(123);
    expect(l?.kind === 'luma' && l.ptsMs).toBeCloseTo(33.3333, 3);
    // As ffmpeg 5.1 prints it (lavfi testsrc2, the graph of decoderArgs).
    expect(
      parseDecoderLine(
        '[Parsed_showinfo_3 @ 0x561f15e2de00] [info] n:   0 pts:      0 pts_time:0       pos:       -1 fmt:gray sar:1/1 s:32x18 i:P iskey:1 type:I checksum:C0CC721B plane_checksum:[C0CC721B] mean:[51] stdev:[43.2]',
      ),
    ).toEqual({ kind: 'luma', ptsMs: 0, mean: 51 });
  });

  it('reads nothing from showinfo lines that are not frames', () => {
    expect(
      parseDecoderLine(
        '[Parsed_showinfo_0 @ 0x561f15e2b8c0] [info] color_range:unknown color_space:unknown color_primaries:unknown color_trc:unknown',
      ),
    ).toBeNull();
    expect(
      parseDecoderLine('[Parsed_showinfo_3 @ 0x561f15e2de00] [info] config in time_base: 1/5, frame_rate: 5/1'),
    ).toBeNull();
  });

  it('reads a negative PTS', () => {
    const v = parseDecoderLine(
      '[Parsed_showinfo_0 @ 0x1] [info] n:   0 pts:  -3003 pts_time:-0.0333667 pos:  564 fmt:yuv420p sar:1/1 s:1920x1080 i:P iskey:1 type:I ',
    );
    expect(v?.kind === 'video' && v.ptsMs).toBeCloseTo(-33.3667, 3);
  });

  // ffmpeg 5.1 prints pts_time with "%.6g" (av_ts2timestr): past 10 000 s, two frames 33 ms apart print the same
  // pts_time (verified: setpts=PTS+20000/TB at 30 fps gives "pts_time:20000" for n:0 and n:1, "20000.1" for n:2, n:3).
  // The PTS in time-base units is exact, but the parser reads pts_time only.
  it('tells apart two frames 33 ms apart past 10 000 s from pts and the time base (pts_time has 6 significant digits)', () => {
    const log = new DecoderLog();
    expect(log.read('[Parsed_showinfo_0 @ 0x55e6] [info] config in time_base: 1/30, frame_rate: 30/1')).toBeNull();
    const a = log.read(
      '[Parsed_showinfo_0 @ 0x55e6] [info] n:   0 pts: 600000 pts_time:20000   pos:       -1 fmt:yuv420p sar:1/1 s:64x36 i:P iskey:1 type:I ',
    );
    const b = log.read(
      '[Parsed_showinfo_0 @ 0x55e6] [info] n:   1 pts: 600001 pts_time:20000   pos:       -1 fmt:yuv420p sar:1/1 s:64x36 i:P iskey:0 type:P ',
    );
    expect(a?.kind === 'video' && b?.kind === 'video' && b.ptsMs - a.ptsMs).toBeCloseTo(1000 / 30, 3);
    // without the config line, pts_time is all there is
    expect(
      parseDecoderLine(
        '[Parsed_showinfo_0 @ 0x55e6] [info] n:   1 pts: 600001 pts_time:20000   pos:       -1 fmt:yuv420p sar:1/1 s:64x36 i:P iskey:0 type:P ',
      ),
    ).toMatchObject({ ptsMs: 20_000_000 });
    // audio: pts at the measuring rate (1/8000), exact however long the stream ran
    expect(log.read('[Parsed_ametadata_3 @ 0x1] [info] frame:9 pts:160000001 pts_time:20000')).toEqual({
      kind: 'audio',
      ptsMs: 20_000_000.125,
    });
  });

  it('reads the audio frames and their RMS level', () => {
    expect(
      parseDecoderLine('[Parsed_ametadata_3 @ 0x5600e12f23c0] [info] frame:1    pts:80      pts_time:0.01'),
    ).toEqual({ kind: 'audio', ptsMs: 10 });
    expect(
      parseDecoderLine('[Parsed_ametadata_3 @ 0x5600e12f23c0] [info] lavfi.astats.Overall.RMS_level=-24.135411'),
    ).toEqual({ kind: 'level', rmsDb: -24.135411 });
    expect(
      parseDecoderLine('[Parsed_ametadata_2 @ 0x5584ce9f95c0] [info] lavfi.astats.Overall.RMS_level=-inf'),
    ).toEqual({ kind: 'level', rmsDb: -Infinity });
    expect(parseDecoderLine('[Parsed_ametadata_3 @ 0x1] [info] lavfi.astats.Overall.RMS_level=nan')).toEqual({
      kind: 'level',
      rmsDb: -Infinity,
    });
  });

  it('reads errors, and tells decode errors from the connection ending', () => {
    const line = '[h264 @ 0x5600e1300000] [error] error while decoding MB 3 4';
    expect(parseDecoderLine(line)).toEqual({ kind: 'error', line });
    expect(isDecodeError(line)).toBe(true);
    expect(isDecodeError('[h264 @ 0x1] [error] concealing 120 DC, 120 AC, 120 MV errors in P frame')).toBe(true);
    expect(isDecodeError('[h264 @ 0x1] [error] non-existing PPS 0 referenced')).toBe(true);
    expect(isDecodeError('[tcp @ 0x1] [error] Connection to tcp://127.0.0.1:1935 failed: Connection refused')).toBe(
      false,
    );
    expect(isDecodeError('[rtmp @ 0x1] [error] Server error: Connection reset')).toBe(false);
    expect(parseDecoderLine('[h264 @ 0x1] [warning] Increasing reorder buffer to 1')).toBeNull();
    expect(parseDecoderLine('[info] Stream #0:0: Video: h264 (High), yuv420p, 1280x720, 30 fps')).toBeNull();
  });
});

describe('the decoder arguments', () => {
  it('reads a URL with a read timeout, keeping the stream timestamps', () => {
    const a = decoderArgs({ input: { kind: 'url', url: 'rtmp://h/live/ch_x' }, readTimeoutS: 7 });
    const i = a.indexOf('-i');
    expect(a[i + 1]).toBe('rtmp://h/live/ch_x');
    expect(a[a.indexOf('-rw_timeout') + 1]).toBe('7000000');
    expect(a.indexOf('-rw_timeout')).toBeLessThan(i);
    expect(a.indexOf('-copyts')).toBeGreaterThan(-1);
    expect(a.indexOf('-copyts')).toBeLessThan(i);
    expect(a[a.indexOf('-loglevel') + 1]).toBe('level+info');
    expect(decoderArgs({ input: { kind: 'url', url: 'rtmp://h/live/x' } })).toContain('10000000');
  });

  it('reads a pipe in the format given, without a read timeout', () => {
    const a = decoderArgs({ input: { kind: 'pipe', format: 'mpegts' } });
    expect(a).not.toContain('-rw_timeout');
    const i = a.indexOf('-i');
    expect(a.slice(i - 2, i + 2)).toEqual(['-f', 'mpegts', '-i', 'pipe:0']);
    expect(a).toContain('-copyts');
  });

  it('decodes the first video and the first audio if there is one, to the null muxer', () => {
    const a = decoderArgs({ input: { kind: 'pipe', format: 'flv' } });
    expect(a.slice(a.indexOf('-i') + 2)).toEqual([
      '-map',
      '0:v:0',
      '-vf',
      VIDEO_GRAPH,
      '-map',
      '0:a:0?',
      '-af',
      AUDIO_GRAPH,
      '-f',
      'null',
      '-',
    ]);
    expect(a).not.toContain('pipe:3');
  });

  it('copies the input as FLV to fd 3 when asked', () => {
    const a = decoderArgs({ input: { kind: 'url', url: 'rtmp://h/live/x' }, copyFlvToFd3: true });
    const nul = a.lastIndexOf('null');
    const copy = a.slice(nul + 2);
    expect(copy.at(-1)).toBe('pipe:3');
    expect(copy).toContain('0:a:0?');
    expect(copy[copy.indexOf('-c') + 1]).toBe('copy');
    expect(copy[copy.indexOf('-f') + 1]).toBe('flv');
  });

  it('writes a snapshot from the bytes on stdin', () => {
    const a = snapshotArgs('flv', '/tmp/out.png');
    expect(a.slice(a.indexOf('-i') - 2, a.indexOf('-i') + 2)).toEqual(['-f', 'flv', '-i', 'pipe:0']);
    expect(a.at(-1)).toBe('/tmp/out.png');
    expect(a).toContain('-y');
    expect(a[a.indexOf('-map') + 1]).toBe('0:v:0');
    expect(snapshotArgs('mpegts', 'x.png')).toContain('mpegts');
  });
});

describe('outcomes and stats lines', () => {
  it('maps each outcome to its own exit code', () => {
    expect(PLAY_EXIT).toEqual({ played: 0, refused: 1, 'never-started': 5, stalled: 6, ended: 7 });
    expect(new Set(Object.values(PLAY_EXIT)).size).toBe(5);
  });

  it('tells the outcome of a run', () => {
    expect(outcomeOf({ frames: 0, endedByServer: true, stalls: 0 })).toBe('never-started');
    expect(outcomeOf({ frames: 10, endedByServer: true, stalls: 2 })).toBe('ended');
    expect(outcomeOf({ frames: 10, endedByServer: false, stalls: 2 })).toBe('stalled');
    expect(outcomeOf({ frames: 10, endedByServer: false, stalls: 0 })).toBe('played');
  });

  const second: PlaybackStats = {
    t: 12,
    state: 'playing',
    protocol: 'hls',
    width: 1280,
    height: 720,
    fps: 29.97,
    videoKbps: 1480,
    audioKbps: 96,
    avDriftMs: -12,
    avDriftSource: 'marks',
    avClockMs: 3,
    latencyMs: 1210,
    latencySource: 'program-date-time',
    stalls: 2,
    stallMs: 734,
    decodeErrors: 3,
    hls: {
      variant: { index: 1, bandwidth: 800_000, resolution: '640x360', uri: 'ch_x_r10.m3u8' },
      mediaSequence: 4411,
      fetchMs: 87,
      segmentBytes: 400_000,
    },
  };

  it('puts the figures of a second in its line', () => {
    const line = statsLine(second);
    for (const part of [
      ' 12s',
      'playing',
      '1280x720',
      '30.0fps',
      'v 1.48M',
      'a 96k',
      'A/V -12ms (marks)',
      'latency 1.21s',
      'stalls 2 (734ms)',
      'errors 3',
      'variant #1 640x360',
      'seg 4411',
      'fetch 87ms',
    ])
      expect(line).toContain(part);
  });

  it('shows what is not known as a dash', () => {
    const line = statsLine({
      ...second,
      state: 'connecting',
      width: null,
      height: null,
      fps: 0,
      avDriftMs: null,
      avDriftSource: null,
      latencyMs: null,
      hls: undefined,
    });
    expect(line).toContain('connecting');
    expect(line).toContain('A/V -  ');
    expect(line).toContain('latency -');
    expect(line).not.toContain('variant');
    expect(line).not.toContain('(marks)');
  });
});

describe('play URLs', () => {
  it.each([
    ['rtmp://relay.example/live/ch_x', 'rtmp'],
    ['rtmps://relay.example/live/ch_x', 'rtmp'],
    ['ws://relay.example/live/ch_x.flv', 'ws-flv'],
    ['wss://relay.example/live/ch_x.flv', 'ws-flv'],
    ['https://relay.example/live/ch_x/index.m3u8', 'hls'],
    ['http://relay.example/live/ch_x/INDEX.M3U8?pwd=x', 'hls'],
    ['http://relay.example:8000/live/ch_x.flv', 'http-flv'],
    ['https://cdn.example/anything', 'http-flv'],
  ])('%s is %s', (url, protocol) => {
    expect(protocolOf(url)).toBe(protocol);
  });

  it.each([['ftp://relay.example/live/ch_x.flv'], ['not a url'], [''], ['file:///tmp/x.flv']])(
    '%s is no play URL',
    (url) => {
      expect(protocolOf(url)).toBeNull();
    },
  );

  it('puts the channel password in the pwd parameter', () => {
    expect(withPassword('http://h/live/ch_x.flv', undefined)).toBe('http://h/live/ch_x.flv');
    expect(withPassword('http://h/live/ch_x.flv', 's3cr&t')).toBe('http://h/live/ch_x.flv?pwd=s3cr%26t');
    expect(withPassword('rtmp://h/live/ch_x?pwd=old&a=1', 'new')).toBe('rtmp://h/live/ch_x?pwd=new&a=1');
  });

  it('gives the reason of a refusal', () => {
    expect(
      refusalReason(
        403,
        JSON.stringify({ code: 4031, message: 'wrong channel password', hint: 'ask the room owner for it' }),
      ),
    ).toBe('403 wrong channel password (ask the room owner for it)');
    expect(refusalReason(404, JSON.stringify({ code: 4040, message: 'no such channel' }))).toBe('404 no such channel');
    expect(refusalReason(404, '<html><body><h1>404 Not Found</h1>\n<hr>nginx</body></html>')).toBe(
      '404 404 Not Found nginx',
    );
    expect(refusalReason(401, '')).toBe('401');
    expect(refusalReason(500, 'x'.repeat(500))).toBe(`500 ${'x'.repeat(200)}`);
    expect(refusalReason(403, 'null')).toBe('403 null');
  });

  it('finds the relay status of a play URL', () => {
    expect(relayStatusOf('http://relay.example:8000/live/ch_x.flv')).toEqual({
      statusUrl: 'http://relay.example:8000/status/ch_x',
      stream: 'ch_x',
    });
    expect(relayStatusOf('https://relay.example/live/ch_x.flv')?.statusUrl).toBe('https://relay.example/status/ch_x');
    expect(relayStatusOf('ws://relay.example:8000/live/ch_x.flv')?.statusUrl).toBe(
      'http://relay.example:8000/status/ch_x',
    );
    expect(relayStatusOf('wss://relay.example/live/ch_x.flv')?.statusUrl).toBe('https://relay.example/status/ch_x');
    expect(relayStatusOf('http://relay.example/live/ch_x_r10.flv')).toEqual({
      statusUrl: 'http://relay.example/status/ch_x',
      stream: 'ch_x_r10',
    });
  });

  it('needs the relay HTTP origin for an RTMP URL', () => {
    expect(relayStatusOf('rtmp://relay.example/live/ch_x')).toBeNull();
    expect(relayStatusOf('rtmp://relay.example/live/ch_x_r20', 'http://relay.example:8000/')).toEqual({
      statusUrl: 'http://relay.example:8000/status/ch_x',
      stream: 'ch_x_r20',
    });
  });

  it('has no relay status for URLs of another shape', () => {
    expect(relayStatusOf('http://relay.example/hls/ch_x/index.m3u8')).toBeNull();
    expect(relayStatusOf('http://relay.example/live/a/b.flv')).toBeNull();
    expect(relayStatusOf('nonsense')).toBeNull();
  });
});

describe('play durations', () => {
  it.each([
    ['30s', 30_000],
    ['500ms', 500],
    ['2m', 120_000],
    ['1h', 3_600_000],
    ['1.5', 1500],
    ['0.25s', 250],
    [' 10s ', 10_000],
  ])('%s is %i ms', (v, ms) => {
    expect(parseDuration(v)).toBe(ms);
  });

  it.each([['abc'], [''], ['-1s'], ['10x'], ['1.5.2'], ['s'], ['1 s']])('%s is no duration', (v) => {
    expect(parseDuration(v)).toBeNull();
  });
});

describe('credentials in what the player prints', () => {
  it('shows pwd, token and sig values as ***, the rest of the URL as it was', () => {
    expect(redactQuery('http://h:8000/live/ch_a.flv?pwd=sesame&x=1')).toBe('http://h:8000/live/ch_a.flv?pwd=***&x=1');
    expect(redactQuery('r10/index.m3u8?token=abc')).toBe('r10/index.m3u8?token=***');
    expect(redactQuery('rtmp://h/live/ch_a?sig=0123&pwd=p: Input/output error')).toBe(
      // a value runs to the next space: a colon may be part of a password
      'rtmp://h/live/ch_a?sig=***&pwd=*** Input/output error',
    );
    expect(redactQuery('rtmp://h/live/ch_a')).toBe('rtmp://h/live/ch_a');
  });
});
