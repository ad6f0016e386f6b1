import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixture, sleep, startStack, type Stack } from '../helpers/stack.js';

// The web player (/player/) in a real headless Chromium against a real relay: hls.js and mpegts.js decode real media.
const CHROMIUM = '/usr/bin/chromium';
const haveChromium = fs.existsSync(CHROMIUM);
if (!haveChromium)
  console.log(`web player tests not run: no Chromium at ${CHROMIUM} (Debian: apt-get install chromium)`);

const PASSWORD = 'p@ss word/1';
type Url = { type: number; playUrl: string; rateType: number | null };

describe.skipIf(!haveChromium)('web player in Chromium', () => {
  let stack: Stack;
  let browser: Browser;
  let other: http.Server;
  let otherOrigin: string;
  const channels: Record<'tiered' | 'locked', { channelId: string; urls: Url[] }> = {} as never;
  const pages: Page[] = [];

  async function start(userId: string, option: Record<string, unknown>, roomId = 1001) {
    const r = await stack.request('POST', '/v1/push/start', { roomId, userId, srcType: 0, option });
    expect(r.body.code, JSON.stringify(r.body)).toBe(0);
    return r.body as { channelId: string; urls: Url[] };
  }

  beforeAll(async () => {
    stack = await startStack();
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-quic',
        '--no-first-run',
        '--disable-component-update',
        '--disable-sync',
        '--autoplay-policy=no-user-gesture-required',
      ],
    });
    // Another origin: a blank page at "/" and the player's files relayed from the media server under /player/.
    other = http.createServer((req, res) => {
      if (!req.url?.startsWith('/player/')) {
        res.writeHead(200, { 'Content-Type': 'text/html' });
        res.end('<!doctype html><title>other origin</title>');
        return;
      }
      fetch(`http://127.0.0.1:${stack.httpPort}${req.url}`)
        .then(async (r) => {
          res.writeHead(r.status, { 'Content-Type': r.headers.get('content-type') ?? 'application/octet-stream' });
          res.end(Buffer.from(await r.arrayBuffer()));
        })
        .catch(() => res.destroy());
    });
    await new Promise<void>((r) => other.listen(0, '127.0.0.1', r));
    otherOrigin = `http://127.0.0.1:${(other.address() as AddressInfo).port}`;
    await stack.publish({ roomId: 1001, userId: 'alice', srcType: 0 }, fixture('alice-camera.mp4'));
    await stack.publish({ roomId: 1001, userId: 'bob', srcType: 0 }, fixture('bob-camera.mp4'));
    channels.tiered = await start('alice', { encode: 3, rateTypes: [0, 10] });
    channels.locked = await start('bob', { encode: 3, channelPassword: PASSWORD });
  });

  afterAll(async () => {
    await browser?.close();
    await new Promise((r) => (other ? other.close(r) : r(undefined)));
    await stack?.close();
  });

  const player = (query: string, origin = `http://127.0.0.1:${stack.httpPort}`) => `${origin}/player/?${query}`;
  const url = (ch: { urls: Url[] }, type: number, rateType: number | null) =>
    ch.urls.find((u) => u.type === type && u.rateType === rateType)!.playUrl;

  /** A fresh page at `address`; its console and errors are kept for failure messages. */
  async function open(address: string): Promise<Page & { log: string[] }> {
    const page = Object.assign(await browser.newPage(), { log: [] as string[] });
    pages.push(page);
    page.on('console', (m) => page.log.push(`${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => page.log.push(`pageerror: ${e.message}`));
    if (address) await page.goto(address);
    return page;
  }
  const text = (page: Page, sel: string) =>
    page
      .locator(sel)
      .textContent()
      .then((t) => (t ?? '').trim());
  const closePages = () => Promise.all(pages.splice(0).map((p) => p.close()));

  /** Waits for playback, then watches it for `seconds`: how far currentTime moved and the frames decoded. */
  async function watch(page: Page & { log: string[] }, seconds = 3) {
    try {
      await page.waitForFunction(
        () => {
          const v = document.querySelector('video')!;
          return !v.paused && v.currentTime > 0.3 && v.videoWidth > 0;
        },
        undefined,
        { timeout: 30000, polling: 200 },
      );
    } catch (e) {
      throw new Error(
        `no playback: message="${await text(page, '#message')}" state="${await text(page, '#state')}"\n${page.log.join('\n')}\n${(e as Error).message}`,
      );
    }
    const before = await page.evaluate(() => document.querySelector('video')!.currentTime);
    await sleep(seconds * 1000);
    return page.evaluate((t0) => {
      const v = document.querySelector('video')!;
      const q = v.getVideoPlaybackQuality();
      return {
        advanced: v.currentTime - t0,
        frames: q.totalVideoFrames,
        dropped: q.droppedVideoFrames,
        width: v.videoWidth,
        height: v.videoHeight,
      };
    }, before);
  }

  it(
    'HLS by channel id: hls.js plays the master playlist, shows live, bitrate, size, latency and switches tiers',
    { timeout: 90000 },
    async () => {
      const page = await open(player(`channel=${channels.tiered.channelId}`));
      const seen = await watch(page);
      console.log(
        `HLS: currentTime +${seen.advanced.toFixed(2)} s in 3 s, ${seen.frames} frames decoded (${seen.dropped} dropped), ${seen.width}x${seen.height}`,
      );
      expect(seen.advanced).toBeGreaterThan(2);
      expect(seen.frames).toBeGreaterThan(0);
      expect(['1280x720', '640x360']).toContain(await text(page, '#resolution'));
      await expect.poll(() => text(page, '#state'), { timeout: 5000 }).toBe('live');
      await expect.poll(() => text(page, '#bitrate'), { timeout: 5000 }).toMatch(/^\d+ kbit\/s$/);
      await expect.poll(() => text(page, '#latency'), { timeout: 5000 }).toMatch(/^\d+\.\d s$/);
      expect(await text(page, '#source')).toBe(url(channels.tiered, 1, null));
      const options = await page.locator('#tier option').allTextContents();
      expect(options).toHaveLength(3);
      expect(options[0]).toMatch(/^auto/);
      expect(options.slice(1).join(' | ')).toMatch(/^720p · \d+ kbit\/s \| 360p · \d+ kbit\/s$/);
      expect(await page.locator('#tier').isEnabled()).toBe(true);
      // Pick the 360p tier by hand: the picture becomes 640x360 and keeps playing.
      await page.locator('#tier').selectOption({ label: options[2]! });
      await expect.poll(() => text(page, '#resolution'), { timeout: 20000 }).toBe('640x360');
      expect((await watch(page, 2)).advanced).toBeGreaterThan(1);
      await closePages();
    },
  );

  it(
    'HTTP-FLV by URL: mpegts.js plays it, the FLV tiers come from /status and switch the stream',
    { timeout: 90000 },
    async () => {
      const flv = url(channels.tiered, 2, 0);
      const page = await open(player(`url=${encodeURIComponent(flv)}`));
      const seen = await watch(page);
      console.log(
        `HTTP-FLV: currentTime +${seen.advanced.toFixed(2)} s in 3 s, ${seen.frames} frames decoded (${seen.dropped} dropped), ${seen.width}x${seen.height}`,
      );
      expect(seen.advanced).toBeGreaterThan(2);
      expect(seen.frames).toBeGreaterThan(0);
      expect(await text(page, '#resolution')).toBe('1280x720');
      await expect.poll(() => text(page, '#state'), { timeout: 5000 }).toBe('live');
      await expect.poll(() => text(page, '#bitrate'), { timeout: 5000 }).toMatch(/^\d+ kbit\/s$/);
      expect(await text(page, '#latency')).toMatch(/^\d+\.\d s$/);
      expect(await page.locator('#tier option').allTextContents()).toEqual(['original', '550 kbit/s']);
      expect(await page.locator('#tier').inputValue()).toBe(flv);
      await page.locator('#tier').selectOption({ label: '550 kbit/s' });
      await expect.poll(() => text(page, '#resolution'), { timeout: 20000 }).toBe('640x360');
      expect(await text(page, '#source')).toBe(url(channels.tiered, 2, 10));
      expect((await watch(page, 2)).advanced).toBeGreaterThan(1);
      await closePages();
    },
  );

  it('WS-FLV by channel id and protocol=ws plays', { timeout: 60000 }, async () => {
    const page = await open(player(`channel=${channels.tiered.channelId}&protocol=ws`));
    const seen = await watch(page);
    console.log(`WS-FLV: currentTime +${seen.advanced.toFixed(2)} s in 3 s, ${seen.frames} frames decoded`);
    expect(seen.advanced).toBeGreaterThan(2);
    expect(seen.frames).toBeGreaterThan(0);
    expect(await text(page, '#source')).toBe(url(channels.tiered, 2, 0).replace('http://', 'ws://'));
    await closePages();
  });

  it(
    'password: asked for when missing, "wrong password" when wrong, plays with the right one typed in',
    { timeout: 90000 },
    async () => {
      const id = channels.locked.channelId;
      const page = await open(player(`channel=${id}`));
      await expect.poll(() => text(page, '#message')).toMatch(/password protected/);
      expect(await page.locator('#password').isVisible()).toBe(true);

      await page.goto(player(`channel=${id}&pwd=wrong`));
      await expect.poll(() => text(page, '#message')).toBe('wrong password');
      expect(await page.evaluate(() => document.querySelector('video')!.currentTime)).toBe(0);

      await page.locator('#password').fill(PASSWORD);
      await page.locator('#play').click();
      const seen = await watch(page);
      console.log(`HLS with password: currentTime +${seen.advanced.toFixed(2)} s, ${seen.frames} frames decoded`);
      expect(seen.advanced).toBeGreaterThan(2);
      expect(seen.frames).toBeGreaterThan(0);
      expect(await text(page, '#message')).toBe('');
      expect(await text(page, '#state')).toBe('live');

      // A pasted FLV URL carrying the password plays as well; a wrong one in the URL is refused the same way.
      const flv = url(channels.locked, 2, 0);
      await page.goto(player(`url=${encodeURIComponent(`${flv}?pwd=nope`)}`));
      await expect.poll(() => text(page, '#message')).toBe('wrong password');
      await page.goto(player(`url=${encodeURIComponent(`${flv}?pwd=${encodeURIComponent(PASSWORD)}`)}`));
      expect((await watch(page, 2)).frames).toBeGreaterThan(0);
      await closePages();
    },
  );

  it(
    'a channel that stops while watched shows "ended", and opening a stopped channel shows "ended" at once',
    { timeout: 90000 },
    async () => {
      await stack.publish({ roomId: 1002, userId: 'carol', srcType: 0 }, fixture('bob-camera.mp4'));
      const ch = await start('carol', { encode: 3 }, 1002);
      const page = await open(player(`channel=${ch.channelId}`)); // HLS right after the start: the page waits for its playlist
      expect((await watch(page, 1)).frames).toBeGreaterThan(0);
      expect(await text(page, '#state')).toBe('live');
      const stop = await stack.request('POST', '/v1/push/stop', { channelIds: [ch.channelId] });
      expect(stop.body.results[0].code).toBe(0);
      await expect.poll(() => text(page, '#state'), { timeout: 6000 }).toBe('ended');

      const later = await open(player(`channel=${ch.channelId}`));
      await expect.poll(() => text(later, '#state')).toBe('ended');
      expect(await text(later, '#message')).toBe('the live has ended');
      await closePages();
    },
  );

  it(
    'from another origin: playlists, segments, FLV, status and refusals are readable (CORS), and the player plays there',
    { timeout: 90000 },
    async () => {
      const page = await open(`${otherOrigin}/`);
      const master = url(channels.tiered, 1, null);
      const flv = url(channels.tiered, 2, 10);
      const seen = await page.evaluate(
        async ({ master, flv, status, locked }) => {
          const playlist = await (await fetch(master)).text();
          const variant = new URL(
            playlist.split('\n').find((l) => l.endsWith('.m3u8'))!,
            master,
          ).toString();
          const media = await (await fetch(variant)).text();
          const seg = await fetch(
            new URL(
              media.split('\n').find((l) => l.endsWith('.ts'))!,
              variant,
            ),
          );
          const segBytes = (await seg.arrayBuffer()).byteLength;
          const ctrl = new AbortController();
          const res = await fetch(flv, { signal: ctrl.signal });
          const head = (await res.body!.getReader().read()).value!;
          ctrl.abort();
          const st = await (await fetch(status)).json();
          const refused = await fetch(locked);
          return {
            playlist: playlist.slice(0, 7),
            segStatus: seg.status,
            segBytes,
            flvStatus: res.status,
            flvSignature: String.fromCharCode(...head.slice(0, 3)),
            state: st.state,
            refusedStatus: refused.status,
            refusal: await refused.json(),
          };
        },
        {
          master,
          flv,
          status: `http://127.0.0.1:${stack.httpPort}/status/${channels.tiered.channelId}`,
          locked: url(channels.locked, 1, 0),
        },
      );
      expect(seen).toMatchObject({
        playlist: '#EXTM3U',
        segStatus: 200,
        flvStatus: 200,
        flvSignature: 'FLV',
        state: 'live',
        refusedStatus: 401,
        refusal: { code: 401 },
      });
      expect(seen.segBytes).toBeGreaterThan(10000);

      // The player page itself served from the other origin: status and media come from the pasted URL's origin.
      const remote = await open(player(`url=${encodeURIComponent(master)}`, otherOrigin));
      const played = await watch(remote, 2);
      console.log(
        `HLS from another origin: currentTime +${played.advanced.toFixed(2)} s, ${played.frames} frames decoded`,
      );
      expect(played.frames).toBeGreaterThan(0);
      await expect.poll(() => text(remote, '#state')).toBe('live');
      await closePages();
    },
  );
});
