// Many instances of one app on one PostgreSQL schema: separate processes (tests/fixtures/postgres-app.ts),
// each with its own pool and TokenService, as a deployment behind a load balancer runs them. What one
// instance issues, revokes or rotates, every other sees at its next request; a refresh token raced
// from two instances at once rotates exactly once.
import {spawn, type ChildProcessByStdio} from 'node:child_process';
import {randomBytes} from 'node:crypto';
import {once} from 'node:events';
import type {Readable} from 'node:stream';
import test from 'ava';
import pg from 'pg';
import type {PairBody} from '../fixtures/postgres-routes.js';
import {databaseUrl, serviceAvailable} from '../helpers/services.js';

type Answer = {status: number; body: unknown};

type Instance = {
	readonly url: string;
	login(user: string): Promise<PairBody>;
	refresh(refreshToken: string, via?: 'body' | 'header'): Promise<Answer>;
	me(accessToken: string): Promise<Answer>;
	logout(token: string): Promise<Answer>;
	logoutAll(accessToken: string): Promise<Answer>;
};

async function send(url: string, method: string, path: string, {token, json}: {token?: string; json?: unknown} = {}): Promise<Answer> {
	const headers: Record<string, string> = {};
	if (token !== undefined) {
		headers['authorization'] = `Bearer ${token}`;
	}

	if (json !== undefined) {
		headers['content-type'] = 'application/json';
	}

	const response = await fetch(`${url}${path}`, {method, headers, ...(json === undefined ? {} : {body: JSON.stringify(json)})});
	const text = await response.text();
	return {status: response.status, body: text === '' ? undefined : JSON.parse(text) as unknown};
}

function client(url: string): Instance {
	return {
		url,
		async login(user) {
			const answer = await send(url, 'POST', '/login', {json: {user}});
			if (answer.status !== 200) {
				throw new Error(`login answered ${answer.status}: ${JSON.stringify(answer.body)}`);
			}

			return answer.body as PairBody;
		},
		refresh: async (refreshToken, via = 'body') => send(url, 'POST', '/refresh', via === 'body' ? {json: {refresh_token: refreshToken}} : {token: refreshToken}),
		me: async accessToken => send(url, 'GET', '/me', {token: accessToken}),
		logout: async token => send(url, 'POST', '/logout', {token}),
		logoutAll: async accessToken => send(url, 'POST', '/logout-all', {token: accessToken}),
	};
}

type Started = {readonly instance: Instance; stop(): Promise<string>};

/** Start one app process on `schema`; resolves once it prints its URL. `stop` answers its stderr. */
async function startInstance(schema: string, reuseGrace = 0): Promise<Started> {
	const child: ChildProcessByStdio<null, Readable, Readable> = spawn(process.execPath, ['--import=./ts-node-register.js', 'tests/fixtures/postgres-app.ts'], {
		env: {...process.env, DATABASE_URL: databaseUrl, PG_SCHEMA: schema, PORT: '0', REUSE_GRACE: String(reuseGrace)},
		stdio: ['ignore', 'pipe', 'pipe'],
	});
	let stderr = '';
	child.stderr.on('data', (chunk: Buffer) => {
		stderr += String(chunk);
	});
	const stop = async () => {
		if (child.exitCode === null && child.signalCode === null) {
			const exited = once(child, 'exit');
			child.kill('SIGTERM');
			await exited;
		}

		return stderr;
	};

	// Keep reading stdout to the end, so that a later write never meets a closed pipe.
	let output = '';
	const url = await new Promise<string>((resolve, reject) => {
		child.stdout.on('data', (chunk: Buffer) => {
			output += String(chunk);
			const found = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(output)?.[1];
			if (found !== undefined) {
				resolve(found);
			}
		});
		child.once('exit', code => {
			reject(new Error(`the instance exited (${code}) before listening: ${stderr}`));
		});
	});
	return {instance: client(url), stop};
}

const invalidGrant = (answer: Answer) => answer.status === 400 && (answer.body as {error?: unknown}).error === 'invalid_grant';

