// The verification cache's rows of `npm run bench` (BENCH_ONLY=cache alone): `auth.useTokens()`
// over each store, with and without `VerificationCache`, against the in-memory route (the same
// route over MemoryTokenStore, no cache). Like every other variant, each runs in a fresh server
// process of its own (bench/server.ts), which makes its store, seeds the 1000 tokens and listens;
// the store is wrapped to count its lookups and last-use writes, which the parent reads over IPC
// (the hot-token burst). PostgreSQL and Redis rows run when their servers answer at DATABASE_URL and
// REDIS_URL; each server process uses a schema or key prefix of its own and drops it on exit.
import {createHash, randomUUID} from 'node:crypto';
import {mkdtempSync, rmSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {crc32} from 'node:zlib';
import Koa from 'koa';
import {StatelessAuthManager, TokenService, digestToken, isWellFormedToken, type TokenRecord, type TokenStore} from 'koa-stateless-auth';
import type {VerificationCache} from 'koa-stateless-auth/cache';

import {databaseUrl, reachable, redisUrl} from '../tests/helpers/reachable.js';

export {databaseUrl, redisUrl};

// --- 1000 tokens of the service's format, the same in every process: derived, not random.

const alphabet = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const base62 = (value: bigint, length: number) => {
	let text = '';
	let rest = value;
	for (let index = 0; index < length; index++) {
		text = alphabet.charAt(Number(rest % 62n)) + text;
		rest /= 62n;
	}

	return text;
};

/** The bench's access token number `index`: prefix `bench_at`, 43 derived characters, the CRC32 checksum. */
function benchToken(index: number): string {
	const random = base62(BigInt(`0x${createHash('sha512').update(`bench-cache-${index}`).digest('hex')}`), 43);
	const body = `bench_at_${random}`;
	return body + base62(BigInt(crc32(body)), 6);
}

export const storeTokens: readonly string[] = Array.from({length: 1000}, (_, index) => benchToken(index));
// The format is the library's: should it change, the bench says so here rather than measure refusals.
if (!storeTokens.every(token => isWellFormedToken(token, ['bench_at']))) {
	throw new Error('The bench\'s derived tokens no longer match the library\'s token format (source/tokens/format.ts).');
}
/** The hot tokens of the burst: 10 of the 1000. */
export const hotTokens: readonly string[] = storeTokens.slice(0, 10);

type User = {id: string; name: string};
const users = new Map(storeTokens.map((_, index) => [`user-${index}`, {id: `user-${index}`, name: `user-${index}`}]));

function recordOf(token: string, index: number, now: number): TokenRecord {
	return {
		id: randomUUID(),
		digest: digestToken(token),
		type: 'access',
		userId: `user-${index}`,
		familyId: randomUUID(),
		scopes: [],
		name: null,
		hint: `${token.slice(0, 13)}…`,
		createdAt: now,
		expiresAt: now + 86_400_000,
		lastUsedAt: null,
		epoch: 0,
		retiredAt: null,
		graceUntil: null,
		graceCiphertext: null,
	};
}

async function seed(store: TokenStore): Promise<void> {
	const now = Date.now();
	let next = 0;
	await Promise.all(Array.from({length: 20}, async () => {
		while (next < storeTokens.length) {
			const index = next++;
			await store.create([recordOf(storeTokens[index]!, index, now)]);
		}
	}));
}

// --- What the server process counts, for the parent (bench/server.ts answers 'store-calls').

export const storeCalls = {find: 0, touch: 0};
let activeCache: VerificationCache | undefined;
export const cacheStats = () => activeCache?.stats;

function counted(store: TokenStore): TokenStore {
	return {
		create: store.create.bind(store),
		async find(digest) {
			storeCalls.find++;
			return store.find(digest);
		},
		async touch(id, at) {
			storeCalls.touch++;
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

// --- The stores, made in the server process. Drivers are imported there only, when needed.

type Made = {readonly store: TokenStore; readonly close: () => Promise<void>};
type StoreKind = 'memory' | 'sqlite' | 'postgres' | 'redis';

const makers: Record<StoreKind, () => Promise<Made>> = {
	async memory() {
		const {MemoryTokenStore} = await import('koa-stateless-auth/stores/memory');
		return {store: new MemoryTokenStore(), close: async () => undefined};
	},
	async sqlite() {
		const {default: Database} = await import('better-sqlite3');
		const {SqliteTokenStore} = await import('koa-stateless-auth/stores/sqlite');
		const directory = mkdtempSync(join(tmpdir(), 'ksa-bench-'));
		const db = new Database(join(directory, 'tokens.sqlite'));
		db.pragma('journal_mode = WAL');
		const store = new SqliteTokenStore(db);
		await store.migrate();
		return {
			store,
			async close() {
				db.close();
				rmSync(directory, {recursive: true, force: true});
			},
		};
	},
	async postgres() {
		const {default: pg} = await import('pg');
		const {PostgresTokenStore} = await import('koa-stateless-auth/stores/postgres');
		const pool = new pg.Pool({connectionString: databaseUrl, max: 10});
		pool.on('error', () => undefined);
		const schema = `ksa_bench_${process.pid}`;
		const store = new PostgresTokenStore(pool, {schema});
		await store.migrate();
		return {
			store,
			async close() {
				await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
				await pool.end();
			},
		};
	},
	async redis() {
		const {Redis} = await import('ioredis');
		const {RedisTokenStore} = await import('koa-stateless-auth/stores/redis');
		const client = new Redis(redisUrl, {enableOfflineQueue: false, maxRetriesPerRequest: 0, commandTimeout: 2000});
		client.on('error', () => undefined);
		await new Promise(resolve => client.once('ready', resolve));
		const prefix = `ksa-bench:${process.pid}:`;
		return {
			store: new RedisTokenStore(client, {prefix}),
			async close() {
				let cursor = '0';
				do {
					const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
					cursor = next;
					if (keys.length > 0) {
						await client.unlink(...keys);
					}
				} while (cursor !== '0');

				await client.quit();
			},
		};
	},
};

let closeStore: (() => Promise<void>) | undefined;

/** The route: `auth.useTokens()` over the store, with the cache or without, and the bench's response. */
async function storeApp(kind: StoreKind, cached: boolean): Promise<Koa> {
	const made = await makers[kind]();
	closeStore = made.close;
	await seed(made.store);
	let cache: VerificationCache | undefined;
	if (cached) {
		const {VerificationCache: Cache} = await import('koa-stateless-auth/cache');
		cache = new Cache();
		activeCache = cache;
	}

	const tokens = new TokenService({store: counted(made.store), prefix: 'bench', ...(cache === undefined ? {} : {cache})});
	const auth = new StatelessAuthManager<User, TokenRecord>({realm: 'bench'}).useTokens(tokens);
	auth.userLoader(record => users.get(record.userId));
	const app = new Koa();
	// A server being stopped drops its store while requests may still be in flight: their 503s are
	// not the measurement's (a window with any non-2xx answer fails the run).
	app.silent = true;
	app.use(auth.tokenRequired() as Koa.Middleware);
	app.use(ctx => {
		ctx.body = {hello: (ctx.state as {currentUser: User}).currentUser.name};
	});
	return app;
}

/** The quick start's in-memory loaders (a Map by digest), no TokenService: for reference. */
function mapApp(): Koa {
	const records = new Map(storeTokens.map((token, index) => [digestToken(token), recordOf(token, index, Date.now())]));
	const auth = new StatelessAuthManager<User, TokenRecord>({realm: 'bench'});
	auth.tokenLoader(async token => records.get(digestToken(token)));
	auth.userLoader(async record => users.get(record.userId));
	const app = new Koa();
	app.use(auth.tokenRequired() as Koa.Middleware);
	app.use(ctx => {
		ctx.body = {hello: (ctx.state as {currentUser: User}).currentUser.name};
	});
	return app;
}

/** Whether a store's rows can run here: its server answers, and its module is built. */
const availability: Record<StoreKind, () => Promise<boolean>> = {
	memory: async () => true,
	sqlite: async () => true,
	async postgres() {
		try {
			await import('koa-stateless-auth/stores/postgres');
		} catch {
			return false;
		}

		return reachable(databaseUrl, 5432);
	},
	async redis() {
		try {
			await import('koa-stateless-auth/stores/redis');
		} catch {
			return false;
		}

		return reachable(redisUrl, 6379);
	},
};

export type StoreVariantId =
	| 'store-memory' | 'store-memory-cached'
	| 'store-sqlite' | 'store-sqlite-cached'
	| 'store-postgres' | 'store-postgres-cached'
	| 'store-redis' | 'store-redis-cached'
	| 'store-map';

export type StoreVariant = {
	readonly name: string;
	/** The in-memory route, whose windows this one's are paired with; none for it. */
	readonly baseline: StoreVariantId | undefined;
	readonly store: StoreKind | undefined;
	readonly cached: boolean;
	readonly requests: () => ReadonlyArray<{readonly headers: Readonly<Record<string, string>>}>;
	readonly createApp: () => Koa | Promise<Koa>;
	readonly close: () => Promise<void>;
	readonly available: () => Promise<boolean>;
	/** Every store row is primed: one request per token before the warm-up. */
	readonly prime: true;
};

const requests = () => storeTokens.map(token => ({headers: {authorization: `Bearer ${token}`}}));
const close = async () => {
	await closeStore?.();
};

function storeVariant(kind: StoreKind, cached: boolean, name: string): StoreVariant {
	return {
		name,
		baseline: kind === 'memory' && !cached ? undefined : 'store-memory',
		store: kind,
		cached,
		requests,
		createApp: async () => storeApp(kind, cached),
		close,
		available: availability[kind],
		prime: true,
	};
}

export const storeVariants: Readonly<Record<StoreVariantId, StoreVariant>> = {
	'store-memory': storeVariant('memory', false, 'MemoryTokenStore (the in-memory route)'),
	'store-memory-cached': storeVariant('memory', true, 'MemoryTokenStore + cache'),
	'store-sqlite': storeVariant('sqlite', false, 'SqliteTokenStore'),
	'store-sqlite-cached': storeVariant('sqlite', true, 'SqliteTokenStore + cache'),
	'store-postgres': storeVariant('postgres', false, 'PostgresTokenStore'),
	'store-postgres-cached': storeVariant('postgres', true, 'PostgresTokenStore + cache'),
	'store-redis': storeVariant('redis', false, 'RedisTokenStore'),
	'store-redis-cached': storeVariant('redis', true, 'RedisTokenStore + cache'),
	'store-map': {
		name: 'in-memory loaders by digest, no TokenService (reference)',
		baseline: 'store-memory',
		store: undefined,
		cached: false,
		requests,
		createApp: mapApp,
		close,
		available: async () => true,
		prime: true,
	},
};
