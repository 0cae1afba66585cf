// The verification cache in one process, on the service's clock (no fixed absolute time): what is
// cached and for how long, that a cached record is checked exactly as a fresh one, coalescing,
// invalidation (also of lookups in flight), and the bus seen through a bus in memory.
import {readdirSync, readFileSync} from 'node:fs';
import test from 'ava';
import {
	StatelessAuthError, TokenService, generateToken, type FoundToken, type TokenCache, type TokenServiceOptions, type TokenStore,
} from '../../source/index.js';
import {VerificationCache, type InvalidationBus, type InvalidationListener, type InvalidationMessage, type VerificationCacheOptions} from '../../source/cache/index.js';
import {MemoryTokenStore} from '../../source/stores/memory.js';

const start = 1_700_000_000_000;
const second = 1000;

/** A store that counts calls and can hold `find` answers until released (each read at call time). */
function instrumentedStore(inner: TokenStore = new MemoryTokenStore()) {
	const counts = {find: 0, touch: 0};
	let holding = false;
	let failing: Error | undefined;
	const held: Array<() => void> = [];
	const store: TokenStore = {
		create: inner.create.bind(inner),
		async find(digest) {
			counts.find++;
			if (failing !== undefined) {
				const error = failing;
				if (!holding) {
					throw error;
				}

				await new Promise<void>(resolve => {
					held.push(resolve);
				});
				throw error;
			}

			// Read now, answer when released: a lookup that read the store before a revocation.
			const found = await inner.find(digest);
			if (holding) {
				await new Promise<void>(resolve => {
					held.push(resolve);
				});
			}

			return found;
		},
		async touch(id, at) {
			counts.touch++;
			return inner.touch(id, at);
		},
		rotate: inner.rotate.bind(inner),
		revokeFamily: inner.revokeFamily.bind(inner),
		revokeUser: inner.revokeUser.bind(inner),
		epoch: inner.epoch.bind(inner),
		list: inner.list.bind(inner),
		prune: inner.prune.bind(inner),
	};
	return {
		store,
		inner,
		counts,
		hold: () => {
			holding = true;
		},
		fail: (error: Error | undefined) => {
			failing = error;
		},
		/** Release the held answers, oldest first (all of them, or the first `count`). */
		release: (count = held.length) => {
			holding = false;
			for (const resolve of held.splice(0, count)) {
				resolve();
			}
		},
		get held() {
			return held.length;
		},
	};
}

/** `inner` with some methods replaced. */
function overriding(inner: TokenStore, overrides: Partial<TokenStore>): TokenStore {
	const methods = ['create', 'find', 'touch', 'rotate', 'revokeFamily', 'revokeUser', 'epoch', 'list', 'prune'] as const;
	return Object.fromEntries(methods.map(method => [method, overrides[method] ?? inner[method].bind(inner)])) as unknown as TokenStore;
}

/** A service with a cache over an instrumented store; one clock for both, moved by `advance`. */
function setup(cacheOptions: VerificationCacheOptions = {}, serviceOptions: Partial<TokenServiceOptions> = {}, inner?: TokenStore) {
	const instrumented = instrumentedStore(inner);
	const clock = {now: start};
	const now = () => clock.now;
	const cache = new VerificationCache({now, ...cacheOptions});
	const service = new TokenService({store: instrumented.store, prefix: 'myapp', now, cache, ...serviceOptions});
	const advance = (milliseconds: number) => {
		clock.now += milliseconds;
	};

	return {...instrumented, cache, service, clock, now, advance};
}

const reason = async (service: TokenService, token: string, type: 'access' | 'refresh' = 'access') => {
	const result = await service.verify(token, type);
	return result.valid ? 'valid' : result.reason;
};

// --- What is cached, and for how long

