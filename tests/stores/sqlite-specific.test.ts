// What the contract cannot say about SQLite: the schema and migrate(), a restart on the same file,
// a database that fails under a running app (a 503, never a 401, never the driver's message), and
// rows written around the store.
import {randomBytes, randomUUID} from 'node:crypto';
import {mkdtemp, readFile, rm} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {Worker} from 'node:worker_threads';
import test, {type ExecutionContext} from 'ava';
import Database from 'better-sqlite3';
import Koa from 'koa';
import Router from '@koa/router';
import {
	StatelessAuthManager, TokenService, authErrorHandler, isStatelessAuthError,
	type StatelessAuthError, type TokenRecord, type UserRecord,
} from '../../source/index.js';
import {SqliteTokenStore, SqliteUserStore} from '../../source/stores/sqlite.js';
import {listen} from '../helpers/http.js';
import type {RaceFile, RaceInput, RaceOutput} from './sqlite-race-worker.js';

/** A fresh file in a directory of its own, removed after the test. */
async function databaseFile(t: ExecutionContext): Promise<string> {
	const directory = await mkdtemp(path.join(os.tmpdir(), 'ksa-sqlite-'));
	t.teardown(async () => rm(directory, {recursive: true, force: true}));
	return path.join(directory, 'auth.db');
}

/** A connection closed after the test (closing twice is harmless). */
function open(t: ExecutionContext, file: string, options: Database.Options = {}): Database.Database {
	const db = new Database(file, options);
	t.teardown(() => {
		db.close();
	});
	return db;
}

async function storesOver(db: Database.Database) {
	const tokens = new SqliteTokenStore(db);
	const users = new SqliteUserStore(db);
	await tokens.migrate();
	await users.migrate();
	return {tokens, users};
}

const alice: UserRecord = {id: 'alice-id', username: 'alice', passwordHash: 'scrypt$x', permissions: ['read'], profile: {}, isActive: true, createdAt: 1};

/** Every error in the `cause` chain of `error`, itself first. */
function causes(error: unknown): unknown[] {
	const chain: unknown[] = [];
	for (let current = error; current !== undefined && chain.length < 10; current = (current as {cause?: unknown}).cause) {
		chain.push(current);
	}

	return chain;
}

/** An app with `auth.useTokens(service)` and one protected route, recording app.on('error'). */
async function serve(t: ExecutionContext, service: TokenService, users: SqliteUserStore) {
	const auth = new StatelessAuthManager<UserRecord, TokenRecord>({realm: 'api'});
	auth.useTokens(service);
	auth.userLoader(async record => users.getById(record.userId));
	const app = new Koa();
	const errors: unknown[] = [];
	app.on('error', (error: unknown) => errors.push(error));
	app.use(authErrorHandler());
	const router = new Router<object>();
	const handled: string[] = [];
	router.get('/me', auth.tokenRequired(), ctx => {
		handled.push(ctx.path);
		ctx.body = {username: ctx.state.currentUser.username};
	});
	app.use(router.routes());
	const url = await listen(t, app);
	const get = async (token: string) => {
		const response = await fetch(`${url}/me`, {headers: {authorization: `Bearer ${token}`}});
		return {status: response.status, headers: response.headers, body: await response.text()};
	};

	return {auth, errors, handled, get};
}

