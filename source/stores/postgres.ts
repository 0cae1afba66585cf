// Types only: the core never loads `pg`; the application installs it and hands us its pool.
import type {Pool, PoolClient} from 'pg';
import type {
	FoundToken, RotateOutcome, SessionLimit, TokenRecord, TokenStore, UserPage, UserRecord, UserStore,
} from './types.js';

/*
Stores in PostgreSQL, over a `pg.Pool` the application made (and listens to: see the class docs).

Every operation the contract makes atomic is one statement or one READ COMMITTED transaction
(pinned, whatever the server's default isolation), so any number of processes may share the tables:
- Whatever changes a session (a family) first takes a transaction-level advisory lock on it:
  `rotate`, `revokeFamily`, and the eviction of `create` (several families in one order). What it
  then reads or deletes, in statements that begin after the lock, includes everything the previous
  holder committed: a rotation and a logout of one session cannot interleave, and a logout never
  leaves behind the new pair of a rotation that committed meanwhile.
- So of two processes racing on one refresh token, the second waits for the first to commit, then
  reads the token retired, and answers the grace ciphertext or revokes the family: a token rotates
  exactly once. `rotate` also locks the token's row (`SELECT ... FOR UPDATE`), for what takes no
  session lock: `prune` skips the row then, and `touch` waits.
- A transaction holds at most one family's lock before its row locks, or several taken in one
  order, and `prune` never waits (SKIP LOCKED): these operations cannot deadlock. (Locking the
  token's row first and its family's other rows after, as a rotation must, deadlocked with a
  logout that locked the same rows the other way round.)
- `create` with a session cap takes an advisory lock on the user, so that two logins of one user
  in two processes count each other.
- `revokeUser` is one upsert that bumps the user's epoch: O(1) whatever the number of tokens, and
  `find` joins that epoch in the same query.

Times are BIGINT milliseconds (parsed to numbers: they stay far below 2^53). Lists and the profile
are JSON in TEXT columns: every JavaScript string round-trips exactly (JSONB would refuse `\u0000`
and lone surrogates and reorder keys).
*/

/** Options of {@link PostgresTokenStore} and {@link PostgresUserStore}. */
export type PostgresStoreOptions = {
	/**
	The schema the tables live in; `migrate()` creates it when missing. Without it, table names are
	unqualified and resolve through the connection's `search_path`. Letters, digits and underscores,
	not starting with a digit, at most 63 characters.

	@default undefined (the `search_path`)

	@example
	```
	new PostgresTokenStore(pool, {schema: 'auth'});
	```
	*/
	readonly schema?: string;
	/**
	Put before each table name: the tables are `<prefix>tokens`, `<prefix>epochs` and
	`<prefix>users`. Letters, digits and underscores.

	@default 'auth_'

	@example
	```
	new PostgresUserStore(pool, {tablePrefix: 'myapp_'}); // myapp_users
	```
	*/
	readonly tablePrefix?: string;
};

const identifier = /^[A-Za-z_]\w*$/;
// The longest name we make from a prefix: its index names.
const longestSuffix = 'tokens_family_id_idx'.length;

const quote = (name: string): string => `"${name}"`;

type Names = {
	/** Quoted, schema-qualified table names. */
	readonly tokens: string;
	readonly epochs: string;
	readonly users: string;
	/** The unquoted prefix, for index names (which live in their table's schema). */
	readonly prefix: string;
	/** The schema, quoted, when one was given. */
	readonly schema: string | undefined;
	/** Advisory lock spaces of these tables: a user's sessions, and one session. */
	readonly userLocks: string;
	readonly familyLocks: string;
};

