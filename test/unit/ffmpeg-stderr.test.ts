import { describe, expect, it } from 'vitest';
import { classifyStartFailure, decisiveLine, StderrKeeper, tidyLine } from '../../src/media/ffmpeg/stderr.js';
import { startFailureCode } from '../../src/channels/failure.js';
import { ERRORS } from '../../src/errors/index.js';

/** ffmpeg's own words for failed starts, as the bundled 4.1 and Debian's 5.1 print them (-loglevel info). */
const SAID = {
  srtOn41: ['srt://127.0.0.1:9?mode=caller: Protocol not found', 'Did you mean file:srt://127.0.0.1:9?mode=caller?'],
  srtNobodyOn51: [
    '[srt @ 0x560c9ea88100] Connection to srt://127.0.0.1:9?mode=caller failed: Input/output error',
    'srt://127.0.0.1:9?mode=caller: Input/output error',
  ],
  notMedia: [
    '[mov,mp4,m4a,3gp,3g2,mj2 @ 0x5637cc011880] Format mov,mp4,m4a,3gp,3g2,mj2 detected only with low score of 1, misdetection possible!',
    '[mov,mp4,m4a,3gp,3g2,mj2 @ 0x5637cc011880] moov atom not found',
    '/srv/up/not-media.mp4: Invalid data found when processing input',
  ],
  missing: ['/srv/up/nope.mp4: No such file or directory'],
  refused: [
    '[tcp @ 0x561c986d0c00] Connection to tcp://127.0.0.1:9?tcp_nodelay=0 failed: Connection refused',
    '[rtmp @ 0x561c986d0100] Cannot open connection tcp://127.0.0.1:9?tcp_nodelay=0',
    'rtmp://127.0.0.1:9/live/x: Connection refused',
  ],
  vp8InFlv: [
    '[libvpx @ 0x183d3740] v1.7.0-1487-g842afb26f',
    '[flv @ 0x183d24c0] Video codec vp8 not compatible with flv',
    'Could not write header for output file #0 (incorrect codec parameters ?): Function not implemented',
    'Error initializing output stream 0:0 -- ',
    'Conversion failed!',
  ],
  opusInFlv: [
    'Could not write header for output file #0 (incorrect codec parameters ?): Function not implemented',
    'Error initializing output stream 0:0 -- ',
  ],
  whitelist: [
    "[http @ 0x5628cae48100] Protocol 'http' not on whitelist 'file'!",
    'http://127.0.0.1:9/x.ts: Invalid argument',
  ],
  optionOn51: ["Unrecognized option 'stimeout'.", 'Error splitting the argument list: Option not found'],
  audioOnlyTier: ["Stream specifier ':v:0' in filtergraph description [0:v:0]null[v] matches no streams."],
  adtsInFlvOn41: [
    "[flv @ 0x69e7600] Malformed AAC bitstream detected: use the audio bitstream filter 'aac_adtstoasc' to fix it ('-bsf:a aac_adtstoasc' option with ffmpeg)",
    'av_interleaved_write_frame(): Invalid data found when processing input',
  ],
  outputDirGone: [
    "[hls @ 0x55] Failed to open file '/d/hls/ch_1/seg_000001.ts.tmp'",
    'Could not write header for output file #1 (incorrect codec parameters ?): No such file or directory',
  ],
  http404: ['[https @ 0x55] HTTP error 404 Not Found', 'https://cdn.example/x.m3u8: Server returned 404 Not Found'],
};