test('migrate() twice is harmless: the data stays, and a second store over the file sees it', async t => {
	const file = await databaseFile(t);
	const db = open(t, file);
	const {tokens, users} = await storesOver(db);
	const service = new TokenService({store: tokens, prefix: 'app'});
	const pair = await service.issuePair(alice.id);
	await users.create(alice);
	await tokens.migrate();
	await users.migrate();
	const again = await storesOver(db);
	t.true((await new TokenService({store: again.tokens, prefix: 'app'}).verify(pair.access.token, 'access')).valid);
	t.deepEqual(await again.users.getById(alice.id), alice);

	const names = db.prepare<[], {name: string}>('SELECT name FROM sqlite_schema WHERE name LIKE \'ksa_%\' ORDER BY name').all().map(row => row.name);
	t.deepEqual(names, ['ksa_epochs', 'ksa_tokens', 'ksa_tokens_digest', 'ksa_tokens_expires_at', 'ksa_tokens_family_id', 'ksa_tokens_user_id', 'ksa_users', 'ksa_users_username']);
	const unique = (index: string) => db.prepare<[], {unique: number}>(`SELECT "unique" FROM pragma_index_list('${index.split(':')[0]!}') WHERE name = '${index.split(':')[1]!}'`).get()?.unique;
	t.is(unique('ksa_tokens:ksa_tokens_digest'), 1);
	t.is(unique('ksa_users:ksa_users_username'), 1);
	t.is(unique('ksa_tokens:ksa_tokens_user_id'), 0);
});

test('a tablePrefix keeps two stores apart in one file, and a bad one is a TypeError at construction', async t => {
	const db = open(t, await databaseFile(t));
	const first = new SqliteTokenStore(db, {tablePrefix: 'one_'});
	const second = new SqliteTokenStore(db, {tablePrefix: 'two_'});
	await first.migrate();
	await second.migrate();
	await first.revokeUser('u');
	t.is(await first.epoch('u'), 1);
	t.is(await second.epoch('u'), 0);
	t.true(new SqliteUserStore(db, {tablePrefix: ''}) instanceof SqliteUserStore, 'an empty prefix is allowed');
	for (const tablePrefix of ['ksa-', 'a b', '1ksa_', 'x"; DROP TABLE ksa_users; --', 'a'.repeat(33), 42]) {
		t.throws(() => new SqliteTokenStore(db, {tablePrefix: tablePrefix as string}), {instanceOf: TypeError, message: /`tablePrefix`/});
		t.throws(() => new SqliteUserStore(db, {tablePrefix: tablePrefix as string}), {instanceOf: TypeError, message: /`tablePrefix`/});
	}

	t.throws(() => new SqliteTokenStore({} as Database.Database), {instanceOf: TypeError, message: /better-sqlite3 Database/});
});

test('before migrate() every call rejects, and the same store works once migrate() has run', async t => {
	const db = open(t, await databaseFile(t));
	const tokens = new SqliteTokenStore(db);
	const users = new SqliteUserStore(db);
	// better-sqlite3's SqliteError is no native Error: ava asks for `any`.
	await t.throwsAsync(tokens.find('0'.repeat(64)), {any: true, message: /no such table/});
	await t.throwsAsync(users.getById('x'), {any: true, message: /no such table/});
	await tokens.migrate();
	await users.migrate();
	t.is(await tokens.find('0'.repeat(64)), undefined);
	t.is(await users.getById('x'), undefined);
});

test('restart: a pair issued before the database is closed verifies and rotates after it is reopened', async t => {
	const file = await databaseFile(t);
	const first = new Database(file);
	const before = await storesOver(first);
	const pair = await new TokenService({store: before.tokens, prefix: 'app', pepper: 'a pepper of sixteen+'}).issuePair(alice.id, {scopes: ['read'], name: 'laptop'});
	first.close();

	const {tokens} = await storesOver(open(t, file));
	const service = new TokenService({store: tokens, prefix: 'app', pepper: 'a pepper of sixteen+'});
	t.deepEqual(await service.verify(pair.access.token, 'access'), {valid: true, record: pair.access.record});
	const next = await service.refresh(pair.refresh.token);
	t.true((await service.verify(next.access.token, 'access')).valid);
	t.deepEqual(next.access.record.scopes, ['read']);
	t.deepEqual(await service.verify(pair.access.token, 'access'), {valid: false, reason: 'unknown'});
});