function resolveNames(options: PostgresStoreOptions, store: string): Names {
	if (typeof (options as unknown) !== 'object' || (options as unknown) === null) {
		throw new TypeError(`The options of ${store} must be an object.`);
	}

	const {schema, tablePrefix = 'auth_'} = options;
	if (schema !== undefined && (typeof (schema as unknown) !== 'string' || !identifier.test(schema) || schema.length > 63)) {
		throw new TypeError(`The \`schema\` option must be an identifier (letters, digits and underscores, not starting with a digit, at most 63 characters), got ${JSON.stringify(schema)}.`);
	}

	if (typeof (tablePrefix as unknown) !== 'string' || (tablePrefix !== '' && !identifier.test(tablePrefix)) || tablePrefix.length + longestSuffix > 63) {
		throw new TypeError(`The \`tablePrefix\` option must be empty or an identifier (letters, digits and underscores, not starting with a digit, at most ${63 - longestSuffix} characters), got ${JSON.stringify(tablePrefix)}.`);
	}

	const qualify = (table: string): string => (schema === undefined ? '' : `${quote(schema)}.`) + quote(tablePrefix + table);
	return {
		tokens: qualify('tokens'),
		epochs: qualify('epochs'),
		users: qualify('users'),
		prefix: tablePrefix,
		schema: schema === undefined ? undefined : quote(schema),
		userLocks: `koa-stateless-auth:${schema ?? ''}.${tablePrefix}:user`,
		familyLocks: `koa-stateless-auth:${schema ?? ''}.${tablePrefix}:family`,
	};
}

function assertPool(pool: unknown, store: string): asserts pool is Pool {
	const candidate = pool as Partial<Record<'query' | 'connect', unknown>> | null;
	if (typeof candidate !== 'object' || candidate === null || typeof candidate.query !== 'function' || typeof candidate.connect !== 'function') {
		throw new TypeError(`${store} takes a pg.Pool (with query and connect).`);
	}
}

/**
Run `work` in one READ COMMITTED transaction on a client of its own. The client listens for
`error` while it is checked out (pg removes the pool's listener then, and an error between two
queries would otherwise be an unhandled `error` event); a client whose rollback failed is
destroyed rather than returned to the pool.
*/
async function transaction<T>(pool: Pool, work: (client: PoolClient) => Promise<T>): Promise<T> {
	const client = await pool.connect();
	let broken: unknown;
	const onError = (error: unknown) => {
		broken ??= error;
	};

	client.on('error', onError);
	try {
		await client.query('BEGIN ISOLATION LEVEL READ COMMITTED');
		const result = await work(client);
		await client.query('COMMIT');
		return result;
	} catch (error) {
		try {
			await client.query('ROLLBACK');
		} catch (rollbackError) {
			broken ??= rollbackError;
		}

		throw error;
	} finally {
		client.removeListener('error', onError);
		client.release(broken === undefined ? undefined : (broken instanceof Error ? broken : true));
	}
}

/**
The same lock in every process, held to the end of the transaction: a key of the lock space and one
of the thing locked. Two things whose keys collide only wait for each other a little.
*/
const advisoryLock = 'SELECT pg_advisory_xact_lock(hashtext($1), hashtext($2))';
const migrationLock = ['koa-stateless-auth', 'migrate'];

/** A token row as pg answers it: BIGINTs as strings, lists as JSON text. */
type TokenRow = {
	id: string;
	digest: string;
	type: string;
	user_id: string;
	family_id: string;
	scopes: string;
	name: string | null;
	hint: string;
	created_at: string;
	expires_at: string;
	last_used_at: string | null;
	epoch: string;
	retired_at: string | null;
	grace_until: string | null;
	grace_ciphertext: string | null;
};

const tokenColumns = 'id, digest, type, user_id, family_id, scopes, name, hint, created_at, expires_at, last_used_at, epoch, retired_at, grace_until, grace_ciphertext';

const time = (value: string | null): number | null => (value === null ? null : Number(value));

function tokenRecord(row: TokenRow): TokenRecord {
	return {
		id: row.id,
		digest: row.digest,
		type: row.type,
		userId: row.user_id,
		familyId: row.family_id,
		scopes: JSON.parse(row.scopes) as string[],
		name: row.name,
		hint: row.hint,
		createdAt: Number(row.created_at),
		expiresAt: Number(row.expires_at),
		lastUsedAt: time(row.last_used_at),
		epoch: Number(row.epoch),
		retiredAt: time(row.retired_at),
		graceUntil: time(row.grace_until),
		graceCiphertext: row.grace_ciphertext,
	};
}

