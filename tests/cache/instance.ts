// One instance of a service with the verification cache: run as a child process by the cache tests
// (tests/cache/*.test.ts) and by the load and fault scripts (bench/cache-load.ts, bench/cache-faults.ts).
// Several of them over one store and one Redis are one service.
//
// Environment:
//   STORE         redis (default) | sqlite | memory
//   REDIS_URL     the Redis of the store and of the invalidation bus
//   KSA_PREFIX    the Redis store's key prefix (default ksa-cache:)
//   SQLITE_PATH   the SQLite file (STORE=sqlite)
//   CACHE         on (default) | off
//   CACHE_TTL     seconds (default 300: long, so that only an invalidation can explain a refusal)
//   NEGATIVE_TTL  seconds (default 1)
//   BUS           on (default with a REDIS_URL) | off
//   CHANNEL       the bus channel (default ksa-cache-test)
//
// Routes: POST /login {user} (a pair), GET /me (the token's user), POST /revoke {token},
// POST /revoke-all {user}, POST /refresh {refresh_token}, GET /stats (the cache's counters, the
// store calls, the bus, the errors emitted on the app, and the heap, after a collection when the
// process runs with --expose-gc), GET /invalidations (with RECORD_INVALIDATIONS=1: when each
// user's invalidation from another instance was applied here).
// Prints {"url": ...} on stdout once it listens. Errors emitted on the app are counted, never
// printed (a fault test makes 10^5 of them); anything else on stderr is a crash.
import {once} from 'node:events';
import type {AddressInfo} from 'node:net';
import Koa from 'koa';
import Router from '@koa/router';
import {bodyParser} from '@koa/bodyparser';
import Database from 'better-sqlite3';
import {Redis} from 'ioredis';
import {StatelessAuthManager, TokenService, authErrorHandler, isStatelessAuthError, type TokenPair, type TokenRecord, type TokenStore} from '../../source/index.js';
import {RedisInvalidationBus, VerificationCache} from '../../source/cache/index.js';
import {MemoryTokenStore} from '../../source/stores/memory.js';
import {RedisTokenStore} from '../../source/stores/redis.js';
import {SqliteTokenStore} from '../../source/stores/sqlite.js';

const environment = process.env;
const storeKind = environment['STORE'] ?? 'redis';
const redisUrl = environment['REDIS_URL'];
const cacheOn = (environment['CACHE'] ?? 'on') === 'on';
const busOn = (environment['BUS'] ?? 'on') === 'on' && redisUrl !== undefined;

const counts = {find: 0, touch: 0, appErrors: 0, busErrors: 0, redisErrors: 0};
const statuses: Record<string, number> = {};

/** The store, counting lookups and last-use writes. */
function counted(store: TokenStore): TokenStore {
	return {
		create: store.create.bind(store),
		async find(digest) {
			counts.find++;
			return store.find(digest);
		},
		async touch(id, at) {
			counts.touch++;
			return store.touch(id, at);
		},
		rotate: store.rotate.bind(store),
		revokeFamily: store.revokeFamily.bind(store),
		revokeUser: store.revokeUser.bind(store),
		epoch: store.epoch.bind(store),
		list: store.list.bind(store),
		prune: store.prune.bind(store),
	};
}

// What the store's TSDoc recommends: fail at once while Redis is away, come back soon after.
const redis = redisUrl === undefined ? undefined : new Redis(redisUrl, {
	enableOfflineQueue: false,
	maxRetriesPerRequest: 0,
	commandTimeout: 1000,
	retryStrategy: times => Math.min(times * 50, 500),
});
redis?.on('error', () => {
	counts.redisErrors++;
});
if (redis !== undefined) {
	await once(redis, 'ready');
}

let store: TokenStore;
switch (storeKind) {
	case 'redis': {
		if (redis === undefined) {
			throw new Error('STORE=redis needs REDIS_URL');
		}

		store = new RedisTokenStore(redis, {prefix: environment['KSA_PREFIX'] ?? 'ksa-cache:'});
		break;
	}

	case 'sqlite': {
		const db = new Database(environment['SQLITE_PATH'] ?? ':memory:');
		db.pragma('journal_mode = WAL');
		db.pragma('busy_timeout = 5000');
		const sqlite = new SqliteTokenStore(db);
		await sqlite.migrate();
		store = sqlite;
		break;
	}

	case 'memory': {
		store = new MemoryTokenStore();
		break;
	}

	default: {
		throw new Error(`Unknown STORE ${storeKind}`);
	}
}

