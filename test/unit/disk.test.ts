import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  afterDiskFull,
  diskFullFailure,
  assertFreeSpace,
  belowThreshold,
  freeBytes,
  isDiskFull,
  isDiskFullError,
} from '../../src/records/disk.js';
import {
  finaliseHlsRecording,
  flvHasMedia,
  mp4HasMedia,
  prunePlaylist,
  recordingHasMedia,
  segmentComplete,
} from '../../src/records/media-check.js';
import { quotaState, StoragePolicy } from '../../src/records/storage.js';
import { RelayError } from '../../src/errors/index.js';

const MIB = 1024 * 1024;
let tmp: string;
beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'relay-disk-'));
});
afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

const reader = (b: Buffer) => async (offset: number, length: number) => b.subarray(offset, offset + length);
const box = (type: string, payload: Buffer | number) => {
  const body = typeof payload === 'number' ? Buffer.alloc(payload, 1) : payload;
  const h = Buffer.alloc(8);
  h.writeUInt32BE(8 + body.length, 0);
  h.write(type, 4, 'latin1');
  return Buffer.concat([h, body]);
};
const FLV_HEADER = Buffer.from([0x46, 0x4c, 0x56, 1, 5, 0, 0, 0, 9, 0, 0, 0, 0]);
const tag = (type: number, data: Buffer) => {
  const h = Buffer.alloc(11);
  h[0] = type;
  h.writeUIntBE(data.length, 1, 3);
  const prev = Buffer.alloc(4);
  prev.writeUInt32BE(11 + data.length);
  return Buffer.concat([h, data, prev]);
};

describe('a full disk, as ffmpeg and Node say it', () => {
  it('ffmpeg stderr of a recording that ran out of space is classified; other failures are not', () => {
    // lines of the bundled ffmpeg writing into a full 4 MiB tmpfs
    expect(
      isDiskFull([
        "[segment @ 0x19a7de40] Failure occurred when ending segment '/r/ch_0_1_20261129-151552.mp4'",
        'av_interleaved_write_frame(): No space left on device',
        'Conversion failed!',
      ]),
    ).toBe(true);
    expect(isDiskFull(['Error writing trailer of /r/x.flv: Disk quota exceeded'])).toBe(true);
    expect(isDiskFull(['rtmp://127.0.0.1:1935/live/x: Connection refused', 'Conversion failed!'])).toBe(false);
    expect(isDiskFull([])).toBe(false);
    expect(isDiskFullError(Object.assign(new Error('x'), { code: 'ENOSPC' }))).toBe(true);
    expect(isDiskFullError(Object.assign(new Error('x'), { code: 'EACCES' }))).toBe(false);
    expect(isDiskFullError(null)).toBe(false);
  });

  it('the free-space threshold is in MiB and 0 turns it off', () => {
    expect(belowThreshold(1023 * MIB, 1024)).toBe(true);
    expect(belowThreshold(1024 * MIB, 1024)).toBe(false);
    expect(belowThreshold(0, 0)).toBe(false);
  });

  it('free space is measured at the nearest existing folder; below the threshold the answer is 50007 naming it', async () => {
    const free = await freeBytes(path.join(tmp, 'not', 'made', 'yet'));
    expect(free).toBeGreaterThan(0);
    await assertFreeSpace([{ dir: tmp, what: 'recordings' }], 1);
    const e = await assertFreeSpace([{ dir: tmp, what: 'recordings' }], 16_777_216).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(RelayError);
    expect((e as RelayError).code).toBe(50007);
    expect((e as RelayError).status).toBe(507);
    expect((e as RelayError).message).toBe(
      "insufficient storage: the disk of the recordings is below the relay's free-space threshold",
    );
    expect(JSON.stringify((e as RelayError).toBody())).not.toMatch(/MiB free|16777216/);
    expect((e as RelayError).log).toMatchObject({ dir: tmp, freeBytes: expect.any(Number), minFreeMB: 16_777_216 });
  });

  it('a running channel whose disk filled stops recording when its live outputs can go on, else fails; never retries', () => {
    const base = { recording: true, liveHls: true, hlsFreeBytes: 100 * MIB, liveMinFreeBytes: 16 * MIB };
    expect(afterDiskFull(base)).toBe('stop-recording');
    expect(afterDiskFull({ ...base, liveHls: false, hlsFreeBytes: 0 })).toBe('stop-recording');
    expect(afterDiskFull({ ...base, hlsFreeBytes: MIB })).toBe('fail'); // same disk as the recordings, or its own full
    expect(afterDiskFull({ ...base, recording: false })).toBe('fail');
  });
});

