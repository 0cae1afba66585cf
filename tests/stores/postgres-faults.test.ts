// PostgreSQL going away under a running app, without ever touching the machine's shared server: the
// app's pool talks to PostgreSQL through a TCP proxy of the test's own, and the test cuts that. While
// the connection is down, protected routes and refreshes answer 503 with Retry-After and a generic
// body (never a 401 that would log users out, never the driver's message); the driver's error
// reaches app.on('error') as the cause; the process stays up; when the proxy is back on the same
// port, the pool reconnects by itself and the same tokens work again.
import {randomBytes} from 'node:crypto';
import {once} from 'node:events';
import net, {type AddressInfo} from 'node:net';
import {setTimeout as delay} from 'node:timers/promises';
import test, {type ExecutionContext} from 'ava';
import pg from 'pg';
import {isStatelessAuthError} from '../../source/index.js';
import {PostgresTokenStore} from '../../source/stores/postgres.js';
import {createPostgresApp, type PairBody} from '../fixtures/postgres-routes.js';
import {listen} from '../helpers/http.js';
import {databaseUrl, serviceAvailable} from '../helpers/services.js';

/**
A TCP proxy on 127.0.0.1 to the real server. `cut()` closes it and destroys every connection (as a
server restart or a reset does); `blackHole()` keeps connections open but forwards nothing either
way (as a dropped network does: only timeouts notice); `restore()` serves again on the same port.
`watch` sees what clients send, after it went on to the server.
*/
async function startProxy(target: {host: string; port: number}) {
	const sockets = new Set<net.Socket>();
	let holding = false;
	let watch: ((chunk: Buffer) => void) | undefined;
	const server = net.createServer(downstream => {
		sockets.add(downstream);
		downstream.on('close', () => sockets.delete(downstream));
		downstream.on('error', () => undefined);
		if (holding) {
			// Accepted, and then silence.
			return;
		}

		const upstream = net.connect(target);
		sockets.add(upstream);
		upstream.on('close', () => {
			sockets.delete(upstream);
			downstream.destroy();
		});
		upstream.on('error', () => undefined);
		downstream.on('close', () => upstream.destroy());
		downstream.on('data', (chunk: Buffer) => {
			if (!holding) {
				upstream.write(chunk);
				watch?.(chunk);
			}
		});
		upstream.on('data', chunk => {
			if (!holding) {
				downstream.write(chunk);
			}
		});
	});
	server.listen(0, '127.0.0.1');
	await once(server, 'listening');
	const {port} = server.address() as AddressInfo;
	return {
		port,
		async cut() {
			const closed = new Promise(resolve => {
				server.close(resolve);
			});
			for (const socket of sockets) {
				socket.destroy();
			}

			await closed;
		},
		blackHole() {
			holding = true;
		},
		watch(callback: ((chunk: Buffer) => void) | undefined) {
			watch = callback;
		},
		async restore() {
			holding = false;
			for (const socket of sockets) {
				socket.destroy();
			}

			if (!server.listening) {
				server.listen(port, '127.0.0.1');
				await once(server, 'listening');
			}
		},
		async close() {
			await this.cut().catch(() => undefined);
		},
	};
}

type Seen = {status: number; retryAfter: string | null; body: string; ms: number};

async function timed(request: () => Promise<Response>): Promise<Seen> {
	const started = performance.now();
	const response = await request();
	const body = await response.text();
	return {status: response.status, retryAfter: response.headers.get('retry-after'), body, ms: Math.round(performance.now() - started)};
}

function tally(seen: readonly Seen[]): string {
	const counts = new Map<number, number>();
	for (const {status} of seen) {
		counts.set(status, (counts.get(status) ?? 0) + 1);
	}

	return [...counts].map(([status, count]) => `${status}×${count}`).join(', ');
}

/** What the driver said while down: it must never reach a response. */
const driverWords = /ECONN|terminat|timeout|connect|socket|postgres|pg_/i;

