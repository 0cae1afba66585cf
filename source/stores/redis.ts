import {createHash} from 'node:crypto';
// Type-only: the driver is an optional peer dependency, and the application hands us its client.
import type {Redis} from 'ioredis';
import type {
	FoundToken, RotateOutcome, SessionLimit, TokenRecord, TokenStore, UserPage, UserRecord, UserStore,
} from './types.js';

/*
Stores in Redis, over an ioredis client the application made. Every key starts with the store's
prefix; under it:

	t:<digest>     a token: a hash of its record's fields (a null field is absent), expiring with the
	               token. Keys and values hold digests, never a token.
	i:<id>         the digest of the token with this id (for touch), expiring with it
	f:<familyId>   a session: a sorted set of its tokens' digests, scored by their expiresAt
	s:<userId>     a user's sessions: a sorted set of family ids, scored by the family's latest expiresAt
	e:<userId>     a user's revocation epoch: INCR is revoke-all. It never expires (see the class TSDoc)
	seq            a counter: the order tokens were stored in, which breaks ties of createdAt
	user:<id>      a user: a hash
	username:<u>   the id of the user with this username (set NX: the uniqueness)
	usernames      every username, in a sorted set of one score: listed in the order of their bytes

Expiry is Redis's TTL, set as `expiresAt - now()` with the store's clock, the one the token service
judges expiry by: Redis deletes a token when the service would call it expired, whatever the
difference between the two machines' clocks (PEXPIREAT would follow Redis's clock instead). The
index sets expire with their latest member (the TTL is set again whenever a member is added; a
removal leaves it long enough), so nothing is left behind once every token has expired; prune()
takes out what expired or was revoked before that.

Everything that reads before it writes is one Lua script, run by EVALSHA (and EVAL when the server
has not seen the script yet, which also loads it): Redis runs a script alone, so two processes
racing one refresh token are serialised and only one rotates. The scripts build key names from the
prefix they are given, so they need every key on one server: standalone Redis or Sentinel, not a
Cluster. Scripts are not registered on the client (`defineCommand`) because that writes onto an
object the application owns.
*/

/**
Options of {@link RedisTokenStore} and {@link RedisUserStore}.

@example
```
const users = new RedisUserStore(redis, {prefix: 'myapp:auth:'});
```
*/
export type RedisStoreOptions = {
	/**
	Prepended to every key the store writes, so that its keys sit beside the application's own and
	several stores can share one server: 1 to 64 ASCII letters, digits, `_`, `-`, `.` and `:`. Two
	stores must not have prefixes where one begins with the other followed by a key name
	(`ksa:` and `ksa:s:x`). The token and the user store may share one.

	@default 'ksa:'
	*/
	readonly prefix?: string;
};


/**
Options of {@link RedisTokenStore}.

@example
```
const now = () => clock;
const tokens = new TokenService({store: new RedisTokenStore(redis, {prefix: 'test:', now}), prefix: 'myapp', now});
```
*/
export type RedisTokenStoreOptions = RedisStoreOptions & {
	/**
	The clock expiries are measured on, in milliseconds since the epoch: a token's key lives
	`expiresAt - now()` milliseconds from when it is written. Give the token service's `now` when
	it has one (tests).

	@default Date.now
	*/
	readonly now?: () => number;
};

const prefixPattern = /^[\w.:-]{1,64}$/;

function prefixOf(options: RedisStoreOptions): string {
	const {prefix = 'ksa:'} = options;
	if (typeof prefix !== 'string' || !prefixPattern.test(prefix)) {
		throw new TypeError(`The \`prefix\` option must be 1 to 64 ASCII letters, digits, "_", "-", "." or ":", got ${JSON.stringify(prefix)}.`);
	}

	return prefix;
}