describe('recording files without media', () => {
  it('an MP4 has media with a complete moov and an mdat with payload; a header-only or cut file has none', async () => {
    const ftyp = box('ftyp', 16);
    const whole = Buffer.concat([ftyp, box('moov', 200), box('moof', 40), box('mdat', 5000)]);
    expect(await mp4HasMedia(reader(whole), whole.length)).toBe(true);
    expect(await mp4HasMedia(reader(ftyp), ftyp.length)).toBe(false); // what a full disk left: 4 KiB, no moov
    const noMdat = Buffer.concat([ftyp, box('moov', 200)]);
    expect(await mp4HasMedia(reader(noMdat), noMdat.length)).toBe(false);
    const cut = whole.subarray(0, whole.length - 100);
    expect(await mp4HasMedia(reader(cut), cut.length)).toBe(false); // its only fragment is incomplete
    const twoFragsCut = Buffer.concat([whole, box('moof', 40), box('mdat', 5000)]).subarray(0, whole.length + 300);
    expect(await mp4HasMedia(reader(twoFragsCut), twoFragsCut.length)).toBe(true); // the first fragment plays
  });

  it('an FLV has media once a complete frame follows its header and codec headers', async () => {
    const avcHeader = tag(9, Buffer.from([0x17, 0, 0, 0, 0, 1, 2, 3]));
    const aacHeader = tag(8, Buffer.from([0xaf, 0, 0x12, 0x10]));
    const frame = tag(9, Buffer.concat([Buffer.from([0x17, 1, 0, 0, 0]), Buffer.alloc(300, 7)]));
    const headersOnly = Buffer.concat([FLV_HEADER, tag(18, Buffer.alloc(30)), avcHeader, aacHeader]);
    expect(await flvHasMedia(reader(Buffer.alloc(0)), 0)).toBe(false); // the 0-byte FLV of a full disk
    expect(await flvHasMedia(reader(FLV_HEADER), FLV_HEADER.length)).toBe(false);
    expect(await flvHasMedia(reader(headersOnly), headersOnly.length)).toBe(false);
    const withFrame = Buffer.concat([headersOnly, frame]);
    expect(await flvHasMedia(reader(withFrame), withFrame.length)).toBe(true);
    const cut = withFrame.subarray(0, withFrame.length - 50);
    expect(await flvHasMedia(reader(cut), cut.length)).toBe(false);
  });

  it('an HLS segment is complete with whole 188-byte TS packets starting with 0x47', () => {
    expect(segmentComplete(188 * 2000, 0x47)).toBe(true);
    expect(segmentComplete(0, undefined)).toBe(false);
    expect(segmentComplete(262144, 0x47)).toBe(false); // cut at a page by ENOSPC
    expect(segmentComplete(188, 0x00)).toBe(false);
  });

  it('recordingHasMedia reads files by extension; a missing file has none', async () => {
    const f = path.join(tmp, 'a.flv');
    await fs.writeFile(f, '');
    expect(await recordingHasMedia(f)).toBe(false);
    expect(await recordingHasMedia(path.join(tmp, 'missing.mp4'))).toBe(false);
  });
});

const PLAYLIST = `#EXTM3U
#EXT-X-VERSION:3
#EXT-X-TARGETDURATION:2
#EXT-X-MEDIA-SEQUENCE:0
#EXT-X-DISCONTINUITY
#EXTINF:2.000000,
rec_000000.ts
#EXTINF:2.000000,
rec_000001.ts
#EXT-X-DISCONTINUITY
#EXTINF:2.000000,
rec_000002.ts
#EXTINF:2.000000,
rec_000003.ts
#EXTINF:0.033333,
rec_000004.ts
`;

