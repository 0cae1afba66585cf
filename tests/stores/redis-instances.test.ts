// Many instances over one Redis: two app processes (tests/fixtures/redis-app.ts) are one service. A
// token issued on one works on the other, a revocation on one is refused by the other at its next
// request, and a refresh token raced from both at once rotates exactly once. The two processes are
// started once for the file (each costs a TypeScript start-up) under a key prefix of the file's own,
// deleted at the end; each test has users of its own.
import {randomBytes, randomUUID} from 'node:crypto';
import test, {type ExecutionContext} from 'ava';
import {Redis} from 'ioredis';
import {redisUrl, serviceAvailable} from '../helpers/services.js';
import {call, deletePrefix, spawnApp, type AppInstance, type Pair} from '../fixtures/redis-helpers.js';

if (await serviceAvailable('Redis', redisUrl)) {
	const admin = new Redis(redisUrl, {maxRetriesPerRequest: 1});
	admin.on('error', () => undefined);
	const prefix = `ksa-test:${randomBytes(6).toString('hex')}:`;
	const env = {REDIS_URL: redisUrl, KSA_PREFIX: prefix};
	let instances: [AppInstance, AppInstance] | undefined;
	test.before(async () => {
		instances = await Promise.all([spawnApp(undefined, env), spawnApp(undefined, env)]);
	});
	test.after.always(async () => {
		for (const instance of instances ?? []) {
			instance.child.kill('SIGTERM');
		}

		await deletePrefix(admin, prefix);
		await admin.quit();
	});

	/** The base URLs of instances A and B: two processes. */
	const twoInstances = async (t: ExecutionContext) => {
		const [a, b] = instances!;
		t.not(a.child.pid, b.child.pid);
		t.not(a.url, b.url);
		return {a: a.url, b: b.url};
	};

	const name = (label: string) => `${label}-${randomUUID()}`;

	const login = async (t: ExecutionContext, url: string, user: string): Promise<Pair> => {
		const answer = await call(url, '/login', {method: 'POST', body: {user}});
		t.is(answer.status, 200);
		return answer.body as Pair;
	};

	test('a token issued on A works on B, and a pair refreshed on B works on A', async t => {
		const {a, b} = await twoInstances(t);
		const alice = name('alice');
		const pair = await login(t, a, alice);
		t.like(await call(b, '/me', {token: pair.access_token}), {status: 200, body: {user: alice}});
		const refreshed = await call(b, '/refresh', {method: 'POST', body: {refresh_token: pair.refresh_token}});
		t.is(refreshed.status, 200);
		const next = refreshed.body as Pair;
		t.like(await call(a, '/me', {token: next.access_token}), {status: 200, body: {user: alice}});
		t.is((await call(a, '/me', {token: pair.access_token})).status, 401, 'the old access token went with the rotation');
	});

	test('a logout on A is refused on B at its next request', async t => {
		const {a, b} = await twoInstances(t);
		const bob = name('bob');
		const pair = await login(t, a, bob);
		const other = await login(t, b, bob);
		t.is((await call(b, '/me', {token: pair.access_token})).status, 200);
		t.like(await call(a, '/logout', {method: 'POST', token: pair.access_token}), {status: 200, body: {revoked: true}});
		t.is((await call(b, '/me', {token: pair.access_token})).status, 401);
		t.like(await call(b, '/refresh', {method: 'POST', body: {refresh_token: pair.refresh_token}}), {status: 400, body: {error: 'invalid_grant'}});
		t.is((await call(b, '/me', {token: other.access_token})).status, 200, 'the other session is untouched');
	});

	test('a logout-all on A refuses every session of the user on B, and not another user\'s', async t => {
		const {a, b} = await twoInstances(t);
		const carol = name('carol');
		const sessions = await Promise.all([login(t, a, carol), login(t, b, carol), login(t, b, carol)]);
		const dave = await login(t, b, name('dave'));
		for (const session of sessions) {
			t.is((await call(b, '/me', {token: session.access_token})).status, 200);
		}

		t.is((await call(a, '/logout-all', {method: 'POST', token: sessions[0].access_token})).status, 200);
		for (const session of sessions) {
			t.is((await call(b, '/me', {token: session.access_token})).status, 401);
			t.is((await call(b, '/refresh', {method: 'POST', body: {refresh_token: session.refresh_token}})).status, 400);
		}

		t.is((await call(b, '/me', {token: dave.access_token})).status, 200);
		const after = await login(t, b, carol);
		t.is((await call(a, '/me', {token: after.access_token})).status, 200, 'a login after it works');
	});

	const rounds = 10;
	// Two requests from each process a round: with one each, a rotation made of a read and then a
	// write (not atomic) was caught in 3 runs of 5; with two each, in every run.
	const racers = (a: string, b: string) => [a, b, a, b];

	test(`a refresh token raced from A and B at once (two requests each), ${rounds} times, without grace: one 200, the others 400 invalid_grant, and the winner's pair is revoked as reuse`, async t => {
		const {a, b} = await twoInstances(t);
		const winners = {a: 0, b: 0};
		for (let round = 0; round < rounds; round++) {
			const pair = await login(t, a, name(`racer-${round}`));
			const body = {refresh_token: pair.refresh_token};
			const answers = await Promise.all(racers(a, b).map(async url => call(url, '/refresh', {method: 'POST', body})));
			const statuses = answers.map(answer => answer.status);
			t.deepEqual([...statuses].sort(), [200, 400, 400, 400], `round ${round}: ${statuses.join(', ')}`);
			const winner = answers.find(answer => answer.status === 200);
			t.true(answers.filter(answer => answer.status === 400).every(loser => JSON.stringify(loser.body) === '{"error":"invalid_grant"}'));
			winners[answers.indexOf(winner!) % 2 === 0 ? 'a' : 'b']++;
			const next = winner!.body as Pair;
			t.is((await call(a, '/me', {token: next.access_token})).status, 401, 'the winner\'s access token went with the session');
			t.is((await call(b, '/refresh', {method: 'POST', body: {refresh_token: next.refresh_token}})).status, 400, 'and its refresh token');
		}

		t.log(`winners over ${rounds} rounds: A ${winners.a}, B ${winners.b}`);
	});

	test(`a refresh token raced from A and B at once (two requests each), ${rounds} times, with reuseGrace 5: every answer carries the same new pair, and it works`, async t => {
		const {a, b} = await twoInstances(t);
		for (let round = 0; round < rounds; round++) {
			const pair = await login(t, b, name(`graceful-${round}`));
			const body = {refresh_token: pair.refresh_token};
			const answers = await Promise.all(racers(a, b).map(async url => call(url, '/refresh-grace', {method: 'POST', body})));
			t.deepEqual(answers.map(answer => answer.status), [200, 200, 200, 200], `round ${round}`);
			const pairs = answers.map(answer => answer.body as Pair);
			t.is(new Set(pairs.map(next => next.access_token)).size, 1);
			t.is(new Set(pairs.map(next => next.refresh_token)).size, 1);
			const first = pairs[0]!;
			t.not(first.refresh_token, pair.refresh_token);
			t.is((await call(a, '/me', {token: first.access_token})).status, 200);
			t.is((await call(b, '/me', {token: pair.access_token})).status, 401, 'the old access token went with the rotation');
		}
	});
}
