import {fileURLToPath} from 'node:url';
import Database from 'better-sqlite3';
import type {TokenStore, UserStore} from 'koa-stateless-auth';
import {SqliteTokenStore, SqliteUserStore} from 'koa-stateless-auth/stores/sqlite';

/** Where the example app keeps its accounts and tokens: the library's stores, ready to use. */
export type Stores = {
	readonly tokens: TokenStore;
	readonly users: UserStore;
	/** What to print at start-up: where the data is. Never a password or a secret. */
	readonly description: string;
	/** Close the connection(s) the stores were opened on. Harmless to call twice. */
	readonly close: () => Promise<void>;
};

/** The environment variables `openStores` reads; `process.env` is one. */
export type StoreEnvironment = Readonly<Partial<Record<'DATABASE_PATH', string>>>;

/** The default SQLite file, beside this file: `example-app/example.sqlite`. */
export const defaultDatabasePath = fileURLToPath(new URL('example.sqlite', import.meta.url));

/**
Open the app's stores as the environment says, with their tables made (`migrate()`, idempotent).

Today: one SQLite file, `DATABASE_PATH` (created when missing; `:memory:` for a throwaway
database), with the token store and the user store on the same better-sqlite3 connection. The next
stores (PostgreSQL when `DATABASE_URL` is set, Redis when `REDIS_URL` is) go here, each as one more
branch answering the same `Stores`: nothing else in the app knows which one it runs on.
*/
export async function openStores(env: StoreEnvironment): Promise<Stores> {
	const databasePath = env.DATABASE_PATH ?? defaultDatabasePath;
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
