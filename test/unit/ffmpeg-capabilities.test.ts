import { describe, expect, it } from 'vitest';
import { has, parseFormats, type FfmpegCapabilities } from '../../src/media/ffmpeg/capabilities.js';
import { chooseFfmpeg, parseVersion, type FfmpegVersion, type LocateDeps } from '../../src/media/ffmpeg/locate.js';
import { lackingNeeds, missingForUpstream, startupReport, upstreamNeeds } from '../../src/media/ffmpeg/needs.js';
import { captured as read, capsOf } from './ffmpeg-output/captured.js';

const v41 = capsOf('4.1');
const v51 = capsOf('5.1');

describe('ffmpeg -version', () => {
  it('reads a release (5.1.9-0+deb12u1 → 5.1) and a git snapshot by its libavutil (N-47683 → 4.1)', () => {
    expect(parseVersion(read('5.1', 'version'))).toEqual({ text: '5.1.9-0+deb12u1', major: 5, minor: 1 });
    expect(parseVersion(read('4.1', 'version'))).toEqual({ text: 'N-47683-g0e8eb07980-static', major: 4, minor: 1 });
  });

  it.each([
    ['ffmpeg version n6.1.1 Copyright', 6, 1],
    ['ffmpeg version 7.1-static https://johnvansickle.com', 7, 1],
    ['ffmpeg version N-118000-gabc\nlibavutil      59. 39.100 / 59. 39.100', 7, 0],
  ])('%j → %i.%i', (text, major, minor) => {
    expect(parseVersion(text)).toMatchObject({ major, minor });
  });

  it('is null for output that is not ffmpeg -version', () => {
    expect(parseVersion('bash: ffmpeg: command not found')).toBeNull();
    expect(parseVersion('ffmpeg version N-1-gdeadbeef')).toBeNull();
  });
});

describe('capability listings of both builds', () => {
  it.each([
    ['4.1', v41],
    ['5.1', v51],
  ] as const)('%s lists what the relay always uses', (_, caps) => {
    expect(caps.protocols.input.has('rtmp') && caps.protocols.output.has('rtmp')).toBe(true);
    for (const p of ['https', 'rtmps', 'tcp', 'tls', 'file', 'rtp']) expect(caps.protocols.input.has(p), p).toBe(true);
    for (const d of ['hls', 'rtsp', 'sdp', 'flv', 'mov', 'mp4', 'mpegts', 'matroska'])
      expect(caps.demuxers.has(d), d).toBe(true);
    for (const m of ['flv', 'hls', 'tee', 'segment', 'mp4', 'mpegts']) expect(caps.muxers.has(m), m).toBe(true);
    expect(caps.demuxers.has('tee')).toBe(false);
    expect(caps.encoders.get('libx264')).toBe('h264');
    expect(caps.encoders.get('aac')).toBe('aac');
    expect(caps.decoders.get('libopus')).toBe('opus');
    expect(caps.decoders.get('libvpx')).toBe('vp8');
    for (const codec of ['h264', 'aac', 'mp3', 'opus', 'vp8', 'vp9', 'hevc', 'av1', 'pcm_alaw', 'pcm_mulaw'])
      expect(has(caps, { kind: 'decoder', name: codec }), codec).toBe(true);
    for (const f of ['scale', 'scale2ref', 'overlay', 'split', 'setsar', 'format', 'null', 'transpose', 'aresample'])
      expect(caps.filters.has(f), f).toBe(true);
    expect(caps.bsfs.has('aac_adtstoasc')).toBe(true);
    expect(caps.encoders.size).toBeGreaterThan(100);
    expect(caps.decoders.size).toBeGreaterThan(300);
    expect(caps.filters.size).toBeGreaterThan(300);
  });

  it('5.1 has srt, rist, setts, zmq, a native av1 decoder and libdav1d; the 2018 4.1 has none of them', () => {
    for (const [caps, present] of [
      [v51, true],
      [v41, false],
    ] as const) {
      expect(caps.protocols.input.has('srt')).toBe(present);
      expect(caps.protocols.input.has('rist')).toBe(present);
      expect(caps.bsfs.has('setts')).toBe(present);
      expect(caps.filters.has('zmq')).toBe(present);
      expect(caps.decoders.has('libdav1d')).toBe(present);
      expect(caps.decoders.has('av1')).toBe(present);
    }
    expect(v41.decoders.get('libaom-av1')).toBe('av1'); // AV1 still decodes on 4.1, through libaom
  });

  it('reads the device column of newer -formats listings and every alias of a comma-separated name', () => {
    const f = parseFormats(
      ' D. = Demuxing supported\n --\n D d alsa            ALSA audio output\n DE  mov,mp4,m4a  QuickTime\n',
    );
    expect([...f.demuxers]).toEqual(['alsa', 'mov', 'mp4', 'm4a']);
    expect([...f.muxers]).toEqual(['mov', 'mp4', 'm4a']);
  });
});

