import { describe, expect, it } from 'vitest';
import { buildTargetArgs } from '../../src/media/ffmpeg/target-args.js';
import { backoffFor, MAX_BACKOFF_MS, sustainMs, TargetMachine } from '../../src/targets/state.js';
import {
  checkPushTarget,
  checkTargetForm,
  duplicateTarget,
  makePushTargets,
  normaliseTargetUrl,
} from '../../src/targets/check.js';
import { redactTargetUrl as redactedTarget } from '../../src/log.js';
import { errorLine, inputEnded, targetRedactor } from '../../src/targets/supervisor.js';
import { targetView } from '../../src/channels/view.js';
import { parseEgressAllow } from '../../src/egress/index.js';
import { parseControlMessage } from '../../src/channels/messages.js';
import { RelayError } from '../../src/errors/index.js';
import type { FfmpegInfo } from '../../src/media/ffmpeg/capabilities.js';

describe('push target ffmpeg arguments', () => {
  const base = {
    input: 'rtmp://127.0.0.1:1935/live/ch_0123456789abcdef0123?ch=x&token=t',
    output: 'rtmp://cdn.example/live2/KEY',
    format: 'flv' as const,
    outputProtocols: 'rtmp,tcp',
    rwTimeoutUs: 5_000_000,
    sendBufferBytes: 262144,
  };
  it('copy the tier (video and required audio) to FLV, each side limited to its protocols', () => {
    const a = buildTargetArgs(base);
    expect(a.slice(a.indexOf('-i') - 2, a.indexOf('-i') + 2)).toEqual([
      '-protocol_whitelist',
      'rtmp,tcp',
      '-i',
      base.input,
    ]);
    expect(a.join(' ')).toContain('-map 0:v:0 -map 0:a:0 -c copy');
    expect(a.slice(-5)).toEqual(['-protocol_whitelist', 'rtmp,tcp', '-f', 'flv', base.output]);
    expect(a).toContain('-progress');
    expect(a.filter((x) => x === '-rw_timeout')).toHaveLength(2);
    expect(a.join(' ')).toContain('-send_buffer_size 262144');
  });
  it('write MPEG-TS to srt', () => {
    const a = buildTargetArgs({
      ...base,
      output: 'srt://cdn.example:9000',
      format: 'mpegts',
      outputProtocols: 'srt,udp',
    });
    expect(a.slice(-5)).toEqual(['-protocol_whitelist', 'srt,udp', '-f', 'mpegts', 'srt://cdn.example:9000']);
    expect(a).not.toContain('-flvflags');
    expect(a).not.toContain('-send_buffer_size'); // an srt output has no such option
  });
});