function tokenValues(record: TokenRecord): unknown[] {
	return [
		record.id, record.digest, record.type, record.userId, record.familyId, JSON.stringify(record.scopes), record.name, record.hint,
		record.createdAt, record.expiresAt, record.lastUsedAt, record.epoch, record.retiredAt, record.graceUntil, record.graceCiphertext,
	];
}

/** One INSERT of all `records`, in their order (which `seq` keeps for ties on `created_at`). */
async function insertTokens(client: PoolClient, table: string, records: readonly TokenRecord[]): Promise<void> {
	if (records.length === 0) {
		return;
	}

	const width = 15;
	const rows = records.map((_, row) => `(${Array.from({length: width}, (_unused, column) => `$${(row * width) + column + 1}`).join(', ')})`);
	await client.query(`INSERT INTO ${table} (${tokenColumns}) VALUES ${rows.join(', ')}`, records.flatMap(record => tokenValues(record)));
}

/**
Tokens in PostgreSQL, shared safely by any number of processes: rotation, the session cap and
revocation are atomic across them (see `rotate` and `create`). The application makes the pool, and
must listen to its `error` event: pg emits one there when an idle connection dies (a restart, a
network cut), and an unhandled `error` event stops Node. While the database is unreachable every
method rejects, which the token service answers with a 503 and `Retry-After`; the pool reconnects
by itself when it is back.

@example
```
import pg from 'pg';
import {TokenService} from 'koa-stateless-auth';
import {PostgresTokenStore} from 'koa-stateless-auth/stores/postgres';

const pool = new pg.Pool({connectionString: process.env.DATABASE_URL, connectionTimeoutMillis: 2000});
pool.on('error', error => {
	app.emit('error', error); // an idle connection that dies; unheard, it would end the process
});
const store = new PostgresTokenStore(pool, {schema: 'auth'});
await store.migrate();
const tokens = new TokenService({store, prefix: 'myapp'});
```
*/
export class PostgresTokenStore implements TokenStore {
	readonly #pool: Pool;
	readonly #names: Names;

	/**
	@param pool - The application's pool; the store never ends it.
	@param options - Where the tables are.

	@example
	```
	const store = new PostgresTokenStore(pool, {schema: 'auth', tablePrefix: 'myapp_'});
	```
	*/
	constructor(pool: Pool, options: PostgresStoreOptions = {}) {
		assertPool(pool, 'PostgresTokenStore');
		this.#pool = pool;
		this.#names = resolveNames(options, 'PostgresTokenStore');
	}

