import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, fixture, startStack, type Stack } from '../helpers/stack.js';

const run = promisify(execFile);
let stack: Stack;

beforeAll(async () => {
  stack = await startStack({ env: { RELAY_START_RATE_LIMIT_MS: '0' } });
});

afterAll(async () => {
  await stack?.close();
});

const admin = (method: string, route: string, body?: unknown) =>
  stack.request(method, `/admin/v1${route}`, body, { authorization: stack.adminAuth });

async function newApp(accountId: string): Promise<string> {
  const r = await admin('POST', '/apps', { accountId, name: `${accountId}-app` });
  expect(r.body.code, JSON.stringify(r.body)).toBe(0);
  return r.body.authorization as string;
}

async function upstreams(auth: string, roomId: number, users: string[]): Promise<void> {
  for (const userId of users) {
    const r = await stack.request(
      'PUT',
      `/v1/rooms/${roomId}/upstreams`,
      { userId, srcType: 0, url: fixture('video-only.mp4') },
      { authorization: auth },
    );
    expect(r.body.code).toBe(0);
  }
}

const start = (auth: string, roomId: number, userId: string) =>
  stack.request(
    'POST',
    '/v1/push/start',
    { roomId, userId, srcType: 0, option: { encode: 5 } },
    { authorization: auth },
  );