describe('what the relay needs', () => {
  it('the 4.1 build lacks exactly srt and setts; 5.1 lacks nothing', () => {
    expect(lackingNeeds(v41).map((n) => `${n.kind}:${n.name}`)).toEqual(['protocol:srt', 'bsf:setts']);
    expect(lackingNeeds(v51)).toEqual([]);
  });

  it.each([
    ['srt://127.0.0.1:9000?mode=caller', ['protocol:srt']],
    ['rtmp://cdn.example/live/key', ['protocol:rtmp']],
    ['rtmps://cdn.example/live/key', ['protocol:rtmps']],
    ['rtsp://10.0.0.7:554/stream', ['demuxer:rtsp']],
    ['rtsps://10.0.0.7/stream', ['demuxer:rtsp', 'protocol:tls']],
    ['https://cdn.example/live/index.m3u8?token=x', ['protocol:https', 'demuxer:hls']],
    ['http://cdn.example/a.flv', ['protocol:http']],
    ['/srv/up/room.sdp', ['demuxer:sdp', 'protocol:rtp']],
    ['/srv/up/cam.mp4', []],
  ])('%s needs %j', (url, needs) => {
    expect(upstreamNeeds(url).map((c) => `${c.kind}:${c.name}`)).toEqual(needs);
  });

  it('an srt:// upstream is missing the srt protocol on 4.1 only', () => {
    expect(missingForUpstream(v41, 'srt://127.0.0.1:9000?mode=caller')).toEqual({ kind: 'protocol', name: 'srt' });
    expect(missingForUpstream(v51, 'srt://127.0.0.1:9000?mode=caller')).toBeNull();
    expect(missingForUpstream(v41, 'rtsp://h/x')).toBeNull();
  });
});

const V = (major: number, minor: number, text = `${major}.${minor}`): FfmpegVersion => ({ text, major, minor });

