import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/dev/redis.js';
import { eventually, fixture, sleep, startStack, type Stack } from '../helpers/stack.js';

let stack: Stack;
let receiver: http.Server;
let receiverUrl: string;
/** What the receiver does with the next requests: fail with 503, hang, or accept. */
let mode: 'fail' | 'hang' | 'ok' = 'fail';
const received: { body: string; signature: string; event: string }[] = [];
let refused = 0;

beforeAll(async () => {
  receiver = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => {
      body += d;
    });
    req.on('end', () => {
      if (mode === 'hang') return;
      if (mode === 'fail') {
        refused++;
        res.writeHead(503);
        res.end();
        return;
      }
      received.push({
        body,
        signature: String(req.headers['x-relay-signature']),
        event: String(req.headers['x-relay-event']),
      });
      res.writeHead(204);
      res.end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', () => r()));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
  stack = await startStack({
    env: {
      RELAY_WEBHOOK_ATTEMPTS: '6',
      RELAY_WEBHOOK_BACKOFF_MS: '300',
      RELAY_RECORD_MAX_SECONDS: '3',
      RELAY_START_RATE_LIMIT_MS: '0',
    },
  });
  await stack.publish({ roomId: 1001, userId: 'alice', srcType: 0 }, fixture('alice-camera.mp4'));
});

afterAll(async () => {
  await stack?.close();
  receiver.closeAllConnections();
  receiver.close();
});

const events = (channelId: string) =>
  received
    .map(
      (r) =>
        JSON.parse(r.body) as {
          type: string;
          channelId: string;
          eventId: string;
          time: number;
          data: Record<string, unknown>;
        },
    )
    .filter((e) => e.channelId === channelId);

describe('webhooks', () => {
  it('deliver signed events at least once through a receiver that fails, then recovers', async () => {
    expect((await stack.request('PUT', '/v1/webhook', { url: receiverUrl })).body.code).toBe(0);
    expect((await stack.request('PUT', '/v1/webhook', { url: 'ftp://x/y' })).body.code).toBe(50002);
    const r = await stack.request('POST', '/v1/push/start', {
      roomId: 1001,
      userId: 'alice',
      srcType: 0,
      option: { encode: 2, record: true },
    });
    expect(r.body.code).toBe(0);
    const id = r.body.channelId as string;
    await eventually(async () => refused >= 2, 10000);
    mode = 'ok';
    await sleep(7000); // a recording file is cut every 3 s
    await stack.request('POST', '/v1/push/stop', { channelIds: [id] });
    const got = await eventually(async () => {
      const e = events(id);
      return e.some((x) => x.type === 'push.stopped') && e.filter((x) => x.type === 'record.file_ready').length >= 2
        ? e
        : null;
    }, 20000);
    const types = got.map((e) => e.type);
    expect(types).toContain('push.started');
    expect(types).toContain('push.stopped');
    const files = got.filter((e) => e.type === 'record.file_ready');
    expect(files[0]!.data).toMatchObject({ recordTaskId: r.body.recordTaskId, format: 'mp4' });
    expect(new Set(files.map((f) => f.data.name)).size).toBe(files.length);
    for (const e of received.filter((x) => JSON.parse(x.body).channelId === id)) {
      expect(e.signature).toBe('sha256=' + crypto.createHmac('sha256', stack.secretKey).update(e.body).digest('hex'));
      expect(e.event).toBe(JSON.parse(e.body).type);
    }
    for (const e of got) {
      expect(e.eventId).toMatch(/^ev_[0-9a-f]{20}$/);
      expect(e.time).toBeGreaterThan(0);
    }
    const status = await stack.request('GET', '/v1/webhook');
    expect(status.body.url).toBe(receiverUrl);
    expect(status.body.delivered.length).toBeGreaterThanOrEqual(3);
  });

  it('a receiver that hangs or is down never slows a start or a stop, and its failed deliveries stay visible', async () => {
    mode = 'hang';
    await stack.request('PUT', '/v1/webhook', { url: `http://127.0.0.1:${await freePort()}/down` });
    const t0 = Date.now();
    const r = await stack.request('POST', '/v1/push/start', {
      roomId: 1001,
      userId: 'alice',
      srcType: 0,
      option: { encode: 2 },
    });
    expect(r.body.code).toBe(0);
    const stop = await stack.request('POST', '/v1/push/stop', { channelIds: [r.body.channelId] });
    expect(stop.body.results[0].code).toBe(0);
    expect(Date.now() - t0).toBeLessThan(8000);
    const failed = await eventually(async () => {
      const s = await stack.request('GET', '/v1/webhook');
      const mine = (s.body.failed as { channelId: string; attempts: number; error: string; type: string }[]).filter(
        (f) => f.channelId === r.body.channelId,
      );
      return mine.length >= 2 ? mine : null;
    }, 40000);
    expect(failed[0]!.attempts).toBe(6);
    expect(failed[0]!.error).toMatch(/fetch failed|ECONNREFUSED|HTTP/);
    expect(failed.map((f) => f.type).sort()).toEqual(['push.started', 'push.stopped']);
  });
});
