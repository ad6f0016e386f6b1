import crypto from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Keys } from '../redis/index.js';
import { CHANNEL_ID_PATTERN, type Channel, type ChannelState } from './types.js';
import type { Admission, ChannelPatch, ChannelRecords, ChannelSlots, Moved } from './records.js';

// Admission is one script so that two starts racing for the same upstream or the last room slot never both win.
const ADMIT = `
local existing = redis.call('GET', KEYS[1])
if existing then
  local raw = redis.call('GET', ARGV[4] .. existing)
  if raw then
    local state = cjson.decode(raw).state
    if state == 'interrupted' then return {3, existing} end
    if state ~= 'stopped' and state ~= 'failed' and state ~= 'recycled' then return {1, existing} end
  end
end
for _, id in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  if redis.call('EXISTS', ARGV[4] .. id) == 0 then redis.call('SREM', KEYS[2], id) end
end
if redis.call('SCARD', KEYS[2]) >= tonumber(ARGV[3]) then return {2, ''} end
for _, id in ipairs(redis.call('SMEMBERS', KEYS[5])) do
  local raw = redis.call('GET', ARGV[4] .. id)
  local state = raw and cjson.decode(raw).state
  if not raw or state == 'stopped' or state == 'failed' or state == 'recycled' then redis.call('SREM', KEYS[5], id) end
end
if redis.call('SCARD', KEYS[5]) >= tonumber(ARGV[5]) then return {4, ''} end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('SET', KEYS[3], ARGV[2])
redis.call('SADD', KEYS[4], ARGV[1])
redis.call('SADD', KEYS[5], ARGV[1])
return {0, ARGV[1]}
`;

// Compare-and-set of the state plus a patch of fields, with the transition appended to the history; with a run
// generation (ARGV[6]), only while the record's runGen is that one (fencing: a stale runner moves nothing).
const TRANSITION = `
local raw = redis.call('GET', KEYS[1])
if not raw then return {0, ''} end
local ch = cjson.decode(raw)
if ARGV[6] ~= '' and (tonumber(ch.runGen) or 0) ~= tonumber(ARGV[6]) then return {2, ch.state} end
local allowed = cjson.decode(ARGV[1])
local ok = #allowed == 0
for _, s in ipairs(allowed) do if s == ch.state then ok = true end end
if not ok then return {0, ch.state} end
local patch = cjson.decode(ARGV[2])
for k, v in pairs(patch) do ch[k] = v end
if ARGV[3] ~= '' then
  ch.state = ARGV[3]
  table.insert(ch.history, {state = ARGV[3], at = tonumber(ARGV[5]), reason = ARGV[4]})
end
redis.call('SET', KEYS[1], cjson.encode(ch))
return {1, ch.state}
`;

// A runner begins: the channel's run generation goes up by one (while it is to be run), so older runners are fenced.
const BEGIN_RUN = `
local raw = redis.call('GET', KEYS[1])
if not raw then return -1 end
local ch = cjson.decode(raw)
local gen = tonumber(ch.runGen) or 0
if ch.state ~= 'starting' and ch.state ~= 'live' and ch.state ~= 'stopping' then return gen end
ch.runGen = gen + 1
redis.call('SET', KEYS[1], cjson.encode(ch))
return gen + 1
`;

// An interrupted channel leaves its room slot and the active set but keeps its upstream (same id and URLs on a new
// start) until its retention ends.
const RETAIN = `
redis.call('SREM', KEYS[1], ARGV[1])
redis.call('SREM', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
return 1
`;

// Takes a retained channel back: a room slot (if one is free) and the active set.
const UNRETAIN = `
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if redis.call('EXISTS', ARGV[3] .. id) == 0 then redis.call('SREM', KEYS[1], id) end
end
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 0 and redis.call('SCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
return 1
`;

// Claims the channels whose retention has ended (each claimed by one process only).
const DUE = `
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 100)
for _, id in ipairs(ids) do redis.call('ZREM', KEYS[1], id) end
return ids
`;

