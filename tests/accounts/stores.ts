// The stores the account routes are tested on: one list, the same StoreFactory type as the store
// contract (tests/stores/contract.ts), so that PostgreSQL and Redis join by adding an entry here.
import {mkdtemp, rm} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import {MemoryTokenStore, MemoryUserStore} from '../../source/stores/memory.js';
import {SqliteTokenStore, SqliteUserStore} from '../../source/stores/sqlite.js';
import type {StoreFactory} from '../stores/contract.js';

export const memoryFactory: StoreFactory = {
	name: 'memory',
	async create() {
		return {tokens: new MemoryTokenStore(), users: new MemoryUserStore(), async close() {}};
	},
};

/** A fresh SQLite file in a directory of its own, removed when closed. */
export const sqliteFactory: StoreFactory = {
	name: 'sqlite',
	async create() {
		const directory = await mkdtemp(path.join(os.tmpdir(), 'ksa-accounts-'));
		const db = new Database(path.join(directory, 'auth.db'));
		const tokens = new SqliteTokenStore(db);
		const users = new SqliteUserStore(db);
		await tokens.migrate();
		await users.migrate();
		return {
			tokens,
			users,
			async close() {
				db.close();
				await rm(directory, {recursive: true, force: true});
			},
		};
	},
};

/** Every store the account routes run on. */
export const accountStoreFactories: readonly StoreFactory[] = [memoryFactory, sqliteFactory];
