import { describe, expect, it, vi } from 'vitest';
import {
  RUN_TOKEN_TTL_MS,
  RunTokenGate,
  runTokenMessage,
  runTokenQuery,
  verifyRunToken,
} from '../../src/auth/run-tokens.js';
import { sign } from '../../src/auth/index.js';
import { hashChannelPassword } from '../../src/channels/password.js';
import type { Channel } from '../../src/channels/types.js';
import { RtmpAccess } from '../../src/media-server/rtmp.js';
import type { NmsBroadcast, NmsContext, NmsSession } from '../../src/media-server/nms.js';
import { createLogger } from '../../src/log.js';
import { testChannel } from '../fakes/channels.js';

const SECRET = 'internal-s3cret';
const CH = 'ch_0123456789abcdef0123';
const LIVE = `/live/${CH}`;
const T0 = 1_800_000_000_000;
const q = (query: string) => Object.fromEntries(new URLSearchParams(query));
const token = (kind: 'publish' | 'read', p: string, gen: number, now = T0) =>
  q(runTokenQuery(SECRET, kind, p, { channelId: CH, gen }, now));

describe('run tokens', () => {
  it('are valid for their kind, path, channel and generation until they expire, at most RUN_TOKEN_TTL_MS', () => {
    const t = token('publish', LIVE, 4);
    expect(verifyRunToken(SECRET, 'publish', LIVE, t, T0)).toEqual({
      ok: true,
      claims: { channelId: CH, gen: 4, exp: T0 + RUN_TOKEN_TTL_MS, nonce: t.nonce },
    });
    expect(t.token).toBe(
      sign(
        SECRET,
        runTokenMessage('publish', LIVE, { channelId: CH, gen: 4, exp: T0 + RUN_TOKEN_TTL_MS, nonce: t.nonce! }),
      ),
    );
    expect(verifyRunToken(SECRET, 'publish', LIVE, t, T0 + RUN_TOKEN_TTL_MS - 1).ok).toBe(true);
    expect(verifyRunToken(SECRET, 'publish', LIVE, t, T0 + RUN_TOKEN_TTL_MS)).toEqual({
      ok: false,
      why: 'expired run token',
    });
  });

  it('are refused when anything signed was changed, or when forged, malformed or too long-lived', () => {
    const t = token('publish', LIVE, 4);
    const refused = (query: Record<string, unknown>, kind: 'publish' | 'read' = 'publish', p = LIVE) =>
      (verifyRunToken(SECRET, kind, p, query, T0) as { why?: string }).why;
    expect(refused(t, 'read')).toBe('wrong run token signature');
    expect(refused(t, 'publish', `${LIVE}_r10`)).toBe('wrong run token signature');
    expect(refused({ ...t, gen: '5' })).toBe('wrong run token signature');
    expect(refused({ ...t, ch: 'ch_ffffffffffffffffffff' })).toBe('wrong run token signature');
    expect(refused({ ...t, exp: String(T0 + 1000) })).toBe('wrong run token signature');
    expect(refused({ ...t, nonce: 'f'.repeat(32) })).toBe('wrong run token signature');
    expect(refused({ ...t, token: '0'.repeat(32) })).toBe('wrong run token signature');
    expect(verifyRunToken('another-secret', 'publish', LIVE, t, T0).ok).toBe(false);
    expect(refused({ token: t.token })).toBe('no run token');
    expect(refused({ ...t, gen: ['4', '4'] })).toBe('no run token');
    expect(refused({ ...t, nonce: 'xyz' })).toBe('malformed run token');
    const long = { channelId: CH, gen: 4, exp: T0 + RUN_TOKEN_TTL_MS + 60_000, nonce: 'a'.repeat(32) };
    const forgedLong = { ch: CH, gen: '4', exp: String(long.exp), nonce: long.nonce };
    expect(refused({ ...forgedLong, token: sign(SECRET, runTokenMessage('publish', LIVE, long)) })).toBe(
      'run token lives too long',
    );
  });

  it('each mint has its own nonce', () => {
    const nonces = new Set(Array.from({ length: 50 }, () => token('read', '/ingest/x', 1).nonce));
    expect(nonces.size).toBe(50);
  });
});