describe('push target state machine', () => {
  const policy = { maxRetries: 2, backoffMs: 1000, stallMs: 5000, confirmMs: 3000 };
  it('backs off 1, 2, 4 … s, capped at 30 s', () => {
    expect([1, 2, 3, 4, 5, 6, 7].map((n) => backoffFor(n, 1000))).toEqual([
      1000, 2000, 4000, 8000, 16000, 30000, 30000,
    ]);
    expect(backoffFor(100, 1000)).toBe(MAX_BACKOFF_MS);
    expect(sustainMs({ confirmMs: 3000 })).toBe(30_000);
    expect(sustainMs({ confirmMs: 20_000 })).toBe(60_000);
  });
  it('live only once bytes have flowed for confirmMs; a drop retries (target.failed with attempts), live again target.recovered', () => {
    const m = new TargetMachine(policy, 0);
    m.attemptStarted(0);
    expect(m.state).toBe('connecting');
    expect(m.sent(10)).toEqual({ changed: false, notice: null }); // first bytes: not yet accepted
    expect(m.sent(2000).changed).toBe(false);
    expect(m.state).toBe('connecting');
    expect(m.sent(3010)).toEqual({ changed: true, notice: null }); // first live: nothing to recover from
    expect(m.state).toBe('live');
    m.sent(40_000); // live for 37 s: its retries reset
    const drop = m.attemptEnded(41_000, 'Connection reset by peer');
    expect(drop).toMatchObject({
      next: 'retry',
      backoffMs: 1000,
      notice: { type: 'target.failed', data: { final: false, attempts: 0, error: 'Connection reset by peer' } },
    });
    expect(m.status(5, 41_000)).toMatchObject({ state: 'retrying', lastError: 'Connection reset by peer' });
    m.attemptStarted(42_000);
    m.sent(42_100);
    expect(m.sent(45_100)).toEqual({ changed: true, notice: { type: 'target.recovered', data: { attempts: 1 } } });
    expect(m.sent(45_600).notice).toBeNull();
    const s = m.status(9, 45_600);
    expect(s).toMatchObject({ state: 'live', attempts: 1, since: 45_100, bytesSent: 9 });
    expect(s.lastError).toBeUndefined(); // cleared once live again (the logs keep it)
  });
  it('failed after maxRetries retries in a row that never reach live, with a final target.failed', () => {
    const m = new TargetMachine(policy, 0);
    const after = [];
    for (let i = 0; i < 3; i++) {
      m.attemptStarted(i);
      after.push(m.attemptEnded(i, 'Connection refused'));
    }
    expect(after.map((a) => a.next)).toEqual(['retry', 'retry', 'failed']);
    expect(after.slice(0, 2).map((a) => (a.next === 'retry' ? a.backoffMs : 0))).toEqual([1000, 2000]);
    expect(after[0]!.notice).toBeUndefined(); // never live: no webhook until it gives up
    expect(after[2]!.notice).toEqual({
      type: 'target.failed',
      data: { final: true, attempts: 3, error: 'Connection refused' },
    });
    expect(m.state).toBe('failed');
    expect(() => m.attemptStarted(9)).toThrow();
  });
  it('a destination that refuses after the first bytes (denied publish, wrong key) is never live and ends failed', () => {
    const m = new TargetMachine(policy, 0);
    const after = [];
    let t = 0;
    for (let i = 0; i < 3; i++) {
      m.attemptStarted(t);
      expect(m.sent(t + 300).changed).toBe(false); // ffmpeg wrote its header and first packets …
      expect(m.sent(t + 800).changed).toBe(false);
      after.push(m.attemptEnded(t + 900, 'Broken pipe')); // … then the refusal arrived
      expect(m.state).not.toBe('live');
      t += 10_000;
    }
    expect(after.map((a) => a.next)).toEqual(['retry', 'retry', 'failed']);
    expect(after.slice(0, 2).map((a) => (a.next === 'retry' ? a.backoffMs : 0))).toEqual([1000, 2000]); // it grows
    expect(after.filter((a) => a.notice).map((a) => a.notice!.data)).toEqual([
      { final: true, attempts: 3, error: 'Broken pipe' },
    ]);
  });
  it('short live spells count as failures: backoff grows, failed after the retries, one target.failed per confirmed drop', () => {
    const m = new TargetMachine(policy, 0);
    const after = [];
    let t = 0;
    for (let i = 0; i < 3; i++) {
      m.attemptStarted(t);
      m.sent(t + 100);
      m.sent(t + 3200); // confirmed live …
      expect(m.state).toBe('live');
      after.push(m.attemptEnded(t + 8000, 'Broken pipe')); // … for 5 s only
      t += 60_000;
    }
    expect(after.map((a) => a.next)).toEqual(['retry', 'retry', 'failed']);
    expect(after.map((a) => (a.next === 'retry' ? a.backoffMs : 0))).toEqual([1000, 2000, 0]);
    expect(after.map((a) => a.notice!.data.final)).toEqual([false, false, true]);
    expect(after.map((a) => a.notice!.data.attempts)).toEqual([1, 2, 3]);
  });
  it('stopped with its run (a failed target stays failed)', () => {
    const m = new TargetMachine(policy, 0);
    m.attemptStarted(0);
    m.sent(1);
    m.sent(4000);
    m.stopped(5000);
    expect(m.status(77, 5000)).toMatchObject({ state: 'stopped', since: 5000, bytesSent: 77 });
  });
  it('an attempt whose input ended (the channel’s stream) is no failure: not counted, no notice, live again quietly', () => {
    const m = new TargetMachine(policy, 0);
    m.attemptStarted(0);
    m.sent(1);
    m.sent(4000); // live
    for (let i = 0; i < 10; i++) {
      m.inputGone(5000 + i * 2000);
      expect(m.state).toBe('retrying');
      m.attemptStarted(5500 + i * 2000); // more than maxRetries of them: never failed
    }
    expect(m.attempts).toBe(1);
    expect(m.sent(30_000)).toEqual({ changed: false, notice: null });
    expect(m.sent(33_000)).toEqual({ changed: true, notice: null }); // no target.recovered: nothing was announced
    expect(m.lastError).toBeUndefined();
  });
  it('a destination the egress policy refuses by now fails at once, announced (final)', () => {
    const m = new TargetMachine(policy, 0);
    m.attemptStarted(0);
    const after = m.refused(10, 'push target url points at an internal address');
    expect(after.notice).toEqual({
      type: 'target.failed',
      data: { final: true, attempts: 1, error: 'push target url points at an internal address' },
    });
    expect(m.status(0, 10)).toMatchObject({ state: 'failed', lastError: expect.stringMatching(/internal/) });
  });
  it('tells an input that ended (exit 0, or an error naming the media server) from a destination that dropped', () => {
    const exit = (code: number | null, ...stderrTail: string[]) => ({ code, expected: false, stderrTail });
    const own = '127.0.0.1:19435';
    const out = 'rtmp://cdn.example/live2/KEY';
    expect(inputEnded(exit(0), own, out)).toBe(true); // the media server ended the stream: ffmpeg ends normally
    expect(inputEnded(exit(1, 'rtmp://127.0.0.1:19435/***: Input/output error'), own, out)).toBe(true);
    expect(inputEnded(exit(1, 'av_interleaved_write_frame(): Broken pipe'), own, out)).toBe(false);
    expect(inputEnded(exit(1, 'rtmp://cdn.example/***: Connection refused'), own, out)).toBe(false);
    expect(inputEnded(exit(null, 'rtmp://127.0.0.1:19435/***: Input/output error'), own, out)).toBe(true);
    expect(inputEnded({ ...exit(0), expected: true }, own, out)).toBe(false); // ended by the supervisor
    // a destination on the relay's own media server: its errors name the same origin, so only exit 0 says it
    expect(inputEnded(exit(1, 'rtmp://127.0.0.1:19435/***: Broken pipe'), own, 'rtmp://127.0.0.1:19435/live/K')).toBe(
      false,
    );
  });
});