test('without a cache every verification asks the store; with one, the first does and the next are answered from the cache', async t => {
	const instrumented = instrumentedStore();
	const plain = new TokenService({store: instrumented.store, prefix: 'myapp'});
	const {token} = await plain.issue('u1', 'access');
	for (let index = 0; index < 3; index++) {
		t.is(await reason(plain, token), 'valid');
	}

	t.is(instrumented.counts.find, 3, 'off by default');

	const {service, counts, cache} = setup();
	const issued = await service.issue('u1', 'access', {scopes: ['read']});
	for (let index = 0; index < 5; index++) {
		const result = await service.verify(issued.token, 'access');
		t.true(result.valid);
		t.like(result, {record: {userId: 'u1', scopes: ['read'], digest: service.digest(issued.token)}});
	}

	t.is(counts.find, 1);
	t.like(cache.stats, {hits: 4, loads: 1});
});

test('the records answered are copies: changing one changes nothing cached', async t => {
	const {service} = setup();
	const {token} = await service.issue('u1', 'access', {scopes: ['read']});
	const first = await service.verify(token, 'access');
	if (!first.valid) {
		t.fail();
		return;
	}

	(first.record.scopes as string[]).push('admin');
	(first.record as {userId: string}).userId = 'mallory';
	t.like(await service.verify(token, 'access'), {valid: true, record: {userId: 'u1', scopes: ['read']}});
});

test('after the TTL the store is asked again', async t => {
	const {service, counts, advance} = setup({ttl: 5});
	const {token} = await service.issue('u1', 'access');
	await service.verify(token, 'access');
	advance(4999);
	await service.verify(token, 'access');
	t.is(counts.find, 1);
	advance(1);
	await service.verify(token, 'access');
	t.is(counts.find, 2);
});

test('an entry never outlives its token\'s expiresAt, whatever the TTL', async t => {
	const {service, counts, advance} = setup({ttl: 3600}, {accessTtl: 10});
	const {token} = await service.issue('u1', 'access');
	t.is(await reason(service, token), 'valid');
	advance(9999);
	t.is(await reason(service, token), 'valid');
	t.is(counts.find, 1, 'a hit until then');
	advance(1);
	t.is(await reason(service, token), 'expired');
	t.is(counts.find, 2, 'at expiresAt the entry was gone: the store was asked');
});

test('unknown digests are kept for negativeTtl, and not at all with negativeTtl 0', async t => {
	const unknown = generateToken({prefix: 'myapp_at'});
	const {service, counts, advance} = setup({negativeTtl: 2});
	t.is(await reason(service, unknown), 'unknown');
	t.is(await reason(service, unknown), 'unknown');
	t.is(counts.find, 1);
	advance(2000);
	t.is(await reason(service, unknown), 'unknown');
	t.is(counts.find, 2);

	const none = setup({negativeTtl: 0});
	for (let index = 0; index < 3; index++) {
		t.is(await reason(none.service, unknown), 'unknown');
	}

	t.is(none.counts.find, 3);
});

test('the least recently used digests go first beyond max', async t => {
	const {service, counts, cache} = setup({max: 2});
	const tokens = await Promise.all(['u1', 'u2', 'u3'].map(async user => (await service.issue(user, 'access')).token));
	for (const token of tokens) {
		await service.verify(token, 'access');
	}

	t.is(cache.size, 2);
	t.is(counts.find, 3);
	await service.verify(tokens[2]!, 'access');
	t.is(counts.find, 3, 'the last one is still there');
	await service.verify(tokens[0]!, 'access');
	t.is(counts.find, 4, 'the first one went');
});

// --- A cached record is checked exactly as a fresh one

test('idle expiry is decided on every hit, and judged again on the store\'s record before refusing', async t => {
	const {service, counts, advance, inner} = setup({ttl: 3600}, {idleTimeout: 30, lastUsedInterval: 0});
	const idle = await service.issue('u1', 'access');
	t.is(await reason(service, idle.token), 'valid');
	advance(31 * second);
	t.is(await reason(service, idle.token), 'expired');
	t.is(counts.find, 2, 'the cached record looked idle: the store was asked before refusing');

	// Another instance used the token: the store knows, this cache does not.
	const used = await service.issue('u2', 'access');
	t.is(await reason(service, used.token), 'valid');
	advance(20 * second);
	await inner.touch(used.record.id, start + (51 * second));
	advance(11 * second);
	const before = counts.find;
	t.is(await reason(service, used.token), 'valid', 'used 11 s ago, by the store\'s record');
	t.is(counts.find, before + 1);
	t.is(await reason(service, used.token), 'valid');
	t.is(counts.find, before + 1, 'cached again');
});