if (await serviceAvailable('PostgreSQL', databaseUrl)) {
	// One schema for this run, made before and dropped after; every instance migrates it at start.
	const schema = `kss_instances_${randomBytes(6).toString('hex')}`;
	const pool = new pg.Pool({connectionString: databaseUrl, max: 2});
	pool.on('error', error => {
		console.error(`PostgreSQL idle connection error: ${error.message}`);
	});
	test.after.always(async () => {
		await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
		await pool.end();
	});

	const user = (label: string) => `${label}-${randomBytes(6).toString('hex')}`;
	const started: Started[] = [];
	test.after.always(async t => {
		for (const stderr of await Promise.all(started.map(async instance => instance.stop()))) {
			if (stderr !== '') {
				t.log(`instance stderr: ${stderr}`);
			}
		}
	});

	// Four processes for every test (each test uses users of its own): two without grace and two
	// with a 5-second reuse grace, all on one schema, all migrating it at once as they start.
	let a: Instance;
	let b: Instance;
	let graceA: Instance;
	let graceB: Instance;
	test.before(async () => {
		await pool.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
		const starting = [startInstance(schema), startInstance(schema), startInstance(schema, 5), startInstance(schema, 5)];
		for (const result of await Promise.allSettled(starting)) {
			if (result.status === 'fulfilled') {
				started.push(result.value);
			}
		}

		[a, b, graceA, graceB] = (await Promise.all(starting)).map(({instance}) => instance) as [Instance, Instance, Instance, Instance];
	});

	test.serial('a token issued on one instance works on the other, and a refresh too', async t => {
		const name = user('alice');
		const pair = await a.login(name);
		t.like((await b.me(pair.access_token)), {status: 200, body: {user: name}});
		const next = await b.refresh(pair.refresh_token, 'header');
		t.is(next.status, 200, 'a refresh token issued on A, refreshed on B (in the Authorization header)');
		t.is((await a.me((next.body as PairBody).access_token)).status, 200, 'B\'s new pair works on A');
		t.is((await a.me(pair.access_token)).status, 401, 'the old access token went on A too');
	});

	test.serial('a logout on one instance is refused on the other at its next request', async t => {
		const pair = await a.login(user('bob'));
		const other = await b.login(user('bob-other'));
		t.is((await b.me(pair.access_token)).status, 200);
		t.deepEqual(await a.logout(pair.access_token), {status: 200, body: {revoked: true}});
		t.is((await b.me(pair.access_token)).status, 401);
		t.true(invalidGrant(await b.refresh(pair.refresh_token)), 'its refresh token went with it');
		t.is((await b.me(other.access_token)).status, 200, 'another session is untouched');
	});

	test.serial('logout-all on one instance refuses every session of the user on the other', async t => {
		const name = user('carol');
		const first = await a.login(name);
		const second = await b.login(name);
		const bystander = await b.login(user('dave'));
		t.is((await b.me(first.access_token)).status, 200);
		t.is((await a.logoutAll(second.access_token)).status, 204);
		t.is((await b.me(first.access_token)).status, 401);
		t.is((await b.me(second.access_token)).status, 401);
		t.true(invalidGrant(await b.refresh(first.refresh_token)));
		t.is((await b.me(bystander.access_token)).status, 200, 'another user is untouched');
		const after = await b.login(name);
		t.is((await a.me(after.access_token)).status, 200, 'a login after it works');
	});

	const rounds = 10;

	test.serial(`a refresh token raced from both instances at once rotates exactly once, and the reuse revokes the winner's pair too (${rounds} rounds)`, async t => {
		// One line per round: the statuses from A and B, then what became of the winner's pair.
		const outcomes: string[] = [];
		for (let round = 0; round < rounds; round++) {
			const pair = await a.login(user(`race${round}`));
			const answers = await Promise.all([a.refresh(pair.refresh_token), b.refresh(pair.refresh_token)]);
			const statuses = answers.map(answer => (invalidGrant(answer) ? 'invalid_grant' : String(answer.status))).join('/');
			const winners = answers.filter(answer => answer.status === 200).map(answer => answer.body as PairBody);
			const survivors = [];
			for (const winner of winners) {
				const access = [(await a.me(winner.access_token)).status, (await b.me(winner.access_token)).status];
				const refreshed = await b.refresh(winner.refresh_token);
				survivors.push(access.every(status => status === 401) && invalidGrant(refreshed) ? 'revoked' : `alive (${access.join('/')}, ${refreshed.status})`);
			}

			outcomes.push(`${statuses} ${survivors.join(' ')}`);
		}

		t.log(`A/B per round: ${outcomes.join('; ')}`);
		const expected = new Set(['200/invalid_grant revoked', 'invalid_grant/200 revoked']);
		t.deepEqual(outcomes.filter(outcome => !expected.has(outcome)), [], 'every round: one rotation, the loser invalid_grant, the winner\'s pair revoked as reuse');
	});

	test.serial(`with a reuse grace window, both racers get the same new pair, and it works (${rounds} rounds)`, async t => {
		const outcomes: string[] = [];
		for (let round = 0; round < rounds; round++) {
			const pair = await graceA.login(user(`grace${round}`));
			const [fromA, fromB] = await Promise.all([graceA.refresh(pair.refresh_token), graceB.refresh(pair.refresh_token)]);
			const first = fromA.body as Partial<PairBody>;
			const second = fromB.body as Partial<PairBody>;
			const same = first.access_token === second.access_token && first.refresh_token === second.refresh_token;
			const works = [
				(await graceB.me(first.access_token ?? '')).status === 200,
				(await graceA.me(pair.access_token)).status === 401,
				(await graceB.refresh(first.refresh_token ?? '')).status === 200,
			];
			outcomes.push(`${fromA.status}/${fromB.status} ${same ? 'same pair' : 'two pairs'}${works.every(Boolean) ? '' : ` (${works.join(',')})`}`);
		}

		t.log(`A/B per round: ${outcomes.join('; ')}`);
		t.deepEqual(outcomes.filter(outcome => outcome !== '200/200 same pair'), [], 'every round: both 200 with one pair, which works, and the old access token went');
	});
}
