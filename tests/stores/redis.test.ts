// The store contract on Redis (REDIS_URL), then what only Redis has: TTLs, the index sets, one
// round trip per find, digests only in keys and values. Every check works under a key prefix of its
// own, deleted (SCAN and DEL by that prefix) when it ends: the server is shared, never flushed.
import {execFile} from 'node:child_process';
import {randomBytes, randomUUID} from 'node:crypto';
import {promisify} from 'node:util';
import test, {type ExecutionContext} from 'ava';
import {Redis} from 'ioredis';
import {TokenService, type TokenServiceOptions} from '../../source/index.js';
import {RedisTokenStore, RedisUserStore, type RedisTokenStoreOptions} from '../../source/stores/redis.js';
import {redisUrl, serviceAvailable} from '../helpers/services.js';
import {deletePrefix} from '../fixtures/redis-helpers.js';
import {storeContract} from './contract.js';

// The contract's services run on a clock that starts here (contract.ts's `start`, in 2023). Redis
// expires keys `expiresAt - now()` after they are written, so the store is given that clock too,
// or every record would be written already expired.
const contractStart = 1_700_000_000_000;

const freshPrefix = () => `ksa-test:${randomBytes(6).toString('hex')}:`;

// Asked first: every test is declared synchronously after it.
const available = await serviceAvailable('Redis', redisUrl);

if (available) {
	// One client for every check: ava runs them at once.
	const client = new Redis(redisUrl, {maxRetriesPerRequest: 1, commandTimeout: 5000});
	client.on('error', (error: Error) => {
		console.error(`Redis client error: ${error.message}`);
	});
	test.after.always(async () => {
		await client.quit();
	});

	storeContract({
		name: 'redis',
		async create() {
			const prefix = freshPrefix();
			return {
				tokens: new RedisTokenStore(client, {prefix, now: () => contractStart}),
				users: new RedisUserStore(client, {prefix}),
				async close() {
					await deletePrefix(client, prefix);
				},
			};
		},
	});
}