test('a revoke-all through the service is refused at once; one made behind the cache\'s back within the TTL', async t => {
	const {service, inner, advance} = setup({ttl: 5});
	const first = await service.issue('u1', 'access');
	const second_ = await service.issue('u1', 'access');
	t.is(await reason(service, first.token), 'valid');
	t.is(await reason(service, second_.token), 'valid');
	await service.revokeAll('u1');
	t.is(await reason(service, first.token), 'unknown');
	t.is(await reason(service, second_.token), 'unknown');

	// Another instance, without a bus, revokes everything of u2: seen here once the entries expire.
	const other = await service.issue('u2', 'access');
	t.is(await reason(service, other.token), 'valid');
	await inner.revokeUser('u2');
	t.is(await reason(service, other.token), 'valid', 'stale within the TTL: what a bus is for');
	advance(5000);
	t.is(await reason(service, other.token), 'unknown');
});

test('the user\'s epoch is only raised: a token issued after a revoke-all elsewhere refuses the user\'s older cached tokens at once', async t => {
	const {service, inner} = setup({ttl: 3600});
	const old = await service.issue('u1', 'access');
	t.is(await reason(service, old.token), 'valid');
	// Another instance: revoke-all, then a new login. Its token's lookup brings the new epoch.
	await inner.revokeUser('u1');
	const plain = new TokenService({store: inner, prefix: 'myapp'});
	const fresh = await plain.issue('u1', 'access');
	t.is(await reason(service, fresh.token), 'valid');
	t.is(await reason(service, old.token), 'unknown');
});

test('rotation retires: after a refresh the old refresh and access tokens are refused, though cached', async t => {
	const {service} = setup({ttl: 3600});
	const pair = await service.issuePair('u1');
	t.is(await reason(service, pair.access.token), 'valid');
	t.is(await reason(service, pair.refresh.token, 'refresh'), 'valid');
	const next = await service.refresh(pair.refresh.token);
	t.is(await reason(service, pair.access.token), 'unknown');
	t.is(await reason(service, pair.refresh.token, 'refresh'), 'unknown');
	t.is(await reason(service, next.access.token), 'valid');
});

test('revoke and revokeSession: both tokens of the session are refused at once, though cached', async t => {
	const {service} = setup({ttl: 3600});
	const pair = await service.issuePair('u1');
	const other = await service.issuePair('u1');
	for (const token of [pair.access.token, other.access.token]) {
		t.is(await reason(service, token), 'valid');
	}

	t.is(await reason(service, pair.refresh.token, 'refresh'), 'valid');
	t.true(await service.revoke(pair.access.token));
	t.is(await reason(service, pair.access.token), 'unknown');
	t.is(await reason(service, pair.refresh.token, 'refresh'), 'unknown', 'the pair\'s other token, whose digest the revoke never saw');
	t.is(await reason(service, other.access.token), 'valid', 'another session stays');
	t.true(await service.revokeSession('u1', other.access.record.familyId));
	t.is(await reason(service, other.access.token), 'unknown');
});

test('a store error while revoking still invalidates (the change may have been made, its answer lost)', async t => {
	const {service, inner} = setup({ttl: 3600});
	const {token} = await service.issue('u1', 'access');
	t.is(await reason(service, token), 'valid');
	// The store revokes, then its answer is lost.
	const lossy = overriding(inner, {
		async revokeUser(userId) {
			await inner.revokeUser(userId);
			throw new Error('connection reset');
		},
	});
	const now = () => start;
	const lossyService = new TokenService({store: lossy, prefix: 'myapp', now, cache: new VerificationCache({ttl: 3600, now})});
	t.is(await reason(lossyService, token), 'valid');
	const error = await t.throwsAsync(lossyService.revokeAll('u1'));
	t.like(error, {status: 503});
	t.is(await reason(lossyService, token), 'unknown');
});

