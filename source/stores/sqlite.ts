/* eslint-disable @typescript-eslint/require-await -- the interfaces answer promises; better-sqlite3 answers at once, and an async method turns a driver's throw into a rejection. */
// Type-only: the driver is an optional peer dependency, and the application hands us its connection.
import type Database from 'better-sqlite3';
import type {
	FoundToken, RotateOutcome, SessionLimit, TokenRecord, TokenStore, UserPage, UserRecord, UserStore,
} from './types.js';

/*
Stores in a SQLite file, over a better-sqlite3 connection the application opened (and configures:
WAL, busy timeout). better-sqlite3 answers synchronously, so within one process every method is
atomic anyway; the transactions are for other processes on the same file. Those that read before
they write (rotate, create with a limit, prune) begin IMMEDIATE: the write lock is taken before the
read, so two processes cannot both read a refresh token as current and both rotate it.

Tables are STRICT (SQLite 3.37+, which better-sqlite3 bundles): a time is an INTEGER or the write
fails, so a record read back has the types it was written with. Scopes, permissions and profiles are
JSON text; booleans 0 or 1; times integer milliseconds.
*/

/** Options of {@link SqliteTokenStore} and {@link SqliteUserStore}. */
export type SqliteStoreOptions = {
	/**
	Prepended to the name of every table and index the store makes, so that they sit beside the
	application's own: ASCII letters, digits and `_`, not starting with a digit, at most 32
	characters. The token store makes `<prefix>tokens` and `<prefix>epochs`, the user store
	`<prefix>users`.

	@default 'ksa_'
	*/
	readonly tablePrefix?: string;
};

const identifier = /^(?:[A-Za-z_]\w{0,31})?$/;

function tablePrefixOf(options: SqliteStoreOptions): string {
	const {tablePrefix = 'ksa_'} = options;
	if (typeof tablePrefix !== 'string' || !identifier.test(tablePrefix)) {
		throw new TypeError(`The \`tablePrefix\` option must be ASCII letters, digits and "_", not starting with a digit, at most 32 characters, got ${JSON.stringify(tablePrefix)}.`);
	}

	return tablePrefix;
}

function assertDatabase(db: unknown): void {
	const candidate = db as Partial<Record<'prepare' | 'transaction' | 'exec', unknown>> | null;
	if (typeof candidate !== 'object' || candidate === null
		|| typeof candidate.prepare !== 'function' || typeof candidate.transaction !== 'function' || typeof candidate.exec !== 'function') {
		throw new TypeError('The first argument must be a better-sqlite3 Database.');
	}
}

/** A statement whose integers come back as numbers, whatever the connection's `defaultSafeIntegers`. */
function prepare<Result = unknown>(db: Database.Database, source: string): Database.Statement<unknown[], Result> {
	return db.prepare<unknown[], Result>(source).safeIntegers(false);
}

type TokenRow = {
	id: string;
	digest: string;
	type: string;
	user_id: string;
	family_id: string;
	scopes: string;
	name: string | null;
	hint: string;
	created_at: number;
	expires_at: number;
	last_used_at: number | null;
	epoch: number;
	retired_at: number | null;
	grace_until: number | null;
	grace_ciphertext: string | null;
};

const tokenColumns = 'id, digest, type, user_id, family_id, scopes, name, hint, created_at, expires_at, last_used_at, epoch, retired_at, grace_until, grace_ciphertext';

function tokenParameters(record: TokenRecord): TokenRow {
	return {
		id: record.id,
		digest: record.digest,
		type: record.type,
		user_id: record.userId,
		family_id: record.familyId,
		scopes: JSON.stringify(record.scopes),
		name: record.name,
		hint: record.hint,
		created_at: record.createdAt,
		expires_at: record.expiresAt,
		last_used_at: record.lastUsedAt,
		epoch: record.epoch,
		retired_at: record.retiredAt,
		grace_until: record.graceUntil,
		grace_ciphertext: record.graceCiphertext,
	};
}

// A token row written around the store (a hand-edited scopes column) is answered as it is rather
// than thrown on: the token service checks every record, refuses a corrupt one as an unknown token
// and reports it, where a throw here would make that token a 503 for ever.
function parseLeniently(text: string): unknown {
	try {
		return JSON.parse(text) as unknown;
	} catch {
		return undefined;
	}
}

