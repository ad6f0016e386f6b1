/**
 * Push targets (issue 14): a channel relayed to external destinations, each by its own ffmpeg reading the channel back
 * from the media server. A local nginx-rtmp stands in for the CDN: what it receives decodes (video and audio); killing
 * it marks the target `retrying` (webhook target.failed) while the channel's own FLV viewer sees no gap; restarting it
 * makes the target `live` again (target.recovered). A destination that accepts TCP and never reads, and one that
 * refuses, disturb neither the channel nor the other target; the refusing one ends `failed` (target.failed, final).
 * Hostile URLs are refused with 50002 and a hint; stream keys appear in no log line of the stack.
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePorts } from '../../src/dev/redis.js';
import { decode, flvTags } from '../helpers/media.js';
import { NginxRtmp, nginxRtmpMissing } from '../helpers/nginx-rtmp.js';
import { RelayClient } from '../../src/client/index.js';
import { ChannelStore } from '../../src/channels/store.js';
import { Keys } from '../../src/redis/index.js';
import {
  eventually,
  FFMPEG,
  ffmpegsMentioning,
  fixture,
  sleep,
  startStack,
  webhookReceiver,
  type ReceivedHook,
  type Stack,
} from '../helpers/stack.js';

const missing = nginxRtmpMissing();
if (missing) console.warn(`push-targets.test skipped: ${missing}`);

const KEY = 'sk-live-4f1e2d3c9b8a';
const STALL_KEY = 'sk-stall-77aa66bb55cc';
const REFUSED_KEY = 'sk-refused-0d0e0f';
const SRT_KEY = 'sk-srt-9a8b7c6d';
const DENIED_KEY = 'sk-denied-5e6f7a8b';
const OWN_KEY = 'sk-own-1a2b3c4d';
const UPPER_KEY = 'sk-upper-2b3c4d5e';
const QUERY_KEY = 'sk-query-6c7d8e9f';
const COLON_KEY = 'sk-colon-3d4e5f6a';
const hasSrt = /\bsrt\b/.test(execFileSync(FFMPEG, ['-hide_banner', '-protocols'], { encoding: 'utf8' }));
const PASSWORD = 'pw-of-the-channel';
let stack: Stack;
let nginx: NginxRtmp;
let staller: net.Server;
const stalled: net.Socket[] = [];
let receiver: Awaited<ReturnType<typeof webhookReceiver>>;
const hooks: ReceivedHook[] = [];
/** Every line the stack's processes wrote since the start. */
const logs: string[] = [];
let id: string;
let flvUrl: string;
let refusedPort: number;

type Target = {
  targetId: string;
  url: string;
  state: string;
  bytesSent: number;
  attempts: number;
  lastError: string | null;
};
const targets = async (): Promise<Target[]> => (await stack.request('GET', `/v1/push/${id}/targets`)).body.targets;
const targetOf = async (key: string) => (await targets()).find((t) => t.url.includes(key));
const hooksOf = (type: string, targetId: string) =>
  hooks.filter((h) => h.type === type && h.data.targetId === targetId).map((h) => h.data);