describe('push target URLs', () => {
  const hostile = [
    'file:///etc/passwd',
    '/etc/passwd',
    'etc/passwd',
    'http://cdn.example/live2/k',
    'https://cdn.example/live2/k',
    'rtmpt://cdn.example/live2/k',
    'concat:a|b',
    'pipe:1',
    'subfile,,start,0,end,0,,:/etc/passwd',
    'rtmp://user:pass@cdn.example/live2/k',
    'rtmp://@cdn.example/live2/k',
    'rtmp://cdn.example/live2/k\r\nx',
    'rtmp://cdn.example/live2/k x',
    'rtmp://cdn.example/live2/k\u0000',
    'rtmp://cdn.example\\@evil/live2/k',
    'rtmp://cdn.example/onlyapp',
    'rtmp:///live2/k',
    'srt://cdn.example?streamid=k',
    'srt://cdn.example:9000?mode=listener',
    'srt://cdn.example:9000?mode=rendezvous',
    `rtmp://cdn.example/live2/${'k'.repeat(2100)}`,
    '',
  ];
  for (const url of hostile)
    it(`refuses ${JSON.stringify(url.slice(0, 48))} with 50002 and a hint`, () => {
      try {
        checkTargetForm(url);
        expect.unreachable();
      } catch (e) {
        expect(e).toBeInstanceOf(RelayError);
        expect((e as RelayError).code).toBe(50002);
        expect((e as RelayError).hint).toBeTruthy();
        if (url.length > 8) expect((e as RelayError).message).not.toContain(url);
      }
    });
  it('takes rtmp, rtmps and srt URLs', () => {
    expect(checkTargetForm('rtmp://a.rtmp.youtube.com/live2/abcd-efgh')).toBe('rtmp');
    expect(checkTargetForm('RTMPS://live-api-s.facebook.com:443/rtmp/FB-1?s_bl=1')).toBe('rtmps');
    expect(checkTargetForm('srt://ingest.example:9000?streamid=#!::r=live/k,m=publish&passphrase=p')).toBe('srt');
    expect(checkTargetForm('srt://ingest.example:9000?streamid=#!::u=me@example,r=k')).toBe('srt'); // @ after the host
    expect(checkTargetForm('rtmp://cdn.example/live2/k?user=me@example')).toBe('rtmp');
  });
  const open = { egress: parseEgressAllow('') };
  it('refuses internal hosts unless RELAY_UPSTREAM_ALLOW allows them', async () => {
    for (const url of ['rtmp://127.0.0.1/a/k', 'rtmp://10.0.0.7/a/k', 'rtmp://[::1]/a/k', 'rtmp://169.254.169.254/a/k'])
      await expect(checkPushTarget(url, open), url).rejects.toMatchObject({
        code: 50002,
        hint: /RELAY_UPSTREAM_ALLOW/,
      });
    await expect(checkPushTarget('rtmp://127.0.0.1/a/k', { egress: parseEgressAllow('127.0.0.1') })).resolves.toBe(
      'rtmp',
    );
  });
  it('refuses srt with 50008 when the ffmpeg has no srt output', async () => {
    const ffmpeg = async () =>
      ({
        version: { major: 4, minor: 1 },
        caps: { protocols: { input: new Set(['rtmp']), output: new Set(['rtmp', 'rtmps']) } },
      }) as unknown as FfmpegInfo;
    const deps = { egress: parseEgressAllow('127.0.0.1'), ffmpeg };
    await expect(checkPushTarget('srt://127.0.0.1:9000', deps)).rejects.toMatchObject({ code: 50008 });
    await expect(checkPushTarget('rtmp://127.0.0.1/a/k', deps)).resolves.toBe('rtmp');
  });
  it('makes targets with ids, refusing a tier the channel has not', async () => {
    const deps = { egress: parseEgressAllow('127.0.0.1') };
    const [t] = await makePushTargets([{ url: 'rtmp://127.0.0.1/a/k', rateType: 10 }], [0, 10], deps, 5);
    expect(t).toMatchObject({ url: 'rtmp://127.0.0.1/a/k', rateType: 10, addedAt: 5 });
    expect(t!.targetId).toMatch(/^tg_[0-9a-f]{16}$/);
    await expect(makePushTargets([{ url: 'rtmp://127.0.0.1/a/k', rateType: 20 }], [0], deps)).rejects.toMatchObject({
      code: 50002,
    });
  });
  it('stores URLs with scheme and host in lower case, without default port or empty query', async () => {
    expect(normaliseTargetUrl('RTMP://CDN.Example:1935/Live2/KeY?')).toBe('rtmp://cdn.example/Live2/KeY');
    expect(normaliseTargetUrl('rtmps://H:443/app/K#')).toBe('rtmps://h/app/K');
    expect(normaliseTargetUrl('rtmp://[::1]:1936/a/K')).toBe('rtmp://[::1]:1936/a/K');
    expect(normaliseTargetUrl('SRT://H:9000?streamid=AbC')).toBe('srt://h:9000?streamid=AbC');
    const deps = { egress: parseEgressAllow('127.0.0.1') };
    const [t] = await makePushTargets([{ url: 'RTMP://127.0.0.1/a/K' }], [0], deps);
    expect(t!.url).toBe('rtmp://127.0.0.1/a/K');
  });
  it('refuses a destination given twice at start (respellings too) like an add of one it has: 409', async () => {
    const deps = { egress: parseEgressAllow('127.0.0.1') };
    for (const twice of [
      ['rtmp://127.0.0.1/a/K', 'rtmp://127.0.0.1/a/K'],
      ['rtmp://127.0.0.1/a/K', 'RTMP://127.0.0.1:1935/a/K?'],
    ])
      await expect(
        makePushTargets(
          twice.map((url) => ({ url })),
          [0],
          deps,
        ),
      ).rejects.toMatchObject({
        code: 50002,
        status: 409,
        message: duplicateTarget().message,
        hint: duplicateTarget().hint,
      });
    await expect(
      makePushTargets([{ url: 'rtmp://127.0.0.1/a/K' }, { url: 'rtmp://127.0.0.1/a/k' }], [0], deps),
    ).resolves.toHaveLength(2); // a stream key's case matters
  });
  it('shows scheme and host only outside the owning app, and redacts keys in errors', () => {
    expect(redactedTarget('rtmp://a.rtmp.youtube.com/live2/abcd-efgh')).toBe('rtmp://a.rtmp.youtube.com/***');
    expect(redactedTarget('srt://h:9000?streamid=k&passphrase=p')).toBe('srt://h:9000/***');
    expect(errorLine('rtmp://h/live2/SECRETKEY: Connection refused\n')).toBe('rtmp://h/***: Connection refused');
    // every URL in the text down to scheme, host and port, however deep its secret
    expect(errorLine('rtmp://127.0.0.1:19436/live/DEEPKEY/x: Broken pipe')).toBe(
      'rtmp://127.0.0.1:19436/***: Broken pipe',
    );
    expect(errorLine('Error opening RTMPS://H:443/app/K1/K2?x=K3, closing')).toBe(
      'Error opening RTMPS://H:443/***, closing',
    );
    expect(errorLine('srt://h:9000?streamid=#!::r=live/DEEP,m=publish&passphrase=P2: failed')).toBe(
      'srt://h:9000/***: failed',
    );
    expect(errorLine('srt://h:9000?streamid=SECRET&passphrase=P2 failed')).not.toMatch(/SECRET|P2/);
  });
  it('a target ffmpeg’s command line and stderr are logged with every URL cut to scheme and host', () => {
    const cmd = targetRedactor(
      'ffmpeg -i rtmp://127.0.0.1:19435/live/ch_0123456789abcdef0123?token=T0K -f flv rtmp://h/live/s?streamkey=XYZ1',
    );
    expect(cmd).toBe('ffmpeg -i rtmp://127.0.0.1:19435/*** -f flv rtmp://h/***');
    expect(targetRedactor('rtmps://h:443/app/abc:S3CRET?s_bl=1&a=TOK: Broken pipe')).toBe(
      'rtmps://h:443/***: Broken pipe',
    );
  });
});