// Frees the upstream slot and the room slot of a channel that is no longer active.
const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
redis.call('SREM', KEYS[2], ARGV[1])
redis.call('SREM', KEYS[3], ARGV[1])
redis.call('SREM', KEYS[5], ARGV[1])
if ARGV[2] == '1' then redis.call('DEL', KEYS[4]) end
return 1
`;

/** A new channel id (CHANNEL_ID_PATTERN). */
export function newChannelId(): string {
  return 'ch_' + crypto.randomBytes(10).toString('hex');
}

/** Channel records in Redis (ChannelRecords): each step that must not race is one Lua script. */
export class ChannelStore implements ChannelRecords {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
  ) {}

  async admit(ch: Channel, maxPerRoom: number, accountLimit: number): Promise<Admission> {
    const res = (await this.redis.eval(
      ADMIT,
      5,
      this.keys.upstreamChannel(ch.sdkAppId, ch.roomId, ch.userId, ch.srcType),
      this.keys.roomChannels(ch.sdkAppId, ch.roomId),
      this.keys.channel(ch.channelId),
      this.keys.activeChannels(),
      this.keys.accountChannels(ch.accountId),
      ch.channelId,
      JSON.stringify(ch),
      String(maxPerRoom),
      this.keys.channel(''),
      String(accountLimit),
    )) as [number, string];
    if (res[0] === 0) return { ok: true };
    if (res[0] === 1) return { ok: false, reason: 'already-pushing', channelId: res[1] };
    if (res[0] === 3) return { ok: false, reason: 'resumable', channelId: res[1] };
    if (res[0] === 4) return { ok: false, reason: 'account-full' };
    return { ok: false, reason: 'room-full' };
  }

  async get(channelId: string): Promise<Channel | null> {
    if (!CHANNEL_ID_PATTERN.test(channelId)) return null;
    const raw = await this.redis.get(this.keys.channel(channelId));
    return raw ? normalise(JSON.parse(raw) as Channel) : null;
  }

  /** Several channel records in one round trip (missing ones left out). */
  async getMany(channelIds: readonly string[]): Promise<Channel[]> {
    const ids = channelIds.filter((id) => CHANNEL_ID_PATTERN.test(id));
    if (!ids.length) return [];
    const raws = await this.redis.mget(...ids.map((id) => this.keys.channel(id)));
    return raws.flatMap((raw) => (raw ? [normalise(JSON.parse(raw) as Channel)] : []));
  }

  async transition(
    channelId: string,
    from: readonly ChannelState[],
    to: ChannelState | null,
    reason: string,
    patch: ChannelPatch = {},
    gen?: number,
  ): Promise<Moved> {
    const res = (await this.redis.eval(
      TRANSITION,
      1,
      this.keys.channel(channelId),
      JSON.stringify(from),
      JSON.stringify(patch),
      to ?? '',
      reason,
      String(Date.now()),
      gen === undefined ? '' : String(gen),
    )) as [number, string];
    return { ok: res[0] === 1, state: res[1] as ChannelState | '', ...(res[0] === 2 ? { fenced: true } : {}) };
  }

  async beginRun(channelId: string): Promise<number | null> {
    if (!CHANNEL_ID_PATTERN.test(channelId)) return null;
    const gen = (await this.redis.eval(BEGIN_RUN, 1, this.keys.channel(channelId))) as number;
    return gen < 0 ? null : gen;
  }

  async release(ch: ChannelSlots, remove = false): Promise<void> {
    await this.redis.eval(
      RELEASE,
      5,
      this.keys.upstreamChannel(ch.sdkAppId, ch.roomId, ch.userId, ch.srcType),
      this.keys.roomChannels(ch.sdkAppId, ch.roomId),
      this.keys.activeChannels(),
      this.keys.channel(ch.channelId),
      this.keys.accountChannels(ch.accountId ?? 'default'),
      ch.channelId,
      remove ? '1' : '0',
    );
    await this.redis.zrem(this.keys.retainedChannels(), ch.channelId);
    await this.redis.hdel(this.keys.placements(), ch.channelId);
  }

  async retain(ch: Pick<Channel, 'channelId' | 'sdkAppId' | 'roomId'>, until: number): Promise<void> {
    await this.redis.eval(
      RETAIN,
      3,
      this.keys.roomChannels(ch.sdkAppId, ch.roomId),
      this.keys.activeChannels(),
      this.keys.retainedChannels(),
      ch.channelId,
      String(until),
    );
  }

  async unretain(ch: Pick<Channel, 'channelId' | 'sdkAppId' | 'roomId'>, maxPerRoom: number): Promise<boolean> {
    const res = await this.redis.eval(
      UNRETAIN,
      3,
      this.keys.roomChannels(ch.sdkAppId, ch.roomId),
      this.keys.activeChannels(),
      this.keys.retainedChannels(),
      ch.channelId,
      String(maxPerRoom),
      this.keys.channel(''),
    );
    return res === 1;
  }

  async dueForRecycling(now: number): Promise<string[]> {
    return (await this.redis.eval(DUE, 1, this.keys.retainedChannels(), String(now))) as string[];
  }

  /** Ids of channels not yet stopped. */
  async activeIds(): Promise<string[]> {
    return this.redis.smembers(this.keys.activeChannels());
  }

  /** Ids of interrupted channels kept for their retention time. */
  async retainedIds(): Promise<string[]> {
    return this.redis.zrange(this.keys.retainedChannels(), 0, -1);
  }
}

// cjson turns empty arrays into {}; give the record its declared shape back.
function normalise(ch: Channel): Channel {
  if (!Array.isArray(ch.history)) ch.history = [];
  if (!Array.isArray(ch.urls)) ch.urls = [];
  for (const k of Object.keys(ch) as (keyof Channel)[]) if (ch[k] === null) delete ch[k];
  return ch;
}
