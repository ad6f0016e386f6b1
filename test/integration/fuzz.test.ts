import crypto from 'node:crypto';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFlv } from '../helpers/media.js';
import { fixture, startStack, type Stack } from '../helpers/stack.js';

let stack: Stack;
let flvUrl: string;

beforeAll(async () => {
  stack = await startStack();
  await stack.publish({ roomId: 1001, userId: 'alice', srcType: 0 }, fixture('alice-camera.mp4'));
  const r = await stack.request('POST', '/v1/push/start', {
    roomId: 1001,
    userId: 'alice',
    srcType: 0,
    option: { encode: 3 },
  });
  flvUrl = r.body.urls.find((u: { type: number }) => u.type === 2).playUrl;
});

afterAll(async () => {
  await stack?.close();
});

const PIECES = [
  'live',
  'hls',
  'ingest',
  'admin',
  'api',
  '..',
  '.',
  '%00',
  '%2e%2e',
  '%2f',
  '\u2603',
  'ch_0123456789abcdef0123',
  'index.m3u8',
  'seg_1.ts',
  'a.b',
  'x'.repeat(300),
  '%',
  '%zz',
  '//',
  '\\',
  '?',
  '#',
  ';',
  '~',
  '$',
  '*',
  'r0',
  'r10',
  '.flv',
  'CON',
  'nul',
  '\t',
];

/** A random hostile path: pieces of real routes mixed with traversal, encodings, unicode and noise. */
function hostilePath(rnd: () => number): string {
  const n = 1 + Math.floor(rnd() * 5);
  const parts = Array.from({ length: n }, () =>
    rnd() < 0.15
      ? crypto.randomBytes(1 + Math.floor(rnd() * 12)).toString('latin1')
      : PIECES[Math.floor(rnd() * PIECES.length)]!,
  );
  let p = '/' + parts.join('/');
  if (rnd() < 0.4) p += '.flv';
  if (rnd() < 0.2) p += '?pwd=' + encodeURIComponent(PIECES[Math.floor(rnd() * PIECES.length)]!);
  return p;
}

/** Sends one raw request (no client-side cleaning); resolves with the status code or 0 when the socket just closed. */
function raw(port: number, request: string | Buffer, slowMs = 0): Promise<number> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let data = '';
    const t = setTimeout(() => {
      s.destroy();
      resolve(-1);
    }, 5000);
    s.on('connect', () => {
      if (!slowMs) {
        s.write(request);
        return;
      }
      const buf = Buffer.from(request);
      s.write(buf.subarray(0, 10));
      setTimeout(() => s.write(buf.subarray(10)), slowMs);
    });
    s.on('data', (d) => {
      data += d.toString('latin1');
      if (data.includes('\r\n\r\n')) s.destroy();
    });
    s.on('close', () => {
      clearTimeout(t);
      resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(data)?.[1] ?? 0));
    });
    s.on('error', () => undefined);
  });
}

describe('the media server under hostile traffic', () => {
  it('survives 3000 malformed HTTP, WS-FLV and slow requests, answers each with 4xx or a closed socket, and keeps serving the live channel', async () => {
    let seed = 42;
    const rnd = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const statuses = new Map<number, number>();
    const kinds = ['GET', 'HEAD', 'POST', 'OPTIONS', 'PUT', 'BREW'];
    const tasks: (() => Promise<number>)[] = [];
    for (let i = 0; i < 3000; i++) {
      const p = hostilePath(rnd);
      const method = kinds[Math.floor(rnd() * kinds.length)]!;
      const ws = rnd() < 0.2;
      const headers = ws
        ? 'Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n'
        : 'Connection: close\r\n';
      const req = `${ws ? 'GET' : method} ${p} HTTP/1.1\r\nHost: x\r\n${headers}\r\n`;
      tasks.push(() => raw(stack.httpPort, req, rnd() < 0.02 ? 300 : 0));
    }
    for (let i = 0; i < tasks.length; i += 100) {
      const res = await Promise.all(tasks.slice(i, i + 100).map((t) => t()));
      for (const code of res) statuses.set(code, (statuses.get(code) ?? 0) + 1);
    }
    console.log(`fuzz: 3000 requests, status counts ${JSON.stringify(Object.fromEntries(statuses))}`);
    for (const code of statuses.keys())
      expect(code === 0 || (code >= 400 && code < 500) || code === 204, `status ${code}`).toBe(true);
    expect(await raw(stack.httpPort, 'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')).toBe(200);
    expect((await readFlv(flvUrl)).summary.keyframe).toBe(true);
    const media = stack.procs.find((p) => p.name === 'media')!;
    expect(media.child.exitCode).toBeNull();
  });
});