function toTokenRecord(row: TokenRow): TokenRecord {
	return {
		id: row.id,
		digest: row.digest,
		type: row.type,
		userId: row.user_id,
		familyId: row.family_id,
		// Not checked here: see parseLeniently.
		scopes: parseLeniently(row.scopes) as readonly string[],
		name: row.name,
		hint: row.hint,
		createdAt: row.created_at,
		expiresAt: row.expires_at,
		lastUsedAt: row.last_used_at,
		epoch: row.epoch,
		retiredAt: row.retired_at,
		graceUntil: row.grace_until,
		graceCiphertext: row.grace_ciphertext,
	};
}

function tokenStatements(db: Database.Database, tokens: string, epochs: string) {
	return {
		insert: prepare(db, `INSERT INTO ${tokens} (${tokenColumns}) VALUES (@id, @digest, @type, @user_id, @family_id, @scopes, @name, @hint, @created_at, @expires_at, @last_used_at, @epoch, @retired_at, @grace_until, @grace_ciphertext)`),
		// One round trip: the record and its user's current epoch.
		find: prepare<TokenRow & {current_epoch: number}>(db, `SELECT ${tokenColumns.split(', ').map(column => `t.${column}`).join(', ')}, COALESCE(e.epoch, 0) AS current_epoch FROM ${tokens} AS t LEFT JOIN ${epochs} AS e ON e.user_id = t.user_id WHERE t.digest = ?`),
		byDigest: prepare<TokenRow>(db, `SELECT ${tokenColumns} FROM ${tokens} WHERE digest = ?`),
		touch: prepare(db, `UPDATE ${tokens} SET last_used_at = ? WHERE id = ?`),
		retire: prepare(db, `UPDATE ${tokens} SET retired_at = ?, grace_until = ?, grace_ciphertext = ? WHERE id = ?`),
		deleteFamilyBut: prepare(db, `DELETE FROM ${tokens} WHERE family_id = ? AND id <> ? AND retired_at IS NULL`),
		deleteFamily: prepare(db, `DELETE FROM ${tokens} WHERE family_id = ?`),
		bumpEpoch: prepare(db, `INSERT INTO ${epochs} (user_id, epoch) VALUES (?, 1) ON CONFLICT (user_id) DO UPDATE SET epoch = epoch + 1`),
		epoch: prepare<number>(db, `SELECT epoch FROM ${epochs} WHERE user_id = ?`).pluck(),
		list: prepare<TokenRow>(db, `SELECT ${tokenColumns} FROM ${tokens} WHERE user_id = ? AND retired_at IS NULL AND expires_at > ? ORDER BY created_at, rowid`),
		// A user's live sessions, oldest first: families with a current token of the current epoch.
		sessions: prepare<string>(db, `SELECT family_id FROM ${tokens} WHERE user_id = @user AND retired_at IS NULL AND expires_at > @now AND epoch = COALESCE((SELECT epoch FROM ${epochs} WHERE user_id = @user), 0) GROUP BY family_id ORDER BY MIN(created_at), MIN(rowid)`).pluck(),
		pruneExpired: prepare(db, `DELETE FROM ${tokens} WHERE expires_at <= ?`),
		// Tokens of an old epoch: only users who were ever revoked have an epoch row (and a token's
		// epoch is never above its user's), so this walks the epoch table and the user_id index.
		pruneRevoked: prepare(db, `DELETE FROM ${tokens} WHERE rowid IN (SELECT t.rowid FROM ${epochs} AS e JOIN ${tokens} AS t ON t.user_id = e.user_id WHERE t.epoch <> e.epoch)`),
	};
}

type TokenStatements = ReturnType<typeof tokenStatements>;
type Grace = {readonly until: number; readonly ciphertext: string} | undefined;

/** The operations that read before they write, each one transaction (run `.immediate`). */
function tokenTransactions(db: Database.Database, statements: TokenStatements) {
	const insert = (records: readonly TokenRecord[]) => {
		for (const record of records) {
			statements.insert.run(tokenParameters(record));
		}
	};

	return {
		create: db.transaction((records: readonly TokenRecord[], limit: SessionLimit | undefined): boolean => {
			const [first] = records;
			if (first !== undefined && limit !== undefined) {
				const sessions = statements.sessions.all({user: first.userId, now: limit.now});
				if (sessions.length >= limit.max) {
					if (limit.onLimit === 'refuse') {
						return false;
					}

					for (const familyId of sessions.slice(0, sessions.length - limit.max + 1)) {
						statements.deleteFamily.run(familyId);
					}
				}
			}

			insert(records);
			return true;
		}),
		rotate: db.transaction((digest: string, now: number, grace: Grace, records: readonly TokenRecord[]): RotateOutcome => {
			const row = statements.byDigest.get(digest);
			if (row === undefined) {
				return {kind: 'unknown'};
			}

			if (row.retired_at !== null) {
				if (row.grace_until !== null && row.grace_ciphertext !== null && now <= row.grace_until) {
					return {kind: 'grace', ciphertext: row.grace_ciphertext};
				}

				statements.deleteFamily.run(row.family_id);
				return {kind: 'reused'};
			}

			statements.deleteFamilyBut.run(row.family_id, row.id);
			statements.retire.run(now, grace?.until ?? null, grace?.ciphertext ?? null, row.id);
			insert(records);
			return {kind: 'rotated'};
		}),
		prune: db.transaction((now: number): number =>
			statements.pruneExpired.run(now).changes + statements.pruneRevoked.run().changes),
	};
}