describe('RunTokenGate', () => {
  it('accepts a token once, and no generation below the highest seen of its channel', () => {
    const gate = new RunTokenGate(SECRET);
    const a = token('publish', LIVE, 2);
    expect(gate.admit('publish', LIVE, a, T0, CH)).toEqual({ ok: true, channelId: CH, gen: 2, raised: false });
    expect(gate.admit('publish', LIVE, a, T0 + 10, CH)).toEqual({ ok: false, why: 'run token used before' });
    expect(gate.admit('read', '/ingest/x', token('read', '/ingest/x', 2), T0)).toMatchObject({ ok: true });
    expect(gate.admit('publish', LIVE, token('publish', LIVE, 3), T0, CH)).toMatchObject({ ok: true, raised: true });
    expect(gate.admit('publish', LIVE, token('publish', LIVE, 2), T0, CH)).toEqual({
      ok: false,
      why: 'stale run (generation 2, current 3)',
    });
    expect(gate.admit('read', '/ingest/x', token('read', '/ingest/x', 2), T0)).toMatchObject({ ok: false });
    expect(gate.admit('publish', LIVE, token('publish', LIVE, 3), T0, 'ch_ffffffffffffffffffff')).toEqual({
      ok: false,
      why: 'run token of another channel',
    });
    expect(gate.generation(CH)).toBe(3);
    gate.forget(CH);
    expect(gate.generation(CH)).toBeUndefined();
  });

  it('a replay stays refused after its nonce is forgotten: by then the token has expired', () => {
    const gate = new RunTokenGate(SECRET);
    const a = token('publish', LIVE, 1);
    expect(gate.admit('publish', LIVE, a, T0, CH).ok).toBe(true);
    // sweeps at every admit at least 5 s after the previous one
    for (const t of [T0 + 10_000, T0 + RUN_TOKEN_TTL_MS + 10_000])
      expect(gate.admit('publish', LIVE, a, t, CH)).toMatchObject({ ok: false });
    expect(gate.admit('publish', LIVE, a, T0 + RUN_TOKEN_TTL_MS + 20_000, CH)).toEqual({
      ok: false,
      why: 'expired run token',
    });
  });

  it('raise() takes the generation of a channel record', () => {
    const gate = new RunTokenGate(SECRET);
    expect(gate.raise(CH, 2)).toBe(false);
    expect(gate.raise(CH, 2)).toBe(false);
    expect(gate.raise(CH, 5)).toBe(true);
    expect(gate.admit('publish', LIVE, token('publish', LIVE, 4), T0, CH)).toMatchObject({ ok: false });
  });
});