describe('choosing the ffmpeg', () => {
  const deps = (o: Partial<LocateDeps> & { versions?: Record<string, FfmpegVersion | null> }): LocateDeps => ({
    which: () => null,
    bundled: () => '/nm/ffmpeg',
    version: (p) => o.versions?.[p] ?? (p === '/nm/ffmpeg' ? V(4, 1, 'N-47683') : null),
    ffprobe: (p) => (p === '/usr/bin/ffmpeg' ? '/usr/bin/ffprobe' : null),
    ...o,
  });

  it('FFMPEG_PATH wins whatever its version', () => {
    const c = chooseFfmpeg(
      '/opt/ff/ffmpeg',
      deps({ which: () => '/usr/bin/ffmpeg', versions: { '/opt/ff/ffmpeg': V(4, 4) } }),
    );
    expect(c).toMatchObject({ path: '/opt/ff/ffmpeg', source: 'FFMPEG_PATH', version: { major: 4 } });
  });

  it('a system ffmpeg ≥ 5 on PATH comes before the bundled one, with its ffprobe', () => {
    const c = chooseFfmpeg(
      undefined,
      deps({ which: () => '/usr/bin/ffmpeg', versions: { '/usr/bin/ffmpeg': V(5, 1) } }),
    );
    expect(c).toEqual({
      path: '/usr/bin/ffmpeg',
      source: 'system',
      version: V(5, 1),
      ffprobePath: '/usr/bin/ffprobe',
      passedOver: [],
    });
  });

  it('an older system ffmpeg is passed over for the bundled one, saying why', () => {
    const c = chooseFfmpeg(
      undefined,
      deps({ which: () => '/usr/local/bin/ffmpeg', versions: { '/usr/local/bin/ffmpeg': V(4, 4) } }),
    );
    expect(c).toMatchObject({ path: '/nm/ffmpeg', source: 'bundled', ffprobePath: null });
    expect(c.passedOver).toEqual(['/usr/local/bin/ffmpeg is 4.4, older than 5']);
  });

  it('without the bundled one an older system ffmpeg is still used; with nothing at all, the bare name', () => {
    const old = deps({ which: () => '/usr/bin/ffmpeg', bundled: () => null, versions: { '/usr/bin/ffmpeg': V(4, 3) } });
    expect(chooseFfmpeg(undefined, old)).toMatchObject({ path: '/usr/bin/ffmpeg', source: 'system' });
    expect(chooseFfmpeg(undefined, deps({ bundled: () => null }))).toMatchObject({ path: 'ffmpeg', version: null });
  });
});

describe('the start-up report', () => {
  const bundled = {
    path: '/nm/ffmpeg',
    source: 'bundled' as const,
    version: V(4, 1, 'N-47683-g0e8eb07980-static'),
    ffprobePath: null,
    passedOver: [],
  };

  it('names the bundled 4.1, then one line for each thing it lacks and what that disables', () => {
    const r = startupReport(bundled, v41);
    expect(r.summary).toBe(
      'using ffmpeg 4.1 (N-47683-g0e8eb07980-static, bundled) at /nm/ffmpeg, no ffprobe beside it',
    );
    expect(r.warnings).toEqual([
      'ffmpeg lacks the srt protocol → disabled: srt:// upstreams (refused with 50008)',
      "ffmpeg lacks the setts bitstream filter → disabled: rewriting an upstream's timestamps without re-encoding",
      'ffmpeg 4.1 is older than 5 (the bundled 2018 build): install a current one with `apt-get install -y ffmpeg` (or set FFMPEG_PATH)',
    ]);
  });

  it('has nothing to warn about with Debian 5.1; an ffmpeg that cannot run is said once', () => {
    const system = { ...bundled, path: '/usr/bin/ffmpeg', source: 'system' as const, version: V(5, 1, '5.1.9') };
    expect(startupReport({ ...system, ffprobePath: '/usr/bin/ffprobe' }, v51)).toEqual({
      summary: 'using ffmpeg 5.1 (5.1.9, system) at /usr/bin/ffmpeg, ffprobe at /usr/bin/ffprobe',
      warnings: [],
    });
    const gone = startupReport({ ...system, version: null }, null as FfmpegCapabilities | null);
    expect(gone.warnings).toEqual(['/usr/bin/ffmpeg could not be run: no channel can start']);
  });

  it('a build without libx264 says tiers and watermarks go, and a missing rtmp that the relay cannot work', () => {
    const poor: FfmpegCapabilities = {
      ...v51,
      encoders: new Map([...v51.encoders].filter(([n]) => n !== 'libx264')),
      protocols: { input: new Set([...v51.protocols.input].filter((p) => p !== 'rtmp')), output: v51.protocols.output },
    };
    const w = startupReport({ ...bundled, version: V(6, 0) }, poor).warnings;
    expect(w[0]).toBe(
      'ffmpeg lacks the rtmp protocol → the relay cannot work: no reading the ingest and publishing every channel into the media server',
    );
    expect(w[1]).toMatch(/^ffmpeg lacks the libx264 encoder → disabled: rate tiers 550\/900 and watermarks/);
  });
});
