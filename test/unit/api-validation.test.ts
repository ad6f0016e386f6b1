import { describe, expect, it } from 'vitest';
import { buildApi } from '../../src/api/app.js';
import { FAKE_APP, FAKE_APP_COLON, FAKE_AUTH, fakeApiDeps } from '../fakes/index.js';
import { loadConfig } from '../../src/config/index.js';

const valid = { roomId: 1001, userId: 'alice', srcType: 0, option: { encode: 3 } };

async function post(body: unknown, headers: Record<string, string> = {}, route = '/v1/push/start') {
  const deps = fakeApiDeps();
  const app = buildApi(deps);
  const res = await app.inject({
    method: 'POST',
    url: route,
    headers: {
      authorization: FAKE_AUTH,
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...headers,
    },
    ...(body !== undefined ? { payload: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
  });
  await app.close();
  return { status: res.statusCode, body: res.json() as { code: number; message: string; hint: string }, deps };
}

describe('push/start validation answers with the SPEC code of the field', () => {
  it.each([
    ['no body at all', 40000001, 400, undefined],
    ['an empty JSON body', 40000001, 400, ''],
    ['a JSON null body', 40000001, 400, 'null'],
    ['roomId 0', 40000007, 400, { ...valid, roomId: 0 }],
    ['a negative roomId', 50002, 400, { ...valid, roomId: -3 }],
    ['a roomId given as a string', 50002, 400, { ...valid, roomId: '1001' }],
    ['a missing roomId', 50002, 400, { userId: 'alice', srcType: 0, option: { encode: 3 } }],
    ['a userId with a space', 40000006, 400, { ...valid, userId: 'al ice' }],
    ['an empty userId', 40000006, 400, { ...valid, userId: '' }],
    ['a 33-character userId', 40000006, 400, { ...valid, userId: 'a'.repeat(33) }],
    ['a missing userId', 40000006, 400, { roomId: 1001, srcType: 0, option: { encode: 3 } }],
    ['srcType 2', 40000004, 400, { ...valid, srcType: 2 }],
    ['srcType "camera"', 40000004, 400, { ...valid, srcType: 'camera' }],
    ['no option', 40000003, 400, { roomId: 1001, userId: 'alice', srcType: 0 }],
    ['an option without encode', 40000003, 400, { ...valid, option: { rateType: 0 } }],
    ['encode 7', 50004, 400, { ...valid, option: { encode: 7 } }],
    ['encode "HLS"', 50004, 400, { ...valid, option: { encode: 'HLS' } }],
    ['an unknown option field', 50002, 400, { ...valid, option: { encode: 3, bogus: 1 } }],
    ['sdkType 9', 50002, 400, { ...valid, option: { encode: 3, sdkType: 9 } }],
    ['a 65-character channelName', 50002, 400, { ...valid, option: { encode: 3, channelName: 'n'.repeat(65) } }],
    ['malformed JSON', 50002, 400, '{"roomId":'],
    ['an injection-looking userId', 40000006, 400, { ...valid, userId: "a'; DROP TABLE x;--" }],
    ['empty pushTargets', 50002, 400, { ...valid, option: { encode: 3, pushTargets: [] } }],
    [
      'six pushTargets',
      50002,
      400,
      { ...valid, option: { encode: 3, pushTargets: Array(6).fill({ url: 'rtmp://h/a/k' }) } },
    ],
    [
      'a push target file',
      50002,
      400,
      { ...valid, option: { encode: 3, pushTargets: [{ url: 'file:///etc/passwd' }] } },
    ],
    [
      'a push target with user:pass@',
      50002,
      400,
      { ...valid, option: { encode: 3, pushTargets: [{ url: 'rtmp://u:p@h/a/k' }] } },
    ],
    [
      'a push target of another tier',
      50002,
      400,
      { ...valid, option: { encode: 3, pushTargets: [{ url: 'rtmp://127.0.0.1/a/k', rateType: 10 }] } },
    ],
    [
      'the same push target twice (respelled)',
      50002,
      409,
      {
        ...valid,
        option: { encode: 3, pushTargets: [{ url: 'rtmp://8.8.8.8/a/k' }, { url: 'RTMP://8.8.8.8:1935/a/k?' }] },
      },
    ],
    [
      'a push target at a private address',
      50002,
      400,
      { ...valid, option: { encode: 3, pushTargets: [{ url: 'rtmp://10.9.8.7/a/k' }] } },
    ],
  ])('%s → %i (HTTP %i)', async (_name, code, status, body) => {
    const res = await post(body);
    expect(res.body.code, JSON.stringify(res.body)).toBe(code);
    expect(res.status, JSON.stringify(res.body)).toBe(status);
    expect(res.body.message.length).toBeGreaterThan(0);
    expect(res.body.hint.length).toBeGreaterThan(0);
    expect(res.deps.starts).toHaveLength(0);
  });

  it('a body over 64 KiB is refused with 50002 and HTTP 413', async () => {
    const res = await post({ ...valid, option: { encode: 3, channelDesc: 'x'.repeat(70 * 1024) } });
    expect(res.status).toBe(413);
    expect(res.body.code).toBe(50002);
  });

  it('a valid body reaches the push service with every default filled in', async () => {
    const res = await post({ ...valid, option: { encode: 5, channelName: 'n' } });
    expect(res.body).toMatchObject({ code: 0, channelId: 'ch_0123456789abcdef0123' });
    expect(res.deps.starts[0]).toEqual({
      roomId: 1001,
      userId: 'alice',
      srcType: 0,
      option: {
        encode: 5,
        rateType: 0,
        rateTypes: [0],
        record: false,
        recordFileType: 4,
        waterMark: false,
        sdkType: 1,
        channelName: 'n',
        passwordProtected: false,
        autoResume: false,
      },
    });
  });

  it('rateTypes asks for several tiers; the password is passed apart from the option, never inside it', async () => {
    const res = await post({
      ...valid,
      option: { encode: 3, rateTypes: [0, 10, 20], channelPassword: 'pw', record: true, recordFileType: 3 },
    });
    expect(res.body.code).toBe(0);
    expect(res.deps.starts[0]).toMatchObject({
      channelPassword: 'pw',
      option: { rateType: 0, rateTypes: [0, 10, 20], record: true, recordFileType: 3, passwordProtected: true },
    });
    expect(JSON.stringify(res.deps.starts[0]!.option)).not.toContain('pw"');
  });

  it.each([
    ['waterMark without waterMarkId', { encode: 3, waterMark: true }],
    ['a waterMarkId that is not an integer', { encode: 3, waterMark: true, waterMarkId: 'w1' }],
    ['rateType outside rateTypes', { encode: 3, rateType: 20, rateTypes: [0, 10] }],
    ['repeated rateTypes', { encode: 3, rateTypes: [10, 10] }],
    ['an empty rateTypes', { encode: 3, rateTypes: [] }],
    ['rateType 30', { encode: 3, rateType: 30 }],
    ['recordFileType 8', { encode: 3, record: true, recordFileType: 8 }],
    ['an empty channelPassword', { encode: 3, channelPassword: '' }],
  ])('%s is refused with 50002', async (_n, option) => {
    const res = await post({ ...valid, option });
    expect(res.body.code).toBe(50002);
    expect(res.deps.starts).toHaveLength(0);
  });
});

const basic = (userPass: string, scheme = 'Basic') => ({
  authorization: `${scheme} ${Buffer.from(userPass).toString('base64')}`,
});

/** The API with the real AppRegistry (over an in-memory hash holding FAKE_APP and FAKE_APP_COLON) starting a valid push. */
async function startWith(headers: Record<string, string>) {
  const deps = fakeApiDeps();
  const app = buildApi(deps);
  const res = await app.inject({
    method: 'POST',
    url: '/v1/push/start',
    headers: { 'content-type': 'application/json', ...headers },
    payload: JSON.stringify(valid),
  });
  await app.close();
  return { status: res.statusCode, body: res.json() as { code: number }, deps };
}

describe('mix start and layout validation answer with the push start codes', () => {
  const mix = {
    roomId: 1001,
    members: [{ userId: 'alice', srcType: 0 }],
    layout: 'grid',
    canvas: { width: 320, height: 180, fps: 15 },
    option: { encode: 3 },
  };
  const member = (extra: object) => ({ ...mix, members: [{ userId: 'alice', srcType: 0 }, { ...extra }] });
  const layout = (m: object) => ({ layout: 'grid', members: [{ userId: 'alice', srcType: 0 }, m] });
  async function postMix(body: unknown, route = '/v1/mix/start') {
    const deps = { ...fakeApiDeps(), mix: {} as never };
    const app = buildApi(deps);
    const res = await app.inject({
      method: 'POST',
      url: route,
      headers: { authorization: FAKE_AUTH },
      payload: body as object,
    });
    await app.close();
    return { status: res.statusCode, body: res.json() as { code: number; message: string; hint: string } };
  }
  const CH = '/v1/mix/ch_0123456789abcdef0123/layout';
  it.each([
    ['no option', 40000003, undefined, { ...mix, option: undefined }],
    ['an option without encode', 40000003, undefined, { ...mix, option: {} }],
    ['encode 9', 50004, undefined, { ...mix, option: { encode: 9 } }],
    ['roomId 0', 40000007, undefined, { ...mix, roomId: 0 }],
    ['a member of srcType 2', 40000004, undefined, member({ userId: 'bob', srcType: 2 })],
    ['a member $mix', 40000006, undefined, member({ userId: '$mix', srcType: 0 })],
    ['a member with a space', 40000006, undefined, member({ userId: 'b ob', srcType: 0 })],
    ['a member without userId', 40000006, undefined, member({ srcType: 0 })],
    ['an unknown field', 50002, /unknown field \/bogus/, { ...mix, bogus: 1 }],
    [
      'an unknown member field',
      50002,
      /unknown field \/members\/1\/bogus/,
      member({ userId: 'b', srcType: 0, bogus: 1 }),
    ],
    ['an unknown option field', 50002, /unknown field \/option\/bogus/, { ...mix, option: { encode: 3, bogus: 1 } }],
    ['layout: a member of srcType 2', 40000004, CH, layout({ userId: 'bob', srcType: 2 })],
    ['layout: a member $mix', 40000006, CH, layout({ userId: '$mix', srcType: 0 })],
    ['layout: an unknown member field', 50002, CH, layout({ userId: 'bob', srcType: 0, bogus: 1 })],
  ] as const)('%s → %i', async (_name, code, extra, body) => {
    const route = typeof extra === 'string' ? extra : '/v1/mix/start';
    const res = await postMix(body, route);
    expect(res.body.code).toBe(code);
    expect(res.status).toBe(400);
    expect(res.body.hint.length).toBeGreaterThan(0);
    if (extra instanceof RegExp) expect(res.body.message).toMatch(extra);
    if (route === CH && code === 50002) expect(res.body.message).toMatch(/unknown field \/members\/1\/bogus/);
  });
});

describe('authentication', () => {
  it.each([
    ['no Authorization header', 1001, {}],
    ['a Bearer token', 1001, { authorization: 'Bearer wrong' }],
    ['a wrong secret key', 1001, basic(`${FAKE_APP.sdkAppId}:nope`)],
    ['an unknown sdkAppId', 1001, basic('999:k3y')],
    [
      'the secret key followed by ":" and more (the password is all after the first ":")',
      1001,
      basic(`${FAKE_APP.sdkAppId}:${FAKE_APP.secretKey}:x`),
    ],
    [
      'only the part of a secret key with ":" before its first ":"',
      1001,
      basic(`${FAKE_APP_COLON.sdkAppId}:${FAKE_APP_COLON.secretKey.split(':')[0]}`),
    ],
    ['an sdkAppId that is not digits', 1001, basic('abc:k3y')],
    ['credentials that are not base64', 1001, { authorization: 'Basic !!not-base64!!' }],
    ['credentials without ":"', 1001, basic(FAKE_APP.sdkAppId)],
  ])('%s → %i (HTTP 401), before the body is looked at', async (_n, code, headers) => {
    const res = await startWith(headers);
    expect(res.status).toBe(401);
    expect(res.body).toMatchObject({ code });
    expect(res.deps.starts).toHaveLength(0);
  });

  it('an unknown sdkAppId and a wrong secret key get the same answer, so app ids cannot be enumerated', async () => {
    const unknown = await startWith(basic('999:not-the-key'));
    const wrong = await startWith(basic(`${FAKE_APP.sdkAppId}:not-the-key`));
    expect(unknown.status).toBe(wrong.status);
    expect(unknown.body).toEqual(wrong.body);
    expect(wrong.body).toMatchObject({ code: 1001, message: 'permission error: unknown sdkAppId or wrong secret key' });
  });

  it.each([
    ["the app's sdkAppId and secret key", basic(`${FAKE_APP.sdkAppId}:${FAKE_APP.secretKey}`)],
    ['a secret key that contains ":"', basic(`${FAKE_APP_COLON.sdkAppId}:${FAKE_APP_COLON.secretKey}`)],
    [
      'the scheme in lower case ("basic", RFC 7617: case-insensitive)',
      basic(`${FAKE_APP.sdkAppId}:${FAKE_APP.secretKey}`, 'basic'),
    ],
  ])('%s is accepted', async (_n, headers) => {
    const res = await startWith(headers);
    expect(res.status).toBe(200);
    expect(res.body.code).toBe(0);
    expect(res.deps.starts).toHaveLength(1);
  });
});

describe('push/stop and other routes', () => {
  it('stop needs a non-empty channelIds array', async () => {
    expect((await post(undefined, {}, '/v1/push/stop')).body.code).toBe(40000001);
    expect((await post({ channelIds: [] }, {}, '/v1/push/stop')).body.code).toBe(50002);
    expect((await post({ channelIds: 'ch_x' }, {}, '/v1/push/stop')).body.code).toBe(50002);
    const ok = await post({ channelIds: ['ch_a', 'ch_a'] }, {}, '/v1/push/stop');
    expect(ok.body.code).toBe(0);
  });

  it('a path parameter longer than the router takes is 50002 in the SPEC shape, without the URL echoed back', async () => {
    const app = buildApi(fakeApiDeps());
    const long = 'ch_' + 'a'.repeat(5000);
    const res = await app.inject({ method: 'GET', url: `/v1/push/${long}`, headers: { authorization: FAKE_AUTH } });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ code: 50002, hint: expect.any(String) });
    expect(res.body).not.toContain('aaaaaaaaaa');
  });

  it('an unknown field inside option is named, not reported as a non-object option', async () => {
    const app = buildApi(fakeApiDeps());
    const body = { roomId: 1001, userId: 'alice', srcType: 0, option: { encode: 3, bogus: true } };
    const res = await app.inject({
      method: 'POST',
      url: '/v1/push/start',
      headers: { authorization: FAKE_AUTH },
      payload: body,
    });
    expect(res.json()).toMatchObject({ code: 50002, message: 'unknown field /option/bogus' });
  });

  it('an unknown route answers 404 with a code and a hint', async () => {
    const app = buildApi(fakeApiDeps());
    const res = await app.inject({ method: 'GET', url: '/v2/nothing', headers: { authorization: FAKE_AUTH } });
    await app.close();
    expect(res.statusCode).toBe(404);
    expect(res.json()).toMatchObject({ code: 50002 });
  });

  it('GET of a room id 0 is 40000007 and of an empty room 40000410', async () => {
    const app = buildApi(fakeApiDeps());
    const zero = await app.inject({ method: 'GET', url: '/v1/rooms/0', headers: { authorization: FAKE_AUTH } });
    const empty = await app.inject({ method: 'GET', url: '/v1/rooms/42', headers: { authorization: FAKE_AUTH } });
    await app.close();
    expect(zero.json().code).toBe(40000007);
    expect(empty.json().code).toBe(40000410);
  });
});

describe('egress policy at the API', () => {
  it.each([
    'http://169.254.169.254/latest/x.m3u8',
    'http://2852039166/x.m3u8',
    'rtmp://192.168.1.10/live/x',
    'http://[::1]:9/x',
  ])('registering the upstream %s is refused with 50002 and nothing is registered', async (url) => {
    const deps = fakeApiDeps();
    const app = buildApi(deps);
    const res = await app.inject({
      method: 'PUT',
      url: '/v1/rooms/8801/upstreams',
      headers: { authorization: FAKE_AUTH },
      payload: { userId: 'cam1', srcType: 0, url },
    });
    await app.close();
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ code: 50002, hint: expect.stringContaining('RELAY_UPSTREAM_ALLOW') });
    expect(deps.upstreams).toEqual([]);
  });

  it('a bad RELAY_UPSTREAM_ALLOW stops start-up with a message naming it', () => {
    expect(() => loadConfig({ RELAY_UPSTREAM_ALLOW: '10.0.0.0/99' })).toThrow(/RELAY_UPSTREAM_ALLOW/);
  });
});