	/**
	Create the schema, the tokens table and the per-user epochs table, with their indexes, when
	missing. Safe to run at every start, from many processes at once.

	@example
	```
	await store.migrate();
	```
	*/
	async migrate(): Promise<void> {
		const {tokens, epochs, prefix, schema} = this.#names;
		await transaction(this.#pool, async client => {
			// Concurrent CREATE ... IF NOT EXISTS of one name can still collide in the catalogue (a
			// schema two stores share, too): one migration at a time in the whole database.
			await client.query(advisoryLock, migrationLock);
			if (schema !== undefined) {
				await client.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
			}

			await client.query(`CREATE TABLE IF NOT EXISTS ${tokens} (
				id TEXT PRIMARY KEY,
				seq BIGINT GENERATED ALWAYS AS IDENTITY,
				digest TEXT NOT NULL,
				type TEXT NOT NULL,
				user_id TEXT NOT NULL,
				family_id TEXT NOT NULL,
				scopes TEXT NOT NULL,
				name TEXT,
				hint TEXT NOT NULL,
				created_at BIGINT NOT NULL,
				expires_at BIGINT NOT NULL,
				last_used_at BIGINT,
				epoch BIGINT NOT NULL,
				retired_at BIGINT,
				grace_until BIGINT,
				grace_ciphertext TEXT
			)`);
			await client.query(`CREATE UNIQUE INDEX IF NOT EXISTS ${quote(`${prefix}tokens_digest_idx`)} ON ${tokens} (digest)`);
			await client.query(`CREATE INDEX IF NOT EXISTS ${quote(`${prefix}tokens_expires_at_idx`)} ON ${tokens} (expires_at)`);
			await client.query(`CREATE INDEX IF NOT EXISTS ${quote(`${prefix}tokens_user_id_idx`)} ON ${tokens} (user_id, created_at)`);
			await client.query(`CREATE INDEX IF NOT EXISTS ${quote(`${prefix}tokens_family_id_idx`)} ON ${tokens} (family_id)`);
			await client.query(`CREATE TABLE IF NOT EXISTS ${epochs} (
				user_id TEXT PRIMARY KEY,
				epoch BIGINT NOT NULL
			)`);
		});
	}

	/**
	Store one session's tokens. With `limit`, in one transaction holding an advisory lock on the user,
	so that logins racing in several processes count each other.

	@example
	```
	await store.create([access, refresh], {max: 5, onLimit: 'evict-oldest', now: Date.now()});
	```
	*/
	async create(records: readonly TokenRecord[], limit?: SessionLimit): Promise<boolean> {
		const {tokens, epochs, userLocks, familyLocks} = this.#names;
		const [first] = records;
		return transaction(this.#pool, async client => {
			if (first !== undefined && limit !== undefined) {
				await client.query(advisoryLock, [userLocks, first.userId]);
				const {rows} = await client.query<{family_id: string}>(
					`SELECT t.family_id FROM ${tokens} t
					WHERE t.user_id = $1 AND t.retired_at IS NULL AND t.expires_at > $2
						AND t.epoch = COALESCE((SELECT e.epoch FROM ${epochs} e WHERE e.user_id = $1), 0)
					GROUP BY t.family_id
					ORDER BY MIN(t.created_at), MIN(t.seq)`,
					[first.userId, limit.now],
				);
				if (rows.length >= limit.max) {
					if (limit.onLimit === 'refuse') {
						return false;
					}

					const evicted = rows.slice(0, rows.length - limit.max + 1).map(row => row.family_id);
					await lockFamilies(client, familyLocks, evicted);
					await client.query(`DELETE FROM ${tokens} WHERE family_id = ANY($1::text[])`, [evicted]);
				}
			}

			await insertTokens(client, tokens, records);
			return true;
		});
	}

	/**
	The token and its user's current epoch: one query.

	@example
	```
	const found = await store.find(digest); // {record, epoch} or undefined
	```
	*/
	async find(digest: string): Promise<FoundToken | undefined> {
		const {tokens, epochs} = this.#names;
		const {rows: [row]} = await this.#pool.query<TokenRow & {current_epoch: string}>(
			`SELECT ${tokenColumns.split(', ').map(column => `t.${column}`).join(', ')}, COALESCE(e.epoch, 0) AS current_epoch
			FROM ${tokens} t LEFT JOIN ${epochs} e ON e.user_id = t.user_id
			WHERE t.digest = $1`,
			[digest],
		);
		return row === undefined ? undefined : {record: tokenRecord(row), epoch: Number(row.current_epoch)};
	}

	/**
	Write a token's last use.

	@example
	```
	await store.touch(record.id, Date.now());
	```
	*/
	async touch(id: string, at: number): Promise<void> {
		await this.#pool.query(`UPDATE ${this.#names.tokens} SET last_used_at = $2 WHERE id = $1`, [id, at]);
	}

	/**
	Rotate a refresh token in one transaction, under its session's lock and its own row's (`FOR
	UPDATE`): of two processes racing on it, the second waits, then reads it retired (grace, or reuse).

	@example
	```
	const outcome = await store.rotate(digest, Date.now(), undefined, [access, refresh]);
	```
	*/
	async rotate(digest: string, now: number, grace: {readonly until: number; readonly ciphertext: string} | undefined, records: readonly TokenRecord[]): Promise<RotateOutcome> {
		const {tokens, familyLocks} = this.#names;
		return transaction(this.#pool, async (client): Promise<RotateOutcome> => {
			const {rows: [family]} = await client.query<{family_id: string}>(
				`SELECT family_id, pg_advisory_xact_lock(hashtext($2), hashtext(family_id)) FROM ${tokens} WHERE digest = $1`,
				[digest, familyLocks],
			);
			if (family === undefined) {
				return {kind: 'unknown'};
			}

			// Read after the session's lock: what a rotation or logout of it committed meanwhile is seen.
			// The row lock keeps `prune` (which takes no session lock) off the row until we commit.
			const {rows: [row]} = await client.query<{id: string; family_id: string; retired_at: string | null; grace_until: string | null; grace_ciphertext: string | null}>(
				`SELECT id, family_id, retired_at, grace_until, grace_ciphertext FROM ${tokens} WHERE digest = $1 FOR UPDATE`,
				[digest],
			);
			if (row === undefined) {
				return {kind: 'unknown'};
			}

			if (row.retired_at !== null) {
				if (row.grace_until !== null && row.grace_ciphertext !== null && now <= Number(row.grace_until)) {
					return {kind: 'grace', ciphertext: row.grace_ciphertext};
				}

				await client.query(`DELETE FROM ${tokens} WHERE family_id = $1`, [row.family_id]);
				return {kind: 'reused'};
			}

			// The family's other current tokens go; its retired ones stay, so that a refresh token retired
			// several rotations ago is still known for reuse when it comes back.
			await client.query(`DELETE FROM ${tokens} WHERE family_id = $1 AND id <> $2 AND retired_at IS NULL`, [row.family_id, row.id]);
			await client.query(
				`UPDATE ${tokens} SET retired_at = $2, grace_until = $3, grace_ciphertext = $4 WHERE id = $1`,
				[row.id, now, grace?.until ?? null, grace?.ciphertext ?? null],
			);
			await insertTokens(client, tokens, records);
			return {kind: 'rotated'};
		});
	}

	/**
	Delete a family's tokens, under the session's lock: a rotation of it that committed meanwhile is
	seen, and its new pair deleted too.

	@example
	```
	const revoked = await store.revokeFamily(record.familyId);
	```
	*/
	async revokeFamily(familyId: string): Promise<number> {
		const {tokens, familyLocks} = this.#names;
		return transaction(this.#pool, async client => {
			await lockFamilies(client, familyLocks, [familyId]);
			const {rowCount} = await client.query(`DELETE FROM ${tokens} WHERE family_id = $1`, [familyId]);
			return rowCount ?? 0;
		});
	}

	/**
	Bump the user's epoch: one upsert, whatever the number of tokens.

	@example
	```
	await store.revokeUser(user.id);
	```
	*/
	async revokeUser(userId: string): Promise<void> {
		await this.#pool.query(
			`INSERT INTO ${this.#names.epochs} AS e (user_id, epoch) VALUES ($1, 1)
			ON CONFLICT (user_id) DO UPDATE SET epoch = e.epoch + 1`,
			[userId],
		);
	}

	/**
	The user's current epoch (0 before any `revokeUser`).

	@example
	```
	const epoch = await store.epoch(user.id);
	```
	*/
	async epoch(userId: string): Promise<number> {
		const {rows: [row]} = await this.#pool.query<{epoch: string}>(`SELECT epoch FROM ${this.#names.epochs} WHERE user_id = $1`, [userId]);
		return row === undefined ? 0 : Number(row.epoch);
	}

	/**
	The user's tokens neither expired at `now` nor retired, oldest first.

	@example
	```
	const live = await store.list(user.id, Date.now());
	```
	*/
	async list(userId: string, now: number): Promise<readonly TokenRecord[]> {
		const {rows} = await this.#pool.query<TokenRow>(
			`SELECT ${tokenColumns} FROM ${this.#names.tokens}
			WHERE user_id = $1 AND retired_at IS NULL AND expires_at > $2
			ORDER BY created_at, seq`,
			[userId, now],
		);
		return rows.map(row => tokenRecord(row));
	}

	/**
	Delete the tokens expired at `now` and those of past epochs: one statement, which skips the rows
	another transaction holds (the next prune takes them).

	@example
	```
	setInterval(() => void store.prune(Date.now()).catch(() => undefined), 3_600_000);
	```
	*/
	async prune(now: number): Promise<number> {
		const {tokens, epochs} = this.#names;
		const {rowCount} = await this.#pool.query(
			`DELETE FROM ${tokens} WHERE id IN (
				SELECT t.id FROM ${tokens} t
				WHERE t.expires_at <= $1 OR t.epoch <> COALESCE((SELECT e.epoch FROM ${epochs} e WHERE e.user_id = t.user_id), 0)
				ORDER BY t.id FOR UPDATE SKIP LOCKED
			)`,
			[now],
		);
		return rowCount ?? 0;
	}
}

