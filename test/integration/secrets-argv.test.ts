/**
 * No secrets in ffmpeg's argv (issue 10, item 6): what a local user sees with `ps` of a password channel's relay
 * ffmpeg holds no password hash and no play token, and its internal URLs carry single-use run tokens only: replayed,
 * expired or of an older run, they are refused (publish and ingest read). The channel stays protected meanwhile.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decode, fetchText, readFlv } from '../helpers/media.js';
import { RawRtmpPublisher } from '../helpers/rtmp-client.js';
import { eventually, ffmpegsMentioning, fixture, sleep, startStack, type Stack } from '../helpers/stack.js';
import { hashChannelPassword, playTokenOf } from '../../src/channels/password.js';
import { RUN_TOKEN_TTL_MS, runTokenQuery } from '../../src/auth/run-tokens.js';

const PASSWORD = 'n0t-in-argv';
let stack: Stack;
let secret: string;
let id: string;
let urls: { type: number; playUrl: string }[];
/** The relay ffmpeg's command line as `ps` shows it, captured once it runs. */
let psLine: string;
let argv: string[];

const gen = async () => JSON.parse((await stack.redis.get(`${stack.prefix}:channel:${id}`))!).runGen as number;
const rtmpUrlOf = (app: string) => argv.find((a) => a.startsWith(`rtmp://127.0.0.1:${stack.rtmpPort}/${app}/`))!;
const queryOf = (url: string) => Object.fromEntries(new URL(url).searchParams);
/** A publish of the channel stream with `nameWithQuery`: whether the media server closed it within a second. */
async function publishRefused(nameWithQuery: string): Promise<boolean> {
  const p = await RawRtmpPublisher.publish(stack.rtmpPort, 'live', nameWithQuery).catch(() => null);
  if (!p) return true;
  await eventually(async () => p.closed, 1000).catch(() => undefined);
  const refused = p.closed;
  if (!refused) await p.end();
  return refused;
}

beforeAll(async () => {
  stack = await startStack();
  secret = (await stack.redis.get(`${stack.prefix}:internal-secret`))!;
  await stack.publish({ roomId: 1001, userId: 'bob', srcType: 0 }, fixture('bob-camera.mp4'));
  const r = await stack.request('POST', '/v1/push/start', {
    roomId: 1001,
    userId: 'bob',
    srcType: 0,
    option: { encode: 3, channelPassword: PASSWORD },
  });
  expect(r.body.code, JSON.stringify(r.body)).toBe(0);
  ({ channelId: id, urls } = r.body);
  const [pid] = await eventually(async () => (ffmpegsMentioning(id).length === 1 ? ffmpegsMentioning(id) : null));
  const { stdout } = await promisify(execFile)('ps', ['-ww', '-o', 'args=', '-p', String(pid)]);
  psLine = stdout.trim();
  argv = psLine.split(/\s+/);
});

afterAll(async () => {
  await stack?.close();
});

describe('the relay ffmpeg of a password channel, as `ps` shows it', () => {
  it('carries neither the password, its hash nor the play token, and each internal URL only a short-lived run token', async () => {
    const hash = hashChannelPassword(id, PASSWORD);
    expect(psLine).toContain(`/live/${id}`);
    for (const secretText of [PASSWORD, hash, playTokenOf(hash), secret]) expect(psLine).not.toContain(secretText);
    expect(psLine).not.toMatch(/[?&]ph=/);
    expect(psLine).not.toMatch(/[0-9a-f]{64}/);
    const runGen = await gen();
    for (const url of [rtmpUrlOf('live'), rtmpUrlOf('ingest')]) {
      const q = queryOf(url);
      expect(Object.keys(q).sort()).toEqual(['ch', 'exp', 'gen', 'nonce', 'token']);
      expect([q.ch, Number(q.gen)]).toEqual([id, runGen]);
      expect(Number(q.exp) - Date.now()).toBeLessThanOrEqual(RUN_TOKEN_TTL_MS);
    }
  });

  it('its publish token, replayed, is refused: the channel keeps its one publisher', async () => {
    const [before] = ffmpegsMentioning(id);
    const url = rtmpUrlOf('live');
    expect(await publishRefused(`${id}?${url.split('?')[1]}`)).toBe(true);
    await sleep(1000);
    expect(ffmpegsMentioning(id)).toEqual([before]);
    expect((await stack.request('GET', `/v1/push/${id}`)).body.channel.state).toBe('live');
  });

  it('its ingest read token, replayed, is refused; a fresh token of the same run reads', async () => {
    const url = rtmpUrlOf('ingest');
    await expect(decode(url, { frames: 1, timeoutMs: 8000 })).rejects.toThrow();
    const path = new URL(url).pathname;
    const fresh = `${url.split('?')[0]}?${runTokenQuery(secret, 'read', path, { channelId: id, gen: await gen() })}`;
    expect((await decode(fresh, { frames: 1, timeoutMs: 15000 })).frames).toBeGreaterThan(0);
  });

  it('expired tokens and tokens of an older run are refused, publish and read alike', async () => {
    const live = `/live/${id}`;
    const ingest = new URL(rtmpUrlOf('ingest'));
    const run = { channelId: id, gen: await gen() };
    const expired = (kind: 'publish' | 'read', p: string) =>
      runTokenQuery(secret, kind, p, run, Date.now() - RUN_TOKEN_TTL_MS - 1000);
    const older = (kind: 'publish' | 'read', p: string) => runTokenQuery(secret, kind, p, { ...run, gen: run.gen - 1 });
    expect(await publishRefused(`${id}?${expired('publish', live)}`)).toBe(true);
    expect(await publishRefused(`${id}?${older('publish', live)}`)).toBe(true);
    const base = `rtmp://127.0.0.1:${stack.rtmpPort}${ingest.pathname}`;
    await expect(
      decode(`${base}?${expired('read', ingest.pathname)}`, { frames: 1, timeoutMs: 8000 }),
    ).rejects.toThrow();
    await expect(decode(`${base}?${older('read', ingest.pathname)}`, { frames: 1, timeoutMs: 8000 })).rejects.toThrow();
    expect((await stack.request('GET', `/v1/push/${id}`)).body.channel.state).toBe('live');
    const media = stack.procs.find((p) => p.name === 'media')!.output.join('\n');
    for (const why of ['run token used before', 'expired run token', 'stale run']) expect(media).toContain(why);
  });

  it('the channel stays protected over RTMP, HTTP-FLV and HLS, and plays with its password', async () => {
    const rtmp = `rtmp://127.0.0.1:${stack.rtmpPort}/live/${id}`;
    await expect(decode(rtmp, { frames: 1, timeoutMs: 8000 })).rejects.toThrow();
    expect((await decode(`${rtmp}?pwd=${PASSWORD}`, { frames: 3 })).frames).toBeGreaterThan(0);
    const flv = urls.find((u) => u.type === 2)!.playUrl;
    expect((await fetch(flv)).status).toBe(401);
    expect((await readFlv(`${flv}?pwd=${PASSWORD}`)).summary.keyframe).toBe(true);
    const hls = urls.find((u) => u.type === 1)!.playUrl;
    expect((await fetch(hls)).status).toBe(401);
    expect(await fetchText(`${hls}?pwd=${PASSWORD}`)).toMatch(/#EXTM3U/);
  });
});
