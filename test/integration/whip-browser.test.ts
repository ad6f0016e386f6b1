/**
 * A browser tab as a room member: headless Chromium with a fake camera and microphone publishes through the relay's
 * /publish/ page (WHIP) — once with H.264 (copied), once with VP8 forced (converted) — and a push of the member decodes
 * as H.264 + AAC (ORIGINAL on FLV and HLS, and a 550 tier). Closing the tab ends the session, the member leaves and its
 * channel is interrupted; a new tab resumes it (autoResume) on the same URLs.
 */
import fs from 'node:fs';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decode } from '../helpers/media.js';
import { probeHls } from '../helpers/outputs.js';
import { eventually, startStack, type Stack } from '../helpers/stack.js';

const CHROMIUM = '/usr/bin/chromium';
const haveChromium = fs.existsSync(CHROMIUM);
if (!haveChromium)
  console.log(`WHIP browser tests not run: no Chromium at ${CHROMIUM} (Debian: apt-get install chromium)`);

describe.skipIf(!haveChromium)('WHIP publisher page in Chromium', () => {
  let stack: Stack;
  let browser: Browser;

  beforeAll(async () => {
    stack = await startStack({ env: { RELAY_START_RATE_LIMIT_MS: '0' } });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--no-first-run',
        '--disable-component-update',
        '--disable-sync',
        '--use-fake-device-for-media-stream',
        '--use-fake-ui-for-media-stream',
      ],
    });
  });

  afterAll(async () => {
    await browser?.close();
    await stack?.close();
  });

  const member = async (userId: string) => {
    const r = await stack.request('GET', '/v1/rooms/5001');
    return (r.body.upstreams ?? []).find((u: { userId: string }) => u.userId === userId) ?? null;
  };

  type Url = { type: number; playUrl: string; rateType: number | null };
  const urlOf = (urls: Url[], type: number, rateType: number | null) =>
    urls.find((u) => u.type === type && u.rateType === rateType)!.playUrl;

  /** Opens /publish/ publishing the fake camera as `userId` with `codec`; resolves once the member is registered. */
  async function publish(userId: string, codec: 'h264' | 'vp8') {
    const e = (await stack.request('GET', `/v1/rooms/5001/ingest?userId=${userId}&srcType=0`)).body;
    const page = await browser.newPage();
    const log: string[] = [];
    page.on('console', (m) => log.push(m.text()));
    const q = new URLSearchParams({ url: e.whipUrl, token: e.whipToken, codec, autostart: '1' });
    const t0 = Date.now();
    await page.goto(`http://127.0.0.1:${stack.httpPort}/publish/?${q}`);
    await page.waitForSelector('#state[data-state="connected"]', { timeout: 15000 }).catch(async (err: Error) => {
      throw new Error(`${err.message}: state ${await page.textContent('#state')}; ${log.join(' | ')}`);
    });
    const up = await eventually(() => member(userId), 15000);
    expect(up.source).toBe('whip');
    const registeredMs = Date.now() - t0;
    // the page sent what it was asked to: H.264 (copied by the bridge) or VP8 (converted)
    const info = await eventually(async () => {
      const text = (await page.textContent('#info')) ?? '';
      return new RegExp(`codec video/${codec}`, 'i').test(text) ? text : null;
    }, 5000);
    return { page, registeredMs, info: info.replace(/\n/g, '; ') };
  }

  async function state(channelId: string, want: string) {
    return eventually(async () => (await stack.request('GET', `/v1/push/${channelId}`)).body.state === want, 20000);
  }

  it('H.264 from /publish/: ORIGINAL (FLV, HLS) and a 550 tier decode as H.264 + AAC; closing the tab interrupts the channel, reopening resumes it on the same URLs', async () => {
    const tab = await publish('tab-h264', 'h264');
    const t1 = Date.now();
    const start = await stack.request('POST', '/v1/push/start', {
      roomId: 5001,
      userId: 'tab-h264',
      srcType: 0,
      option: { encode: 3, rateTypes: [0, 10], autoResume: true },
    });
    expect(start.body.code, JSON.stringify(start.body)).toBe(0);
    const startMs = Date.now() - t1;
    const urls = start.body.urls as Url[];
    console.log(`Chromium h264: page → member ${tab.registeredMs} ms, start answered ${startMs} ms; ${tab.info}`);
    for (const rateType of [0, 10]) {
      const d = await decode(urlOf(urls, 2, rateType), { frames: 30 });
      expect(d, `FLV rateType ${rateType}`).toMatchObject({ videoCodec: 'h264', audioCodec: 'aac' });
    }
    const hls = await probeHls(urlOf(urls, 1, 0), 1);
    expect(hls.segments[0]).toMatchObject({ videoCodec: 'h264', audioCodec: 'aac' });
    await tab.page.close({ runBeforeUnload: true });
    await eventually(async () => ((await member('tab-h264')) === null ? true : null), 15000);
    await state(start.body.channelId, 'interrupted');
    const again = await publish('tab-h264', 'h264');
    await state(start.body.channelId, 'live');
    const d = await decode(urlOf(urls, 2, 0), { frames: 30 });
    expect(d).toMatchObject({ videoCodec: 'h264', audioCodec: 'aac' });
    await stack.request('POST', '/v1/push/stop', { channelIds: [start.body.channelId] });
    await again.page.close({ runBeforeUnload: true });
    await eventually(async () => ((await member('tab-h264')) === null ? true : null), 15000);
  }, 120000);

  it('VP8 forced in /publish/: ORIGINAL over RTMP and HLS decodes as H.264 + AAC; closing the tab makes the member leave', async () => {
    const tab = await publish('tab-vp8', 'vp8');
    const t1 = Date.now();
    const start = await stack.request('POST', '/v1/push/start', {
      roomId: 5001,
      userId: 'tab-vp8',
      srcType: 0,
      option: { encode: 6 }, // HLS_AND_RTMP
    });
    expect(start.body.code, JSON.stringify(start.body)).toBe(0);
    const startMs = Date.now() - t1;
    console.log(`Chromium vp8: page → member ${tab.registeredMs} ms, start answered ${startMs} ms; ${tab.info}`);
    const d = await decode(urlOf(start.body.urls, 5, 0), { frames: 30 });
    expect(d, 'RTMP').toMatchObject({ videoCodec: 'h264', audioCodec: 'aac' });
    const hls = await probeHls(urlOf(start.body.urls, 1, 0), 1);
    expect(hls.segments[0], 'HLS').toMatchObject({ videoCodec: 'h264', audioCodec: 'aac' });
    await stack.request('POST', '/v1/push/stop', { channelIds: [start.body.channelId] });
    await tab.page.close({ runBeforeUnload: true });
    await eventually(async () => ((await member('tab-vp8')) === null ? true : null), 15000);
  }, 90000);
});
