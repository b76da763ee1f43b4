import { createHash } from 'node:crypto';
import type { RedisScriptClient } from '../resilience/redis-token-bucket.store.js';
import {
  ChatPresenceStore,
  type DroppedMember,
  type JoinResult,
  type MembersPage,
  type PresenceMember,
  type ReconcileResult,
  type RenewResult,
  type SweptMember,
} from './chat-presence.store.js';
import { FrameError } from './chat.protocol.js';

/**
 * Shared head of the scripts. Keys of a room (one hash tag, so one slot):
 * `KEYS[1]` the index, a sorted set of instance ids scored by lease expiry
 * (ms), and `KEYS[2]` this instance's share, a hash connectionId → member.
 * `ARGV`: 1 the share keys' prefix (share of X = prefix .. X), 2 this
 * instance's id, 3 the lease (ms), 4 how long a renewal keeps the keys (ms,
 * longer than the lease: a dead share must still be readable when swept),
 * 5 now (ms) or '' for the server's `TIME`, the one clock all instances share.
 * A live instance is one whose lease ends after now.
 */
const PROLOGUE = `
local index, own = KEYS[1], KEYS[2]
local base, me = ARGV[1], ARGV[2]
local lease, keep = tonumber(ARGV[3]), tonumber(ARGV[4])
local now
if ARGV[5] ~= '' then
  now = tonumber(ARGV[5])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function live_count()
  local n = 0
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', index, '(' .. now, '+inf')) do
    n = n + redis.call('HLEN', base .. id)
  end
  return n
end

local function renew()
  redis.call('ZADD', index, now + lease, me)
  redis.call('PEXPIRE', own, keep)
  redis.call('PEXPIRE', index, keep)
end

-- Claims every dead instance's share: removed here, so returned to this caller only.
local function sweep()
  local swept = {}
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', index, '-inf', now)) do
    if id ~= me then
      local share = base .. id
      local fields = redis.call('HGETALL', share)
      for i = 1, #fields, 2 do swept[#swept + 1] = { id, fields[i], fields[i + 1] } end
      redis.call('DEL', share)
      redis.call('ZREM', index, id)
    end
  end
  return swept
end
`;

/** `ARGV[6]` connectionId, `ARGV[7]` member. Returns `{ present (1|0), count }`. */
const JOIN_LUA = `${PROLOGUE}
local present = redis.call('ZSCORE', index, me) ~= false
redis.call('HSET', own, ARGV[6], ARGV[7])
renew()
return { present and 1 or 0, live_count() }
`;

/** `ARGV[6]` connectionId. Returns the count. */
const LEAVE_LUA = `${PROLOGUE}
redis.call('HDEL', own, ARGV[6])
if redis.call('HLEN', own) == 0 then
  redis.call('DEL', own)
  redis.call('ZREM', index, me)
end
return live_count()
`;

/** Returns `{ lost (1|0), count, swept }`; a lost share is not renewed (the caller rewrites it). */
const RENEW_LUA = `${PROLOGUE}
local lost = redis.call('ZSCORE', index, me) == false or redis.call('EXISTS', own) == 0
if not lost then renew() end
local swept = sweep()
local count = 0
if #swept > 0 then count = live_count() end
return { lost and 1 or 0, count, swept }
`;

/**
 * `ARGV[6..]` connectionId, member pairs: the whole share (none: remove it).
 * Returns `{ count, added, dropped, swept }`. An old share counts only while
 * this instance is in the index: once swept, its members were announced gone.
 */
const RECONCILE_LUA = `${PROLOGUE}
local old = {}
if redis.call('ZSCORE', index, me) ~= false then
  local fields = redis.call('HGETALL', own)
  for i = 1, #fields, 2 do old[fields[i]] = fields[i + 1] end
end
redis.call('DEL', own)
local added, kept = {}, {}
for i = 6, #ARGV, 2 do
  redis.call('HSET', own, ARGV[i], ARGV[i + 1])
  kept[ARGV[i]] = true
  if old[ARGV[i]] == nil then added[#added + 1] = ARGV[i] end
end
local dropped = {}
for conn, value in pairs(old) do
  if not kept[conn] then dropped[#dropped + 1] = { conn, value } end
end
if #ARGV >= 6 then renew() else redis.call('ZREM', index, me) end
local swept = sweep()
return { live_count(), added, dropped, swept }
`;

