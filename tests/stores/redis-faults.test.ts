// Faults: Redis goes away under a running app (tests/fixtures/redis-app.ts, a process of its own,
// with the client options the store's TSDoc recommends). On a redis-server of this test's own, on a
// free port, persisting nothing: the shared server is never touched. While Redis is down or hung,
// every request is a 503 with Retry-After and a generic body (never a 401, which would log users out;
// never a driver's message), answered at once (or after `commandTimeout` for a hung server); the app
// hears of the driver's error on app.on('error'); the process stays up (an unhandled rejection would
// end it). Once Redis is back, service resumes by itself. Nothing was persisted, so the tokens are
// gone: a client signs in again (its old token is then a 401, as it should be).
import {existsSync} from 'node:fs';
import net from 'node:net';
import {once} from 'node:events';
import type {ChildProcess} from 'node:child_process';
import test, {type ExecutionContext} from 'ava';
import {call, freePort, spawnApp, startRedis, type Answer, type AppInstance, type Pair} from '../fixtures/redis-helpers.js';

const redisServer = '/usr/bin/redis-server';
const genericBody = {error: 'Server error: Service unavailable'};
// What ioredis says when it fails a command: each 503's cause chain must hold one of these.
const driverMessages = /Stream isn't writeable|Connection is closed|MaxRetriesPerRequest|Command timed out|ECONNREFUSED|ECONNRESET/;

/** Ask the server to stop without saving, over a plain socket (a client of ours would try to reconnect). */
async function shutdownNosave(port: number): Promise<void> {
	const socket = net.connect(port, '127.0.0.1');
	await once(socket, 'connect');
	socket.end('SHUTDOWN NOSAVE\r\n');
	await once(socket, 'close');
}

async function exited(child: ChildProcess): Promise<void> {
	if (child.exitCode === null && child.signalCode === null) {
		await once(child, 'exit');
	}
}

const sleep = async (ms: number) => new Promise(resolve => {
	setTimeout(resolve, ms);
});

/** Requests of every kind for `duration` ms, one every `every` ms, while Redis is away. */
async function duringOutage(url: string, pair: Pair, duration: number, every = 50): Promise<Answer[]> {
	const answers: Array<Promise<Answer>> = [];
	const kinds = [
		async () => call(url, '/me', {token: pair.access_token}),
		async () => call(url, '/login', {method: 'POST', body: {user: 'someone'}}),
		async () => call(url, '/refresh', {method: 'POST', body: {refresh_token: pair.refresh_token}}),
	];
	const end = performance.now() + duration;
	for (let index = 0; performance.now() < end; index++) {
		answers.push(kinds[index % kinds.length]!());
		await sleep(every);
	}

	return Promise.all(answers);
}

function assertUnavailable(t: ExecutionContext, answers: readonly Answer[], phase: string): void {
	t.true(answers.length > 0, phase);
	for (const answer of answers) {
		t.is(answer.status, 503, `${phase}: ${JSON.stringify(answer)}`);
		t.is(answer.retryAfter, '1', phase);
		t.deepEqual(answer.body, genericBody, phase);
	}
}

/** Sign in again and again until it works: answers how long it took, and the pair. */
async function resume(url: string, limit = 10_000): Promise<{ms: number; pair: Pair; statuses: Map<number, number>}> {
	const started = performance.now();
	const statuses = new Map<number, number>();
	while (performance.now() - started < limit) {
		const answer = await call(url, '/login', {method: 'POST', body: {user: 'alice'}});
		statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
		if (answer.status === 200) {
			return {ms: performance.now() - started, pair: answer.body as Pair, statuses};
		}

		await sleep(20);
	}

	throw new Error(`Service did not resume within ${limit} ms`);
}

const summary = (answers: readonly Answer[]) => {
	const latencies = answers.map(answer => answer.ms).sort((a, b) => a - b);
	const statuses = [...new Set(answers.map(answer => answer.status))].join('/');
	return `${answers.length} requests, all ${statuses}, latency median ${latencies[Math.floor(latencies.length / 2)]!.toFixed(1)} ms, max ${latencies.at(-1)!.toFixed(1)} ms`;
};