/** The channel's own ffmpegs, and the ffmpegs of its target with `key` (theirs have a send buffer). */
function channelFfmpegs(key: string): { own: number[]; target: number[] } {
  const cmd = (pid: number) => {
    try {
      return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch {
      return '';
    }
  };
  const all = ffmpegsMentioning(id);
  return {
    own: all.filter((p) => !cmd(p).includes('send_buffer_size')),
    target: all.filter((p) => cmd(p).includes(key)),
  };
}

/** An HTTP-FLV viewer of the channel: each video tag's arrival (wall clock) and FLV timestamp; whether it was closed. */
class Viewer {
  readonly video: { at: number; ts: number }[] = [];
  ended = false;
  private readonly req: http.ClientRequest;
  constructor(url: string) {
    const parse = flvTags((t) => {
      if (t.type === 9) this.video.push({ at: Date.now(), ts: t.ts });
    });
    this.req = http.get(url, (res) => {
      res.on('data', parse);
      res.on('end', () => (this.ended = true));
      res.on('error', () => (this.ended = true));
    });
    this.req.on('error', () => (this.ended = true));
  }
  /** Largest gap between video tags from `from` on: in arrival time and in FLV timestamps; and whether ts went back. */
  gaps(from: number): { wallMs: number; tsMs: number; backwards: boolean } {
    const v = this.video.filter((x) => x.at >= from);
    const steps = v.slice(1).map((x, i) => ({ wall: x.at - v[i]!.at, ts: x.ts - v[i]!.ts }));
    return {
      wallMs: v.length < 2 ? Infinity : Math.max(...steps.map((s) => s.wall)),
      tsMs: v.length < 2 ? Infinity : Math.max(...steps.map((s) => s.ts)),
      backwards: steps.some((s) => s.ts < 0),
    };
  }
  close(): void {
    this.req.destroy();
  }
}
/** The viewer saw the channel go on: tags kept arriving and their timestamps kept running, the connection open. */
function expectNoGap(viewer: Viewer, from: number): { wallMs: number; tsMs: number } {
  const g = viewer.gaps(from);
  expect(g.wallMs).toBeLessThan(1500);
  expect(g.tsMs).toBeLessThan(1500);
  expect(g.backwards).toBe(false);
  expect(viewer.ended).toBe(false);
  expect(viewer.video.at(-1)!.at).toBeGreaterThan(Date.now() - 1500);
  return g;
}

beforeAll(async () => {
  if (missing) return;
  const [nginxPort, stallPort, freeOne] = (await freePorts(3)) as [number, number, number];
  refusedPort = freeOne;
  nginx = new NginxRtmp(nginxPort);
  await nginx.start();
  // accepts connections and never reads a byte (a destination that stalls)
  staller = net.createServer((s) => {
    s.pause();
    stalled.push(s);
  });
  await new Promise<void>((r) => staller.listen(stallPort, '127.0.0.1', () => r()));
  receiver = await webhookReceiver(hooks);
  stack = await startStack({
    env: {
      RELAY_LOG_LEVEL: 'debug',
      RELAY_TARGET_MAX_RETRIES: '6',
      RELAY_TARGET_BACKOFF_MS: '200',
      RELAY_TARGET_STALL_MS: '2000',
      RELAY_WEBHOOK_BACKOFF_MS: '200',
    },
  });
  for (const p of stack.procs) {
    p.child.stdout!.on('data', (d: Buffer) => logs.push(d.toString()));
    p.child.stderr!.on('data', (d: Buffer) => logs.push(d.toString()));
  }
  expect((await stack.request('PUT', '/v1/webhook', { url: receiver.url })).body.code).toBe(0);
  // 1.6 Mbit/s: a frozen destination's TCP buffers (some 400 KB on loopback) fill in seconds, as at a CDN's rates
  await stack.publish({ roomId: 1001, userId: 'alice', srcType: 0 }, fixture('alice-camera.mp4'));
  const r = await stack.request('POST', '/v1/push/start', {
    roomId: 1001,
    userId: 'alice',
    srcType: 0,
    option: {
      encode: 3,
      channelPassword: PASSWORD,
      pushTargets: [
        { url: `rtmp://127.0.0.1:${nginxPort}/live2/${KEY}` },
        { url: `rtmp://127.0.0.1:${stallPort}/live2/${STALL_KEY}` },
      ],
    },
  });
  expect(r.body.code, JSON.stringify(r.body)).toBe(0);
  id = r.body.channelId;
  flvUrl = `${r.body.urls.find((u: { type: number }) => u.type === 2).playUrl}?pwd=${PASSWORD}`;
}, 90_000);

afterAll(async () => {
  if (missing) return;
  await stack?.close();
  await nginx?.close();
  for (const s of stalled) s.destroy();
  staller?.close();
  receiver?.close();
});

describe.skipIf(!!missing)('push targets', () => {
  it('relays the password channel to nginx-rtmp: live, bytes counted, what it receives decodes with audio', async () => {
    const t = await eventually(async () => {
      const x = await targetOf(KEY);
      return x?.state === 'live' && x.bytesSent > 50_000 ? x : null;
    }, 20_000);
    expect(t.url).toBe(`rtmp://127.0.0.1:${nginx.port}/live2/${KEY}`); // the owning app sees its URL
    const back = await decode(`rtmp://127.0.0.1:${nginx.port}/live2/${KEY}`, { frames: 30, timeoutMs: 20_000 });
    expect(back.videoCodec).toBe('h264');
    expect(back.audioCodec).toBe('aac');
    expect(back.frames).toBeGreaterThanOrEqual(30);
    expect(nginx.recordings().length).toBeGreaterThan(0);
    // the channel view of GET /v1/push/{id} shows the targets with scheme and host only
    const view = (await stack.request('GET', `/v1/push/${id}`)).body;
    expect(JSON.stringify(view)).not.toContain(KEY);
    expect(view.pushTargets).toContainEqual(
      expect.objectContaining({ targetId: t.targetId, url: `rtmp://127.0.0.1:${nginx.port}/***` }),
    );
    const metrics = (await stack.request('GET', '/metrics', undefined, { authorization: stack.adminAuth }))
      .body as string;
    expect(metrics).toContain(`relay_push_target_state{channel="${id}",target="${t.targetId}",state="live"} 1`);
    expect(metrics).toMatch(new RegExp(`relay_push_target_bytes\\{channel="${id}",target="${t.targetId}"\\} [1-9]`));
    expect(metrics).not.toContain(KEY);
  });

  it('a destination that never reads stays off live, without disturbing the channel or the other target', async () => {
    const viewer = new Viewer(flvUrl);
    const from = Date.now();
    await sleep(6000);
    const stall = (await targetOf(STALL_KEY))!;
    expect(stall.state).not.toBe('live');
    expect(stall.bytesSent).toBe(0);
    expect((await targetOf(KEY))!.state).toBe('live');
    expectNoGap(viewer, from + 1000);
    viewer.close();
  });

  it('nginx killed: the target retries (target.failed) while the channel FLV viewer sees no gap; back: live again (target.recovered)', async () => {
    const viewer = new Viewer(flvUrl);
    await eventually(async () => (viewer.video.length > 10 ? true : null), 10_000);
    const live = (await targetOf(KEY))!;
    const killedAt = Date.now();
    await nginx.stop();
    await eventually(async () => ((await targetOf(KEY))?.state === 'retrying' ? true : null), 10_000);
    const retryingMs = Date.now() - killedAt;
    await eventually(async () => (hooksOf('target.failed', live.targetId).some((d) => d.final === false) ? 1 : null));
    const failed = hooksOf('target.failed', live.targetId)[0]!;
    expect(String(failed.url)).not.toContain(KEY);
    expect(failed).toMatchObject({ final: false, attempts: expect.any(Number), error: expect.any(String) });
    await sleep(1000);
    await nginx.start();
    const upAt = Date.now();
    await eventually(async () => ((await targetOf(KEY))?.state === 'live' ? true : null), 20_000);
    const recoveryMs = Date.now() - upAt;
    expect((await targetOf(KEY))!.lastError).toBeNull(); // cleared once live again
    await eventually(async () => (hooksOf('target.recovered', live.targetId).length ? true : null));
    expect(hooksOf('target.recovered', live.targetId)).toHaveLength(1);
    const gap = expectNoGap(viewer, killedAt);
    console.log(
      `target retrying ${retryingMs} ms after nginx died; live ${recoveryMs} ms after nginx came back; viewer max gap ${gap.wallMs} ms (FLV timestamps ${gap.tsMs} ms)`,
    );
    viewer.close();
  });

  it('nginx frozen mid-stream (connection open, nothing read): killed as stalled, retried, live again once it runs', async () => {
    const viewer = new Viewer(flvUrl);
    await eventually(async () => (viewer.video.length > 10 ? true : null), 10_000);
    const targetId = (await targetOf(KEY))!.targetId;
    const before = hooksOf('target.failed', targetId).length;
    const frozenAt = Date.now();
    nginx.pause();
    // the webhook goes out the moment the target is dropped (the record's status is written at once too)
    const hook = await eventually(async () => hooksOf('target.failed', targetId)[before], 45_000);
    const stalledMs = Date.now() - frozenAt;
    expect(hook).toMatchObject({ final: false, error: expect.stringMatching(/stalled|timed out/i) });
    const t = (await targetOf(KEY))!;
    expect(t.state).not.toBe('live');
    await sleep(500);
    nginx.resume();
    const upAt = Date.now();
    await eventually(async () => ((await targetOf(KEY))?.state === 'live' ? true : null), 30_000);
    const gap = expectNoGap(viewer, frozenAt);
    console.log(
      `frozen target retrying after ${stalledMs} ms (${String(hook.error)}); live ${Date.now() - upAt} ms after nginx ran again; viewer max gap ${gap.wallMs} ms (FLV timestamps ${gap.tsMs} ms)`,
    );
    viewer.close();
  }, 100_000);

  it('the channel’s own ffmpeg hanging and restarting under a live target is no target failure: no webhook, no attempt, live again', async () => {
    await eventually(async () => ((await targetOf(KEY))?.state === 'live' ? true : null), 20_000);
    const before = (await targetOf(KEY))!;
    const hooksBefore = hooks.filter((h) => h.data.targetId === before.targetId).length;
    const { own, target: targetPids } = channelFfmpegs(KEY);
    expect(own.length).toBeGreaterThan(0);
    expect(targetPids).toHaveLength(1);
    const logsAt = logs.length;
    const restartsBefore = (await stack.request('GET', `/v1/push/${id}`)).body.restarts as number;
    const killedAt = Date.now();
    // the channel's ffmpeg hangs (its players, the target among them, are kept through a quick restart: made to hang
    // longer than the target's read timeout, RELAY_TARGET_STALL_MS, the target's input ends), then dies
    for (const pid of own) process.kill(pid, 'SIGSTOP');
    await sleep(3500);
    for (const pid of own) process.kill(pid, 'SIGKILL');
    // the channel runs again (a restart within its run), its target reads it again
    await eventually(async () => {
      const v = (await stack.request('GET', `/v1/push/${id}`)).body;
      return v.state === 'live' && v.restarts > restartsBefore ? true : null;
    }, 30_000);
    const after = await eventually(async () => {
      const t = (await targetOf(KEY))!;
      return t.state === 'live' && t.bytesSent > before.bytesSent ? t : null;
    }, 30_000);
    const liveAgainMs = Date.now() - killedAt;
    const lines = logs
      .slice(logsAt)
      .join('')
      .split('\n')
      .filter((l) => l.includes(before.targetId) && /push target|Input\/output|exit/.test(l));
    console.log(`target log lines after the channel ffmpeg was killed:\n${lines.join('\n')}`);
    expect(channelFfmpegs(KEY).target).not.toContain(targetPids[0]); // its input did end
    await sleep(1500); // a webhook queued late would show by now
    expect(hooks.filter((h) => h.data.targetId === before.targetId).length).toBe(hooksBefore);
    expect(after.attempts).toBeLessThanOrEqual(before.attempts);
    expect(after.lastError).toBeNull();
    console.log(
      `channel ffmpeg killed: target live again after ${liveAgainMs} ms, attempts ${before.attempts} → ${after.attempts}`,
    );
  }, 60_000);

  it('a destination that refuses ends failed after its retries (target.failed final), and is removed', async () => {
    const client = new RelayClient({ baseUrl: stack.api, sdkAppId: stack.sdkAppId, secretKey: stack.secretKey });
    const added = await client.addPushTarget(id, { url: `rtmp://127.0.0.1:${refusedPort}/live2/${REFUSED_KEY}/x` });
    expect(added.state).toBe('connecting');
    const t0 = Date.now();
    const tid = added.targetId;
    const t = await eventually(async () => {
      const x = await targetOf(REFUSED_KEY);
      return x?.state === 'failed' ? x : null;
    }, 30_000);
    console.log(`refusing target failed ${Date.now() - t0} ms after it was added`);
    expect(t.lastError).toMatch(/refused/i);
    expect(t.lastError).not.toContain(REFUSED_KEY); // nothing after the host, however deep the key
    expect(t.lastError).not.toContain('/live2');
    await eventually(async () => (hooksOf('target.failed', tid).some((d) => d.final === true) ? 1 : null));
    expect(JSON.stringify(hooksOf('target.failed', tid))).not.toMatch(/sk-refused|live2/);
    expect((await targetOf(KEY))!.state).toBe('live');
    // the CLI lists them too
    const listed = execFileSync(process.execPath, ['--import', 'tsx', 'src/cli/relay.ts', 'targets', id, '--json'], {
      env: {
        ...process.env,
        RELAY_API_URL: stack.api,
        RELAY_SDK_APP_ID: stack.sdkAppId,
        RELAY_SECRET_KEY: stack.secretKey,
      },
      encoding: 'utf8',
    });
    expect((JSON.parse(listed) as Target[]).find((x) => x.targetId === tid)?.state).toBe('failed');
    await client.removePushTarget(id, tid);
    expect((await client.listPushTargets(id)).map((x) => x.targetId)).not.toContain(tid);
    expect((await stack.request('DELETE', `/v1/push/${id}/targets/${tid}`)).status).toBe(404);
  });

  it('destinations that refuse the publish after taking the first bytes (nginx deny publish, the relay itself) end failed, never live', async () => {
    const urls = [
      `rtmp://127.0.0.1:${nginx.port}/denied/${DENIED_KEY}`,
      `rtmp://127.0.0.1:${stack.rtmpPort}/live/${OWN_KEY}`,
    ];
    const t0 = Date.now();
    const ids: string[] = [];
    for (const url of urls) {
      const r = await stack.request('POST', `/v1/push/${id}/targets`, { url });
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      ids.push(r.body.target.targetId);
    }
    const seen = new Set<string>();
    const failedAfter: number[] = [];
    await eventually(
      async () => {
        const all = await targets();
        for (const tid of ids) {
          const x = all.find((y) => y.targetId === tid)!;
          seen.add(x.state);
          if (x.state === 'failed' && failedAfter.length < ids.indexOf(tid) + 1) failedAfter.push(Date.now() - t0);
        }
        return ids.every((tid) => all.find((y) => y.targetId === tid)!.state === 'failed') ? true : null;
      },
      60_000,
      200,
    );
    expect(seen.has('live')).toBe(false);
    await sleep(1000);
    for (const tid of ids) {
      const t = (await targets()).find((y) => y.targetId === tid)!;
      expect(t.lastError).toBeTruthy();
      expect(t.lastError).not.toMatch(/sk-denied|sk-own|\/denied|\/live\//);
      // one webhook per target: its final target.failed (no flapping failed/recovered pairs)
      expect(hooks.filter((h) => h.data.targetId === tid).map((h) => [h.type, h.data.final])).toEqual([
        ['target.failed', true],
      ]);
      expect(hooksOf('target.failed', tid)[0]).toMatchObject({ attempts: 7 });
    }
    console.log(
      `refusing destinations failed ${failedAfter.join(' and ')} ms after they were added (nginx deny publish, the relay's own port); webhooks: ${hooks.filter((h) => ids.includes(String(h.data.targetId))).length}`,
    );
    for (const tid of ids) await stack.request('DELETE', `/v1/push/${id}/targets/${tid}`);
  }, 90_000);

  it('an upper-case scheme and host are stored in lower case and go live; a respelled duplicate is refused (409)', async () => {
    const r = await stack.request('POST', `/v1/push/${id}/targets`, {
      url: `RTMP://LOCALHOST:${nginx.port}/live2/${UPPER_KEY}`,
    });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    expect(r.body.target.url).toBe(`rtmp://localhost:${nginx.port}/live2/${UPPER_KEY}`);
    const dup = await stack.request('POST', `/v1/push/${id}/targets`, {
      url: `rtmp://127.0.0.1:${nginx.port}/live2/${KEY}?`,
    });
    expect(dup.status).toBe(409);
    expect(dup.body).toMatchObject({ code: 50002, message: expect.stringMatching(/already pushes/) });
    await eventually(async () => ((await targetOf(UPPER_KEY))?.state === 'live' ? true : null), 20_000);
    await stack.request('DELETE', `/v1/push/${id}/targets/${r.body.target.targetId}`);
  });

  it.skipIf(!hasSrt)('an srt:// target gets MPEG-TS that decodes (video and audio)', async () => {
    const [port] = (await freePorts(1)) as [number];
    const file = path.join(nginx.dir, 'srt.ts');
    const listener = spawn(
      FFMPEG,
      ['-hide_banner', '-loglevel', 'error', '-y', '-i', `srt://127.0.0.1:${port}?mode=listener`, '-c', 'copy', file],
      { stdio: 'ignore' },
    );
    const ended = new Promise((r) => listener.once('exit', r));
    try {
      await sleep(300);
      const added = await stack.request('POST', `/v1/push/${id}/targets`, {
        url: `srt://127.0.0.1:${port}?streamid=${SRT_KEY}`,
      });
      expect(added.status, JSON.stringify(added.body)).toBe(201);
      await eventually(async () => {
        const t = await targetOf(SRT_KEY);
        return t?.state === 'live' && t.bytesSent > 200_000 ? t : null;
      }, 20_000);
      await stack.request('DELETE', `/v1/push/${id}/targets/${added.body.target.targetId}`);
      await Promise.race([ended, sleep(8000)]);
      const got = await decode(file);
      expect(got.videoCodec).toBe('h264');
      expect(got.audioCodec).toBe('aac');
      expect(got.frames).toBeGreaterThan(20);
    } finally {
      listener.kill('SIGKILL');
      await ended;
    }
  });

  it('refuses hostile URLs and a sixth target with 50002, a message and a hint', async () => {
    const long = `rtmp://127.0.0.1/live2/${'k'.repeat(2100)}`;
    for (const url of [
      'file:///etc/passwd',
      '/etc/passwd',
      'http://127.0.0.1/live2/x',
      'concat:a|b',
      'rtmp://user:pass@127.0.0.1/live2/k',
      'rtmp://127.0.0.1/live2/k\r\nx',
      'rtmp://10.1.2.3/live2/k',
      'rtmp://127.0.0.1/onlyapp',
      'srt://127.0.0.1:9000?mode=listener',
      long,
    ]) {
      const r = await stack.request('POST', `/v1/push/${id}/targets`, { url });
      expect(r.body.code, url.slice(0, 60)).toBe(50002);
      expect(r.body.hint, url.slice(0, 60)).toBeTruthy();
      expect(r.body.message).not.toContain('passwd');
    }
    const more = await Promise.all(
      [1, 2, 3].map((n) =>
        stack.request('POST', `/v1/push/${id}/targets`, { url: `rtmp://127.0.0.1:${refusedPort}/a/k${n}` }),
      ),
    );
    expect(more.map((r) => r.status)).toEqual([201, 201, 201]);
    const sixth = await stack.request('POST', `/v1/push/${id}/targets`, {
      url: `rtmp://127.0.0.1:${refusedPort}/a/k6`,
    });
    expect(sixth.body.code).toBe(50002);
    expect(sixth.body.hint).toMatch(/remove/);
  });

  it('no stream key in any log line (keys in a query parameter or after a colon too); stopping the channel ends every target ffmpeg', async () => {
    for (const t of await targets())
      if (t.url.includes(`:${refusedPort}/a/`)) await stack.request('DELETE', `/v1/push/${id}/targets/${t.targetId}`);
    const keyed = [
      `rtmp://127.0.0.1:${nginx.port}/live2/stream?streamkey=${QUERY_KEY}&x=1`,
      `rtmp://127.0.0.1:${nginx.port}/live2/abc:${COLON_KEY}`,
    ];
    for (const url of keyed) {
      const r = await stack.request('POST', `/v1/push/${id}/targets`, { url });
      expect(r.status, JSON.stringify(r.body)).toBe(201);
    }
    // each has run an ffmpeg (logged its command line and stderr at debug level)
    await eventually(async () => {
      const ts = (await targets()).filter((t) => t.url.includes(QUERY_KEY) || t.url.includes(COLON_KEY));
      return ts.length === 2 && ts.every((t) => t.bytesSent > 0 || t.lastError) ? true : null;
    }, 20_000);
    await sleep(1000);
    const all = logs.join('');
    expect(all).toContain('push target'); // the targets did log
    expect(all).toContain(`-f flv rtmp://127.0.0.1:${nginx.port}/***`); // their ffmpeg command lines, URLs cut
    for (const k of [KEY, STALL_KEY, REFUSED_KEY, SRT_KEY, QUERY_KEY, COLON_KEY]) expect(all).not.toContain(k);
    const before = (await targetOf(KEY))!;
    const [logsAt, hooksAt] = [logs.length, hooks.length];
    // a stop whose message never arrived (what the API does, minus the pub/sub message): the run notices it by itself
    // and ends its targets before its own ffmpeg, so no target sees its input end
    const store = new ChannelStore(stack.redis, new Keys(stack.prefix));
    expect((await store.transition(id, ['live'], 'stopping', 'test: stop without a message')).ok).toBe(true);
    await eventually(async () => (ffmpegsMentioning(id).length === 0 ? true : null), 15_000);
    await eventually(async () => ((await stack.request('GET', `/v1/push/${id}`)).body.state === 'stopped' ? 1 : null));
    await sleep(500);
    expect(logs.slice(logsAt).join('')).not.toContain('push target input ended');
    expect(hooks.slice(hooksAt).filter((h) => h.data.targetId === before.targetId)).toEqual([]);
    // the run ended: no target claims live any more, each keeps the bytes of its run
    const after = await targets();
    for (const t of after) expect(['stopped', 'failed']).toContain(t.state);
    expect(after.find((t) => t.targetId === before.targetId)!.state).toBe('stopped');
    expect(after.find((t) => t.targetId === before.targetId)!.bytesSent).toBeGreaterThanOrEqual(before.bytesSent);
    const view = (await stack.request('GET', `/v1/push/${id}`)).body;
    expect(view.pushTargets.map((t: Target) => t.state)).not.toContain('live');
  });
});