const bus = busOn && redis !== undefined
	? new RedisInvalidationBus(redis, {
		channel: environment['CHANNEL'] ?? 'ksa-cache-test',
		onError() {
			counts.busErrors++;
		},
	})
	: undefined;
const cache = cacheOn
	? new VerificationCache({
		ttl: Number(environment['CACHE_TTL'] ?? 300),
		negativeTtl: Number(environment['NEGATIVE_TTL'] ?? 1),
		...(bus === undefined ? {} : {bus}),
	})
	: undefined;
// RECORD_INVALIDATIONS=1: when each invalidation from another instance was applied here (a listener
// after the cache's own), in milliseconds on the wall clock the load test also reads, by user id.
const applied = new Map<string, number>();
if (bus !== undefined && environment['RECORD_INVALIDATIONS'] === '1') {
	bus.listen({
		message(message) {
			if (message.kind === 'user') {
				applied.set(message.userId, performance.timeOrigin + performance.now());
			}
		},
		reset() {
			// Nothing to record.
		},
	});
}

const service = new TokenService({store: counted(store), prefix: 'app', ...(cache === undefined ? {} : {cache})});
const auth = new StatelessAuthManager<{id: string}, TokenRecord>({realm: 'app'}).useTokens(service);
auth.userLoader(record => ({id: record.userId}));

const app = new Koa();
app.on('error', (error: unknown) => {
	counts.appErrors++;
	const status = String(isStatelessAuthError(error) ? error.status : 'other');
	statuses[status] = (statuses[status] ?? 0) + 1;
});
app.use(authErrorHandler());
app.use(bodyParser({enableTypes: ['json']}));

const pairBody = (pair: TokenPair) => ({access_token: pair.access.token, refresh_token: pair.refresh.token, token_type: 'Bearer'});
const text = (value: unknown) => (typeof value === 'string' ? value : '');

const router = new Router<object>();
router.post('/login', async ctx => {
	const {user} = ctx.request.body as {user?: unknown};
	ctx.body = pairBody(await service.issuePair(text(user)));
});
router.get('/me', auth.tokenRequired(), ctx => {
	ctx.body = {user: ctx.state.currentUser.id};
});
router.post('/revoke', async ctx => {
	const {token} = ctx.request.body as {token?: unknown};
	ctx.body = {revoked: await service.revoke(text(token))};
});
router.post('/revoke-all', async ctx => {
	const {user} = ctx.request.body as {user?: unknown};
	await service.revokeAll(text(user));
	ctx.body = {revoked: true};
});
router.post('/refresh', async ctx => {
	const {refresh_token: token} = ctx.request.body as {refresh_token?: unknown};
	try {
		ctx.body = pairBody(await service.refresh(text(token)));
	} catch (error) {
		if (isStatelessAuthError(error) && error.status === 400) {
			ctx.status = 400;
			ctx.body = {error: 'invalid_grant'};
			return;
		}

		throw error;
	}
});
router.get('/stats', ctx => {
	const collect = (globalThis as {gc?: () => void}).gc;
	collect?.();
	ctx.body = {
		pid: process.pid,
		cache: cache?.stats ?? null,
		cacheSize: cache?.size ?? null,
		bus: bus === undefined ? null : {live: bus.live},
		counts,
		statuses,
		heapUsed: process.memoryUsage().heapUsed,
		collected: collect !== undefined,
	};
});
router.get('/invalidations', ctx => {
	ctx.body = Object.fromEntries(applied);
});
app.use(router.routes());

const server = app.listen(0, '127.0.0.1');
await once(server, 'listening');
const {port} = server.address() as AddressInfo;
process.stdout.write(`${JSON.stringify({url: `http://127.0.0.1:${port}`})}\n`);

process.once('SIGTERM', () => {
	server.closeAllConnections();
	server.close();
	void bus?.close();
	redis?.disconnect();
});