type TokenTransactions = ReturnType<typeof tokenTransactions>;

/**
Tokens in a SQLite database, over a better-sqlite3 connection the application opened. Only digests
are stored; rotation, the session cap and revoke-all are each one transaction, safe for several
processes on one file. Times must be integer milliseconds (`Date.now()`): the tables are STRICT.
Call `migrate()` once at start-up. A failing database (locked past the connection's busy timeout,
closed) makes every call reject, which the service answers 503; the store never reopens a
connection, so after closing one the application makes a new `Database` and store.

@example
```
import Database from 'better-sqlite3';
import {TokenService} from 'koa-stateless-auth';
import {SqliteTokenStore} from 'koa-stateless-auth/stores/sqlite';

const db = new Database('auth.db');
db.pragma('journal_mode = WAL');
const store = new SqliteTokenStore(db);
await store.migrate();
const tokens = new TokenService({store, prefix: 'myapp'});
```
*/
export class SqliteTokenStore implements TokenStore {
	readonly #db: Database.Database;
	readonly #tokens: string;
	readonly #epochs: string;
	readonly #prefix: string;
	#statements: TokenStatements | undefined;
	#transactions: TokenTransactions | undefined;

	/**
	A store over `db`, in tables named with `options.tablePrefix`; it throws a `TypeError` naming a bad option.

	@param db - The application's better-sqlite3 connection; the store never closes it.
	*/
	constructor(db: Database.Database, options: SqliteStoreOptions = {}) {
		assertDatabase(db);
		this.#prefix = tablePrefixOf(options);
		this.#db = db;
		this.#tokens = `${this.#prefix}tokens`;
		this.#epochs = `${this.#prefix}epochs`;
	}

	/**
	Create the tables and indexes if they are not there: harmless to run at every start-up, and from
	several processes at once (it is one IMMEDIATE transaction).
	*/
	async migrate(): Promise<void> {
		const p = this.#prefix;
		const sql = `
			CREATE TABLE IF NOT EXISTS ${this.#tokens} (
				id TEXT NOT NULL PRIMARY KEY,
				digest TEXT NOT NULL,
				type TEXT NOT NULL,
				user_id TEXT NOT NULL,
				family_id TEXT NOT NULL,
				scopes TEXT NOT NULL,
				name TEXT,
				hint TEXT NOT NULL,
				created_at INTEGER NOT NULL,
				expires_at INTEGER NOT NULL,
				last_used_at INTEGER,
				epoch INTEGER NOT NULL,
				retired_at INTEGER,
				grace_until INTEGER,
				grace_ciphertext TEXT
			) STRICT;
			CREATE UNIQUE INDEX IF NOT EXISTS ${p}tokens_digest ON ${this.#tokens} (digest);
			CREATE INDEX IF NOT EXISTS ${p}tokens_user_id ON ${this.#tokens} (user_id);
			CREATE INDEX IF NOT EXISTS ${p}tokens_expires_at ON ${this.#tokens} (expires_at);
			CREATE INDEX IF NOT EXISTS ${p}tokens_family_id ON ${this.#tokens} (family_id);
			CREATE TABLE IF NOT EXISTS ${this.#epochs} (
				user_id TEXT NOT NULL PRIMARY KEY,
				epoch INTEGER NOT NULL
			) STRICT, WITHOUT ROWID;
		`;
		this.#db.transaction(() => {
			this.#db.exec(sql);
		}).immediate();
	}

	/** Store one session's tokens; with `limit`, count and refuse or evict in the same IMMEDIATE transaction. */
	async create(records: readonly TokenRecord[], limit?: SessionLimit): Promise<boolean> {
		return this.#run().create.immediate(records, limit);
	}

	/** The token with this digest and its user's current epoch: one SELECT with a LEFT JOIN. */
	async find(digest: string): Promise<FoundToken | undefined> {
		const row = this.#prepared().find.get(digest);
		if (row === undefined) {
			return undefined;
		}

		const {current_epoch: epoch, ...rest} = row;
		return {record: toTokenRecord(rest), epoch};
	}

	/** Write a token's last use. */
	async touch(id: string, at: number): Promise<void> {
		this.#prepared().touch.run(at, id);
	}

	/** Rotate a refresh token: read, retire, revoke and store in one IMMEDIATE transaction. */
	async rotate(digest: string, now: number, grace: Grace, records: readonly TokenRecord[]): Promise<RotateOutcome> {
		return this.#run().rotate.immediate(digest, now, grace, records);
	}

	/** Delete every token of a family: one DELETE, which SQLite runs as one transaction. Answers how many went. */
	async revokeFamily(familyId: string): Promise<number> {
		return this.#prepared().deleteFamily.run(familyId).changes;
	}

	/** Revoke all of a user's tokens: one upsert of the user's epoch (one transaction), whatever their number. */
	async revokeUser(userId: string): Promise<void> {
		this.#prepared().bumpEpoch.run(userId);
	}

	/** The user's current epoch: 0 until the first `revokeUser`. */
	async epoch(userId: string): Promise<number> {
		return this.#prepared().epoch.get(userId) ?? 0;
	}

	/** The user's tokens neither expired at `now` nor retired, oldest first (then in the order stored). */
	async list(userId: string, now: number): Promise<readonly TokenRecord[]> {
		return this.#prepared().list.all(userId, now).map(row => toTokenRecord(row));
	}

	/** Delete expired tokens and those of old epochs, in one IMMEDIATE transaction; answers how many went. */
	async prune(now: number): Promise<number> {
		return this.#run().prune.immediate(now);
	}

	// Prepared on first use, after migrate(): a statement over a missing table fails to prepare, and
	// is then prepared again on the next call rather than kept broken.
	#prepared(): TokenStatements {
		this.#statements ??= tokenStatements(this.#db, this.#tokens, this.#epochs);
		return this.#statements;
	}

	#run(): TokenTransactions {
		this.#transactions ??= tokenTransactions(this.#db, this.#prepared());
		return this.#transactions;
	}
}

