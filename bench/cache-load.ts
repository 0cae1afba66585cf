// The cache's load test: `node --import=./ts-node-register.js bench/cache-load.ts`. Loopback only.
//
// Two instances of one service (tests/cache/instance.ts), A and B, share a store and a
// RedisInvalidationBus on a redis-server of the script's own (a free port, nothing persisted; never
// the machine's shared Redis), each with the cache on and a TTL of LOAD_TTL seconds (default 300:
// longer than the run, so that only an invalidation can make A refuse a token it has cached). 10,000
// users with one token each are issued before the run: valid ones, ones revoked before the run,
// expired ones, ones that expire during the run, and ones that B revokes during it (three in four by
// revoke(token), one in four by revokeAll(user)). 1,000 well-formed tokens that were never issued
// are unknown. LOAD_CONNECTIONS connections (default 200) send requests with tokens drawn at random
// to A for LOAD_SECONDS seconds (default 60) while B revokes.
//
// Checked on every answer: a 200 names the token's own user; a valid token is a 200; an unknown,
// revoked-before or expired token is a 401; a token B revoked is a 401 on any request sent after A
// applied the invalidation B published (A records when, on the wall clock both processes read), and
// a 200 on any answered before the revocation was sent; an expiring token is a 200 when answered
// before its expiry and a 401 when sent after it; no other status, ever. Also reported: revoked
// tokens served in the window between B's answer and A's receipt of the message. Counts are
// printed; exits 1 on any violation.
//
// LOAD_STORE=redis (default) or sqlite (a file both instances open; the bus stays on Redis).
// LOAD_BUS=off runs A and B without the bus: the control, which must report revoked tokens served
// after B answered their revocation.
import {randomUUID} from 'node:crypto';
import {mkdtempSync, rmSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import autocannon from 'autocannon';
import Database from 'better-sqlite3';
import {Redis} from 'ioredis';
import {TokenService, generateToken, type TokenStore} from '../source/index.js';
import {RedisTokenStore} from '../source/stores/redis.js';
import {SqliteTokenStore} from '../source/stores/sqlite.js';
import {call, freePort, spawnInstance, startRedis, stats, until, type Instance, type Stats} from '../tests/cache/helpers.js';

function setting(name: string, fallback: number): number {
	const raw = process.env[name];
	const value = raw === undefined || raw.trim() === '' ? fallback : Number(raw);
	if (!Number.isFinite(value) || value <= 0) {
		throw new Error(`${name} must be a positive number, got ${JSON.stringify(raw)}`);
	}

	return value;
}

const seconds = setting('LOAD_SECONDS', 60);
const connections = setting('LOAD_CONNECTIONS', 200);
const ttl = setting('LOAD_TTL', 300);
const storeKind = process.env['LOAD_STORE'] ?? 'redis';
const busOn = (process.env['LOAD_BUS'] ?? 'on') !== 'off';
if (storeKind !== 'redis' && storeKind !== 'sqlite') {
	throw new Error(`LOAD_STORE must be redis or sqlite, got ${JSON.stringify(storeKind)}`);
}

type Kind = 'valid' | 'revoked-during' | 'revoked-before' | 'expired' | 'expiring' | 'unknown';
type Entry = {
	readonly kind: Kind;
	readonly token: string;
	readonly user: string;
	/** Date.now() milliseconds, for tokens that expire. */
	expiresAt: number;
	/** performance.now() when the revocation was sent, and when B answered it. */
	revokeSent: number;
	revokeDone: number;
	readonly byUser: boolean;
};

const users = 10_000;
const plan: ReadonlyArray<readonly [Kind, number]> = [['valid', 6000], ['revoked-during', 2000], ['revoked-before', 500], ['expired', 500], ['expiring', 1000]];
const unknownCount = 1000;

const log = (line: string) => {
	console.error(line);
};

const port = await freePort();
const redisServer = await startRedis(port);
const redisUrl = `redis://127.0.0.1:${port}`;
const directory = mkdtempSync(join(tmpdir(), 'ksa-load-'));
const sqlitePath = join(directory, 'tokens.sqlite');
const instances: Instance[] = [];
const seedClient = new Redis(redisUrl);
let exitCode = 0;
try {
	// --- Seed the store, as another process would have.
	let store: TokenStore;
	if (storeKind === 'redis') {
		store = new RedisTokenStore(seedClient, {prefix: 'load:'});
	} else {
		const db = new Database(sqlitePath);
		db.pragma('journal_mode = WAL');
		const sqlite = new SqliteTokenStore(db);
		await sqlite.migrate();
		store = sqlite;
	}

	const issuer = new TokenService({store, prefix: 'app'});
	const seedStarted = performance.now();
	const expiringAt = Date.now() + 5000 + (seconds * 500); // About the middle of the run (the setup takes a few seconds).
	const entries: Entry[] = [];
	let next = 0;
	for (const [kind, count] of plan) {
		for (let index = 0; index < count; index++) {
			entries.push({kind, token: '', user: `user-${next++}`, expiresAt: Number.POSITIVE_INFINITY, revokeSent: Number.POSITIVE_INFINITY, revokeDone: Number.POSITIVE_INFINITY, byUser: kind === 'revoked-during' && index % 4 === 3});
		}
	}

	let cursor = 0;
	await Promise.all(Array.from({length: 50}, async () => {
		while (cursor < entries.length) {
			const entry = entries[cursor++]!;
			const ttlOf = entry.kind === 'expired' ? 1 : entry.kind === 'expiring' ? Math.max(1, Math.round((expiringAt - Date.now()) / 1000)) : 3600;
			const issued = await issuer.issue(entry.user, 'access', {ttl: ttlOf});
			(entry as {token: string}).token = issued.token;
			if (entry.kind === 'expired' || entry.kind === 'expiring') {
				entry.expiresAt = issued.expiresAt;
			}

			if (entry.kind === 'revoked-before') {
				await issuer.revoke(issued.token);
			}
		}
	}));
	for (let index = 0; index < unknownCount; index++) {
		entries.push({kind: 'unknown', token: generateToken({prefix: 'app_at'}), user: '', expiresAt: Number.POSITIVE_INFINITY, revokeSent: Number.POSITIVE_INFINITY, revokeDone: Number.POSITIVE_INFINITY, byUser: false});
	}

	log(`seeded ${users} users and tokens in ${((performance.now() - seedStarted) / 1000).toFixed(1)} s (${storeKind} store)`);

	// --- Two instances.
	const env = {
		STORE: storeKind, REDIS_URL: redisUrl, KSA_PREFIX: 'load:', SQLITE_PATH: sqlitePath, CACHE_TTL: String(ttl), RECORD_INVALIDATIONS: '1',
		CHANNEL: `load-${randomUUID()}`, BUS: busOn ? 'on' : 'off',
	};
	instances.push(...await Promise.all([spawnInstance(env), spawnInstance(env)]));
	const [a, b] = instances as [Instance, Instance];
	if (busOn) {
		await until(async () => (await stats(a.url)).bus!.live && (await stats(b.url)).bus!.live, 10_000, 'the buses subscribed');
	}

	// The expired tokens must be expired before the run starts.
	await until(async () => entries.every(entry => entry.kind !== 'expired' || Date.now() >= entry.expiresAt), 5000, 'expired tokens expired');

	// --- The run.
	type Tally = Record<string, number>;
	const answers = new Map<Kind, Tally>();
	const violations = new Map<string, number>();
	const examples: string[] = [];
	const violation = (what: string, entry: Entry, detail: string) => {
		violations.set(what, (violations.get(what) ?? 0) + 1);
		if (examples.length < 10) {
			examples.push(`${what}: ${entry.kind} token of ${entry.user || '(nobody)'}: ${detail}`);
		}
	};

	let served = 0;
	const servedRevoked: Array<{entry: Entry; sentAt: number; sentWall: number}> = [];
	const check = (entry: Entry, status: number, body: string, sentAt: number, sentWall: number) => {
		const receivedAt = performance.now();
		const receivedWall = performance.timeOrigin + receivedAt;
		const tally = answers.get(entry.kind) ?? {};
		tally[status] = (tally[status] ?? 0) + 1;
		answers.set(entry.kind, tally);
		if (status !== 200 && status !== 401) {
			violation(`unexpected status ${status}`, entry, body);
			return;
		}

		if (status === 200) {
			served++;
			let user: unknown;
			try {
				user = (JSON.parse(body) as {user?: unknown}).user;
			} catch {}

			if (user !== entry.user) {
				violation('a 200 for another user', entry, body);
			}
		}

		switch (entry.kind) {
			case 'valid': {
				if (status !== 200) {
					violation('a valid token refused', entry, body);
				}

				break;
			}

			case 'unknown':
			case 'revoked-before':
			case 'expired': {
				if (status !== 401) {
					violation(`a ${entry.kind} token served`, entry, body);
				}

				break;
			}

			case 'expiring': {
				if (status === 200 && sentWall >= entry.expiresAt) {
					violation('a token served after its expiry', entry, `sent ${sentWall - entry.expiresAt} ms after it`);
				}

				if (status === 401 && receivedWall < entry.expiresAt) {
					violation('a token refused before its expiry', entry, `answered ${entry.expiresAt - receivedWall} ms before it`);
				}

				break;
			}

			case 'revoked-during': {
				// Judged after the run, against when A applied the invalidation.
				if (status === 200) {
					servedRevoked.push({entry, sentAt, sentWall});
				}

				if (status === 401 && receivedAt < entry.revokeSent) {
					violation('a token refused before its revocation', entry, body);
				}

				break;
			}
		}
	};

	// B revokes the revoked-during tokens, spread over the first 80 % of the run.
	const toRevoke = entries.filter(entry => entry.kind === 'revoked-during');
	const revocationLatencies: number[] = [];
	let revocationFailures = 0;
	const revoker = (async () => {
		const started = performance.now();
		const spacing = (seconds * 800) / toRevoke.length;
		for (const [index, entry] of toRevoke.entries()) {
			const due = started + (index * spacing);
			const wait = due - performance.now();
			if (wait > 0) {
				await new Promise(resolve => {
					setTimeout(resolve, wait);
				});
			}

			entry.revokeSent = performance.now();
			const answer = entry.byUser
				? await call(b.url, '/revoke-all', {method: 'POST', body: {user: entry.user}})
				: await call(b.url, '/revoke', {method: 'POST', body: {token: entry.token}});
			entry.revokeDone = performance.now();
			revocationLatencies.push(entry.revokeDone - entry.revokeSent);
			if (answer.status !== 200 || (answer.body as {revoked?: unknown}).revoked !== true) {
				revocationFailures++;
			}
		}
	})();

	log(`load: ${connections} connections to A for ${seconds} s; B revokes ${toRevoke.length} tokens meanwhile (${busOn ? 'bus on' : 'BUS OFF: the control'})`);
	const before: [Stats, Stats] = [await stats(a.url), await stats(b.url)];
	const result = await autocannon({
		url: `${a.url}/me`,
		connections,
		duration: seconds,
		timeout: 10,
		requests: [{
			setupRequest(request, context) {
				const entry = entries[Math.floor(Math.random() * entries.length)]!;
				const sentAt = performance.now();
				Object.assign(context, {entry, sentAt, sentWall: performance.timeOrigin + sentAt});
				request.headers = {...request.headers, authorization: `Bearer ${entry.token}`};
				return request;
			},
			onResponse(status, body, context) {
				const {entry, sentAt, sentWall} = context as {entry: Entry; sentAt: number; sentWall: number};
				check(entry, status, body, sentAt, sentWall);
			},
		}],
	});
	await revoker;
	const after: [Stats, Stats] = [await stats(a.url), await stats(b.url)];

	// The revoked tokens A served: after A applied the invalidation (a violation), or in the window
	// between B's answer and A's receipt of the message (Redis writes the publisher's reply and the
	// subscribers' messages in one turn of its event loop, not atomically; reported, not a violation).
	const appliedAt = busOn ? (await call(a.url, '/invalidations')).body as Record<string, number> : {};
	let servedAfterApplied = 0;
	const inWindow: number[] = [];
	for (const {entry, sentAt, sentWall} of servedRevoked) {
		const applied = appliedAt[entry.user];
		if (applied !== undefined && sentWall > applied) {
			servedAfterApplied++;
			violation('a revoked token served after A applied the invalidation', entry, `sent ${(sentWall - applied).toFixed(2)} ms after`);
		} else if (sentAt > entry.revokeDone) {
			inWindow.push(applied === undefined ? Number.POSITIVE_INFINITY : applied - (performance.timeOrigin + entry.revokeDone));
			if (!busOn) {
				violation('a revoked token served after B answered the revocation', entry, `sent ${(sentAt - entry.revokeDone).toFixed(1)} ms after`);
			}
		}
	}

	const missing = busOn ? toRevoke.filter(entry => appliedAt[entry.user] === undefined).length : 0;
	if (missing > 0) {
		violations.set('invalidations A never applied', missing);
	}

	// --- The counts.
	const total = [...answers.values()].reduce((sum, tally) => sum + Object.values(tally).reduce((one, count) => one + count, 0), 0);
	console.log(`\nLoad test: ${storeKind} store, ${busOn ? 'RedisInvalidationBus on' : 'NO BUS (control)'}, cache TTL ${ttl} s on both instances; ${users.toLocaleString('en-US')} users and tokens + ${unknownCount.toLocaleString('en-US')} unknown tokens; ${connections} connections for ${seconds} s to A; ${toRevoke.length} revocations on B during the run\n`);
	console.log(`requests answered: ${total.toLocaleString('en-US')} (${Math.round(total / seconds).toLocaleString('en-US')}/s); autocannon: ${result.errors} errors, ${result.timeouts} timeouts\n`);
	console.log('| token | requests | 200 | 401 | other |');
	console.log('|---|---|---|---|---|');
	for (const [kind] of [...plan, ['unknown', unknownCount] as const]) {
		const tally = answers.get(kind) ?? {};
		const other = Object.entries(tally).filter(([status]) => status !== '200' && status !== '401').reduce((sum, [, count]) => sum + count, 0);
		const sum = Object.values(tally).reduce((one, count) => one + count, 0);
		console.log(`| ${kind} | ${sum.toLocaleString('en-US')} | ${(tally['200'] ?? 0).toLocaleString('en-US')} | ${(tally['401'] ?? 0).toLocaleString('en-US')} | ${other} |`);
	}

	const sortedLatencies = [...revocationLatencies].sort((x, y) => x - y);
	console.log(`\nrevocations on B: ${revocationLatencies.length} (${toRevoke.filter(entry => entry.byUser).length} by revokeAll), ${revocationFailures} failed; latency median ${sortedLatencies[Math.floor(sortedLatencies.length / 2)]?.toFixed(1)} ms, max ${sortedLatencies.at(-1)?.toFixed(1)} ms`);
	const delta = (index: 0 | 1, pick: (one: Stats) => number) => pick(after[index]) - pick(before[index]);
	console.log(`A during the run: ${delta(0, one => one.counts.find).toLocaleString('en-US')} store lookups for ${total.toLocaleString('en-US')} requests; cache hits ${delta(0, one => one.cache!.hits).toLocaleString('en-US')}, loads ${delta(0, one => one.cache!.loads).toLocaleString('en-US')}, coalesced ${delta(0, one => one.cache!.coalesced).toLocaleString('en-US')}, invalidations heard from B ${delta(0, one => one.cache!.remoteInvalidations).toLocaleString('en-US')}; errors emitted ${delta(0, one => one.counts.appErrors)}`);
	const lagMax = Math.max(0, ...inWindow.filter(lag => Number.isFinite(lag)));
	console.log(`served (200): ${served.toLocaleString('en-US')}; revoked tokens served after A applied their invalidation: ${servedAfterApplied}; after B answered the revocation but before A applied it: ${inWindow.length}${inWindow.length > 0 && busOn ? ` (A applied those invalidations up to ${lagMax.toFixed(1)} ms after B had answered)` : ''}`);
	if (busOn) {
		const lags = toRevoke.filter(entry => appliedAt[entry.user] !== undefined).map(entry => appliedAt[entry.user]! - (performance.timeOrigin + entry.revokeDone)).sort((x, y) => x - y);
		console.log(`when A applied each invalidation, relative to B's answer as the load process saw it: median ${lags[Math.floor(lags.length / 2)]?.toFixed(2)} ms, ${lags.filter(lag => lag > 0).length} of ${lags.length} after it, max ${lags.at(-1)?.toFixed(2)} ms`);
	}
	const crashed = instances.filter(instance => instance.child.exitCode !== null || instance.stderr.length > 0);
	if (crashed.length > 0) {
		violations.set('an instance crashed or wrote to stderr', crashed.length);
		examples.push(...crashed.flatMap(instance => instance.stderr.slice(0, 5)));
	}

	if (revocationFailures > 0) {
		violations.set('revocations that failed', revocationFailures);
	}

	if (result.errors > 0 || result.timeouts > 0) {
		violations.set('connection errors or timeouts', result.errors + result.timeouts);
	}

	console.log(`\nviolations: ${violations.size === 0 ? 'none' : ''}`);
	for (const [what, count] of violations) {
		console.log(`  ${count} × ${what}`);
	}

	for (const example of examples) {
		console.log(`  e.g. ${example}`);
	}

	exitCode = violations.size === 0 ? 0 : 1;
	console.log(exitCode === 0 ? '\nPASS' : '\nFAIL');
} finally {
	for (const instance of instances) {
		instance.stop();
	}

	seedClient.disconnect();
	redisServer.kill('SIGKILL');
	rmSync(directory, {recursive: true, force: true});
}

process.exitCode = exitCode;
