import { describe, expect, it } from 'vitest';
import { buildRelayArgs, hlsOutputArgs, inputArgs, rtmpOutputArgs } from '../../src/media/ffmpeg/args.js';
import { classifyStartFailure } from '../../src/media/ffmpeg/process.js';

describe('ffmpeg argument builders', () => {
  it('a network input is bounded by -rw_timeout, probes briefly and opens only whitelisted protocols', () => {
    expect(inputArgs({ url: 'rtmp://h/ingest/x', protocolWhitelist: 'rtmp,tcp', readTimeoutMs: 3000 })).toEqual([
      '-protocol_whitelist', 'rtmp,tcp', '-rw_timeout', '3000000', '-analyzeduration', '1000000', '-probesize', '1000000', '-i', 'rtmp://h/ingest/x',
    ]);
  });

  it('the relay\'s own ingest is probed briefly: it sends codec headers and its GOP cache at once', () => {
    const args = inputArgs({ url: 'rtmp://h/ingest/x', protocolWhitelist: 'rtmp,tcp', fastProbe: true });
    expect(args[args.indexOf('-analyzeduration') + 1]).toBe('200000');
  });

  it('a file input is replayed in a loop at native rate, without a network timeout', () => {
    const args = inputArgs({ url: '/f/a.mp4', protocolWhitelist: 'file', loopFile: true });
    expect(args).toContain('-re');
    expect(args.join(' ')).toContain('-stream_loop -1');
    expect(args).not.toContain('-rw_timeout');
  });

  it('RTMP output copies the first video and the optional first audio track as FLV', () => {
    expect(rtmpOutputArgs('rtmp://m/live/ch')).toEqual(['-map', '0:v:0', '-map', '0:a:0?', '-c', 'copy', '-f', 'flv', 'rtmp://m/live/ch']);
  });

  it('HLS output is a sliding window of 2 s segments that never writes ENDLIST itself and continues numbering', () => {
    const args = hlsOutputArgs({ dir: '/d/ch', segmentSeconds: 2, listSize: 6 });
    const at = (flag: string) => args[args.indexOf(flag) + 1];
    expect(at('-f')).toBe('hls');
    expect(at('-hls_time')).toBe('2');
    expect(at('-hls_list_size')).toBe('6');
    expect(at('-hls_flags')!.split('+').sort()).toEqual(['append_list', 'delete_segments', 'omit_endlist', 'temp_file']);
    expect(at('-hls_segment_filename')).toBe('/d/ch/seg_%06d.ts');
    expect(args.at(-1)).toBe('/d/ch/index.m3u8');
  });

  it('the relay command reports progress on stdout and puts the outputs after the input', () => {
    const args = buildRelayArgs({ input: { url: 'in', protocolWhitelist: 'file' }, rtmpUrl: 'rtmp://o', hls: { dir: '/h', segmentSeconds: 2, listSize: 6 } });
    expect(args.slice(0, 6)).toEqual(['-hide_banner', '-nostdin', '-loglevel', 'warning', '-progress', 'pipe:1']);
    expect(args.indexOf('-i')).toBeLessThan(args.indexOf('rtmp://o'));
    expect(args.indexOf('rtmp://o')).toBeLessThan(args.indexOf('/h/index.m3u8'));
    expect(() => buildRelayArgs({ input: { url: 'in', protocolWhitelist: 'file' } })).toThrow(/output/);
  });
});

describe('start failure classification from ffmpeg stderr', () => {
  it.each([
    [["Stream map '0:v:0' matches no streams."], 'no-video'],
    [['/x/not-media.mp4: Invalid data found when processing input'], 'unreadable'],
    [['moov atom not found'], 'unreadable'],
    [['rtmp://h/x: Input/output error'], 'unreadable'],
    [['something else'], 'exited'],
  ])('%j → %s', (lines, kind) => {
    expect(classifyStartFailure(lines)).toBe(kind);
  });
});