function assertClient(client: unknown): void {
	const candidate = client as {evalsha?: unknown; eval?: unknown; scan?: unknown; options?: {keyPrefix?: unknown}} | null;
	if (typeof candidate !== 'object' || candidate === null
		|| typeof candidate.evalsha !== 'function' || typeof candidate.eval !== 'function' || typeof candidate.scan !== 'function') {
		throw new TypeError('The first argument must be an ioredis client (new Redis(...)).');
	}

	// ioredis prefixes the keys a script is given, not those a script builds: half the keys would move.
	const keyPrefix = candidate.options?.keyPrefix;
	if (keyPrefix !== undefined && keyPrefix !== '') {
		throw new TypeError('The ioredis client must not have a `keyPrefix`: give the store its `prefix` option instead.');
	}
}

/** A Lua script and its SHA-1, the name EVALSHA knows it by. */
type Script = {readonly lua: string; readonly sha: string};

function script(lua: string): Script {
	return {lua, sha: createHash('sha1').update(lua).digest('hex')};
}

/** Run a script by its SHA-1, loading it (EVAL) when the server does not have it: after a restart, or a SCRIPT FLUSH. */
async function run(client: Redis, {lua, sha}: Script, args: ReadonlyArray<string | number>): Promise<unknown> {
	try {
		return await client.evalsha(sha, 0, ...args);
	} catch (error) {
		if (error instanceof Error && error.message.startsWith('NOSCRIPT')) {
			return client.eval(lua, 0, ...args);
		}

		throw error;
	}
}

// Every token script starts with these: ARGV[1] is the prefix, ARGV[2] the store's clock (for TTLs).
const common = `
local P, clock = ARGV[1], tonumber(ARGV[2])

-- Expire an index set (scored by expiresAt) with its latest member; delete it when that has expired.
local function refreshTtl(key)
	local top = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
	if top[2] then
		local ttl = math.ceil(tonumber(top[2]) - clock)
		if ttl > 0 then
			redis.call('PEXPIRE', key, string.format('%.0f', ttl))
		else
			redis.call('DEL', key)
		end
	end
end

-- Delete a token and its id key; answers 1 if it was there, and its user.
local function dropToken(digest)
	local key = P .. 't:' .. digest
	local found = redis.call('HMGET', key, 'id', 'userId')
	if found[1] then
		redis.call('DEL', P .. 'i:' .. found[1])
	end
	return redis.call('DEL', key), found[2]
end

-- Delete every token of a family, the family, and its place in its user's sessions.
local function revokeFamily(familyId, userId)
	local key = P .. 'f:' .. familyId
	local revoked = 0
	for _, digest in ipairs(redis.call('ZRANGE', key, 0, -1)) do
		local gone, owner = dropToken(digest)
		revoked = revoked + gone
		userId = userId or owner
	end
	redis.call('DEL', key)
	if userId then
		redis.call('ZREM', P .. 's:' .. userId, familyId)
	end
	return revoked
end

-- Store the records that start at ARGV[from]: their count, then for each its digest, id, user,
-- family, expiresAt, the number of field strings, and the fields. A record already expired by the
-- store's clock is not stored: Redis would delete it at once.
local function storeRecords(from)
	local index = from + 1
	for _ = 1, tonumber(ARGV[from]) do
		local digest, id, userId, familyId, expiresAt = ARGV[index], ARGV[index + 1], ARGV[index + 2], ARGV[index + 3], ARGV[index + 4]
		local count = tonumber(ARGV[index + 5])
		local fields = {}
		for field = index + 6, index + 5 + count do
			fields[#fields + 1] = ARGV[field]
		end
		index = index + 6 + count
		local ttl = math.ceil(tonumber(expiresAt) - clock)
		if ttl > 0 then
			ttl = string.format('%.0f', ttl)
			local key = P .. 't:' .. digest
			redis.call('DEL', key)
			redis.call('HSET', key, 'seq', redis.call('INCR', P .. 'seq'), unpack(fields))
			redis.call('PEXPIRE', key, ttl)
			redis.call('SET', P .. 'i:' .. id, digest, 'PX', ttl)
			local family = P .. 'f:' .. familyId
			redis.call('ZADD', family, expiresAt, digest)
			refreshTtl(family)
			local sessions = P .. 's:' .. userId
			local latest = redis.call('ZSCORE', sessions, familyId)
			if not latest or tonumber(latest) < tonumber(expiresAt) then
				redis.call('ZADD', sessions, expiresAt, familyId)
			end
			refreshTtl(sessions)
		end
	end
end
`;

