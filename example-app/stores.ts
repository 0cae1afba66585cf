import {fileURLToPath} from 'node:url';
import Database from 'better-sqlite3';
import type {Redis} from 'ioredis';
import type {TokenStore, UserStore} from 'koa-stateless-auth';
import {SqliteTokenStore, SqliteUserStore} from 'koa-stateless-auth/stores/sqlite';

/** Where the example app keeps its accounts and tokens: the library's stores, ready to use. */
export type Stores = {
	readonly tokens: TokenStore;
	readonly users: UserStore;
	/**
	The Redis client, when the stores are in Redis: the app keeps its brute-force counters there
	too, so that every instance counts together. Closed by `close`.
	*/
	readonly redis?: Redis;
	/** What to print at start-up: where the data is. Never a password or a secret. */
	readonly description: string;
	/** Close the connection(s) the stores were opened on. Harmless to call twice. */
	readonly close: () => Promise<void>;
};

/** The environment variables `openStores` reads; `process.env` is one. */
export type StoreEnvironment = Readonly<Partial<Record<'DATABASE_PATH' | 'DATABASE_URL' | 'REDIS_URL', string>>>;

/** The default SQLite file, beside this file: `example-app/example.sqlite`. */
export const defaultDatabasePath = fileURLToPath(new URL('example.sqlite', import.meta.url));

/**
Open the app's stores as the environment says, with their tables made (`migrate()`, idempotent):

- `DATABASE_URL` set: PostgreSQL, through a `pg` pool (tables `auth_tokens`, `auth_epochs`,
  `auth_users` in the database's search path), for many app instances on one database;
- else `REDIS_URL` set: Redis, through an ioredis client that fails fast while Redis is down (the
  app answers 503 then), keys under `example:`; the client is answered as `redis`, for the app's
  brute-force counters;
- else one SQLite file, `DATABASE_PATH` (created when missing; `:memory:` for a throwaway database),
  with the token store and the user store on the same better-sqlite3 connection.

Each branch answers the same `Stores`: nothing else in the app knows which one it runs on. The
drivers of PostgreSQL and Redis are loaded only when asked for.
*/
export async function openStores(env: StoreEnvironment): Promise<Stores> {
	if (env.DATABASE_URL !== undefined && env.DATABASE_URL !== '') {
		return openPostgres(env.DATABASE_URL);
	}

	if (env.REDIS_URL !== undefined && env.REDIS_URL !== '') {
		return openRedis(env.REDIS_URL);
	}

	return openSqlite(env.DATABASE_PATH ?? defaultDatabasePath);
}

function redacted(url: string): string {
	return url.replace(/\/\/[^@/]*@/, '//***@');
}

async function openPostgres(url: string): Promise<Stores> {
	const {default: pg} = await import('pg');
	const {PostgresTokenStore, PostgresUserStore} = await import('koa-stateless-auth/stores/postgres');
	const pool = new pg.Pool({connectionString: url, connectionTimeoutMillis: 2000, query_timeout: 5000});
	// An idle client whose connection dies emits 'error' on the pool; unheard, it would end the process.
	pool.on('error', () => undefined);
	try {
		const tokens = new PostgresTokenStore(pool);
		const users = new PostgresUserStore(pool);
		await tokens.migrate();
		await users.migrate();
		let closed = false;
		return {
			tokens,
			users,
			description: `PostgreSQL ${redacted(url)}`,
			async close() {
				if (!closed) {
					closed = true;
					await pool.end();
				}
			},
		};
	} catch (error) {
		await pool.end();
		throw error;
	}
}

async function openRedis(url: string): Promise<Stores> {
	const {Redis} = await import('ioredis');
	const {RedisTokenStore, RedisUserStore} = await import('koa-stateless-auth/stores/redis');
	// Fail fast while Redis is down (503), rather than queue requests until it is back.
	const client = new Redis(url, {enableOfflineQueue: false, maxRetriesPerRequest: 0, commandTimeout: 1000, lazyConnect: true});
	client.on('error', () => undefined);
	try {
		await client.connect();
		const options = {prefix: 'example:'};
		return {
			tokens: new RedisTokenStore(client, options),
			users: new RedisUserStore(client, options),
			redis: client,
			description: `Redis ${redacted(url)}`,
			async close() {
				if (client.status !== 'end') {
					await client.quit();
				}
			},
		};
	} catch (error) {
		client.disconnect();
		throw error;
	}
}

async function openSqlite(databasePath: string): Promise<Stores> {
	const db = new Database(databasePath);
	try {
		// WAL lets readers and a writer work at once; the busy timeout waits for another process's
		// write (a second `npm start` on the same file) instead of failing at once.
		db.pragma('journal_mode = WAL');
		db.pragma('busy_timeout = 5000');
		const tokens = new SqliteTokenStore(db);
		const users = new SqliteUserStore(db);
		await tokens.migrate();
		await users.migrate();
		return {
			tokens,
			users,
			description: `SQLite ${databasePath}`,
			close: () => {
				db.close();
				return Promise.resolve();
			},
		};
	} catch (error) {
		db.close();
		throw error;
	}
}