/**
 * `ARGV[6]` the instance to start at ('' for the first), 7 its HSCAN cursor,
 * 8 how many of that scan step's entries the previous page took, 9 the page
 * size. Walks the live instances in id order, each share by HSCAN. Returns
 * `{ members, next instance ('' when done), next scan cursor, next skip, count }`.
 */
const MEMBERS_LUA = `${PROLOGUE}
local ids = redis.call('ZRANGEBYSCORE', index, '(' .. now, '+inf')
table.sort(ids)
local start, cursor, skip, limit = ARGV[6], ARGV[7], tonumber(ARGV[8]), tonumber(ARGV[9])
local i = 1
while i <= #ids and ids[i] < start do i = i + 1 end
-- The instance the cursor named is gone: the next one starts from its beginning.
if i > #ids or ids[i] ~= start then cursor, skip = '0', 0 end
local out = {}
while i <= #ids do
  local share = base .. ids[i]
  repeat
    local step = redis.call('HSCAN', share, cursor, 'COUNT', limit)
    local fields = step[2]
    for j = skip + 1, #fields / 2 do
      if #out >= limit then return { out, ids[i], cursor, j - 1, live_count() } end
      out[#out + 1] = fields[2 * j]
    end
    skip = 0
    cursor = step[1]
  until cursor == '0'
  i = i + 1
  if #out >= limit and i <= #ids then return { out, ids[i], '0', 0, live_count() } end
end
return { out, '', '0', 0, live_count() }
`;

class Script {
  readonly sha1: string;
  constructor(readonly source: string) {
    this.sha1 = createHash('sha1').update(source).digest('hex');
  }
}

const SCRIPTS = {
  join: new Script(JOIN_LUA),
  leave: new Script(LEAVE_LUA),
  renew: new Script(RENEW_LUA),
  reconcile: new Script(RECONCILE_LUA),
  members: new Script(MEMBERS_LUA),
};

export interface RedisChatPresenceStoreOptions {
  /** `REDIS_KEY_PREFIX`. */
  readonly keyPrefix: string;
  /** This instance's id (unique per process start). */
  readonly instanceId: string;
  readonly leaseMs: number;
  /** Sends this clock's time (ms) instead of using Redis `TIME`. For tests. */
  readonly now?: () => number;
}

/** A dead share stays readable at least this long past its lease, for a sweeper to announce its members. */
const MIN_SWEEP_GRACE_MS = 60_000;

/**
 * {@link ChatPresenceStore} in Redis, each call one atomic Lua script
 * (`EVALSHA`, `EVAL` after `NOSCRIPT`). Calls made in one tick share one
 * write (node-redis pipelines them), so a heartbeat of many rooms is one
 * round trip. For a single Redis server: the scripts derive share keys from
 * the index, which Redis Cluster does not allow (their hash tag keeps a room's
 * keys in one slot all the same).
 */
export class RedisChatPresenceStore extends ChatPresenceStore {
  private readonly keepMs: number;

  constructor(
    private readonly client: RedisScriptClient,
    private readonly options: RedisChatPresenceStoreOptions,
  ) {
    super();
    this.keepMs = options.leaseMs + Math.max(options.leaseMs, MIN_SWEEP_GRACE_MS);
  }

  async join(room: string, connectionId: string, member: PresenceMember): Promise<JoinResult> {
    const reply = await this.run(SCRIPTS.join, room, [connectionId, encodeMember(member)]);
    const [present, count] = tuple(reply, 2);
    return { present: int(present) === 1, count: int(count) };
  }

  async leave(room: string, connectionId: string): Promise<number> {
    return int(await this.run(SCRIPTS.leave, room, [connectionId]));
  }

  async renew(room: string): Promise<RenewResult> {
    const [lost, count, swept] = tuple(await this.run(SCRIPTS.renew, room, []), 3);
    return { lost: int(lost) === 1, count: int(count), swept: sweptMembers(swept) };
  }