// ARGV: prefix, clock, digest. Answers {fields, epoch}, or {} when there is no such token.
const findScript = script(`
local P = ARGV[1]
local fields = redis.call('HGETALL', P .. 't:' .. ARGV[3])
if #fields == 0 then
	return {}
end
local epoch = '0'
for index = 1, #fields, 2 do
	if fields[index] == 'userId' then
		epoch = redis.call('GET', P .. 'e:' .. fields[index + 1]) or '0'
		break
	end
end
return {fields, epoch}
`);

// ARGV: prefix, clock, id, time. A token that expired meanwhile is not brought back as a hash without expiry.
const touchScript = script(`
local P = ARGV[1]
local digest = redis.call('GET', P .. 'i:' .. ARGV[3])
if digest and redis.call('EXISTS', P .. 't:' .. digest) == 1 then
	redis.call('HSET', P .. 't:' .. digest, 'lastUsedAt', ARGV[4])
end
return 0
`);

// ARGV: prefix, clock, '1' with a limit (or '0'), max, onLimit, now, the records' user, then the records.
// A live session: a family with a token of the user's current epoch, not retired, expiring after now.
// Oldest: the earliest createdAt of its live tokens, ties broken by the order they were stored in.
const createScript = script(`${common}
if ARGV[3] == '1' then
	local max, now, userId = tonumber(ARGV[4]), ARGV[6], ARGV[7]
	local epoch = tonumber(redis.call('GET', P .. 'e:' .. userId) or '0')
	local sessions = {}
	for _, familyId in ipairs(redis.call('ZRANGEBYSCORE', P .. 's:' .. userId, '(' .. now, '+inf')) do
		local oldest, order
		for _, digest in ipairs(redis.call('ZRANGEBYSCORE', P .. 'f:' .. familyId, '(' .. now, '+inf')) do
			local token = redis.call('HMGET', P .. 't:' .. digest, 'retiredAt', 'epoch', 'createdAt', 'seq')
			if token[3] and not token[1] and tonumber(token[2]) == epoch then
				local createdAt, seq = tonumber(token[3]), tonumber(token[4]) or 0
				if not oldest or createdAt < oldest or (createdAt == oldest and seq < order) then
					oldest, order = createdAt, seq
				end
			end
		end
		if oldest then
			sessions[#sessions + 1] = {familyId, oldest, order}
		end
	end
	if #sessions >= max then
		if ARGV[5] == 'refuse' then
			return 0
		end
		table.sort(sessions, function (a, b)
			if a[2] ~= b[2] then
				return a[2] < b[2]
			end
			return a[3] < b[3]
		end)
		for index = 1, #sessions - max + 1 do
			revokeFamily(sessions[index][1], userId)
		end
	end
end
storeRecords(8)
return 1
`);

// ARGV: prefix, clock, digest, now, graceUntil ('' for none), grace ciphertext, then the new records.
const rotateScript = script(`${common}
local digest, now = ARGV[3], ARGV[4]
local key = P .. 't:' .. digest
local token = redis.call('HMGET', key, 'familyId', 'userId', 'retiredAt', 'graceUntil', 'graceCiphertext')
if not token[1] then
	return {'unknown'}
end
if token[3] then
	if token[4] and token[5] and tonumber(now) <= tonumber(token[4]) then
		return {'grace', token[5]}
	end
	revokeFamily(token[1], token[2])
	return {'reused'}
end
-- The family's other current tokens go; its retired ones stay, so that one retired rotations ago
-- is still seen as reuse when it comes back. They go when they expire, or with the family.
local family = P .. 'f:' .. token[1]
for _, other in ipairs(redis.call('ZRANGE', family, 0, -1)) do
	if other ~= digest and redis.call('HEXISTS', P .. 't:' .. other, 'retiredAt') == 0 then
		dropToken(other)
		redis.call('ZREM', family, other)
	end
end
redis.call('HSET', key, 'retiredAt', now)
if ARGV[5] == '' then
	redis.call('HDEL', key, 'graceUntil', 'graceCiphertext')
else
	redis.call('HSET', key, 'graceUntil', ARGV[5], 'graceCiphertext', ARGV[6])
end
storeRecords(7)
return {'rotated'}
`);