describe('why a start failed, in ffmpeg 4.1 and 5.1 words', () => {
  it.each([
    ['srtOn41', 'unsupported', 'srt://127.0.0.1:9?mode=caller: Protocol not found'],
    ['srtNobodyOn51', 'unreadable', '[srt] Connection to srt://127.0.0.1:9?mode=caller failed: Input/output error'],
    ['notMedia', 'invalid', '[mov,mp4,m4a,3gp,3g2,mj2] moov atom not found'],
    ['missing', 'invalid', '/srv/up/nope.mp4: No such file or directory'],
    ['refused', 'unreadable', '[tcp] Connection to tcp://127.0.0.1:9?tcp_nodelay=0 failed: Connection refused'],
    ['vp8InFlv', 'unsupported', '[flv] Video codec vp8 not compatible with flv'],
    [
      'opusInFlv',
      'unsupported',
      'Could not write header for output file #0 (incorrect codec parameters ?): Function not implemented',
    ],
    ['whitelist', 'invalid', "[http] Protocol 'http' not on whitelist 'file'!"],
    ['optionOn51', 'unsupported', "Unrecognized option 'stimeout'."],
    [
      'audioOnlyTier',
      'no-video',
      "Stream specifier ':v:0' in filtergraph description [0:v:0]null[v] matches no streams.",
    ],
    ['http404', 'invalid', '[https] HTTP error 404 Not Found'],
    [
      'adtsInFlvOn41',
      'unsupported',
      "[flv] Malformed AAC bitstream detected: use the audio bitstream filter 'aac_adtstoasc' to fix it ('-bsf:a aac_adtstoasc' option with ffmpeg)",
    ],
    [
      'outputDirGone',
      'exited',
      'Could not write header for output file #1 (incorrect codec parameters ?): No such file or directory',
    ],
  ] as const)('%s → %s, said by %j', (key, kind, line) => {
    expect(classifyStartFailure(SAID[key])).toBe(kind);
    expect(decisiveLine(SAID[key])).toBe(line);
  });

  it('a full disk is the reason whatever else ffmpeg says; its closing words never are', () => {
    const enospc = [
      'Error writing trailer of /d/records/1/7/ch_%Y%m%d.mp4: No space left on device',
      "[segment @ 0x55] Failure occurred when ending segment '/d/records/1/7/ch_1.flv'",
      'Conversion failed!',
    ];
    expect(decisiveLine(enospc)).toBe(enospc[0]);
    expect(decisiveLine(['[flv @ 0x1] Failed to update header with correct duration.', 'Conversion failed!'])).toBe(
      '[flv] Failed to update header with correct duration.',
    );
  });

  it('an output with nothing recognisable ends as exited, its last error-looking line kept', () => {
    expect(classifyStartFailure(['frame=0', 'something odd'])).toBe('exited');
    expect(decisiveLine(['Input #0, flv', 'Error while opening encoder for output stream #0:0'])).toBe(
      'Error while opening encoder for output stream #0:0',
    );
    expect(decisiveLine(['Input #0, flv', '  Stream #0:0: Video: h264'])).toBeNull();
  });

  it('lines shown to a tenant lose the context address and stay short', () => {
    expect(tidyLine('[flv @ 0x55d1c2a3b4c0] Video codec vp8 not compatible with flv')).toBe(
      '[flv] Video codec vp8 not compatible with flv',
    );
    expect(tidyLine('x'.repeat(500))).toHaveLength(300);
  });
});

describe('stderr kept of one ffmpeg', () => {
  it('keeps the lines naming a problem after a burst of warnings pushed them out of the tail', () => {
    const k = new StderrKeeper(5, 3);
    k.push('Input #0, flv, from rtmp://…');
    k.push('[flv @ 0x1] Video codec vp8 not compatible with flv');
    for (let i = 0; i < 20; i++) k.push(`frame ${i}`);
    expect(k.lines).toHaveLength(5);
    expect(k.all[0]).toBe('[flv @ 0x1] Video codec vp8 not compatible with flv');
    expect(k.all.slice(1)).toEqual(k.lines);
    expect(decisiveLine(k.all)).toBe('[flv] Video codec vp8 not compatible with flv');
  });

  it('keeps a bounded number of notable lines, repeated ones once', () => {
    const k = new StderrKeeper(2, 3);
    for (let i = 0; i < 10; i++) (k.push(`error ${i}`), k.push(`error ${i}`));
    expect(k.all).toEqual(['error 7', 'error 8', 'error 9', 'error 9']);
  });
});

describe('the code and message of a failed start', () => {
  it('puts ffmpeg’s line in the message, a file upstream named as registered', () => {
    expect(
      startFailureCode('invalid', '/srv/up/a/not-media.mp4: Invalid data found when processing input', '/srv/up'),
    ).toEqual({
      code: 50009,
      message:
        'the upstream cannot be read as media (ffmpeg: a/not-media.mp4: Invalid data found when processing input)',
    });
    expect(startFailureCode('unsupported', 'srt://h:9: Protocol not found')).toEqual({
      code: 50008,
      message: "the relay's ffmpeg cannot relay this upstream (ffmpeg: srt://h:9: Protocol not found)",
    });
    expect(startFailureCode('timeout', null).message).toBe(
      'push timed out: no media from the upstream within the start timeout',
    );
  });

  it('deterministic failures never hint a retry; 6012 is kept for what may get better', () => {
    for (const kind of ['no-video', 'unsupported', 'invalid'] as const) {
      const { code } = startFailureCode(kind);
      expect(ERRORS[code].hint, kind).not.toMatch(/retry/i);
      expect(ERRORS[code].retryable, kind).toBe(false);
    }
    for (const kind of ['timeout', 'unreadable', 'exited'] as const) expect(startFailureCode(kind).code).toBe(6012);
  });
});