  async reconcile(room: string, members: ReadonlyMap<string, PresenceMember>): Promise<ReconcileResult> {
    const pairs: string[] = [];
    for (const [connectionId, member] of members) pairs.push(connectionId, encodeMember(member));
    const [count, added, dropped, swept] = tuple(await this.run(SCRIPTS.reconcile, room, pairs), 4);
    return {
      count: int(count),
      added: list(added).map(str),
      dropped: list(dropped).map((entry): DroppedMember => {
        const [connectionId, value] = tuple(entry, 2);
        return { connectionId: str(connectionId), ...decodeMember(str(value)) };
      }),
      swept: sweptMembers(swept),
    };
  }

  async members(room: string, cursor: string | undefined, limit: number): Promise<MembersPage> {
    const [instance, scan, skip] = decodeCursor(cursor);
    const reply = tuple(await this.run(SCRIPTS.members, room, [instance, scan, skip, String(limit)]), 5);
    const [members, next, nextScan, nextSkip, count] = reply;
    return {
      members: list(members).map((value) => decodeMember(str(value))),
      cursor: str(next) === '' ? undefined : `${str(next)}.${str(nextScan)}.${String(int(nextSkip))}`,
      count: int(count),
    };
  }

  private async run(script: Script, room: string, extra: string[]): Promise<unknown> {
    const { keyPrefix, instanceId, leaseMs, now } = this.options;
    const base = `${keyPrefix}chat:presence:{${room}}:`;
    const options = {
      keys: [`${base}instances`, base + instanceId],
      arguments: [
        base,
        instanceId,
        String(leaseMs),
        String(this.keepMs),
        now === undefined ? '' : String(now()),
        ...extra,
      ],
    };
    try {
      return await this.client.evalSha(script.sha1, options);
    } catch (error) {
      // Not cached yet, or Redis restarted: EVAL runs it and caches it again.
      if (error instanceof Error && error.message.startsWith('NOSCRIPT'))
        return this.client.eval(script.source, options);
      throw error;
    }
  }
}

/** A members cursor is `instance.scanCursor.skip` (instance ids are UUIDs: no dots). */
function decodeCursor(cursor: string | undefined): [string, string, string] {
  if (cursor === undefined) return ['', '0', '0'];
  const [, instance, scan, skip] = /^([A-Za-z0-9-]{1,64})\.(\d{1,20})\.(\d{1,6})$/.exec(cursor) ?? [];
  if (instance === undefined || scan === undefined || skip === undefined) {
    throw new FrameError('invalid_cursor', 'cursor must be the cursor of a previous who answer');
  }
  return [instance, scan, skip];
}

/** How a member is stored: `[name, guest]` as JSON (a name may hold any character). */
export function encodeMember(member: PresenceMember): string {
  return JSON.stringify([member.name, member.guest]);
}

export function decodeMember(value: string): PresenceMember {
  try {
    const parsed: unknown = JSON.parse(value);
    if (Array.isArray(parsed) && typeof parsed[0] === 'string' && typeof parsed[1] === 'boolean') {
      return { name: parsed[0], guest: parsed[1] };
    }
  } catch {
    // not ours: shown as it is
  }
  return { name: value, guest: false };
}

function sweptMembers(reply: unknown): SweptMember[] {
  return list(reply).map((entry) => {
    const [instance, connectionId, value] = tuple(entry, 3);
    return { instance: str(instance), connectionId: str(connectionId), ...decodeMember(str(value)) };
  });
}

function unexpected(reply: unknown): TypeError {
  return new TypeError(`unexpected reply from a chat presence script: ${JSON.stringify(reply)}`);
}

function list(reply: unknown): unknown[] {
  if (!Array.isArray(reply)) throw unexpected(reply);
  return reply;
}

function tuple(reply: unknown, length: number): unknown[] {
  const items = list(reply);
  if (items.length !== length) throw unexpected(reply);
  return items;
}

function int(reply: unknown): number {
  if (typeof reply !== 'number' || !Number.isInteger(reply)) throw unexpected(reply);
  return reply;
}

function str(reply: unknown): string {
  if (typeof reply !== 'string') throw unexpected(reply);
  return reply;
}