// ARGV: prefix, clock, familyId.
const revokeFamilyScript = script(`${common}
return revokeFamily(ARGV[3], nil)
`);

// ARGV: prefix, clock, userId, now. Answers the user's tokens (flat field lists) in families expiring after now.
const listScript = script(`
local P, userId, now = ARGV[1], ARGV[3], ARGV[4]
local tokens = {}
for _, familyId in ipairs(redis.call('ZRANGEBYSCORE', P .. 's:' .. userId, '(' .. now, '+inf')) do
	for _, digest in ipairs(redis.call('ZRANGEBYSCORE', P .. 'f:' .. familyId, '(' .. now, '+inf')) do
		local fields = redis.call('HGETALL', P .. 't:' .. digest)
		if #fields > 0 then
			tokens[#tokens + 1] = fields
		end
	end
end
return tokens
`);

// ARGV: prefix, clock, userId, now. Deletes the user's tokens expired at now or of an old epoch, and
// the index entries of tokens that Redis expired; answers how many tokens it deleted.
const pruneScript = script(`${common}
local userId, now = ARGV[3], tonumber(ARGV[4])
local epoch = tonumber(redis.call('GET', P .. 'e:' .. userId) or '0')
local sessions = P .. 's:' .. userId
local pruned = 0
for _, familyId in ipairs(redis.call('ZRANGE', sessions, 0, -1)) do
	local family = P .. 'f:' .. familyId
	for _, digest in ipairs(redis.call('ZRANGE', family, 0, -1)) do
		local key = P .. 't:' .. digest
		if redis.call('EXISTS', key) == 0 then
			redis.call('ZREM', family, digest)
		else
			local token = redis.call('HMGET', key, 'expiresAt', 'epoch')
			if (tonumber(token[1]) or 0) <= now or tonumber(token[2]) ~= epoch then
				pruned = pruned + dropToken(digest)
				redis.call('ZREM', family, digest)
			end
		end
	end
	local top = redis.call('ZRANGE', family, -1, -1, 'WITHSCORES')
	if top[2] then
		redis.call('ZADD', sessions, top[2], familyId)
	else
		redis.call('ZREM', sessions, familyId)
	end
end
return pruned
`);

const tokenFieldNames = ['id', 'digest', 'type', 'userId', 'familyId', 'scopes', 'name', 'hint', 'createdAt', 'expiresAt', 'lastUsedAt', 'epoch', 'retiredAt', 'graceUntil', 'graceCiphertext'] as const;

/** A record as hash fields, `[field, value, ...]`: numbers in decimal, scopes as JSON, a null left out. */
function tokenFields(record: TokenRecord): string[] {
	const fields: string[] = [];
	for (const name of tokenFieldNames) {
		const value = record[name];
		if (value !== null) {
			fields.push(name, typeof value === 'string' ? value : (typeof value === 'number' ? String(value) : JSON.stringify(value)));
		}
	}

	return fields;
}

/** What `storeRecords` in the scripts reads: the count, then each record. */
function recordArguments(records: readonly TokenRecord[]): string[] {
	return [String(records.length), ...records.flatMap(record => {
		const fields = tokenFields(record);
		return [record.digest, record.id, record.userId, record.familyId, String(record.expiresAt), String(fields.length), ...fields];
	})];
}

/** A hash as a script answers it (`[field, value, ...]`) or as ioredis's `hgetall` does (an object). */
function fieldMap(reply: unknown): Map<string, string> {
	if (Array.isArray(reply)) {
		const map = new Map<string, string>();
		for (let index = 0; index + 1 < reply.length; index += 2) {
			map.set(String(reply[index]), String(reply[index + 1]));
		}

		return map;
	}

	return new Map(typeof reply === 'object' && reply !== null ? Object.entries(reply).map(([field, value]) => [field, String(value)]) : []);
}

