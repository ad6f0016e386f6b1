import http from 'node:http';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApi, type Api } from '../../src/api/app.js';
import { createLogger } from '../../src/log.js';
import { fakeApiDeps } from '../fakes/index.js';

// Dot segments must reach the router as sent, and inject() normalises them away: the API listens on a loopback port
// (in this process) and requests are sent raw.
let api: Api;
let port: number;
const logged: string[] = [];

beforeAll(async () => {
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      logged.push(chunk.toString());
      cb();
    },
  });
  api = buildApi({ ...fakeApiDeps(), logger: createLogger('error', 'test', sink) });
  await api.listen({ host: '127.0.0.1', port: 0 });
  port = (api.server.address() as { port: number }).port;
});
afterAll(async () => {
  await api.close();
});

function rawGet(path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode!, body }));
      })
      .on('error', reject);
  });
}

describe('the docs static route', () => {
  it.each([
    '/docs/static/..',
    '/docs/static/../',
    '/docs/static/%2e%2e',
    '/docs/static/./',
    '/docs/static/x/..',
    '/docs/static/../../package.json',
    '/docs/static/%2e%2e/%2e%2e/package.json',
  ])('%s answers 404 in the SPEC shape, with no stack trace in the answer or the log', async (path) => {
    logged.length = 0;
    const res = await rawGet(path);
    expect(res.status).toBe(404);
    const body = JSON.parse(res.body) as Record<string, unknown>;
    expect(Object.keys(body).sort()).toEqual(['code', 'hint', 'message']);
    expect(body.code).toBe(50002);
    expect(res.body).not.toMatch(/stack|node_modules|\.js:\d+/);
    expect(logged.join('')).not.toMatch(/stack|request failed/);
  });

  it('the docs page itself is still served', async () => {
    expect((await rawGet('/docs/static/index.html')).status).toBe(302);
    expect((await rawGet('/docs/json')).status).toBe(200);
  });
});