test('the store module loads no ioredis: the import is of types only', async t => {
	// A resolve hook that fails any import of ioredis, registered after ts-node's (so it runs first).
	const hook = 'export async function resolve(specifier, context, next) { if (/^ioredis(\\/|$)/.test(specifier)) throw new Error("ioredis was imported"); return next(specifier, context); }';
	const register = `import {register} from 'node:module'; register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(hook)}`)});`;
	const {stdout} = await promisify(execFile)(process.execPath, [
		'--import=./ts-node-register.js',
		`--import=data:text/javascript,${encodeURIComponent(register)}`,
		'--input-type=module',
		'-e',
		'const redis = await import("./source/stores/redis.ts"); await import("./source/index.ts"); console.log(Object.keys(redis).sort().join(","));',
	]);
	t.is(stdout.trim(), 'RedisTokenStore,RedisUserStore');
});

test('options are checked when the store is made', t => {
	const client = new Redis({lazyConnect: true});
	t.teardown(() => {
		client.disconnect();
	});
	for (const prefix of ['', 'has space', 'glob*', 'x'.repeat(65), 5]) {
		t.throws(() => new RedisTokenStore(client, {prefix: prefix as string}), {instanceOf: TypeError, message: /^The `prefix` option must be 1 to 64 ASCII letters/}, String(prefix));
		t.throws(() => new RedisUserStore(client, {prefix: prefix as string}), {instanceOf: TypeError});
	}

	t.throws(() => new RedisTokenStore(client, {now: 5 as unknown as () => number}), {instanceOf: TypeError, message: 'The `now` option must be a function.'});
	t.throws(() => new RedisTokenStore({} as unknown as Redis), {instanceOf: TypeError, message: 'The first argument must be an ioredis client (new Redis(...)).'});
	const prefixed = new Redis({lazyConnect: true, keyPrefix: 'app:'});
	t.teardown(() => {
		prefixed.disconnect();
	});
	t.throws(() => new RedisTokenStore(prefixed), {instanceOf: TypeError, message: /must not have a `keyPrefix`/});
	t.notThrows(() => new RedisTokenStore(client, {prefix: 'my-app.auth:v2:'}));
});

if (available) {
	const client = new Redis(redisUrl, {maxRetriesPerRequest: 1, commandTimeout: 5000});
	client.on('error', () => undefined);
	test.after.always(async () => {
		await client.quit();
	});

	/** A store on the real clock under a prefix of the test's own (deleted after), a service over it, and what the client was asked. */
	const setup = (t: ExecutionContext, options: Omit<TokenServiceOptions, 'store' | 'prefix'> = {}, storeOptions: RedisTokenStoreOptions = {}) => {
		const prefix = freshPrefix();
		t.teardown(async () => {
			await deletePrefix(client, prefix);
		});
		const commands: string[] = [];
		// Counts the commands the store sends, one for each call it makes on the client.
		const counting = new Proxy(client, {
			get(target, property, receiver) {
				const value: unknown = Reflect.get(target, property, receiver);
				if (typeof value !== 'function' || typeof property !== 'string' || property === 'constructor') {
					return value;
				}

				return (...args: unknown[]) => {
					commands.push(property);
					return (value as (...given: unknown[]) => unknown).apply(target, args);
				};
			},
		});
		const store = new RedisTokenStore(counting, {prefix, ...storeOptions});
		const service = new TokenService({store, prefix: 'myapp', ...options});
		return {prefix, store, service, commands};
	};

	/** Every key under `prefix` with its type and contents, as strings. */
	const dump = async (prefix: string) => {
		const keys: string[] = [];
		let cursor = '0';
		do {
			const [next, page] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
			cursor = next;
			keys.push(...page);
		} while (cursor !== '0');

		return Promise.all(keys.map(async key => {
			const type = await client.type(key);
			const contents = type === 'hash' ? Object.entries(await client.hgetall(key)).flat()
				: type === 'zset' ? await client.zrange(key, 0, '-1')
					: [await client.get(key) ?? ''];
			return {key, type, contents, pttl: await client.pttl(key), expiresAt: await client.pexpiretime(key)};
		}));
	};

	test('keys and values hold digests, never a token', async t => {
		const {prefix, service} = setup(t, {reuseGrace: 30, lastUsedInterval: 0});
		const pair = await service.issuePair('alice', {name: 'phone'});
		const next = await service.refresh(pair.refresh.token);
		await service.refresh(pair.refresh.token);
		const key = await service.issue('alice', 'api_key');
		await service.verify(next.access.token, 'access');
		const tokens = [pair.access, pair.refresh, next.access, next.refresh, key].map(issued => issued.token);
		const everything = (await dump(prefix)).flatMap(entry => [entry.key, ...entry.contents]);
		t.true(everything.length > 20);
		for (const token of tokens) {
			// The hint shows the type's prefix and four characters; the rest never appears anywhere.
			const secret = token.slice(-24);
			t.false(everything.some(text => text.includes(secret)), 'no key or value holds any part of a token past its hint');
		}

		for (const token of tokens.slice(1)) {
			t.true(everything.includes(service.digest(token)), 'the digest of each token still kept is there (the first access token went with the rotation)');
		}
	});

	test('a token\'s key expires with it, and the index sets last at least as long as their longest member', async t => {
		const {prefix, service} = setup(t, {accessTtl: 60, refreshTtl: 600});
		const pair = await service.issuePair('bob');
		await service.revokeAll('bob');
		const entries = new Map((await dump(prefix)).map(entry => [entry.key.slice(prefix.length), entry]));
		// Redis and this process share a clock here: a key expires when its token does, to a few ms.
		const expiresWith = (key: string, expiresAt: number) => {
			const entry = entries.get(key);
			t.true(entry !== undefined && Math.abs(entry.expiresAt - expiresAt) < 50, `${key}: ${entry?.expiresAt} for ${expiresAt}`);
		};

		for (const {record} of [pair.access, pair.refresh]) {
			expiresWith(`t:${record.digest}`, record.expiresAt);
			expiresWith(`i:${record.id}`, record.expiresAt);
		}

		t.true(entries.get(`t:${pair.access.record.digest}`)!.pttl <= 60_000);
		// Compared as absolute times (PEXPIRETIME), which do not move while the keys are read one by one.
		const family = entries.get(`f:${pair.access.record.familyId}`)!.expiresAt;
		t.true(family >= entries.get(`t:${pair.refresh.record.digest}`)!.expiresAt, 'the family outlives its tokens');
		t.true(family >= entries.get(`t:${pair.access.record.digest}`)!.expiresAt);
		t.true(entries.get('s:bob')!.expiresAt >= family, 'the user\'s sessions outlive the family');
		t.is(entries.get('e:bob')?.pttl, -1, 'an epoch never expires: revoked tokens must not come back');
	});

	test('Redis expires a token by itself at its expiry; prune then takes it out of the index sets without counting it', async t => {
		const {prefix, store, service} = setup(t);
		const pair = await service.issuePair('carol');
		const short = await service.issue('carol', 'access', {ttl: 0.3});
		t.truthy(await store.find(short.record.digest));
		await new Promise(resolve => {
			setTimeout(resolve, 450);
		});
		t.is(await store.find(short.record.digest), undefined, 'gone without prune');
		t.is(await client.exists(`${prefix}f:${short.record.familyId}`), 0, 'its family set expired with it');
		t.is(await client.zcard(`${prefix}s:carol`), 2, 'the user index still names its family until prune');
		t.is(await store.prune(Date.now()), 0, 'nothing left for prune to delete');
		t.deepEqual(await client.zrange(`${prefix}s:carol`, 0, '-1'), [pair.access.record.familyId]);
		t.true((await service.verify(pair.access.token, 'access')).valid);
	});

	test('a record already expired by the store\'s clock is not stored', async t => {
		const {prefix, store} = setup(t);
		const record = {
			id: randomUUID(), digest: randomBytes(32).toString('hex'), type: 'access', userId: 'dave', familyId: randomUUID(), scopes: [], name: null, hint: 'myapp_at_AbCd…',
			createdAt: Date.now() - 2000, expiresAt: Date.now() - 1000, lastUsedAt: null, epoch: 0, retiredAt: null, graceUntil: null, graceCiphertext: null,
		};
		t.true(await store.create([record]));
		t.is(await store.find(record.digest), undefined);
		t.deepEqual((await dump(prefix)).map(entry => entry.key), [], 'no key at all');
	});

	test('find, rotate, revoke-all and a capped create are each one round trip', async t => {
		const {store, service, commands} = setup(t, {maxSessions: 3});
		const pair = await service.issuePair('erin');
		await service.verify(pair.access.token, 'access');
		commands.length = 0;
		await store.find(pair.access.record.digest);
		t.deepEqual(commands, ['evalsha'], 'find');
		commands.length = 0;
		await service.refresh(pair.refresh.token);
		t.deepEqual(commands, ['evalsha', 'evalsha'], 'a refresh: find, then rotate');
		commands.length = 0;
		await service.issuePair('erin');
		t.deepEqual(commands, ['get', 'evalsha'], 'a login: the epoch, then create with the cap');
		commands.length = 0;
		await service.revokeAll('erin');
		t.deepEqual(commands, ['incr'], 'revoke-all');
	});

	test('a hand-corrupted token hash is refused as corrupt, not thrown on', async t => {
		const {prefix, service} = setup(t);
		const pair = await service.issuePair('frank');
		await client.hset(`${prefix}t:${pair.access.record.digest}`, 'scopes', 'not json');
		const result = await service.verify(pair.access.token, 'access');
		t.like(result, {valid: false, reason: 'corrupt'});
		await client.hdel(`${prefix}t:${pair.refresh.record.digest}`, 'createdAt');
		t.like(await service.verify(pair.refresh.token, 'refresh'), {valid: false, reason: 'corrupt'});
	});

	test('users: usernames with any characters, listed by their bytes; delete frees the name and the listing', async t => {
		const prefix = freshPrefix();
		t.teardown(async () => {
			await deletePrefix(client, prefix);
		});
		const users = new RedisUserStore(client, {prefix});
		const make = (username: string) => ({id: randomUUID(), username, passwordHash: 'h', permissions: [], profile: {}, isActive: true, createdAt: 1});
		const names = ['émile', 'a:b', 'A*?[', 'zoë', '日本', 'a'];
		for (const username of names) {
			t.true(await users.create(make(username)));
		}

		const byBytes = [...names].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
		t.deepEqual((await users.list(0, 10)).users.map(user => user.username), byBytes);
		const first = await users.getByUsername('a:b');
		t.true(await users.delete(first!.id));
		t.deepEqual(await users.list(0, 10).then(page => page.total), names.length - 1);
		t.is(await client.exists(`${prefix}username:a:b`), 0);
		await t.throwsAsync(users.list(-1, 10), {instanceOf: RangeError});
		await t.throwsAsync(users.list(0, 1.5), {instanceOf: RangeError});
	});
}