// A hash written around the store (a hand-edited field) is answered as it is rather than thrown on:
// the token service checks every record, refuses a corrupt one as an unknown token and reports it,
// where a throw here would make that token a 503 for ever.
function parseLeniently(text: string | undefined): unknown {
	try {
		return text === undefined ? undefined : JSON.parse(text) as unknown;
	} catch {
		return undefined;
	}
}

const numberOrNull = (text: string | undefined): number | null => (text === undefined ? null : Number(text));

/** A token hash as a record, with `seq`: the order it was stored in. Not checked here: see parseLeniently. */
function toTokenRecord(fields: Map<string, string>): TokenRecord & {seq: number} {
	return {
		id: fields.get('id') as string,
		digest: fields.get('digest') as string,
		type: fields.get('type') as string,
		userId: fields.get('userId') as string,
		familyId: fields.get('familyId') as string,
		scopes: parseLeniently(fields.get('scopes')) as readonly string[],
		name: fields.get('name') ?? null,
		hint: fields.get('hint') as string,
		createdAt: Number(fields.get('createdAt')),
		expiresAt: Number(fields.get('expiresAt')),
		lastUsedAt: numberOrNull(fields.get('lastUsedAt')),
		epoch: Number(fields.get('epoch')),
		retiredAt: numberOrNull(fields.get('retiredAt')),
		graceUntil: numberOrNull(fields.get('graceUntil')),
		graceCiphertext: fields.get('graceCiphertext') ?? null,
		seq: Number(fields.get('seq') ?? 0),
	};
}

function withoutSeq({seq: _seq, ...record}: TokenRecord & {seq: number}): TokenRecord {
	return record;
}

type Grace = {readonly until: number; readonly ciphertext: string} | undefined;

/**
Tokens in Redis, over an ioredis client the application made (ioredis is an optional peer
dependency; this module only imports its types). Only digests are stored, each token in a hash that
Redis expires at the token's `expiresAt` (measured on the store's `now`, the service's clock): a
token past its expiry is gone, so it is refused as unknown (`invalid_token`) rather than as
`expired_token`, as stores that keep rows until `prune` refuse it. Rotation, the session cap and
revoking a session are each one Lua script, so two processes racing one refresh token rotate it
once; `find` is one round trip; revoke-all is one `INCR` whatever the number of tokens.

Make the client fail fast, so that a Redis that is down answers 503 at once instead of holding
requests in ioredis's queue: `enableOfflineQueue: false` (a command while disconnected fails at
once), `maxRetriesPerRequest: 0` (a command in flight when the connection drops fails at once, and
is never sent twice), `commandTimeout` (a server that hangs without closing the connection), and a
short `retryStrategy` so that service resumes soon after Redis is back. With the offline queue off,
commands fail until the first connection is ready: wait for `ready` before serving. Listen for the
client's `error` events, or ioredis prints each one.

Use standalone Redis or Sentinel (not a Cluster: the scripts build key names). Revoke-all depends on
the epoch keys (`<prefix>e:<userId>`, which never expire; one small key per user ever revoked):
run Redis with `maxmemory-policy noeviction`, or a `volatile-*` policy (they never evict a key
without expiry), never `allkeys-*`, and with the AOF if revocations must survive a restart of Redis.
A restart without persistence forgets every token: users sign in again.

@example
```
import {once} from 'node:events';
import {Redis} from 'ioredis';
import {TokenService} from 'koa-stateless-auth';
import {RedisTokenStore} from 'koa-stateless-auth/stores/redis';

const redis = new Redis(process.env.REDIS_URL, {
	enableOfflineQueue: false,
	maxRetriesPerRequest: 0,
	commandTimeout: 1000,
	retryStrategy: times => Math.min(times * 100, 1000),
});
redis.on('error', error => log(error));
await once(redis, 'ready');
const tokens = new TokenService({store: new RedisTokenStore(redis), prefix: 'myapp'});
```
*/
export class RedisTokenStore implements TokenStore {
	readonly #client: Redis;
	readonly #prefix: string;
	readonly #now: () => number;