/**
Take the advisory locks of these families, in one order (sorted), so that two transactions locking
several never deadlock. `unnest` yields the ids in the array's order.
*/
async function lockFamilies(client: PoolClient, familyLocks: string, familyIds: readonly string[]): Promise<void> {
	const sorted = [...familyIds].sort((a, b) => (a < b ? -1 : (a > b ? 1 : 0)));
	await client.query('SELECT pg_advisory_xact_lock(hashtext($1), hashtext(f)) FROM unnest($2::text[]) AS f', [familyLocks, sorted]);
}

/** A user row as pg answers it. */
type UserRow = {
	id: string;
	username: string;
	password_hash: string;
	permissions: string;
	profile: string;
	is_active: boolean;
	created_at: string;
};

const userColumns = 'id, username, password_hash, permissions, profile, is_active, created_at';

function userRecord(row: UserRow): UserRecord {
	return {
		id: row.id,
		username: row.username,
		passwordHash: row.password_hash,
		permissions: JSON.parse(row.permissions) as string[],
		profile: JSON.parse(row.profile) as Record<string, unknown>,
		isActive: row.is_active,
		createdAt: Number(row.created_at),
	};
}

/**
Users in PostgreSQL: a table with a unique username (compared and ordered byte for byte, `COLLATE
"C"`, whatever the database's collation). The profile is kept as JSON: give it JSON values. The
same pool rules as {@link PostgresTokenStore}: the application listens to `pool.on('error')`.

@example
```
const users = new PostgresUserStore(pool, {schema: 'auth'});
await users.migrate();
const created = await users.create({
	id: randomUUID(), username: 'alice', passwordHash: await hashPassword(password),
	permissions: [], profile: {}, isActive: true, createdAt: Date.now(),
});
```
*/
export class PostgresUserStore implements UserStore {
	readonly #pool: Pool;
	readonly #names: Names;

