/**
 * A browser tab as a room member: headless Chromium with a fake camera and microphone publishes through the relay's
 * /publish/ page (WHIP) — once with H.264 (copied), once with VP8 forced (converted) — and a push of the member with
 * ORIGINAL decodes as H.264 + AAC. Closing the tab ends the session and the member leaves.
 */
import fs from 'node:fs';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decode } from '../helpers/media.js';
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

  it.each(['h264', 'vp8'] as const)(
    'publishes the fake camera with %s; ORIGINAL decodes as H.264 + AAC; closing the tab makes the member leave',
    async (codec) => {
      const userId = `tab-${codec}`;
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
      const registeredMs = Date.now() - t0;
      expect(up.source).toBe('whip');
      const t1 = Date.now();
      const start = await stack.request('POST', '/v1/push/start', {
        roomId: 5001,
        userId,
        srcType: 0,
        option: { encode: 2 },
      });
      expect(start.body.code, JSON.stringify(start.body)).toBe(0);
      const startMs = Date.now() - t1;
      const flv = start.body.urls.find((u: { type: number }) => u.type === 2).playUrl;
      const d = await decode(flv, { frames: 30 });
      expect(d).toMatchObject({ videoCodec: 'h264', audioCodec: 'aac' });
      expect(d.width).toBeGreaterThan(0);
      const info = (await eventually(() => page.textContent('#info'), 5000)) ?? '';
      // the page sent what it was asked to: H.264 (copied by the bridge) or VP8 (converted)
      await eventually(
        async () => new RegExp(`codec video/${codec}`, 'i').test((await page.textContent('#info')) ?? ''),
        5000,
      );
      console.log(
        `Chromium ${codec}: page → member ${registeredMs} ms, start answered ${startMs} ms; ${info.replace(/\n/g, '; ')}`,
      );
      await stack.request('POST', '/v1/push/stop', { channelIds: [start.body.channelId] });
      await page.close({ runBeforeUnload: true });
      await eventually(async () => ((await member(userId)) === null ? true : null), 15000);
    },
    90000,
  );
});