	/**
	@param client - The application's ioredis client; the store never closes it. It must not have a `keyPrefix`.
	@param options - The key prefix, and the clock.
	*/
	constructor(client: Redis, options: RedisTokenStoreOptions = {}) {
		assertClient(client);
		this.#prefix = prefixOf(options);
		const {now = Date.now} = options;
		if (typeof now !== 'function') {
			throw new TypeError('The `now` option must be a function.');
		}

		this.#client = client;
		this.#now = now;
	}

	/** The tokens of one new session; with `limit`, the session cap is checked and applied in the same script. */
	async create(records: readonly TokenRecord[], limit?: SessionLimit): Promise<boolean> {
		const [first] = records;
		if (first === undefined) {
			return true;
		}

		const limitArguments = limit === undefined ? ['0', '', '', ''] : ['1', String(limit.max), limit.onLimit, String(limit.now)];
		const created = await this.#run(createScript, [...limitArguments, first.userId, ...recordArguments(records)]);
		return created === 1;
	}

	/** The token and its user's epoch, in one script: one round trip. */
	async find(digest: string): Promise<FoundToken | undefined> {
		const reply = await this.#run(findScript, [digest]);
		if (!Array.isArray(reply) || reply.length < 2) {
			return undefined;
		}

		const [fields, epoch] = reply as [unknown, unknown];
		return {record: withoutSeq(toTokenRecord(fieldMap(fields))), epoch: Number(epoch)};
	}

	/** Write a token's last use, unless it has expired or gone meanwhile. */
	async touch(id: string, at: number): Promise<void> {
		await this.#run(touchScript, [id, String(at)]);
	}

	/** Rotate a refresh token in one script: two processes racing on it are run one after the other. */
	async rotate(digest: string, now: number, grace: Grace, records: readonly TokenRecord[]): Promise<RotateOutcome> {
		const reply = await this.#run(rotateScript, [digest, String(now), grace === undefined ? '' : String(grace.until), grace?.ciphertext ?? '', ...recordArguments(records)]);
		const [kind, ciphertext] = Array.isArray(reply) ? reply as unknown[] : [];
		switch (kind) {
			case 'rotated':
			case 'reused': {
				return {kind};
			}

			case 'grace': {
				return {kind, ciphertext: String(ciphertext)};
			}

			default: {
				return {kind: 'unknown'};
			}
		}
	}