describe('RtmpAccess: run sessions and RTMP plays', () => {
  type Fake = NmsSession & { close: ReturnType<typeof vi.fn>; socket: { destroy: ReturnType<typeof vi.fn> } };
  let n = 0;
  function session(app: string, name: string, query: Record<string, unknown>, protocol = 'rtmp'): Fake {
    return {
      id: `s${++n}`,
      ip: '127.0.0.1:1',
      protocol,
      streamPath: `/${app}/${name}`,
      streamApp: app,
      streamName: name,
      streamQuery: query,
      isPublisher: app === 'live',
      inBytes: 0,
      outBytes: 0,
      videoCodec: 0,
      videoWidth: 0,
      videoHeight: 0,
      videoFramerate: 0,
      audioCodec: 0,
      audioDatarate: 0,
      close: vi.fn(),
      socket: { destroy: vi.fn() },
    } as never;
  }

  function access(record: Partial<Channel> | null) {
    const context = { broadcasts: new Map<string, NmsBroadcast>(), sessions: new Map() } as unknown as NmsContext;
    let answer: (ch: Channel | null) => void = () => undefined;
    const get = vi.fn(
      () =>
        new Promise<Channel | null>((r) => {
          answer = r;
        }),
    );
    const rtmp = new RtmpAccess({
      config: { liveEndedAfterMs: 10_000 },
      channels: { get },
      bus: { publish: async () => undefined, subscribe: async () => async () => undefined },
      context,
      secret: SECRET,
      logger: createLogger('silent', 'test'),
    });
    const ch = record && ({ ...testChannel({ channelId: CH, state: 'live' }), ...record } as Channel);
    return { rtmp, context, get, answer: () => answer(ch) };
  }

  const fresh = (kind: 'publish' | 'read', p: string, gen: number) => token(kind, p, gen, Date.now());

  it('a publish is admitted once per token; a newer run takes the stream from the older one at once', async () => {
    const { rtmp, context, answer } = access({ runGen: 2 });
    const older = session('live', CH, fresh('publish', LIVE, 1));
    context.sessions.set(older.id, older);
    rtmp.onPublish(older);
    expect(older.close).not.toHaveBeenCalled();
    const b = { publisher: older, subscribers: new Map(), publishGraceMs: 0, broadcastMessage: () => undefined };
    context.broadcasts.set(LIVE, b);
    const replay = session('live', CH, { ...older.streamQuery });
    rtmp.onPublish(replay);
    expect(replay.close).toHaveBeenCalledTimes(1);
    const newer = session('live', CH, fresh('publish', LIVE, 2));
    context.sessions.set(newer.id, newer);
    rtmp.onPublish(newer);
    // synchronously: the stale publisher's socket is gone and the slot free for node-media-server to give the newer
    expect(older.socket.destroy).toHaveBeenCalledTimes(1);
    expect(older.relayRejected).toBe(true);
    expect(b.publisher).toBeNull();
    expect(newer.close).not.toHaveBeenCalled();
    expect(newer.socket.destroy).not.toHaveBeenCalled();
    const again = session('live', CH, fresh('publish', LIVE, 1));
    rtmp.onPublish(again);
    expect(again.close).toHaveBeenCalledTimes(1);
    answer();
    await new Promise((r) => setTimeout(r, 0));
    expect(newer.relayRejected).toBeUndefined(); // the record names its run: kept
  });

  it('a run session the channel record does not name (older run, or no record) is dropped once the record is read', async () => {
    const { rtmp, context, get, answer } = access({ runGen: 3 });
    const reader = session(
      'ingest',
      '1400000001_1001_alice_camera',
      fresh('read', '/ingest/1400000001_1001_alice_camera', 2),
    );
    context.sessions.set(reader.id, reader);
    rtmp.onPlay(reader);
    expect(reader.close).not.toHaveBeenCalled();
    expect(get).toHaveBeenCalledWith(CH);
    answer();
    await vi.waitFor(() => expect(reader.socket.destroy).toHaveBeenCalledTimes(1));
    // the record's generation now holds here too
    const late = session('live', CH, fresh('publish', LIVE, 2));
    rtmp.onPublish(late);
    expect(late.close).toHaveBeenCalledTimes(1);

    const none = access(null);
    const p = session('live', CH, fresh('publish', LIVE, 1));
    none.rtmp.onPublish(p);
    none.answer();
    await vi.waitFor(() => expect(p.relayRejected).toBe(true));
  });

  it('an RTMP play of a channel whose record is not read yet gets nothing until it is: without the password it never does', async () => {
    const hash = hashChannelPassword(CH, 'pw');
    for (const [query, plays] of [
      [{}, false],
      [{ pwd: 'wrong' }, false],
      [{ pwd: 'pw' }, true],
    ] as const) {
      const { rtmp, answer } = access({ passwordHash: hash, runGen: 1 });
      const viewer = session('live', CH, query) as Fake & { sendBuffer: (b: Buffer) => void };
      const sent: string[] = [];
      viewer.sendBuffer = (b) => void sent.push(b.toString());
      rtmp.onPlay(viewer);
      // node-media-server sends the headers and the GOP cache right after prePlay
      viewer.sendBuffer(Buffer.from('video header'));
      viewer.sendBuffer(Buffer.from('keyframe'));
      expect(sent).toEqual([]);
      answer();
      await vi.waitFor(() => expect(plays ? sent.length > 0 : viewer.close.mock.calls.length > 0).toBe(true));
      viewer.sendBuffer(Buffer.from('frame'));
      expect(sent).toEqual(plays ? ['video header', 'keyframe', 'frame'] : []);
      expect(viewer.close).toHaveBeenCalledTimes(plays ? 0 : 1);
    }
  });

  it("once a run's publish is confirmed, RTMP plays of its channel are checked at once against the record's password", async () => {
    const hash = hashChannelPassword(CH, 'pw');
    const { rtmp, get, answer } = access({ passwordHash: hash, runGen: 1 });
    rtmp.onPublish(session('live', CH, fresh('publish', LIVE, 1)));
    answer();
    await vi.waitFor(() => expect(get).toHaveBeenCalledTimes(1));
    await new Promise((r) => setTimeout(r, 0));
    const none = session('live', CH, {});
    rtmp.onPlay(none);
    expect(none.close).toHaveBeenCalledTimes(1);
    const ok = session('live', CH, { pwd: 'pw' });
    rtmp.onPlay(ok);
    expect(ok.close).not.toHaveBeenCalled();
    expect(get).toHaveBeenCalledTimes(1);
  });
});
