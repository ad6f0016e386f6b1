import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { buildApi } from '../../src/api/app.js';
import { RelayError } from '../../src/errors/index.js';
import { createLogger } from '../../src/log.js';
import { assertFreeSpace, UPLOAD_DISK_HINT } from '../../src/records/disk.js';
import { FAKE_AUTH, fakeApiDeps } from '../fakes/index.js';

/** The API over fakes, its log lines kept; `add` stands in for the watermark registry's. */
async function upload(body: Buffer | string, type: string, add?: () => Promise<never>, route = '/v1/watermarks') {
  const lines: string[] = [];
  const deps = fakeApiDeps();
  deps.logger = createLogger(
    'info',
    'test',
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        lines.push(chunk.toString());
        cb();
      },
    }),
  );
  if (add) deps.watermarks = { ...deps.watermarks, add };
  const app = buildApi(deps);
  const res = await app.inject({
    method: 'POST',
    url: route,
    headers: { authorization: FAKE_AUTH, 'content-type': type },
    payload: body,
  });
  await app.close();
  const answer = res.json() as { code: number; message: string; hint: string };
  return { status: res.statusCode, headers: res.headers, body: answer, lines };
}

describe('the watermark upload route says what applies to uploads', () => {
  it('a 2 MB upload is refused (413) naming the route’s own limit, 1 MiB, not the 64 KiB of JSON bodies', async () => {
    const res = await upload(Buffer.alloc(2 * 1024 * 1024, 1), 'image/png');
    expect(res.status).toBe(413);
    expect(res.body).toMatchObject({ code: 50002, message: 'request body larger than 1 MiB (1048576 bytes)' });
    const json = await upload(
      JSON.stringify({ x: 'y'.repeat(70 * 1024) }),
      'application/json',
      undefined,
      '/v1/push/start',
    );
    expect(json.status).toBe(413);
    expect(json.body.message).toBe('request body larger than 64 KiB (65536 bytes)');
  });

  it.each(['image/jpeg', 'application/octet-stream', 'application/json', 'text/plain'])(
    'an upload sent as %s is refused (415) with the hint to send Content-Type: image/png',
    async (type) => {
      const res = await upload(type.includes('json') ? '{"png":1}' : 'not a png', type);
      expect(res.status).toBe(415);
      expect(res.body.code).toBe(50002);
      expect(res.body.hint).toBe('send Content-Type: image/png');
    },
  );

  it('a JSON route sent the wrong type still asks for application/json', async () => {
    const res = await upload('x', 'image/gif', undefined, '/v1/push/start');
    expect(res.status).toBe(415);
    expect(res.body.hint).toBe('send Content-Type: application/json');
  });

  it("a 50007 tells the tenant the disk is low with a hint for uploads; the free space and threshold go to the operator's log only", async () => {
    const low = () =>
      assertFreeSpace([{ dir: '/', what: 'watermark images' }], 16_777_216, UPLOAD_DISK_HINT) as Promise<never>;
    const res = await upload(Buffer.alloc(100, 1), 'image/png', low);
    expect(res.status).toBe(507);
    expect(res.body).toEqual({
      code: 50007,
      message: "insufficient storage: the disk of the watermark images is below the relay's free-space threshold",
      hint: UPLOAD_DISK_HINT,
    });
    expect(res.body.hint).not.toMatch(/record/);
    const logged = res.lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.code === 50007);
    expect(logged).toMatchObject({ level: 40, dir: '/', minFreeMB: 16_777_216, freeBytes: expect.any(Number) });
  });

  it('a full inspection line answers 50005 with Retry-After', async () => {
    const busy = async (): Promise<never> => {
      throw new RelayError(50005, 'busy', { details: { retryAfterMs: 1000 } });
    };
    const res = await upload(Buffer.alloc(100, 1), 'image/png', busy);
    expect(res.status).toBe(503);
    expect(res.body.code).toBe(50005);
    expect(res.headers['retry-after']).toBe('1');
  });
});