describe('push target views', () => {
  const t = { targetId: 'tg_00000000000000aa', url: 'rtmp://cdn.example/live2/K', addedAt: 1 };
  const live = { state: 'live' as const, bytesSent: 500, attempts: 0, since: 2, updatedAt: 9 };
  it('claim no target live once the channel is not live (its bytes kept); a failed one stays failed', () => {
    expect(targetView({ state: 'live', targetStatus: { [t.targetId]: live } }, t, true).state).toBe('live');
    for (const state of ['stopped', 'failed', 'interrupted', 'stopping'] as const) {
      const v = targetView({ state, targetStatus: { [t.targetId]: live } }, t, false);
      expect(v).toMatchObject({ state: 'stopped', bytesSent: 500, since: 9 });
      expect(targetView({ state, targetStatus: {} }, t, false).state).toBe('stopped');
      const failed = { ...live, state: 'failed' as const };
      expect(targetView({ state, targetStatus: { [t.targetId]: failed } }, t, false).state).toBe('failed');
    }
  });
});

describe('control messages', () => {
  it('carry a targets refresh', () => {
    const m = { type: 'targets', channelId: 'ch_0123456789abcdef0123' };
    expect(parseControlMessage(JSON.stringify(m))).toEqual(m);
    expect(parseControlMessage(JSON.stringify({ ...m, type: 'other' }))).toBeNull();
  });
});