test('the file holds digests, never a token, also of a pair kept for the grace window', async t => {
	const file = await databaseFile(t);
	const db = open(t, file);
	const {tokens} = await storesOver(db);
	const service = new TokenService({store: tokens, prefix: 'app', reuseGrace: 60});
	const pair = await service.issuePair(alice.id);
	const next = await service.refresh(pair.refresh.token);
	db.close();
	const bytes = (await readFile(file)).toString('latin1');
	t.true(bytes.includes(service.digest(next.access.token)), 'the digest is there');
	for (const token of [pair.access.token, pair.refresh.token, next.access.token, next.refresh.token]) {
		t.false(bytes.includes(token));
		t.false(bytes.includes(token.slice(-49)), 'nor its random part');
	}
});

test('records come back as numbers when the connection answers BigInts by default', async t => {
	const db = open(t, await databaseFile(t));
	db.defaultSafeIntegers(true);
	const {tokens, users} = await storesOver(db);
	const service = new TokenService({store: tokens, prefix: 'app'});
	const pair = await service.issuePair(alice.id);
	await users.create(alice);
	t.deepEqual(await service.verify(pair.access.token, 'access'), {valid: true, record: pair.access.record});
	await tokens.revokeUser('bob');
	t.is(await tokens.epoch('bob'), 1);
	t.deepEqual(await users.list(0, 10), {users: [alice], total: 1});
});

test('the schema refuses what is not a record: a NULL or text time, a boolean other than 0 or 1, a second digest', async t => {
	const db = open(t, await databaseFile(t));
	const {tokens, users} = await storesOver(db);
	const service = new TokenService({store: tokens, prefix: 'app'});
	const pair = await service.issuePair(alice.id);
	await users.create(alice);
	const digest = service.digest(pair.access.token);
	// better-sqlite3's SqliteError is no native Error: ava asks for `any`.
	for (const [value, code] of [['NULL', 'NOTNULL'], ['\'soon\'', 'DATATYPE'], ['1.5', 'DATATYPE']] as const) {
		t.throws(() => db.prepare(`UPDATE ksa_tokens SET expires_at = ${value} WHERE digest = ?`).run(digest), {any: true, code: `SQLITE_CONSTRAINT_${code}`}, value);
	}

	t.throws(() => db.prepare('UPDATE ksa_users SET is_active = 2').run(), {any: true, code: 'SQLITE_CONSTRAINT_CHECK'});
	t.throws(() => db.prepare('UPDATE ksa_tokens SET digest = ?').run(digest), {any: true, code: 'SQLITE_CONSTRAINT_UNIQUE'});
	await t.throwsAsync(tokens.create([{...pair.access.record, id: 'another id'}]), {any: true, code: 'SQLITE_CONSTRAINT_UNIQUE'}, 'create never overwrites a digest');
	t.true((await service.verify(pair.access.token, 'access')).valid);
});

type Fault = {
	readonly description: string;
	/** Make the store fail; answers how to bring it back. */
	break(db: Database.Database, file: string, t: ExecutionContext): () => Promise<void> | void;
	readonly cause: {readonly instanceOf: new (...parameters: never[]) => Error; readonly code?: string; readonly message: RegExp};
};

const faults: readonly Fault[] = [
	{
		// The store's connection waits 0 ms for a lock (`timeout: 0`); the lock is released with COMMIT.
		description: 'another connection holds an EXCLUSIVE lock',
		break(_db, file, t) {
			const holder = open(t, file);
			holder.exec('BEGIN EXCLUSIVE');
			return () => {
				holder.exec('COMMIT');
			};
		},
		cause: {instanceOf: Database.SqliteError, code: 'SQLITE_BUSY', message: /database is locked/},
	},
];