test('corrupt records are refused as corrupt on every verification, cached or not', async t => {
	const inner = new MemoryTokenStore();
	const corrupt = overriding(inner, {
		async find(digest) {
			const found = await inner.find(digest);
			return found === undefined ? undefined : {...found, record: {...found.record, hint: 42}} as unknown as FoundToken;
		},
	});
	const now = () => start;
	const service = new TokenService({store: corrupt, prefix: 'myapp', now, cache: new VerificationCache({now})});
	const {token} = await service.issue('u1', 'access');
	t.is(await reason(service, token), 'corrupt');
	t.is(await reason(service, token), 'corrupt');
	const broken = overriding(inner, {find: async () => ({record: null, epoch: 'x'}) as unknown as FoundToken});
	const brokenService = new TokenService({store: broken, prefix: 'myapp', now, cache: new VerificationCache({now})});
	t.is(await reason(brokenService, token), 'corrupt');
	t.is(await reason(brokenService, token), 'corrupt');
});

// --- Coalescing

test('concurrent verifications of one token share one store call, and one last-use write', async t => {
	const {service, counts, cache, hold, release} = setup();
	const {token} = await service.issue('u1', 'access');
	hold();
	const verifications = Array.from({length: 100}, async () => service.verify(token, 'access'));
	await new Promise(resolve => {
		setImmediate(resolve);
	});
	release();
	const results = await Promise.all(verifications);
	t.true(results.every(result => result.valid));
	t.is(counts.find, 1);
	t.is(counts.touch, 1);
	t.like(cache.stats, {loads: 1, coalesced: 99});

	// Without the cache: a store call and a write each.
	const plain = instrumentedStore();
	const direct = new TokenService({store: plain.store, prefix: 'myapp'});
	const issued = await direct.issue('u1', 'access');
	await Promise.all(Array.from({length: 100}, async () => direct.verify(issued.token, 'access')));
	t.is(plain.counts.find, 100);
	t.is(plain.counts.touch, 100);
});

test('a failed lookup is shared by every caller that joined it, and not cached', async t => {
	const {service, counts, fail, hold, release, cache} = setup();
	const {token} = await service.issue('u1', 'access');
	hold();
	fail(new Error('connection refused'));
	const verifications = Array.from({length: 20}, async () => service.verify(token, 'access'));
	await new Promise(resolve => {
		setImmediate(resolve);
	});
	release();
	const results = await Promise.allSettled(verifications);
	t.is(counts.find, 1);
	for (const result of results) {
		t.is(result.status, 'rejected');
		const error = (result as PromiseRejectedResult).reason as StatelessAuthError;
		t.true(error instanceof StatelessAuthError);
		t.is(error.status, 503);
		t.is(error.headers['Retry-After'], '1');
	}

	t.like(cache.stats, {failures: 1, coalesced: 19});
	fail(undefined);
	t.is(await reason(service, token), 'valid');
	t.is(counts.find, 2, 'the failure was not cached');
});

test('the last use is written once per lastUsedInterval, not on every hit', async t => {
	const {service, counts, advance} = setup({ttl: 3600}, {lastUsedInterval: 60});
	const {token} = await service.issue('u1', 'access');
	for (let index = 0; index < 10; index++) {
		await service.verify(token, 'access');
	}

	t.is(counts.touch, 1);
	advance(59 * second);
	await service.verify(token, 'access');
	t.is(counts.touch, 1);
	advance(second);
	await service.verify(token, 'access');
	await service.verify(token, 'access');
	t.is(counts.touch, 2);
	t.is(counts.find, 1);
});

// --- Invalidation and lookups in flight