	/**
	@param pool - The application's pool; the store never ends it.
	@param options - Where the table is.

	@example
	```
	const users = new PostgresUserStore(pool, {schema: 'auth'});
	```
	*/
	constructor(pool: Pool, options: PostgresStoreOptions = {}) {
		assertPool(pool, 'PostgresUserStore');
		this.#pool = pool;
		this.#names = resolveNames(options, 'PostgresUserStore');
	}

	/**
	Create the schema and the users table when missing. Safe to run at every start, from many
	processes at once.

	@example
	```
	await users.migrate();
	```
	*/
	async migrate(): Promise<void> {
		const {users, schema} = this.#names;
		await transaction(this.#pool, async client => {
			await client.query(advisoryLock, migrationLock);
			if (schema !== undefined) {
				await client.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
			}

			await client.query(`CREATE TABLE IF NOT EXISTS ${users} (
				id TEXT PRIMARY KEY,
				username TEXT COLLATE "C" NOT NULL UNIQUE,
				password_hash TEXT NOT NULL,
				permissions TEXT NOT NULL,
				profile TEXT NOT NULL,
				is_active BOOLEAN NOT NULL,
				created_at BIGINT NOT NULL
			)`);
		});
	}

	/**
	Add a user; `false` when the id or the username is taken (one statement, so two processes
	creating one username cannot both succeed).

	@example
	```
	if (!await users.create(record)) ctx.throw(409, 'username is taken');
	```
	*/
	async create(user: UserRecord): Promise<boolean> {
		const {rowCount} = await this.#pool.query(
			`INSERT INTO ${this.#names.users} (${userColumns}) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING`,
			[user.id, user.username, user.passwordHash, JSON.stringify(user.permissions), JSON.stringify(user.profile), user.isActive, user.createdAt],
		);
		return rowCount === 1;
	}

	/**
	The user with this id.

	@example
	```
	const user = await users.getById(record.userId);
	```
	*/
	async getById(id: string): Promise<UserRecord | undefined> {
		const {rows: [row]} = await this.#pool.query<UserRow>(`SELECT ${userColumns} FROM ${this.#names.users} WHERE id = $1`, [id]);
		return row === undefined ? undefined : userRecord(row);
	}

	/**
	The user with this username, compared exactly.

	@example
	```
	const user = await users.getByUsername('alice');
	```
	*/
	async getByUsername(username: string): Promise<UserRecord | undefined> {
		const {rows: [row]} = await this.#pool.query<UserRow>(`SELECT ${userColumns} FROM ${this.#names.users} WHERE username = $1`, [username]);
		return row === undefined ? undefined : userRecord(row);
	}

	/**
	One page of users by username and the total, in one query (one snapshot).

	@example
	```
	const {users: page, total} = await users.list(0, 20);
	```
	*/
	async list(offset: number, limit: number): Promise<UserPage> {
		const {rows} = await this.#pool.query<{total: string} & {[Key in keyof UserRow]: UserRow[Key] | null}>(
			`SELECT c.total, p.id, p.username, p.password_hash, p.permissions, p.profile, p.is_active, p.created_at
			FROM (SELECT count(*) AS total FROM ${this.#names.users}) c
			LEFT JOIN LATERAL (SELECT ${userColumns} FROM ${this.#names.users} ORDER BY username LIMIT $1 OFFSET $2) p ON true
			ORDER BY p.username`,
			[limit, offset],
		);
		const users = rows.filter((row): row is UserRow & {total: string} => row.id !== null).map(row => userRecord(row));
		return {users, total: Number(rows[0]?.total ?? 0)};
	}

	/**
	Change the given fields of a user (one statement); `false` when there is none.

	@example
	```
	await users.update(user.id, {isActive: false});
	```
	*/
	async update(id: string, changes: Partial<Pick<UserRecord, 'permissions' | 'profile' | 'passwordHash' | 'isActive'>>): Promise<boolean> {
		const sets: string[] = [];
		const values: unknown[] = [id];
		const set = (column: string, value: unknown) => {
			values.push(value);
			sets.push(`${column} = $${values.length}`);
		};

		// A field given as undefined is left as it is, like one not given.
		if (changes.permissions !== undefined) {
			set('permissions', JSON.stringify(changes.permissions));
		}

		if (changes.profile !== undefined) {
			set('profile', JSON.stringify(changes.profile));
		}

		if (changes.passwordHash !== undefined) {
			set('password_hash', changes.passwordHash);
		}

		if (changes.isActive !== undefined) {
			set('is_active', changes.isActive);
		}

		const {rowCount} = await this.#pool.query(
			sets.length === 0
				? `SELECT 1 FROM ${this.#names.users} WHERE id = $1`
				: `UPDATE ${this.#names.users} SET ${sets.join(', ')} WHERE id = $1`,
			values,
		);
		return rowCount === 1;
	}

	/**
	Delete a user; `false` when there was none. Their tokens stay until revoked (`revokeUser`).

	@example
	```
	if (await users.delete(id)) await tokenService.revokeAll(id);
	```
	*/
	async delete(id: string): Promise<boolean> {
		const {rowCount} = await this.#pool.query(`DELETE FROM ${this.#names.users} WHERE id = $1`, [id]);
		return rowCount === 1;
	}
}