const failingDatabase = test.macro({
	async exec(t, fault: Fault) {
		const file = await databaseFile(t);
		const db = open(t, file, {timeout: 0});
		const {tokens, users} = await storesOver(db);
		await users.create(alice);
		const service = new TokenService({store: tokens, prefix: 'app'});
		const pair = await service.issuePair(alice.id);
		const {errors, handled, get} = await serve(t, service, users);
		t.is((await get(pair.access.token)).status, 200);

		const restore = fault.break(db, file, t);
		const response = await get(pair.access.token);
		t.is(response.status, 503, 'a failing store is never a 401');
		t.is(response.headers.get('retry-after'), '1');
		t.is(response.headers.get('www-authenticate'), null);
		t.is(response.body, JSON.stringify({error: 'Server error: Service unavailable'}));
		t.notRegex(response.body, /lock|SQLITE|database|busy/i, 'never the driver\'s message');
		t.deepEqual(handled, ['/me'], 'the route did not run');
		t.is(errors.length, 1);
		const [reported] = errors;
		t.true(isStatelessAuthError(reported));
		t.is((reported as StatelessAuthError).status, 503);
		t.is((reported as StatelessAuthError).reason, 'store_unavailable');
		const driverError = causes(reported).find(cause => cause instanceof fault.cause.instanceOf);
		t.truthy(driverError, 'the driver\'s error is in the cause chain');
		t.regex((driverError as Error).message, fault.cause.message);
		if (fault.cause.code !== undefined) {
			t.is((driverError as {code?: unknown}).code, fault.cause.code);
		}

		await restore();
		const resumed = await get(pair.access.token);
		t.is(resumed.status, 200, 'the same app, service and store serve again');
		t.is(resumed.body, JSON.stringify({username: 'alice'}));
		t.true((await service.verify((await service.refresh(pair.refresh.token)).access.token, 'access')).valid);
		t.is(errors.length, 1);
	},
	title: (_provided, fault: Fault) => `a database that fails under a running app (${fault.description}) answers 503 with Retry-After, then serves again`,
});

for (const fault of faults) {
	test(failingDatabase, fault);
}

test('a closed connection answers 503; the application comes back with a new Database, store and service over the file', async t => {
	const file = await databaseFile(t);
	const db = open(t, file);
	const {tokens, users} = await storesOver(db);
	await users.create(alice);
	const service = new TokenService({store: tokens, prefix: 'app'});
	const pair = await service.issuePair(alice.id);
	const {auth, errors, get} = await serve(t, service, users);
	db.close();
	const response = await get(pair.access.token);
	t.is(response.status, 503);
	t.is(response.headers.get('retry-after'), '1');
	t.notRegex(response.body, /open|connection|database/i);
	t.is(errors.length, 1);
	const driverError = causes(errors[0]).find(cause => cause instanceof TypeError);
	t.regex((driverError as Error).message, /database connection is not open/);

	// A store never reopens a connection it was handed: the application makes a new one.
	const reopened = await storesOver(open(t, file));
	auth.useTokens(new TokenService({store: reopened.tokens, prefix: 'app'}));
	auth.userLoader(async record => reopened.users.getById(record.userId));
	t.is((await get(pair.access.token)).status, 200);
});

type Corruption = {
	readonly description: string;
	readonly sql: string;
};

const corruptions: readonly Corruption[] = [
	{description: 'scopes that are not JSON', sql: 'UPDATE ksa_tokens SET scopes = \'read,write\' WHERE digest = ?'},
	{description: 'scopes that are a JSON object', sql: 'UPDATE ksa_tokens SET scopes = \'{"read":true}\' WHERE digest = ?'},
	{description: 'scopes that are not strings', sql: 'UPDATE ksa_tokens SET scopes = \'[1,2]\' WHERE digest = ?'},
];

