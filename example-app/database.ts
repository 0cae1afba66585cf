import Database from 'better-sqlite3';

export type UserRow = {
	id: number;
	username: string;
	password_hash: string;
	is_active: number;
	/** Space-separated permission names. */
	permissions: string;
};

export type TokenRow = {
	id: number;
	user_id: number;
	access_expires_at: number;
	refresh_expires_at: number;
};

/** The example's storage: users, and token pairs kept as SHA-256 hashes. */
export type Store = ReturnType<typeof openStore>;

/** Open (and create when new) the SQLite database at `path`; `:memory:` for a throwaway one. */
export function openStore(path: string) {
	const db = new Database(path);
	db.pragma('journal_mode = WAL');
	db.pragma('foreign_keys = ON');
	db.exec(`
		CREATE TABLE IF NOT EXISTS users (
			id INTEGER PRIMARY KEY,
			username TEXT NOT NULL UNIQUE,
			password_hash TEXT NOT NULL,
			is_active INTEGER NOT NULL DEFAULT 1,
			permissions TEXT NOT NULL DEFAULT ''
		);
		CREATE TABLE IF NOT EXISTS tokens (
			id INTEGER PRIMARY KEY,
			user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
			access_hash TEXT NOT NULL UNIQUE,
			refresh_hash TEXT NOT NULL UNIQUE,
			access_expires_at INTEGER NOT NULL,
			refresh_expires_at INTEGER NOT NULL
		);
	`);

	const statements = {
		insertUser: db.prepare<[string, string, string], UserRow>('INSERT INTO users (username, password_hash, permissions) VALUES (?, ?, ?) RETURNING *'),
		allUsers: db.prepare<[], UserRow>('SELECT * FROM users ORDER BY id'),
		userByName: db.prepare<[string], UserRow>('SELECT * FROM users WHERE username = ?'),
		userById: db.prepare<[number], UserRow>('SELECT * FROM users WHERE id = ?'),
		setActive: db.prepare<[number, number]>('UPDATE users SET is_active = ? WHERE id = ?'),
		insertTokens: db.prepare<[number, string, string, number, number], TokenRow>(
			'INSERT INTO tokens (user_id, access_hash, refresh_hash, access_expires_at, refresh_expires_at) VALUES (?, ?, ?, ?, ?) RETURNING id, user_id, access_expires_at, refresh_expires_at',
		),
		byAccessHash: db.prepare<[string], TokenRow>('SELECT id, user_id, access_expires_at, refresh_expires_at FROM tokens WHERE access_hash = ?'),
		byRefreshHash: db.prepare<[string], TokenRow>('SELECT id, user_id, access_expires_at, refresh_expires_at FROM tokens WHERE refresh_hash = ?'),
		deleteTokens: db.prepare<[number]>('DELETE FROM tokens WHERE id = ?'),
		deleteTokensByHash: db.prepare<[{hash: string}]>('DELETE FROM tokens WHERE access_hash = $hash OR refresh_hash = $hash'),
	};

	return {
		createUser: (username: string, passwordHash: string, permissions: readonly string[] = []): UserRow | undefined => {
			try {
				return statements.insertUser.get(username, passwordHash, permissions.join(' '));
			} catch (error) {
				if ((error as {code?: string}).code === 'SQLITE_CONSTRAINT_UNIQUE') {
					return undefined;
				}

				throw error;
			}
		},
		userByName: (username: string) => statements.userByName.get(username),
		userById: (id: number) => statements.userById.get(id),
		allUsers: () => statements.allUsers.all(),
		setActive: (id: number, active: boolean) => statements.setActive.run(active ? 1 : 0, id),
		insertTokens: (userId: number, accessHash: string, refreshHash: string, accessExpiresAt: number, refreshExpiresAt: number) =>
			statements.insertTokens.get(userId, accessHash, refreshHash, accessExpiresAt, refreshExpiresAt),
		tokenByHash: (hash: string, tokenType: string) =>
			(tokenType === 'refresh' ? statements.byRefreshHash : statements.byAccessHash).get(hash),
		/** Swap a token pair for a new one in one transaction, so a refresh cannot be replayed. */
		replaceTokens: db.transaction((oldId: number, userId: number, accessHash: string, refreshHash: string, accessExpiresAt: number, refreshExpiresAt: number) => {
			const deleted = statements.deleteTokens.run(oldId).changes;
			return deleted === 1
				? statements.insertTokens.get(userId, accessHash, refreshHash, accessExpiresAt, refreshExpiresAt)
				: undefined;
		}),
		deleteTokens: (id: number) => statements.deleteTokens.run(id).changes === 1,
		/** Delete the pair either of whose tokens has this hash; answers whether there was one. */
		revokeTokens: (hash: string) => statements.deleteTokensByHash.run({hash}).changes === 1,
		close: () => {
			db.close();
		},
	};
}