	/** Delete a session's tokens and its index entries, in one script. */
	async revokeFamily(familyId: string): Promise<number> {
		return Number(await this.#run(revokeFamilyScript, [familyId]));
	}

	/** One `INCR` of the user's epoch: every token issued before is refused from then on. */
	async revokeUser(userId: string): Promise<void> {
		await this.#client.incr(`${this.#prefix}e:${userId}`);
	}

	/** The user's epoch: 0 until the first revoke-all. */
	async epoch(userId: string): Promise<number> {
		return Number(await this.#client.get(`${this.#prefix}e:${userId}`) ?? 0);
	}

	/** The user's current tokens, oldest first (by `createdAt`, then the order they were stored in). */
	async list(userId: string, now: number): Promise<readonly TokenRecord[]> {
		const reply = await this.#run(listScript, [userId, String(now)]);
		return (Array.isArray(reply) ? reply as unknown[] : [])
			.map(fields => toTokenRecord(fieldMap(fields)))
			.filter(record => record.retiredAt === null && record.expiresAt > now)
			.sort((a, b) => a.createdAt - b.createdAt || a.seq - b.seq)
			.map(record => withoutSeq(record));
	}

	/**
	Delete the tokens that expired at `now` or belong to an old epoch, and take out of the index sets
	what Redis expired by itself; answers how many tokens it deleted (those Redis expired are not
	counted). Walks the users with `SCAN`, one script per user: run it now and then, off the request
	path.
	*/
	async prune(now: number): Promise<number> {
		const pattern = `${this.#prefix}s:*`;
		const skip = this.#prefix.length + 2;
		let pruned = 0;
		let cursor = '0';
		do {
			const [next, keys] = await this.#client.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
			cursor = next;
			for (const key of keys) {
				pruned += Number(await this.#run(pruneScript, [key.slice(skip), String(now)]));
			}
		} while (cursor !== '0');

		return pruned;
	}

	async #run(which: Script, args: readonly string[]): Promise<unknown> {
		return run(this.#client, which, [this.#prefix, String(this.#now()), ...args]);
	}
}

// ARGV: prefix, id, username, then the user's fields. The username is claimed with SET NX.
const createUserScript = script(`
local P, id, username = ARGV[1], ARGV[2], ARGV[3]
local key = P .. 'user:' .. id
if redis.call('EXISTS', key) == 1 then
	return 0
end
if not redis.call('SET', P .. 'username:' .. username, id, 'NX') then
	return 0
end
redis.call('HSET', key, unpack(ARGV, 4))
redis.call('ZADD', P .. 'usernames', 0, username)
return 1
`);

// ARGV: prefix, username. Answers the user's fields, or {}.
const userByNameScript = script(`
local P = ARGV[1]
local id = redis.call('GET', P .. 'username:' .. ARGV[2])
if not id then
	return {}
end
return redis.call('HGETALL', P .. 'user:' .. id)
`);

// ARGV: prefix, offset, limit. Answers {total, fields, fields, ...}: the page and the total of one moment.
const listUsersScript = script(`
local P, offset, limit = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local page = {redis.call('ZCARD', P .. 'usernames')}
if limit > 0 then
	for _, username in ipairs(redis.call('ZRANGE', P .. 'usernames', offset, offset + limit - 1)) do
		local id = redis.call('GET', P .. 'username:' .. username)
		if id then
			page[#page + 1] = redis.call('HGETALL', P .. 'user:' .. id)
		end
	end
end
return page
`);

// ARGV: prefix, id, then the changed fields (perhaps none). Answers whether there is such a user.
const updateUserScript = script(`
local key = ARGV[1] .. 'user:' .. ARGV[2]
if redis.call('EXISTS', key) == 0 then
	return 0
end
if #ARGV > 2 then
	redis.call('HSET', key, unpack(ARGV, 3))
end
return 1
`);

// ARGV: prefix, id.
const deleteUserScript = script(`
local P, id = ARGV[1], ARGV[2]
local key = P .. 'user:' .. id
local username = redis.call('HGET', key, 'username')
if not username then
	return 0
end
redis.call('DEL', key)
if redis.call('GET', P .. 'username:' .. username) == id then
	redis.call('DEL', P .. 'username:' .. username)
	redis.call('ZREM', P .. 'usernames', username)
end
return 1
`);

type UserChanges = Partial<Pick<UserRecord, 'permissions' | 'profile' | 'passwordHash' | 'isActive'>>;

type UserFields = {readonly [Key in keyof UserRecord]?: UserRecord[Key] | undefined};

function userFields(user: UserFields): string[] {
	const fields: string[] = [];
	const add = (name: string, value: string | undefined) => {
		if (value !== undefined) {
			fields.push(name, value);
		}
	};

	add('id', user.id);
	add('username', user.username);
	add('passwordHash', user.passwordHash);
	add('permissions', user.permissions === undefined ? undefined : JSON.stringify(user.permissions));
	add('profile', user.profile === undefined ? undefined : JSON.stringify(user.profile));
	add('isActive', user.isActive === undefined ? undefined : (user.isActive ? '1' : '0'));
	add('createdAt', user.createdAt === undefined ? undefined : String(user.createdAt));
	return fields;
}

// Nothing checks a user record downstream (the application's user loader answers it), so a field
// that is not JSON is an error here, naming the field, rather than a wrong value later.
function parseStrictly(text: string | undefined, field: string, id: string): unknown {
	try {
		return JSON.parse(text ?? '') as unknown;
	} catch (error) {
		throw new TypeError(`koa-stateless-auth: the ${field} field of user ${JSON.stringify(id)} is not JSON.`, {cause: error});
	}
}

function toUserRecord(reply: unknown): UserRecord | undefined {
	const fields = fieldMap(reply);
	const id = fields.get('id');
	if (id === undefined) {
		return undefined;
	}

	return {
		id,
		username: fields.get('username') as string,
		passwordHash: fields.get('passwordHash') as string,
		permissions: parseStrictly(fields.get('permissions'), 'permissions', id) as readonly string[],
		profile: parseStrictly(fields.get('profile'), 'profile', id) as Readonly<Record<string, unknown>>,
		isActive: fields.get('isActive') === '1',
		createdAt: Number(fields.get('createdAt')),
	};
}

function assertCount(value: number, name: string): void {
	if (!Number.isSafeInteger(value) || value < 0) {
		throw new RangeError(`The \`${name}\` must be a non-negative integer, got ${String(value)}.`);
	}
}

/**
Accounts in Redis, over an ioredis client the application made: a hash per user, a
`username → id` key claimed with `SET NX` (usernames are unique, compared as stored, byte for
byte), and a sorted set of usernames for paged listing, in the order of their UTF-8 bytes. Every
write is one Lua script. Permissions and profile are kept as JSON: a profile must be
JSON-serialisable to come back as it went in. Users never expire. Create the client as for
{@link RedisTokenStore}.

@example
```
import {randomUUID} from 'node:crypto';
import {Redis} from 'ioredis';
import {hashPassword} from 'koa-stateless-auth';
import {RedisUserStore} from 'koa-stateless-auth/stores/redis';

const users = new RedisUserStore(new Redis(process.env.REDIS_URL, {enableOfflineQueue: false, maxRetriesPerRequest: 0, commandTimeout: 1000}));
await users.create({id: randomUUID(), username: 'alice', passwordHash: await hashPassword(password), permissions: [], profile: {}, isActive: true, createdAt: Date.now()});
```
*/
export class RedisUserStore implements UserStore {
	readonly #client: Redis;
	readonly #prefix: string;

	/**
	@param client - The application's ioredis client; the store never closes it. It must not have a `keyPrefix`.
	@param options - The key prefix.
	*/
	constructor(client: Redis, options: RedisStoreOptions = {}) {
		assertClient(client);
		this.#prefix = prefixOf(options);
		this.#client = client;
	}

	/** Add a user; answers `false` when the id or the username is taken. */
	async create(user: UserRecord): Promise<boolean> {
		return Number(await this.#run(createUserScript, [user.id, user.username, ...userFields(user)])) === 1;
	}

	/** The user with this id. */
	async getById(id: string): Promise<UserRecord | undefined> {
		return toUserRecord(await this.#client.hgetall(`${this.#prefix}user:${id}`));
	}

	/** The user with this username, in one script. */
	async getByUsername(username: string): Promise<UserRecord | undefined> {
		return toUserRecord(await this.#run(userByNameScript, [username]));
	}

	/** `limit` users from `offset`, by username, and how many there are: one script, one moment. */
	async list(offset: number, limit: number): Promise<UserPage> {
		assertCount(offset, 'offset');
		assertCount(limit, 'limit');
		const reply = await this.#run(listUsersScript, [String(offset), String(limit)]);
		const [total, ...rows] = Array.isArray(reply) ? reply as unknown[] : [];
		return {
			users: rows.map(row => toUserRecord(row)).filter(user => user !== undefined),
			total: Number(total ?? 0),
		};
	}

	/** Change fields of a user; answers `false` when there is none. */
	async update(id: string, changes: UserChanges): Promise<boolean> {
		const {permissions, profile, passwordHash, isActive} = changes;
		return Number(await this.#run(updateUserScript, [id, ...userFields({permissions, profile, passwordHash, isActive})])) === 1;
	}

	/** Delete a user and free the username; answers `false` when there was none. */
	async delete(id: string): Promise<boolean> {
		return Number(await this.#run(deleteUserScript, [id])) === 1;
	}

	async #run(which: Script, args: readonly string[]): Promise<unknown> {
		return run(this.#client, which, [this.#prefix, ...args]);
	}
}