const corruptRow = test.macro({
	async exec(t, corruption: Corruption) {
		const db = open(t, await databaseFile(t));
		const {tokens, users} = await storesOver(db);
		await users.create(alice);
		const service = new TokenService({store: tokens, prefix: 'app'});
		const pair = await service.issuePair(alice.id);
		const other = await service.issuePair(alice.id);
		const {errors, handled, get} = await serve(t, service, users);
		t.is(db.prepare(corruption.sql).run(service.digest(pair.access.token)).changes, 1);

		const response = await get(pair.access.token);
		t.is(response.status, 401);
		t.is(response.headers.get('www-authenticate'), 'Bearer realm="api", error="invalid_token"');
		t.is(response.body, JSON.stringify({error: 'Token error: Invalid token'}));
		t.deepEqual(handled, []);
		t.is(errors.length, 1, 'reported once');
		t.true(errors[0] instanceof TypeError);
		t.regex((errors[0] as Error).message, /the token store answered a record that is not a token record/);
		t.is((await get(other.access.token)).status, 200, 'other tokens are fine');
		t.is(errors.length, 1);
	},
	title: (_provided, corruption: Corruption) => `a token row with ${corruption.description} is refused 401 invalid_token and reported on app.on('error')`,
});

for (const corruption of corruptions) {
	test(corruptRow, corruption);
}

test('a user row whose JSON is corrupt rejects with a TypeError naming the column', async t => {
	const db = open(t, await databaseFile(t));
	const {users} = await storesOver(db);
	await users.create(alice);
	db.prepare('UPDATE ksa_users SET profile = \'{oops\' WHERE id = ?').run(alice.id);
	await t.throwsAsync(users.getById(alice.id), {instanceOf: TypeError, message: 'koa-stateless-auth: the profile column of user "alice-id" is not JSON.'});
});

test('list rejects an offset or limit that is not a non-negative integer', async t => {
	const {users} = await storesOver(open(t, await databaseFile(t)));
	for (const [offset, limit] of [[-1, 10], [0, -1], [0.5, 10], [0, Number.NaN]] as const) {
		await t.throwsAsync(users.list(offset, limit), {instanceOf: RangeError});
	}
});

// better-sqlite3 is synchronous, so inside one process nothing can come between rotate's read and
// its write; other processes can. Here each "process" is a worker thread with a connection of its
// own, released together by a barrier before every rotation. Without BEGIN IMMEDIATE, a loser would
// read the token as current and fail at its write with SQLITE_BUSY (or SQLITE_BUSY_SNAPSHOT in WAL).
test('connections in threads of their own racing on each refresh token: exactly one rotates and none errs, in journal modes delete and wal', async t => {
	const workers = 3;
	const files: RaceFile[] = [];
	for (const journalMode of ['delete', 'wal']) {
		const file = await databaseFile(t);
		const db = open(t, file);
		db.pragma(`journal_mode = ${journalMode}`);
		const {tokens} = await storesOver(db);
		const rounds = Array.from({length: 25}, (_, index) => ({digest: randomBytes(32).toString('hex'), familyId: randomUUID(), userId: `user-${index}`}));
		for (const {digest, familyId, userId} of rounds) {
			await tokens.create([{
				id: randomUUID(), digest, type: 'refresh', userId, familyId, scopes: [], name: null, hint: '',
				createdAt: 0, expiresAt: Number.MAX_SAFE_INTEGER, lastUsedAt: null, epoch: 0, retiredAt: null, graceUntil: null, graceCiphertext: null,
			}]);
		}

		files.push({file, rounds});
	}

	const input: RaceInput = {files, workers, barrier: new SharedArrayBuffer(8)};
	const outputs = await Promise.all(Array.from({length: workers}, async () => new Promise<RaceOutput>((resolve, reject) => {
		const worker = new Worker(new URL('sqlite-race-worker.ts', import.meta.url), {workerData: input});
		worker.once('message', resolve);
		worker.once('error', reject);
	})));
	for (const [fileIndex, {rounds}] of files.entries()) {
		for (const [index] of rounds.entries()) {
			const answers = outputs.map(output => output[fileIndex]?.[index]);
			const label = `${fileIndex === 0 ? 'delete' : 'wal'}, round ${index}: ${answers.join(', ')}`;
			t.is(answers.filter(answer => answer === 'rotated').length, 1, label);
			t.true(answers.every(answer => answer === 'rotated' || answer === 'reused' || answer === 'unknown'), label);
		}
	}
});
