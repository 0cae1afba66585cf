import {mkdtemp, rm} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import {SqliteTokenStore, SqliteUserStore} from '../../source/stores/sqlite.js';
import {storeContract} from './contract.js';

// A fresh file per test, in a directory of its own: the -journal (or -wal) file goes with it.
storeContract({
	name: 'sqlite',
	async create() {
		const directory = await mkdtemp(path.join(os.tmpdir(), 'ksa-sqlite-'));
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
});
