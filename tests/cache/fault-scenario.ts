// The fault scenario of the cache, shared by tests/cache/faults.test.ts (short) and
// bench/cache-faults.ts (10^5 failures): an instance (tests/cache/instance.ts, run with --expose-gc)
// whose store and invalidation bus are a redis-server of the scenario's own, on a free port, with the
// cache on. Redis is stopped (SHUTDOWN NOSAVE, then SIGKILL) and restarted under the instance. While
// it is down every answer must be a 503 with Retry-After: never a 401 (which would log users out),
// never a 200 for the revoked token, though the valid one was cached before. The instance's heap is
// measured after a garbage collection before and during the failures; the process must stay up, and
// service must resume by itself once Redis is back.
import type {ChildProcess} from 'node:child_process';
import autocannon from 'autocannon';
import {call, freePort, sleep, spawnInstance, startRedis, stats, stopRedis, until, type Instance, type Pair} from './helpers.js';

export type FaultOptions = {
	/** Failing requests to measure the heap over. */
	readonly failures: number;
	/** Heap samples taken during them (after a collection each). */
	readonly samples: number;
	/** Milliseconds of probing (the valid and the revoked token, side by side) per outage. */
	readonly probe: number;
	/** Also stop Redis with SIGKILL, after the SHUTDOWN NOSAVE round. */
	readonly kill: boolean;
	readonly log: (line: string) => void;
};

export type OutageReport = {
	readonly how: string;
	/** Answers while Redis was down: status (and whether Retry-After was there) → count. */
	readonly answers: Record<string, number>;
	/** Answers that are not a 503 with Retry-After. */
	readonly violations: string[];
	/** Milliseconds from the server's exit until the instance's bus was no longer live. */
	readonly noticedAfter: number;
	/** Milliseconds from the restart to the first successful login. */
	readonly resumedAfter: number;
	/** Milliseconds from the restart until the bus was live again. */
	readonly busLiveAfter: number;
};

export type FaultReport = {
	readonly outages: OutageReport[];
	/** heapUsed after a collection, in bytes: before the failures, then after each sample's share. */
	readonly heap: ReadonlyArray<{readonly failures: number; readonly heapUsed: number}>;
	readonly failures: {readonly requests: number; readonly statuses: Record<string, number>; readonly withoutRetryAfter: number; readonly seconds: number};
	/** Errors the instance's app emitted, by status. */
	readonly appErrors: Record<string, number>;
	readonly crashed: boolean;
	readonly stderr: readonly string[];
	/** After recovery: the revoked token, a token of before the outage (gone with Redis's data), a new login. */
	readonly after: {readonly revoked: number; readonly beforeOutage: number; readonly newLogin: number};
};

const key = (status: number, retryAfter: string | null) => `${status}${retryAfter === null ? '' : ` Retry-After: ${retryAfter}`}`;

/** Requests with the valid and the revoked token, side by side, every 20 ms for `duration` ms. */
async function probe(url: string, valid: string, revoked: string, duration: number): Promise<{answers: Record<string, number>; violations: string[]}> {
	const answers: Record<string, number> = {};
	const violations: string[] = [];
	const end = performance.now() + duration;
	while (performance.now() < end) {
		const [first, second] = await Promise.all([call(url, '/me', {token: valid}), call(url, '/me', {token: revoked})]);
		for (const [which, answer] of [['valid', first], ['revoked', second]] as const) {
			const label = key(answer.status, answer.retryAfter);
			answers[label] = (answers[label] ?? 0) + 1;
			if (answer.status !== 503 || answer.retryAfter === null) {
				violations.push(`${which} token: ${label} ${JSON.stringify(answer.body)}`);
			}
		}

		await sleep(20);
	}

	return {answers, violations};
}

async function login(url: string, user: string): Promise<Pair> {
	const answer = await call(url, '/login', {method: 'POST', body: {user}});
	if (answer.status !== 200) {
		throw new Error(`login: ${answer.status}`);
	}

	return answer.body as Pair;
}

/** `amount` requests with `token` over 50 connections; the statuses, and how many lacked Retry-After. */
async function hammer(url: string, token: string, amount: number) {
	const statuses: Record<string, number> = {};
	let withoutRetryAfter = 0;
	const started = performance.now();
	await autocannon({
		url: `${url}/me`,
		connections: 50,
		amount,
		headers: {authorization: `Bearer ${token}`},
		requests: [{
			onResponse(status, _body, _context, headers) {
				statuses[status] = (statuses[status] ?? 0) + 1;
				// Raw header names, as the server spelled them.
				if (status !== 503 || !Object.keys(headers ?? {}).some(name => name.toLowerCase() === 'retry-after')) {
					withoutRetryAfter++;
				}
			},
		}],
	});
	return {statuses, withoutRetryAfter, seconds: (performance.now() - started) / 1000};
}