describe('finalising an HLS recording', () => {
  it('prunePlaylist drops refused segments with their tags, keeps a discontinuity for the next one, ends the list', () => {
    const { text, segments } = prunePlaylist(PLAYLIST, (u) => !['rec_000002.ts', 'rec_000004.ts'].includes(u));
    expect(segments).toBe(3);
    expect(text).toBe(
      '#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-DISCONTINUITY\n' +
        '#EXTINF:2.000000,\nrec_000000.ts\n#EXTINF:2.000000,\nrec_000001.ts\n#EXT-X-DISCONTINUITY\n' +
        '#EXTINF:2.000000,\nrec_000003.ts\n#EXT-X-ENDLIST\n',
    );
    expect(prunePlaylist(`${PLAYLIST}#EXT-X-ENDLIST\n`, () => true).text.match(/ENDLIST/g)).toHaveLength(1);
  });

  it('finaliseHlsRecording deletes cut and empty segments, lists the rest, and ends the playlist', async () => {
    const dir = path.join(tmp, 'hls');
    await fs.mkdir(dir);
    const ts = (packets: number) => Buffer.alloc(packets * 188, 0x47);
    await fs.writeFile(path.join(dir, 'index.m3u8'), PLAYLIST);
    for (const i of [0, 1, 2]) await fs.writeFile(path.join(dir, `rec_00000${i}.ts`), ts(100));
    await fs.writeFile(path.join(dir, 'rec_000003.ts'), ts(100).subarray(0, 4096)); // cut by ENOSPC
    await fs.writeFile(path.join(dir, 'rec_000004.ts'), ''); // opened, never written
    expect(await finaliseHlsRecording(dir, Date.now() - 60_000)).toBeNull(); // written after: another run's
    expect(await finaliseHlsRecording(dir, Date.now() + 1000)).toBe(3);
    const text = await fs.readFile(path.join(dir, 'index.m3u8'), 'utf8');
    expect(text).toMatch(/rec_000002\.ts\n#EXT-X-ENDLIST\n$/);
    expect((await fs.readdir(dir)).sort()).toEqual(['index.m3u8', 'rec_000000.ts', 'rec_000001.ts', 'rec_000002.ts']);
    for (const f of ['rec_000000.ts', 'rec_000001.ts', 'rec_000002.ts']) await fs.rm(path.join(dir, f));
    expect(await finaliseHlsRecording(dir, Date.now() + 1000)).toBe(0); // nothing left: no playlist either
    expect(await fs.readdir(dir)).toEqual([]);
  });

  it('a playlist ffmpeg emptied on a full disk (5.x) gives way to the one the run last read; unlisted segments go', async () => {
    const dir = path.join(tmp, 'hls-emptied');
    await fs.mkdir(dir);
    const ts = Buffer.alloc(100 * 188, 0x47);
    for (const i of [0, 1, 2, 3, 5]) await fs.writeFile(path.join(dir, `rec_00000${i}.ts`), ts);
    await fs.writeFile(path.join(dir, 'index.m3u8'), ''); // rewritten on a full disk: nothing of it left
    const lastRead = PLAYLIST.replace('rec_000004.ts\n', '').replace('#EXTINF:0.033333,\n', '');
    expect(await finaliseHlsRecording(dir, Date.now() + 1000, lastRead)).toBe(4);
    const text = await fs.readFile(path.join(dir, 'index.m3u8'), 'utf8');
    expect(text).toMatch(/rec_000003\.ts\n#EXT-X-ENDLIST\n$/);
    // rec_000005.ts was written, but no playlist that survived lists it
    expect((await fs.readdir(dir)).sort()).toEqual(['index.m3u8', ...[0, 1, 2, 3].map((i) => `rec_00000${i}.ts`)]);
    // a playlist on disk that lists more than the copy read stands
    await fs.writeFile(path.join(dir, 'index.m3u8'), PLAYLIST);
    expect(await finaliseHlsRecording(dir, Date.now() + 1000, '#EXTM3U\n')).toBe(4);
  });

  it('a full disk names who found it: ffmpeg by default, or the run measuring its free space', () => {
    expect(diskFullFailure('live HLS').message).toBe(
      'disk full: no space left on the disk of the live HLS (ffmpeg: No space left on device)',
    );
    expect(diskFullFailure('recordings', 'measured: 1.4 MiB free on the disk of /d/records').message).toMatch(
      /recordings \(measured: 1\.4 MiB free/,
    );
  });
});

describe('account storage quota', () => {
  it('quota math: usage in bytes against MiB; reached is over; null is unlimited', () => {
    expect(quotaState(10 * MIB - 1, 10).over).toBe(false);
    expect(quotaState(10 * MIB, 10).over).toBe(true);
    expect(quotaState(1e15, null)).toEqual({ usedBytes: 1e15, quotaMB: null, over: false });
    expect(quotaState(1, 0).over).toBe(true);
  });

  it("usage is the bytes of the account's apps' recordings and watermark images; a start with recording over the quota is 20102", async () => {
    const records = path.join(tmp, 'records');
    await fs.mkdir(path.join(records, '1400000001', '7', 'hls'), { recursive: true });
    await fs.mkdir(path.join(records, '1400000009', '8'), { recursive: true });
    await fs.writeFile(path.join(records, '1400000001', '7', 'a.mp4'), Buffer.alloc(MIB));
    await fs.writeFile(path.join(records, '1400000001', '7', 'hls', 'rec_000000.ts'), Buffer.alloc(MIB / 2));
    await fs.writeFile(path.join(records, '1400000009', '8', 'b.mp4'), Buffer.alloc(5 * MIB)); // another account
    const images = path.join(tmp, 'watermarks');
    await fs.mkdir(path.join(images, '1400000002'), { recursive: true });
    await fs.writeFile(path.join(images, '1400000002', '1.png'), Buffer.alloc(MIB / 4));
    const accounts: Record<string, { accountId: string; storageQuotaMB: number | null }> = {
      acme: { accountId: 'acme', storageQuotaMB: 2 },
      free: { accountId: 'free', storageQuotaMB: null },
    };
    const policy = new StoragePolicy({
      recordsDir: records,
      hlsDir: tmp,
      watermarksDir: images,
      minFreeMB: 1,
      appsOf: async (id) => (id === 'acme' ? ['1400000001', '1400000002'] : ['1400000009']),
      account: async (id) => accounts[id] ?? null,
    });
    expect(await policy.usageBytes('acme')).toBe(1.75 * MIB);
    await policy.assertCanRecord(accounts.acme!, true);
    expect(await policy.overQuota('acme')).toBeNull();
    await policy.assertCanRecord(accounts.free!, false);
    const e = await policy
      .assertCanRecord({ accountId: 'acme', storageQuotaMB: 1 }, false)
      .catch((x: unknown) => x as RelayError);
    expect(e).toBeInstanceOf(RelayError);
    expect((e as RelayError).code).toBe(20102);
    expect((e as RelayError).toBody()).toMatchObject({ storageUsedBytes: 1.75 * MIB, storageQuotaMB: 1 });
    accounts.acme!.storageQuotaMB = 1;
    expect(await policy.overQuota('acme')).toMatchObject({ over: true, usedBytes: 1.75 * MIB });
    expect(await policy.overQuota('nobody')).toBeNull();

    // a watermark upload counts against the same quota, measured now: 1.75 + 0.25 MiB fits 2 MiB, 0.5 MiB more does not
    accounts.acme!.storageQuotaMB = 2;
    await policy.assertCanStoreImage('acme', MIB / 4);
    await policy.assertCanStoreImage('free', 100 * MIB);
    const over = await policy.assertCanStoreImage('acme', MIB / 2).catch((x: unknown) => x as RelayError);
    expect(over).toBeInstanceOf(RelayError);
    expect(over).toMatchObject({ code: 20102, status: 409 });
    expect((over as RelayError).hint).toMatch(/DELETE \/v1\/watermarks/);
    expect((over as RelayError).toBody()).toMatchObject({ storageUsedBytes: 1.75 * MIB, storageQuotaMB: 2 });
  });

  it('a watermark upload below the free-space threshold is 50007 with a hint for uploads, not for recordings', async () => {
    const policy = new StoragePolicy({
      recordsDir: tmp,
      hlsDir: tmp,
      watermarksDir: tmp,
      minFreeMB: 16_777_216,
      appsOf: async () => [],
    });
    const e = await policy.assertCanStoreImage('acme', 1).catch((x: unknown) => x as RelayError);
    expect(e).toMatchObject({ code: 50007, status: 507 });
    expect((e as RelayError).message).toMatch(/watermark images is below the relay's free-space threshold/);
    expect((e as RelayError).hint).toMatch(/retry the upload later/);
    expect((e as RelayError).hint).not.toMatch(/record/);
  });
});