for (const how of ['invalidate', 'invalidateUser'] as const) {
	test(`${how} while a lookup is in flight: later verifications do not join it, and its stale answer is not cached`, async t => {
		const {service, counts, cache, hold, release, inner} = setup({ttl: 3600, negativeTtl: 0});
		const issued = await service.issue('u1', 'access');
		const digest = service.digest(issued.token);
		hold();
		const before = service.verify(issued.token, 'access'); // Reads the store before the revocation.
		await new Promise(resolve => {
			setImmediate(resolve);
		});
		t.is(counts.find, 1);
		await inner.revokeFamily(issued.record.familyId);
		await (how === 'invalidate' ? cache.invalidate(digest) : cache.invalidateUser('u1'));
		const after = service.verify(issued.token, 'access');
		await new Promise(resolve => {
			setImmediate(resolve);
		});
		t.is(counts.find, 2, 'the verification after the invalidation made a lookup of its own');
		release();
		t.true((await before).valid, 'it started before the revocation');
		t.is((await after).valid ? 'valid' : 'refused', 'refused');
		t.is(await reason(service, issued.token), 'unknown', 'the stale answer was not cached');
	});
}

// --- Options

test('options are checked: a TypeError naming the option', t => {
	t.throws(() => new VerificationCache({ttl: 0}), {instanceOf: TypeError, message: /`ttl`/});
	t.throws(() => new VerificationCache({ttl: Number.NaN}), {instanceOf: TypeError, message: /`ttl`/});
	t.throws(() => new VerificationCache({negativeTtl: -1}), {instanceOf: TypeError, message: /`negativeTtl`/});
	t.throws(() => new VerificationCache({max: 0}), {instanceOf: TypeError, message: /`max`/});
	t.throws(() => new VerificationCache({max: 1.5}), {instanceOf: TypeError, message: /`max`/});
	t.throws(() => new VerificationCache({now: 5 as unknown as () => number}), {instanceOf: TypeError, message: /`now`/});
	t.throws(() => new VerificationCache({bus: {} as InvalidationBus}), {instanceOf: TypeError, message: /`bus`/});
	t.throws(() => new VerificationCache({tll: 5} as VerificationCacheOptions), {instanceOf: TypeError, message: /`tll`/});
	t.notThrows(() => new VerificationCache({negativeTtl: 0, ttl: 0.5}));
	t.throws(() => new TokenService({store: new MemoryTokenStore(), prefix: 'myapp', cache: {} as TokenCache}), {instanceOf: TypeError, message: /`cache`/});
});

test('the core never loads lru-cache or ioredis: only type imports outside the cache and store subpaths', t => {
	const root = new URL('../../source/', import.meta.url);
	const files = readdirSync(root, {recursive: true, encoding: 'utf8'}).filter(file => file.endsWith('.ts') && !file.startsWith('cache/') && !file.startsWith('stores/'));
	t.true(files.includes('index.ts') && files.includes('tokens/service.ts'));
	for (const file of files) {
		const source = readFileSync(new URL(file, root), 'utf8');
		t.notRegex(source, /^import\s+(?!type\b)[^;]*from\s+'(?:lru-cache|ioredis)'/m, file);
		t.notRegex(source, /from\s+'\.{1,2}\/(?:\.\.\/)?cache\/index\.js'/, file);
	}
});

// --- The bus, through a bus in memory

/** Buses in memory joined into one hub: what one publishes, the others hear, synchronously. */
function hub() {
	const buses: Array<{live: boolean; listeners: Set<InvalidationListener>}> = [];
	const make = () => {
		const state = {live: true, listeners: new Set<InvalidationListener>()};
		buses.push(state);
		const bus: InvalidationBus & {down(): void; up(): void; published: InvalidationMessage[]} = {
			published: [],
			get live() {
				return state.live;
			},
			async publish(message) {
				bus.published.push(message);
				for (const other of buses) {
					if (other !== state && other.live) {
						for (const listener of other.listeners) {
							listener.message(message);
						}
					}
				}
			},
			listen(listener) {
				state.listeners.add(listener);
				return () => state.listeners.delete(listener);
			},
			down() {
				state.live = false;
				for (const listener of state.listeners) {
					listener.reset();
				}
			},
			up() {
				state.live = true;
				for (const listener of state.listeners) {
					listener.reset();
				}
			},
		};
		return bus;
	};

	return make;
}