describe('accounts and their channel limit', () => {
  it('the admin API needs the admin credential', async () => {
    expect(
      (await stack.request('GET', '/admin/v1/accounts', undefined, { authorization: 'Bearer nope-nope-nope-nope' }))
        .body.code,
    ).toBe(1001);
    expect((await stack.request('GET', '/admin/v1/accounts')).status).toBe(401);
    expect((await admin('GET', '/accounts')).body.accounts.map((a: { accountId: string }) => a.accountId)).toContain(
      'default',
    );
  });

  it('the limit is shared by all apps of the account: limit 3, app A uses 2, app B gets 1; a stop frees a slot at once', async () => {
    expect((await admin('POST', '/accounts', { accountId: 'acme', channelLimit: 3 })).status).toBe(201);
    const [a, b] = [await newApp('acme'), await newApp('acme')];
    await upstreams(a, 10, ['a1', 'a2']);
    await upstreams(b, 20, ['b1', 'b2']);
    const started = [await start(a, 10, 'a1'), await start(a, 10, 'a2'), await start(b, 20, 'b1')];
    expect(started.map((r) => r.body.code)).toEqual([0, 0, 0]);
    const over = await start(b, 20, 'b2');
    expect(over.status).toBe(409);
    expect(over.body).toMatchObject({ code: 20101, message: expect.stringMatching(/limit of 3/) });
    const acc = (await admin('GET', '/accounts/acme')).body.account;
    expect(acc.channelsInUse).toBe(3);
    expect(acc.apps).toHaveLength(2);
    await stack.request('POST', '/v1/push/stop', { channelIds: [started[0]!.body.channelId] }, { authorization: a });
    const now = await start(b, 20, 'b2');
    expect(now.body.code).toBe(0);
    await stack.request('POST', '/v1/push/stop', { channelIds: [started[1]!.body.channelId] }, { authorization: a });
    await stack.request(
      'POST',
      '/v1/push/stop',
      { channelIds: [started[2]!.body.channelId, now.body.channelId] },
      { authorization: b },
    );
  });

  it('two starts racing for the last slot never both succeed', async () => {
    await admin('POST', '/accounts', { accountId: 'race', channelLimit: 1 });
    const c = await newApp('race');
    await upstreams(c, 30, ['r1', 'r2', 'r3', 'r4']);
    const results = await Promise.all(['r1', 'r2', 'r3', 'r4'].map((u) => start(c, 30, u)));
    const codes = results.map((r) => r.body.code).sort();
    expect(codes).toEqual([0, 20101, 20101, 20101]);
    const winner = results.find((r) => r.body.code === 0)!;
    await stack.request('POST', '/v1/push/stop', { channelIds: [winner.body.channelId] }, { authorization: c });
  });

  it('an account whose live service is not enabled gets 20318, one in arrears 20406; an unknown app 1001 like a wrong key', async () => {
    await admin('POST', '/accounts', { accountId: 'late', state: 'not-enabled' });
    const d = await newApp('late');
    await upstreams(d, 40, ['d1']);
    expect((await start(d, 40, 'd1')).body.code).toBe(20318);
    expect((await admin('PATCH', '/accounts/late', { state: 'arrears' })).body.account.state).toBe('arrears');
    const arrears = await start(d, 40, 'd1');
    expect(arrears.status).toBe(402);
    expect(arrears.body.code).toBe(20406);
    await admin('PATCH', '/accounts/late', { state: 'active' });
    const ok = await start(d, 40, 'd1');
    expect(ok.body.code).toBe(0);
    await stack.request('POST', '/v1/push/stop', { channelIds: [ok.body.channelId] }, { authorization: d });
    const unknown = 'Basic ' + Buffer.from('987654321:whatever').toString('base64');
    expect((await start(unknown, 40, 'd1')).body).toMatchObject({
      code: 1001,
      message: expect.stringMatching(/unknown sdkAppId or wrong secret key/),
    });
  });

  it('retained (interrupted) channels count against the limit until stopped', async () => {
    await admin('PATCH', '/accounts/default', { channelLimit: 1 });
    const feeder = await stack.publish({ roomId: 50, userId: 'gone', srcType: 0 }, fixture('alice-camera.mp4'));
    await stack.publish({ roomId: 50, userId: 'next', srcType: 0 }, fixture('bob-camera.mp4'));
    const first = await start(stack.auth, 50, 'gone');
    expect(first.body.code).toBe(0);
    await feeder.close();
    await eventually(
      async () => (await stack.request('GET', `/v1/push/${first.body.channelId}`)).body.channel.state === 'interrupted',
      10000,
    );
    expect((await start(stack.auth, 50, 'next')).body.code).toBe(20101);
    await stack.request('POST', '/v1/push/stop', { channelIds: [first.body.channelId] });
    const next = await start(stack.auth, 50, 'next');
    expect(next.body.code).toBe(0);
    await stack.request('POST', '/v1/push/stop', { channelIds: [next.body.channelId] });
    await admin('PATCH', '/accounts/default', { channelLimit: 50 });
  });

  it('the admin CLI lists accounts as a table or JSON, and its exit codes mean something', async () => {
    const env = { ...process.env, RELAY_API_URL: stack.api, RELAY_ADMIN_TOKEN: stack.adminAuth.slice(7) };
    const cli = (...args: string[]) =>
      run(process.execPath, ['--import', 'tsx', path.resolve('src/cli/admin.ts'), ...args], { env }).then(
        (r) => ({ code: 0, out: r.stdout, err: r.stderr }),
        (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, out: e.stdout, err: e.stderr }),
      );
    const tableOut = await cli('accounts', 'list');
    expect(tableOut.code).toBe(0);
    expect(tableOut.out).toMatch(/^accountId\s+name\s+state\s+channelLimit\s+channelsInUse\s+apps/);
    expect(tableOut.out).toMatch(/\nacme\s+acme\s+active\s+3\s+0\s+\d+,\d+/);
    const json = await cli('accounts', 'set', 'acme', '--limit', '7', '--json');
    expect(json.code).toBe(0);
    expect(JSON.parse(json.out).account.channelLimit).toBe(7);
    expect((await cli('accounts', 'frobnicate')).code).toBe(2);
    expect((await cli('accounts', 'set', 'nobody', '--limit', '1')).code).toBe(1);
    const created = await cli('apps', 'create', '--account', 'acme', '--name', 'cli-app');
    expect(created.out).toMatch(/secretKey: \S+/);
  });

  it('the BullMQ job dashboard is at /admin/queues behind the admin credential', async () => {
    const none = await fetch(`${stack.api}/admin/queues`);
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toMatch(/^Basic/);
    const basic = 'Basic ' + Buffer.from(`admin:${stack.adminAuth.slice(7)}`).toString('base64');
    const page = await fetch(`${stack.api}/admin/queues`, { headers: { authorization: basic } });
    expect(page.status).toBe(200);
    expect(await page.text()).toMatch(/<html/i);
    const api = await fetch(`${stack.api}/admin/queues/api/queues`, { headers: { authorization: stack.adminAuth } });
    expect(api.status).toBe(200);
    const names = ((await api.json()) as { queues: { name: string }[] }).queues.map((q) => q.name);
    expect(names).toEqual(expect.arrayContaining(['push', 'webhooks']));
  });

  it('operators list any tenant channel, stop them, and cannot delete an app under its channels', async () => {
    expect((await admin('POST', '/accounts', { accountId: 'orphans', channelLimit: 5 })).status).toBe(201);
    const created = await admin('POST', '/apps', { accountId: 'orphans', name: 'orphans-app' });
    const { sdkAppId } = created.body.app as { sdkAppId: string };
    const auth = created.body.authorization as string;
    await upstreams(auth, 9101, ['o1', 'o2']);
    const ids = [];
    for (const user of ['o1', 'o2']) {
      const r = await start(auth, 9101, user);
      expect(r.body.code, JSON.stringify(r.body)).toBe(0);
      ids.push(r.body.channelId as string);
    }
    const listed = await admin('GET', `/channels?sdkAppId=${sdkAppId}`);
    expect(listed.body.channels.map((c: { channelId: string }) => c.channelId).sort()).toEqual([...ids].sort());
    expect(listed.body.channels[0]).toMatchObject({ sdkAppId, accountId: 'orphans', state: 'live' });
    expect((await admin('GET', '/channels?accountId=orphans&state=stopped')).body.channels).toEqual([]);

    const refused = await admin('DELETE', `/apps/${sdkAppId}`);
    expect(refused.status).toBe(409);
    expect(refused.body).toMatchObject({ code: 50002, channelIds: expect.arrayContaining(ids) });
    expect((await admin('GET', '/apps')).body.apps.map((a: { sdkAppId: string }) => a.sdkAppId)).toContain(sdkAppId);

    // the operator stops one channel of the tenant, then deletes the app with the other still running
    const stopped = await admin('POST', '/channels/stop', { channelIds: [ids[0]] });
    expect(stopped.body.results).toEqual([{ channelId: ids[0], code: 0, message: 'stopped' }]);
    const deleted = await admin('DELETE', `/apps/${sdkAppId}?stopChannels=true`);
    expect(deleted.body).toMatchObject({ code: 0, stopped: [{ channelId: ids[1], code: 0 }] });
    const after = await stack.request('GET', `/v1/push/${ids[1]}`, undefined, { authorization: auth });
    expect(after.body.code).toBe(1001); // the app is gone: its credentials are no longer any
    const usage = await admin('GET', '/accounts/orphans');
    expect(usage.body.account.channelsInUse).toBe(0);
  });
});