type UserRow = {
	id: string;
	username: string;
	password_hash: string;
	permissions: string;
	profile: string;
	is_active: number;
	created_at: number;
};

const userColumns = 'id, username, password_hash, permissions, profile, is_active, created_at';

// Nothing checks a user record downstream (the application's user loader answers it), so a column
// that is not JSON is an error here, naming the column, rather than a wrong value later.
function parseStrictly(text: string, column: string, id: string): unknown {
	try {
		return JSON.parse(text) as unknown;
	} catch (error) {
		throw new TypeError(`koa-stateless-auth: the ${column} column of user ${JSON.stringify(id)} is not JSON.`, {cause: error});
	}
}

function toUserRecord(row: UserRow): UserRecord {
	return {
		id: row.id,
		username: row.username,
		passwordHash: row.password_hash,
		permissions: parseStrictly(row.permissions, 'permissions', row.id) as readonly string[],
		profile: parseStrictly(row.profile, 'profile', row.id) as Readonly<Record<string, unknown>>,
		isActive: row.is_active === 1,
		createdAt: row.created_at,
	};
}

function userStatements(db: Database.Database, users: string) {
	return {
		// DO NOTHING on either uniqueness (id, username); unlike INSERT OR IGNORE it still fails on NOT NULL.
		insert: prepare(db, `INSERT INTO ${users} (${userColumns}) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`),
		byId: prepare<UserRow>(db, `SELECT ${userColumns} FROM ${users} WHERE id = ?`),
		byUsername: prepare<UserRow>(db, `SELECT ${userColumns} FROM ${users} WHERE username = ?`),
		page: prepare<UserRow>(db, `SELECT ${userColumns} FROM ${users} ORDER BY username LIMIT ? OFFSET ?`),
		count: prepare<number>(db, `SELECT COUNT(*) FROM ${users}`).pluck(),
		// A NULL leaves the column as it is: none of the four is ever NULL.
		update: prepare(db, `UPDATE ${users} SET permissions = COALESCE(@permissions, permissions), profile = COALESCE(@profile, profile), password_hash = COALESCE(@password_hash, password_hash), is_active = COALESCE(@is_active, is_active) WHERE id = @id`),
		delete: prepare(db, `DELETE FROM ${users} WHERE id = ?`),
	};
}

type UserStatements = ReturnType<typeof userStatements>;

function assertCount(value: number, name: string): void {
	if (!Number.isSafeInteger(value) || value < 0) {
		throw new RangeError(`The \`${name}\` must be a non-negative integer, got ${String(value)}.`);
	}
}