test('two instances on a bus: a revocation on A is refused on B at once; own messages are not heard back', async t => {
	const makeBus = hub();
	const shared = new MemoryTokenStore();
	const busA = makeBus();
	const busB = makeBus();
	const a = setup({ttl: 3600, bus: busA}, {}, shared);
	const b = setup({ttl: 3600, bus: busB}, {}, shared);
	const pair = await a.service.issuePair('u1');
	t.is(await reason(b.service, pair.access.token), 'valid');
	t.is(await reason(b.service, pair.access.token), 'valid');
	t.is(b.counts.find, 1, 'B answers from its cache');
	t.true(await a.service.revoke(pair.refresh.token));
	t.deepEqual(busA.published, [{kind: 'user', userId: 'u1'}]);
	t.is(await reason(b.service, pair.access.token), 'unknown');
	t.like(b.cache.stats, {remoteInvalidations: 1});
	t.like(a.cache.stats, {remoteInvalidations: 0, invalidations: 1});

	// Without the bus, B would have served it: the control.
	const c = setup({ttl: 3600}, {}, shared);
	const next = await a.service.issuePair('u2');
	t.is(await reason(c.service, next.access.token), 'valid');
	await a.service.revokeAll('u2');
	t.is(await reason(c.service, next.access.token), 'valid', 'no bus: stale until the TTL');
	t.is(await reason(b.service, next.access.token), 'unknown');
});

test('while the bus is not live the cache is bypassed; when it is back, everything cached before is gone', async t => {
	const makeBus = hub();
	const shared = new MemoryTokenStore();
	const busA = makeBus();
	const busB = makeBus();
	const a = setup({ttl: 3600, bus: busA}, {}, shared);
	const b = setup({ttl: 3600, bus: busB}, {}, shared);
	const pair = await a.service.issuePair('u1');
	t.is(await reason(b.service, pair.access.token), 'valid');
	busB.down();
	for (let index = 0; index < 3; index++) {
		t.is(await reason(b.service, pair.access.token), 'valid');
	}

	t.is(b.counts.find, 4, 'every verification asked the store');
	t.like(b.cache.stats, {bypassed: 3});
	// A revocation B cannot hear of: B still refuses it, now and once the bus is back.
	t.true(await a.service.revoke(pair.access.token));
	t.is(await reason(b.service, pair.access.token), 'unknown');
	busB.up();
	t.is(await reason(b.service, pair.access.token), 'unknown');
	t.like(b.cache.stats, {resets: 2});
});

test('a lookup in flight for longer than the TTL is not joined: a store call that never settles holds a token no longer than that', async t => {
	const {service, counts, hold, release, advance} = setup({ttl: 5});
	const {token} = await service.issue('u1', 'access');
	hold();
	const stuck = service.verify(token, 'access');
	await new Promise(resolve => {
		setImmediate(resolve);
	});
	advance(4999);
	const joined = service.verify(token, 'access');
	await new Promise(resolve => {
		setImmediate(resolve);
	});
	t.is(counts.find, 1, 'joined within the TTL');
	advance(1);
	const fresh = service.verify(token, 'access');
	await new Promise(resolve => {
		setImmediate(resolve);
	});
	t.is(counts.find, 2, 'a new lookup once the first is as old as the TTL');
	release();
	t.true((await fresh).valid);
	t.true((await stuck).valid);
	t.true((await joined).valid);
});

test('after a user is invalidated, another of the user\'s tokens cached again does not bring the revoked one back', async t => {
	const {service, counts} = setup({ttl: 3600});
	const revoked = await service.issuePair('u1');
	const kept = await service.issuePair('u1');
	t.is(await reason(service, revoked.access.token), 'valid');
	t.is(await reason(service, kept.access.token), 'valid');
	t.true(await service.revoke(revoked.access.token));
	// The kept token's lookup makes the user's epoch entry again.
	t.is(await reason(service, kept.access.token), 'valid');
	const before = counts.find;
	t.is(await reason(service, kept.access.token), 'valid');
	t.is(counts.find, before, 'cached again');
	t.is(await reason(service, revoked.access.token), 'unknown', 'the revoked token\'s old entry was cached under the user\'s previous entry');
});