if (existsSync(redisServer)) {
	test('with Redis down, killed or hung, answers are 503 with Retry-After and a generic body, the app hears the driver\'s error and stays up, and service resumes once Redis is back', async t => {
		const port = await freePort();
		let server = await startRedis(port);
		t.teardown(() => {
			server.kill('SIGKILL');
		});
		const app: AppInstance = await spawnApp(t, {REDIS_URL: `redis://127.0.0.1:${port}`, KSA_PREFIX: 'ksa-faults:'});
		let pair = (await call(app.url, '/login', {method: 'POST', body: {user: 'alice'}})).body as Pair;
		t.like(await call(app.url, '/me', {token: pair.access_token}), {status: 200, body: {user: 'alice'}});

		// 1. SHUTDOWN NOSAVE.
		await shutdownNosave(port);
		await exited(server);
		const shutdown = await duringOutage(app.url, pair, 1500);
		assertUnavailable(t, shutdown, 'shut down');
		server = await startRedis(port);
		const afterShutdown = await resume(app.url);
		t.is((await call(app.url, '/me', {token: pair.access_token})).status, 401, 'nothing was persisted: the old token is gone');
		pair = afterShutdown.pair;
		t.is((await call(app.url, '/me', {token: pair.access_token})).status, 200);
		t.log(`SHUTDOWN NOSAVE: ${summary(shutdown)}; resumed ${afterShutdown.ms.toFixed(0)} ms after the restart (answers meanwhile: ${JSON.stringify([...afterShutdown.statuses])})`);

		// 2. SIGKILL.
		server.kill('SIGKILL');
		await exited(server);
		const killed = await duringOutage(app.url, pair, 1500);
		assertUnavailable(t, killed, 'killed');
		server = await startRedis(port);
		const afterKill = await resume(app.url);
		pair = afterKill.pair;
		t.is((await call(app.url, '/me', {token: pair.access_token})).status, 200);
		t.log(`SIGKILL: ${summary(killed)}; resumed ${afterKill.ms.toFixed(0)} ms after the restart (answers meanwhile: ${JSON.stringify([...afterKill.statuses])})`);

		// 3. Hung (SIGSTOP): the connection stays open and nothing answers; commandTimeout (1 s) ends each request.
		server.kill('SIGSTOP');
		const hung = await duringOutage(app.url, pair, 1500, 250);
		assertUnavailable(t, hung, 'hung');
		t.true(hung.every(answer => answer.ms >= 900 && answer.ms < 2500), `each waited for the command timeout: ${hung.map(answer => answer.ms.toFixed(0)).join(', ')}`);
		server.kill('SIGCONT');
		const afterHang = await resume(app.url);
		t.is((await call(app.url, '/me', {token: pair.access_token})).status, 200, 'the data survived the hang');
		t.log(`SIGSTOP: ${summary(hung)}; resumed ${afterHang.ms.toFixed(0)} ms after SIGCONT`);

		// The process stayed up, every 503 was reported with the driver's error as its cause, and nothing else was.
		t.is(app.child.exitCode, null, 'the app is still running');
		t.is(app.child.signalCode, null);
		t.deepEqual(app.stderr, [], 'nothing but the JSON error lines on stderr: no crash, no unhandled rejection');
		const unavailable = shutdown.length + killed.length + hung.length
			+ [afterShutdown, afterKill, afterHang].reduce((sum, {statuses}) => sum + (statuses.get(503) ?? 0), 0);
		const reported = app.events.filter(event => event.event === 'app-error');
		t.is(reported.length, unavailable, 'one app error for each 503, those while waiting to resume included');
		t.true(reported.every(event => event.status === 503 && event.causes!.some(message => driverMessages.test(message))), JSON.stringify(reported.slice(0, 3)));
		const driver = new Set(reported.map(event => event.causes!.find(message => driverMessages.test(message))));
		t.log(`app.on('error'): ${reported.length} errors, causes: ${[...driver].join(' | ')}; client 'error' events: ${app.events.filter(event => event.event === 'redis-error').length}`);
	});
} else if (process.env['REQUIRE_SERVICES'] === '1') {
	test(`${redisServer} is installed (REQUIRE_SERVICES=1)`, t => {
		t.fail(`The Redis fault tests start a redis-server of their own, and there is none at ${redisServer}.`);
	});
} else {
	console.warn(`Skipping the Redis fault tests: no ${redisServer} to start.`);
	test.skip(`Redis fault tests (no ${redisServer})`, () => undefined);
}