export async function runFaultScenario(options: FaultOptions): Promise<FaultReport> {
	const {log} = options;
	const port = await freePort();
	let server: ChildProcess = await startRedis(port);
	let instance: Instance | undefined;
	try {
		const redisUrl = `redis://127.0.0.1:${port}`;
		instance = await spawnInstance({STORE: 'redis', REDIS_URL: redisUrl, KSA_PREFIX: 'cache-faults:', CACHE_TTL: '300', CHANNEL: 'cache-faults'}, ['--expose-gc']);
		const {url} = instance;
		await until(async () => (await stats(url)).bus?.live === true, 10_000, 'the bus subscribed');
		const alice = await login(url, 'alice');
		const bob = await login(url, 'bob');
		await call(url, '/revoke', {method: 'POST', body: {token: bob.access_token}});
		for (let index = 0; index < 2; index++) {
			if ((await call(url, '/me', {token: alice.access_token})).status !== 200 || (await call(url, '/me', {token: bob.access_token})).status !== 401) {
				throw new Error('the setup does not answer as expected');
			}
		}

		const outages: OutageReport[] = [];
		const heap: Array<{failures: number; heapUsed: number}> = [];
		let failures = {requests: 0, statuses: {} as Record<string, number>, withoutRetryAfter: 0, seconds: 0};
		const rounds: Array<'SHUTDOWN NOSAVE' | 'SIGKILL'> = options.kill ? ['SHUTDOWN NOSAVE', 'SIGKILL'] : ['SHUTDOWN NOSAVE'];
		let valid = alice;
		let revoked = bob;
		for (const [round, how] of rounds.entries()) {
			if (how === 'SIGKILL') {
				const exited = new Promise(resolve => server.once('exit', resolve));
				server.kill('SIGKILL');
				await exited;
			} else {
				await stopRedis(server, port);
			}

			// The instance learns that Redis is gone when its connections close (a few event-loop turns
			// after the server's exit); until then a token it cached is still answered from the cache.
			const noticed = await until(async () => (await stats(url)).bus?.live === false, 5000, 'the instance noticed');
			const probed = await probe(url, valid.access_token, revoked.access_token, options.probe);
			log(`${how}: noticed within ${noticed.toFixed(0)} ms; ${JSON.stringify(probed.answers)} while down, ${probed.violations.length} violations`);
			if (round === 0) {
				// The heap over many failures: warm up, collect, then sample.
				await hammer(url, valid.access_token, Math.min(2000, options.failures));
				heap.push({failures: 0, heapUsed: (await stats(url)).heapUsed});
				const share = Math.ceil(options.failures / options.samples);
				for (let done = 0; done < options.failures; done += share) {
					const part = await hammer(url, valid.access_token, Math.min(share, options.failures - done));
					failures = {
						requests: failures.requests + Object.values(part.statuses).reduce((sum, count) => sum + count, 0),
						statuses: Object.fromEntries([...new Set([...Object.keys(failures.statuses), ...Object.keys(part.statuses)])].map(status => [status, (failures.statuses[status] ?? 0) + (part.statuses[status] ?? 0)])),
						withoutRetryAfter: failures.withoutRetryAfter + part.withoutRetryAfter,
						seconds: failures.seconds + part.seconds,
					};
					heap.push({failures: failures.requests, heapUsed: (await stats(url)).heapUsed});
					log(`  ${failures.requests} failures: heapUsed ${(heap.at(-1)!.heapUsed / 1e6).toFixed(2)} MB`);
				}
			}

			const restarted = performance.now();
			server = await startRedis(port);
			// Nothing was persisted: the old tokens are gone with Redis's data. Service resumes when a login works.
			await until(async () => (await call(url, '/login', {method: 'POST', body: {user: 'probe'}})).status === 200, 15_000, 'service resumed');
			const resumedAfter = performance.now() - restarted;
			await until(async () => (await stats(url)).bus?.live === true, 15_000, 'the bus resubscribed');
			const busLiveAfter = performance.now() - restarted;
			outages.push({how, answers: probed.answers, violations: probed.violations, noticedAfter: noticed, resumedAfter, busLiveAfter});
			log(`${how}: resumed ${resumedAfter.toFixed(0)} ms after the restart, bus live after ${busLiveAfter.toFixed(0)} ms`);
			// A fresh valid and revoked token for the next round.
			valid = await login(url, 'alice');
			revoked = await login(url, 'bob');
			await call(url, '/revoke', {method: 'POST', body: {token: revoked.access_token}});
			await call(url, '/me', {token: valid.access_token});
		}

		const after = {
			revoked: (await call(url, '/me', {token: revoked.access_token})).status,
			beforeOutage: (await call(url, '/me', {token: alice.access_token})).status,
			newLogin: (await call(url, '/me', {token: valid.access_token})).status,
		};
		const final = await stats(url);
		return {
			outages, heap, failures, after,
			appErrors: final.statuses,
			crashed: instance.child.exitCode !== null || instance.child.signalCode !== null,
			stderr: [...instance.stderr],
		};
	} finally {
		instance?.stop();
		server.kill('SIGKILL');
	}
}
