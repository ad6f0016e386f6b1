import { describe, expect, it } from 'vitest';
import { buildApi } from '../../src/api/app.js';
import { Keys } from '../../src/redis/index.js';
import { AccountRegistry } from '../../src/tenants/accounts.js';
import { AppRegistry } from '../../src/tenants/apps.js';
import { fakeApiDeps, MemoryHashes } from '../fakes/index.js';

const ADMIN = 'Bearer adm1n-t0ken';

/** The API with the admin routes over the real registries on an in-memory hash whose commands take 5 ms each. */
function adminApi() {
  const mem = new MemoryHashes(5);
  const keys = new Keys('fake');
  const accounts = new AccountRegistry(mem.asRedis(), keys);
  const apps = new AppRegistry(mem.asRedis(), keys);
  const api = buildApi({
    ...fakeApiDeps(),
    admin: { adminToken: 'adm1n-t0ken', redis: mem.asRedis(), keys, accounts, apps },
  });
  return { api, accounts, apps };
}

async function concurrently(api: ReturnType<typeof adminApi>['api'], url: string, bodies: object[]) {
  const res = await Promise.all(
    bodies.map((b) =>
      api.inject({ method: 'POST', url, headers: { authorization: ADMIN }, payload: b as Record<string, unknown> }),
    ),
  );
  return res.map((r) => ({ status: r.statusCode, body: r.json() as Record<string, unknown> }));
}

describe('admin creates under concurrency', () => {
  it('of concurrent creates of one account, only the stored one answers 201; the others 409 (50002, with a hint)', async () => {
    const { api, accounts } = adminApi();
    const names = ['a', 'b', 'c', 'd'];
    const res = await concurrently(
      api,
      '/admin/v1/accounts',
      names.map((name) => ({ accountId: 'acme', name })),
    );
    await api.close();
    const won = res.filter((r) => r.status === 201);
    expect(won).toHaveLength(1);
    const lost = res.filter((r) => r.status !== 201);
    expect(lost.map((r) => r.status)).toEqual([409, 409, 409]);
    for (const r of lost) {
      expect(r.body).toMatchObject({ code: 50002, message: 'account acme exists' });
      expect(r.body.hint).toEqual(expect.any(String));
    }
    const stored = await accounts.get('acme');
    expect((won[0]!.body.account as { name: string }).name).toBe(stored!.name);
  });

  it('of concurrent creates of one app, only the stored one answers 201 with its secret key; the others 409', async () => {
    const { api, accounts, apps } = adminApi();
    await accounts.ensure({ accountId: 'acme' });
    const res = await concurrently(
      api,
      '/admin/v1/apps',
      [1, 2, 3].map((i) => ({ accountId: 'acme', sdkAppId: '1400000777', name: `n${i}` })),
    );
    await api.close();
    const won = res.filter((r) => r.status === 201);
    expect(won).toHaveLength(1);
    expect(res.filter((r) => r.status === 409)).toHaveLength(2);
    for (const r of res.filter((x) => x.status === 409)) expect(r.body).toMatchObject({ code: 50002 });
    // the secret key shown is the one stored: a losing request must not show a key that does not authenticate
    expect((won[0]!.body.app as { secretKey: string }).secretKey).toBe((await apps.get('1400000777'))!.secretKey);
  });
});
