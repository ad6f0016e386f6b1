import AjvModule from 'ajv';

const Ajv = AjvModule.default;
import { describe, expect, it } from 'vitest';
import { buildApi } from '../../src/api/app.js';
import type { AdminDeps } from '../../src/api/routes/admin.js';
import { fakeApiDeps } from '../fakes/index.js';
import type { PushTargetControl } from '../../src/targets/control.js';
import { ERRORS } from '../../src/errors/index.js';

/** Builds the API with every route (admin too) and collects the routes it registers. */
async function appWithRoutes() {
  const routes: { method: string; url: string }[] = [];
  const deps = {
    ...fakeApiDeps(),
    admin: { adminToken: 'a'.repeat(16), accounts: {}, apps: {} } as unknown as AdminDeps,
    targets: {} as unknown as PushTargetControl,
  };
  const app = buildApi(deps);
  app.addHook('onRoute', (r) => {
    for (const m of [r.method].flat())
      if (m !== 'HEAD' && !r.url.startsWith('/docs')) routes.push({ method: m.toLowerCase(), url: r.url });
  });
  await app.ready();
  return { app, routes };
}

/** Examples as OpenAPI holds them: a media type's `examples` map beside its schema, or a schema's `example(s)`. */
function* schemasWithExamples(node: unknown): Generator<{ schema: Record<string, unknown>; example: unknown }> {
  if (!node || typeof node !== 'object') return;
  const o = node as Record<string, unknown>;
  if (o.schema && o.examples && typeof o.examples === 'object' && !Array.isArray(o.examples)) {
    for (const ex of Object.values(o.examples as Record<string, { value: unknown }>))
      yield { schema: o.schema as Record<string, unknown>, example: ex.value };
  }
  if (o.type && 'example' in o) yield { schema: o, example: o.example };
  if (o.type && Array.isArray(o.examples)) for (const example of o.examples) yield { schema: o, example };
  for (const v of Object.values(o)) yield* schemasWithExamples(v);
}

describe('the OpenAPI document', () => {
  it('is generated from the route schemas and lists every route', async () => {
    const { app, routes } = await appWithRoutes();
    const res = await app.inject({ method: 'GET', url: '/docs/json' });
    await app.close();
    expect(res.statusCode).toBe(200);
    const doc = res.json() as { openapi: string; paths: Record<string, Record<string, unknown>> };
    expect(doc.openapi).toMatch(/^3\./);
    const documented = new Set(
      Object.entries(doc.paths).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m} ${p}`)),
    );
    const expected = routes
      .filter((r) => r.url !== '/healthz')
      .map((r) => `${r.method} ${r.url.replace(/:(\w+)/g, '{$1}').replace(/\*$/, '{*}')}`);
    expect(expected.length).toBeGreaterThan(15);
    for (const r of expected) expect(documented.has(r), `${r} missing from the OpenAPI document`).toBe(true);
    expect(documented.has('post /v1/push/start')).toBe(true);
  });

  it('every example in it validates against its own schema', async () => {
    const { app } = await appWithRoutes();
    const doc = (await app.inject({ method: 'GET', url: '/docs/json' })).json();
    await app.close();
    const ajv = new Ajv({ strict: false });
    const found = [...schemasWithExamples(doc)];
    expect(found.length).toBeGreaterThanOrEqual(4);
    for (const { schema, example } of found) {
      const ok = ajv.validate(schema, example);
      expect(ok, `${JSON.stringify(example)}: ${ajv.errorsText()}`).toBe(true);
    }
  });

  it('lists every error code, and documents the disk refusals of start and upload, the account storage quota and the ffmpeg refusals', async () => {
    const { app } = await appWithRoutes();
    const doc = (await app.inject({ method: 'GET', url: '/docs/json' })).json();
    await app.close();
    for (const code of Object.keys(ERRORS))
      expect(doc.info.description).toMatch(new RegExp(`\\| ${code} \\| \\d{3} \\|`));
    expect(doc.info.description).toMatch(/\| 50007 \| 507 \| insufficient storage/);
    expect(doc.paths['/v1/push/start'].post.description).toMatch(/50007[\s\S]*RELAY_MIN_FREE_MB[\s\S]*20102/);
    expect(doc.paths['/v1/watermarks'].post.description).toMatch(/50007 \(HTTP 507/);
    expect(doc.paths['/v1/rooms/{roomId}/upstreams'].put.description).toMatch(/does not exist[\s\S]*50008 \(HTTP 501/);
    expect(doc.paths['/v1/push/start'].post.description).toMatch(/50008[\s\S]*50009[\s\S]*6012/);
    expect(JSON.stringify(doc.paths['/admin/v1/accounts'].post)).toMatch(/storageQuotaMB/);
  });

  it('serves an interactive page at /docs', async () => {
    const { app } = await appWithRoutes();
    let res = await app.inject({ method: 'GET', url: '/docs' });
    for (let i = 0; i < 3 && res.statusCode >= 300 && res.statusCode < 400; i++)
      res = await app.inject({ method: 'GET', url: new URL(String(res.headers.location), 'http://x/docs/').pathname });
    await app.close();
    expect(res.statusCode).toBe(200);
    expect(res.body).toMatch(/swagger/i);
  });
});