/**
Accounts in a SQLite database, over a better-sqlite3 connection the application opened. Usernames
are unique and compared as stored (byte for byte), and listed in the order of their UTF-8 bytes.
Permissions and profile are kept as JSON: a profile must be JSON-serialisable to come back as it
went in. Call `migrate()` once at start-up.

@example
```
import Database from 'better-sqlite3';
import {SqliteUserStore} from 'koa-stateless-auth/stores/sqlite';

const users = new SqliteUserStore(new Database('auth.db'));
await users.migrate();
await users.create({id: randomUUID(), username: 'alice', passwordHash: await hashPassword(password), permissions: [], profile: {}, isActive: true, createdAt: Date.now()});
```
*/
export class SqliteUserStore implements UserStore {
	readonly #db: Database.Database;
	readonly #users: string;
	readonly #prefix: string;
	#statements: UserStatements | undefined;
	#page: ((offset: number, limit: number) => UserPage) | undefined;

	/**
	A store over `db`, in tables named with `options.tablePrefix`; it throws a `TypeError` naming a bad option.

	@param db - The application's better-sqlite3 connection; the store never closes it.
	*/
	constructor(db: Database.Database, options: SqliteStoreOptions = {}) {
		assertDatabase(db);
		this.#prefix = tablePrefixOf(options);
		this.#db = db;
		this.#users = `${this.#prefix}users`;
	}

	/** Create the table and its index if they are not there: harmless to run at every start-up. */
	async migrate(): Promise<void> {
		const sql = `
			CREATE TABLE IF NOT EXISTS ${this.#users} (
				id TEXT NOT NULL PRIMARY KEY,
				username TEXT NOT NULL,
				password_hash TEXT NOT NULL,
				permissions TEXT NOT NULL,
				profile TEXT NOT NULL,
				is_active INTEGER NOT NULL CHECK (is_active IN (0, 1)),
				created_at INTEGER NOT NULL
			) STRICT;
			CREATE UNIQUE INDEX IF NOT EXISTS ${this.#prefix}users_username ON ${this.#users} (username);
		`;
		this.#db.transaction(() => {
			this.#db.exec(sql);
		}).immediate();
	}

	/** Add a user; answers `false` when the id or the username is taken. */
	async create(user: UserRecord): Promise<boolean> {
		const {id, username, passwordHash, permissions, profile, isActive, createdAt} = user;
		const result = this.#prepared().insert.run(id, username, passwordHash, JSON.stringify(permissions), JSON.stringify(profile), isActive ? 1 : 0, createdAt);
		return result.changes === 1;
	}

	/** The user with this id, or `undefined`. */
	async getById(id: string): Promise<UserRecord | undefined> {
		const row = this.#prepared().byId.get(id);
		return row === undefined ? undefined : toUserRecord(row);
	}

	/** The user with exactly this username, or `undefined`. */
	async getByUsername(username: string): Promise<UserRecord | undefined> {
		const row = this.#prepared().byUsername.get(username);
		return row === undefined ? undefined : toUserRecord(row);
	}

	/** `limit` users from `offset`, ordered by username, and the total, read in one transaction. */
	async list(offset: number, limit: number): Promise<UserPage> {
		assertCount(offset, 'offset');
		assertCount(limit, 'limit');
		const statements = this.#prepared();
		// One read transaction, so the page and the total are of one moment.
		this.#page ??= this.#db.transaction((from: number, count: number): UserPage => ({
			users: statements.page.all(count, from).map(row => toUserRecord(row)),
			total: statements.count.get() ?? 0,
		}));
		return this.#page(offset, limit);
	}

	/** Change the given fields of a user (one UPDATE); answers `false` when there is none. */
	async update(id: string, changes: Partial<Pick<UserRecord, 'permissions' | 'profile' | 'passwordHash' | 'isActive'>>): Promise<boolean> {
		const {permissions, profile, passwordHash, isActive} = changes;
		const result = this.#prepared().update.run({
			id,
			permissions: permissions === undefined ? null : JSON.stringify(permissions),
			profile: profile === undefined ? null : JSON.stringify(profile),
			password_hash: passwordHash ?? null,
			is_active: isActive === undefined ? null : (isActive ? 1 : 0),
		});
		return result.changes === 1;
	}

	/** Delete a user; answers `false` when there was none. */
	async delete(id: string): Promise<boolean> {
		return this.#prepared().delete.run(id).changes === 1;
	}

	#prepared(): UserStatements {
		this.#statements ??= userStatements(this.#db, this.#users);
		return this.#statements;
	}
}
