// Two processes, one service, the cache on (TTL 300 s: only an invalidation can explain a refusal):
// instances A and B (tests/cache/instance.ts) share a Redis store and a RedisInvalidationBus on a
// redis-server of this file's own. A revocation on A is refused on B at B's next request. C, on the
// same store with its cache but no bus, is the control: it serves the revoked token from its cache,
// which is what B would do without the bus.
import type {ChildProcess} from 'node:child_process';
import {randomUUID} from 'node:crypto';
import test, {type ExecutionContext} from 'ava';
import {
	call, freePort, haveRedisServer, redisCommand, redisServerPath, spawnInstance, startRedis, stats, until, type Instance, type Pair,
} from './helpers.js';

if (haveRedisServer) {
	let server: ChildProcess | undefined;
	let port = 0;
	let a: Instance;
	let b: Instance;
	let c: Instance;

	test.before(async () => {
		port = await freePort();
		server = await startRedis(port);
		const env = {STORE: 'redis', REDIS_URL: `redis://127.0.0.1:${port}`, KSA_PREFIX: 'cache-instances:', CACHE_TTL: '300', CHANNEL: 'cache-instances'};
		[a, b, c] = await Promise.all([spawnInstance(env), spawnInstance(env), spawnInstance({...env, BUS: 'off'})]);
		await until(async () => (await stats(a.url)).bus!.live && (await stats(b.url)).bus!.live, 10_000, 'A and B subscribed');
	});
	test.after.always(() => {
		for (const instance of [a, b, c]) {
			instance.stop();
		}

		server?.kill('SIGKILL');
	});

	const login = async (t: ExecutionContext, url: string, user: string): Promise<Pair> => {
		const answer = await call(url, '/login', {method: 'POST', body: {user}});
		t.is(answer.status, 200);
		return answer.body as Pair;
	};

	/** Two requests with the token on each of B and C: they answer it, the second from their cache. */
	const cachedOnBAndC = async (t: ExecutionContext, token: string, user: string) => {
		for (const instance of [b, c]) {
			t.like(await call(instance.url, '/me', {token}), {status: 200, body: {user}});
			const before = await stats(instance.url);
			t.like(await call(instance.url, '/me', {token}), {status: 200, body: {user}});
			const after = await stats(instance.url);
			t.is(after.counts.find, before.counts.find, 'answered from the cache: no store call');
			t.is(after.cache!.hits, before.cache!.hits + 1);
		}
	};

	test.serial('the processes are three, with the cache on', async t => {
		const all = await Promise.all([a, b, c].map(async instance => stats(instance.url)));
		t.is(new Set(all.map(one => one.pid)).size, 3);
		t.true(all.every(one => one.cache !== null));
	});

	test.serial('a logout on A is refused on B at B\'s next request; C, without the bus, still serves it from its cache', async t => {
		const user = `alice-${randomUUID()}`;
		const pair = await login(t, a.url, user);
		await cachedOnBAndC(t, pair.access_token, user);
		t.like(await call(a.url, '/revoke', {method: 'POST', body: {token: pair.refresh_token}}), {status: 200, body: {revoked: true}});
		t.is((await call(b.url, '/me', {token: pair.access_token})).status, 401);
		t.is((await call(a.url, '/me', {token: pair.access_token})).status, 401);
		t.like(await call(c.url, '/me', {token: pair.access_token}), {status: 200, body: {user}}, 'the control: stale without the bus');
	});

	test.serial('a revoke-all on A is refused on B at once, for every session of the user', async t => {
		const user = `bob-${randomUUID()}`;
		const first = await login(t, a.url, user);
		const second = await login(t, b.url, user);
		await cachedOnBAndC(t, first.access_token, user);
		await cachedOnBAndC(t, second.access_token, user);
		t.is((await call(a.url, '/revoke-all', {method: 'POST', body: {user}})).status, 200);
		t.is((await call(b.url, '/me', {token: first.access_token})).status, 401);
		t.is((await call(b.url, '/me', {token: second.access_token})).status, 401);
		t.is((await call(c.url, '/me', {token: first.access_token})).status, 200, 'the control');
	});

	test.serial('a refresh on A retires the old pair on B at once', async t => {
		const user = `carol-${randomUUID()}`;
		const pair = await login(t, a.url, user);
		await cachedOnBAndC(t, pair.access_token, user);
		const refreshed = await call(a.url, '/refresh', {method: 'POST', body: {refresh_token: pair.refresh_token}});
		t.is(refreshed.status, 200);
		t.is((await call(b.url, '/me', {token: pair.access_token})).status, 401);
		t.like(await call(b.url, '/me', {token: (refreshed.body as Pair).access_token}), {status: 200, body: {user}});
		t.is((await call(c.url, '/me', {token: pair.access_token})).status, 200, 'the control');
	});

	test.serial('a message lost while B was not subscribed: B dropped its whole cache when it resubscribed', async t => {
		const user = `dave-${randomUUID()}`;
		const pair = await login(t, a.url, user);
		await cachedOnBAndC(t, pair.access_token, user);
		// C revokes: it has no bus, so nobody is told. B answers from its cache: the lost message.
		t.like(await call(c.url, '/revoke', {method: 'POST', body: {token: pair.access_token}}), {status: 200, body: {revoked: true}});
		t.is((await call(b.url, '/me', {token: pair.access_token})).status, 200, 'B never heard of it');
		const before = await stats(b.url);
		t.regex(await redisCommand(port, 'CLIENT', 'KILL', 'TYPE', 'pubsub'), /^:[1-9]/);
		await until(async () => {
			const now = await stats(b.url);
			return now.bus!.live && now.cache!.resets >= before.cache!.resets + 2;
		}, 10_000, 'B resubscribed');
		t.is((await call(b.url, '/me', {token: pair.access_token})).status, 401, 'B asked the store again');
	});

	test.serial('no instance crashed or wrote to stderr', t => {
		for (const instance of [a, b, c]) {
			t.is(instance.child.exitCode, null);
			t.deepEqual(instance.stderr, []);
		}
	});
} else if (process.env['REQUIRE_SERVICES'] === '1') {
	test(`${redisServerPath} is installed (REQUIRE_SERVICES=1)`, t => {
		t.fail(`The cache instance tests start a redis-server of their own, and there is none at ${redisServerPath}.`);
	});
} else {
	test.skip(`cache instance tests (no ${redisServerPath})`, () => undefined);
}