if (await serviceAvailable('PostgreSQL', databaseUrl)) {
	const direct = new pg.Pool({connectionString: databaseUrl, max: 2});
	direct.on('error', error => {
		console.error(`PostgreSQL idle connection error: ${error.message}`);
	});
	const schemas: string[] = [];
	test.after.always(async () => {
		for (const schema of schemas) {
			await direct.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
		}

		await direct.end();
	});

	/** An app on a schema of its own, whose pool goes through a proxy the test controls. */
	const setUp = async (t: ExecutionContext, reuseGrace = 0) => {
		const schema = `kss_faults_${randomBytes(6).toString('hex')}`;
		schemas.push(schema);
		const real = new URL(databaseUrl);
		const proxy = await startProxy({host: real.hostname, port: Number(real.port || 5432)});
		const proxied = new URL(databaseUrl);
		proxied.hostname = '127.0.0.1';
		proxied.port = String(proxy.port);
		const pool = new pg.Pool({
			connectionString: proxied.href, max: 3, connectionTimeoutMillis: 500, query_timeout: 1000, statement_timeout: 1000,
		});
		// pg reports a dead idle connection here; without a listener the process would stop.
		const poolErrors: Error[] = [];
		pool.on('error', error => poolErrors.push(error));
		t.teardown(async () => {
			await proxy.close();
			await pool.end();
		});
		const {app} = createPostgresApp({pool, schema, reuseGrace});
		const appErrors: unknown[] = [];
		app.on('error', (error: unknown) => appErrors.push(error));
		// Migrated directly: a migration may wait for others (the lock is the database's), longer than
		// this pool's timeouts allow.
		await new PostgresTokenStore(direct, {schema}).migrate();
		const url = await listen(t, app);
		const me = async (token: string) => timed(async () => fetch(`${url}/me`, {headers: {authorization: `Bearer ${token}`}}));
		const refresh = async (token: string) => timed(async () => fetch(`${url}/refresh`, {method: 'POST', headers: {authorization: `Bearer ${token}`}}));
		// Before any cut; on a busy machine a login may wait longer than connectionTimeoutMillis for a
		// connection and get a 503: it tries again, as a client would.
		const login = async (user: string): Promise<PairBody> => {
			for (let attempt = 1; ; attempt++) {
				const response = await fetch(`${url}/login`, {method: 'POST', headers: {'content-type': 'application/json'}, body: JSON.stringify({user})});
				if (response.status === 200 || attempt === 10) {
					t.is(response.status, 200, 'logged in');
					return await response.json() as PairBody;
				}

				await delay(50);
			}
		};
		return {proxy, pool, poolErrors, appErrors, me, refresh, login};
	};

	/** Every answer during an outage: a 503 with Retry-After and the generic body. */
	const assertUnavailable = (t: ExecutionContext, seen: readonly Seen[], what: string) => {
		t.true(seen.length > 0);
		for (const answer of seen) {
			t.is(answer.status, 503, `${what}: ${JSON.stringify(answer)}`);
			t.is(answer.retryAfter, '1');
			t.deepEqual(JSON.parse(answer.body), {error: 'Server error: Service unavailable'});
			t.notRegex(answer.body, driverWords);
		}
	};

	/** The errors on app.on('error'): generic 503s whose cause chain leads to the driver's error. */
	const driverCauses = (t: ExecutionContext, errors: readonly unknown[]): Error[] => errors.map(error => {
		t.true(isStatelessAuthError(error), 'a StatelessAuthError');
		t.is((error as {status?: unknown}).status, 503);
		let cause: unknown = (error as Error).cause;
		// The service's own 503 wraps the driver's error; the answer wraps the service's.
		while (isStatelessAuthError(cause)) {
			cause = cause.cause;
		}

		t.true(cause instanceof Error, 'the driver\'s error is the cause');
		t.notRegex((error as Error).message, driverWords);
		return cause as Error;
	});

	test('a cut connection: 503 with Retry-After while down, and the pool reconnects by itself when it is back', async t => {
		const {proxy, poolErrors, appErrors, me, refresh, login} = await setUp(t);
		const pair = await login('alice');
		t.is((await me(pair.access_token)).status, 200);

		const reportedBefore = appErrors.length;
		await proxy.cut();
		const cutAt = performance.now();
		// Long enough for the pool to hear that its idle connection died (its 'error' event).
		await delay(100);
		t.true(poolErrors.length > 0, 'the idle connection\'s death was reported on pool.on(\'error\')');
		const outage: Seen[] = [];
		while (performance.now() - cutAt < 1000) {
			outage.push(await me(pair.access_token));
		}

		const refreshDuringOutage = await refresh(pair.refresh_token);
		assertUnavailable(t, outage, 'GET /me while down');
		assertUnavailable(t, [refreshDuringOutage], 'POST /refresh while down');
		t.false(outage.some(answer => answer.status === 401), 'never a 401');
		const causes = driverCauses(t, appErrors);
		t.is(appErrors.length - reportedBefore, outage.length + 1, 'each 503 is reported once');

		await proxy.restore();
		const restoredAt = performance.now();
		const resuming: Seen[] = [];
		while (resuming.at(-1)?.status !== 200 && performance.now() - restoredAt < 5000) {
			resuming.push(await me(pair.access_token));
		}

		const resumedMs = Math.round(performance.now() - restoredAt);
		t.is(resuming.at(-1)?.status, 200, 'serving again, with the token issued before the outage');
		t.is((await refresh(pair.refresh_token)).status, 200, 'the refresh token the outage answered 503 still works: nobody was logged out');
		t.log(`cut: ${outage.length} requests in 0.9 s while down (${tally(outage)}; ${Math.max(...outage.map(answer => answer.ms))} ms the slowest), `
			+ `pool 'error' events: ${poolErrors.length}, driver causes: ${[...new Set(causes.map(cause => cause.message))].join(' | ')}; `
			+ `back ${resumedMs} ms after the proxy reopened, after ${resuming.length} request(s) (${tally(resuming)})`);
	});

	test('a black hole (no reset, no answer): the pool\'s timeouts answer 503 within them, and service resumes', async t => {
		const {proxy, poolErrors, appErrors, me, login} = await setUp(t);
		const pair = await login('bob');
		t.is((await me(pair.access_token)).status, 200);

		proxy.blackHole();
		const holeAt = performance.now();
		const outage: Seen[] = [];
		while (performance.now() - holeAt < 2500) {
			outage.push(await me(pair.access_token));
		}

		assertUnavailable(t, outage, 'GET /me in a black hole');
		// query_timeout (1 s) for a connection that was open, connectionTimeoutMillis (0.5 s) for a new one.
		t.true(outage.every(answer => answer.ms < 1500), `every answer within the timeouts: ${outage.map(answer => answer.ms).join(', ')} ms`);
		const causes = driverCauses(t, appErrors);

		await proxy.restore();
		const restoredAt = performance.now();
		const resuming: Seen[] = [];
		while (resuming.at(-1)?.status !== 200 && performance.now() - restoredAt < 5000) {
			resuming.push(await me(pair.access_token));
		}

		t.is(resuming.at(-1)?.status, 200);
		t.log(`black hole: ${outage.length} requests in 2.5 s (${tally(outage)}; ${outage.map(answer => answer.ms).join(', ')} ms), `
			+ `pool 'error' events: ${poolErrors.length}, driver causes: ${[...new Set(causes.map(cause => cause.message))].join(' | ')}; `
			+ `back ${Math.round(performance.now() - restoredAt)} ms after, after ${resuming.length} request(s) (${tally(resuming)})`);
	});
	const midRefresh = test.macro({
		async exec(t, reuseGrace: number) {
			const {proxy, appErrors, refresh, login} = await setUp(t, reuseGrace);
			const pairs = await Promise.all(Array.from({length: 30}, async (_, index) => login(`carol${index}`)));
			// Thirty refreshes through a pool of three. The cut comes right after the fifth COMMIT went
			// to the server: that rotation is done, but its answer is lost (the client sees a dead
			// connection); the other clients are between the statements of their transactions, or
			// waiting for one.
			let commits = 0;
			proxy.watch(chunk => {
				// The simple query `COMMIT` (not `BEGIN ISOLATION LEVEL READ COMMITTED`).
				if (chunk.includes('COMMIT\0') && ++commits === 5) {
					proxy.watch(undefined);
					void proxy.cut();
				}
			});
			const first = await Promise.all(pairs.map(async pair => refresh(pair.refresh_token)));
			t.true(first.some(answer => answer.status === 200) && first.some(answer => answer.status === 503), `the cut came in the middle: ${tally(first)}`);
			t.true(first.every(answer => answer.status === 200 || answer.status === 503), `only pairs and 503s, never a refusal: ${tally(first)}`);
			driverCauses(t, appErrors);

			await proxy.restore();
			// Each client that got a 503 retries with the same refresh token, as Retry-After says, until it
			// gets another answer: a connection that died idle in the pool can still be handed out once.
			const retried = first.map((answer, index) => ({answer, pair: pairs[index]!})).filter(({answer}) => answer.status === 503);
			let again = 0;
			const retries = await Promise.all(retried.map(async ({pair}) => {
				for (let attempt = 1; ; attempt++) {
					const answer = await refresh(pair.refresh_token);
					if (answer.status !== 503 || attempt === 5) {
						return answer;
					}

					again++;
					await delay(50);
				}
			}));
			if (reuseGrace > 0) {
				// A rotation whose COMMIT went through: the grace window answers the same pair.
				t.true(retries.every(answer => answer.status === 200), `every retry gets a pair: ${tally(retries)}`);
			} else {
				// Without grace, the retry of a rotation that did commit is taken for a stolen token.
				t.true(retries.every(answer => answer.status === 200 || answer.status === 400), tally(retries));
			}

			t.log(`reuseGrace ${reuseGrace}: first answers ${tally(first)}; the retries of the 503s ${tally(retries)} (${again} answered 503 again first)`);
		},
		title: (_provided, reuseGrace: number) => `a cut in the middle of refreshes answers pairs and 503s; the retries after it, with reuseGrace ${reuseGrace}`,
	});

	test(midRefresh, 5);
	test(midRefresh, 0);
}

