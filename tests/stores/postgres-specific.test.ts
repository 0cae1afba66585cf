// What the contract cannot say about PostgreSQL: the options, the schema migrate() makes (and that
// many processes may run it at once), the core never loading pg, and the orderings only several
// connections produce: the session cap counted under a lock, a logout that meets a rotation, and a
// server whose sessions default to another isolation level.
import {randomBytes, randomUUID} from 'node:crypto';
import {readFile} from 'node:fs/promises';
import {setTimeout as delay} from 'node:timers/promises';
import test, {type ExecutionContext} from 'ava';
import pg from 'pg';
import ts from 'typescript';
import {TokenService, type TokenRecord} from '../../source/index.js';
import {PostgresTokenStore, PostgresUserStore, type PostgresStoreOptions} from '../../source/stores/postgres.js';
import {databaseUrl, serviceAvailable} from '../helpers/services.js';

const start = 1_700_000_000_000;
const hour = 3_600_000;

function record(overrides: Partial<TokenRecord> = {}): TokenRecord {
	return {
		id: randomUUID(),
		digest: randomBytes(32).toString('hex'),
		type: 'access',
		userId: 'user',
		familyId: randomUUID(),
		scopes: [],
		name: null,
		hint: 'pg_at_AbCd…',
		createdAt: start,
		expiresAt: start + hour,
		lastUsedAt: null,
		epoch: 0,
		retiredAt: null,
		graceUntil: null,
		graceCiphertext: null,
		...overrides,
	};
}

// Asked first: ava wants every test declared before the file's first await ends.
const available = await serviceAvailable('PostgreSQL', databaseUrl);

test('the store module imports pg for its types only: the core never loads it', async t => {
	const source = await readFile(new URL('../../source/stores/postgres.ts', import.meta.url), 'utf8');
	const {outputText} = ts.transpileModule(source, {compilerOptions: {module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: true, removeComments: true}});
	t.regex(outputText, /^export class PostgresTokenStore/m, 'the module as Node runs it');
	t.notRegex(outputText, /\bfrom\s+['"]pg['"]|import\s*\(\s*['"]pg['"]|\bimport\s+['"]pg['"]/);
});

// Connects only when asked, and is never asked.
const idlePool: pg.Pool = new pg.Pool({connectionString: 'postgres://nobody@127.0.0.1:9/none'});

test('options are validated when the store is made, naming the bad option', t => {
	for (const schema of ['', '1abc', 'a-b', 'a"; DROP TABLE x; --', 'x'.repeat(64), 'ünï']) {
		t.throws(() => new PostgresTokenStore(idlePool, {schema}), {instanceOf: TypeError, message: /`schema`/}, JSON.stringify(schema));
	}

	for (const tablePrefix of ['1_', 'a-', 'a"b', 'x'.repeat(44)]) {
		t.throws(() => new PostgresUserStore(idlePool, {tablePrefix}), {instanceOf: TypeError, message: /`tablePrefix`/}, JSON.stringify(tablePrefix));
	}

	t.throws(() => new PostgresTokenStore(Object.create(null) as pg.Pool), {instanceOf: TypeError, message: 'PostgresTokenStore takes a pg.Pool (with query and connect).'});
	t.throws(() => new PostgresUserStore(idlePool, null as unknown as PostgresStoreOptions), {instanceOf: TypeError});
	t.notThrows(() => new PostgresTokenStore(idlePool, {schema: 'Auth_2', tablePrefix: ''}));
	t.notThrows(() => new PostgresTokenStore(idlePool, {tablePrefix: 'x'.repeat(43)}));
});

if (available) {
	const schema = `kss_specific_${randomBytes(6).toString('hex')}`;
	const pools: pg.Pool[] = [];
	/**
	A pool of its own: a process of its own, as far as PostgreSQL can tell. Ended after the test `t`
	(the server's connections are shared: this file's tests also run one at a time).
	*/
	const newPool = (config: pg.PoolConfig = {}, t?: ExecutionContext) => {
		// Named, so that a test can find its own backends in pg_stat_activity.
		const pool = new pg.Pool({connectionString: databaseUrl, max: 10, application_name: schema, ...config});
		pool.on('error', error => {
			console.error(`PostgreSQL idle connection error: ${error.message}`);
		});
		if (t === undefined) {
			pools.push(pool);
		} else {
			t.teardown(async () => pool.end());
		}

		return pool;
	};

	const admin = newPool({max: 3});
	test.after.always(async () => {
		await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
		await Promise.all(pools.map(async pool => pool.end()));
	});

	let stores = 0;
	/** Stores on tables of their own (a table prefix), migrated, over `pool`. */
	const storesOn = async (pool: pg.Pool, tablePrefix = `s${++stores}_`) => {
		const tokens = new PostgresTokenStore(pool, {schema, tablePrefix});
		const users = new PostgresUserStore(pool, {schema, tablePrefix});
		await tokens.migrate();
		await users.migrate();
		return {tokens, users, tablePrefix};
	};

	test.serial('migrate makes the tables and indexes, and many processes may run it at once, again and again', async t => {
		const tablePrefix = 'migrated_';
		const migrations = Array.from({length: 6}, () => newPool({max: 1}, t)).flatMap(pool => [
			new PostgresTokenStore(pool, {schema, tablePrefix}).migrate(),
			new PostgresUserStore(pool, {schema, tablePrefix}).migrate(),
		]);
		await t.notThrowsAsync(Promise.all(migrations));
		await t.notThrowsAsync(storesOn(admin, tablePrefix), 'and once more');
		const {rows} = await admin.query<{tablename: string; indexdef: string}>(
			'SELECT tablename, indexdef FROM pg_indexes WHERE schemaname = $1 AND tablename LIKE $2 ORDER BY indexname',
			[schema, `${tablePrefix}%`],
		);
		const definitions = rows.map(row => row.indexdef.replace(/ USING btree/, '').replace(`"${schema}".`, '').replace(`${schema}.`, ''));
		t.deepEqual(definitions.sort(), [
			'CREATE INDEX migrated_tokens_expires_at_idx ON migrated_tokens (expires_at)',
			'CREATE INDEX migrated_tokens_family_id_idx ON migrated_tokens (family_id)',
			'CREATE INDEX migrated_tokens_user_id_idx ON migrated_tokens (user_id, created_at)',
			'CREATE UNIQUE INDEX migrated_epochs_pkey ON migrated_epochs (user_id)',
			'CREATE UNIQUE INDEX migrated_tokens_digest_idx ON migrated_tokens (digest)',
			'CREATE UNIQUE INDEX migrated_tokens_pkey ON migrated_tokens (id)',
			'CREATE UNIQUE INDEX migrated_users_pkey ON migrated_users (id)',
			'CREATE UNIQUE INDEX migrated_users_username_key ON migrated_users (username)',
		].sort());
	});

	test.serial('find is one query, and times over 2^31 come back as numbers', async t => {
		const pool = newPool({max: 1}, t);
		const {tokens} = await storesOn(pool);
		const token = record({lastUsedAt: start + 1, retiredAt: Number.MAX_SAFE_INTEGER, graceUntil: 2 ** 40});
		await tokens.create([token]);
		const client = await pool.connect();
		const sent: unknown[] = [];
		const query = client.query.bind(client) as (...parameters: unknown[]) => unknown;
		// Count what goes over the wire through the pool's one client.
		Object.assign(client, {query(...parameters: unknown[]) {
			sent.push(parameters[0]);
			return query(...parameters);
		}});
		client.release();
		t.deepEqual(await tokens.find(token.digest), {record: token, epoch: 0});
		t.is(sent.length, 1);
	});

	test.serial('the session cap holds when one user logs in from many processes at once', async t => {
		const users = `cap-${randomUUID()}`;
		const processes = await Promise.all(Array.from({length: 4}, async () => storesOn(newPool({max: 3}, t), 'cap_')));
		const limit = {max: 3, onLimit: 'refuse', now: start} as const;
		const created = await Promise.all(Array.from({length: 24}, async (_, index) => {
			const familyId = randomUUID();
			return processes[index % processes.length]!.tokens.create([record({userId: users, familyId}), record({userId: users, familyId, type: 'refresh'})], limit);
		}));
		t.is(created.filter(Boolean).length, 3, 'exactly the maximum');
		t.is((await processes[0]!.tokens.list(users, start)).length, 6);

		const evict = {...limit, onLimit: 'evict-oldest'} as const;
		const evicting = await Promise.all(Array.from({length: 12}, async (_, index) => processes[index % processes.length]!.tokens.create([record({userId: users, createdAt: start + 1 + index})], evict)));
		t.true(evicting.every(Boolean));
		t.is((await processes[0]!.tokens.list(users, start)).length, 3, 'evictions raced too, and left exactly the maximum');
	});

	test.serial('a username taken by many processes at once is created once', async t => {
		const processes = await Promise.all(Array.from({length: 4}, async () => storesOn(newPool({max: 3}, t), 'names_')));
		const username = `alice-${randomUUID()}`;
		const created = await Promise.all(Array.from({length: 20}, async (_, index) => processes[index % processes.length]!.users.create({
			id: randomUUID(), username, passwordHash: 'x', permissions: [], profile: {}, isActive: true, createdAt: start,
		})));
		t.is(created.filter(Boolean).length, 1);
	});

	/** Wait until `count` backends of a pool named `name` wait for a lock. */
	async function lockWaiters(t: ExecutionContext, name: string, count: number): Promise<void> {
		for (let tries = 0; tries < 200; tries++) {
			const {rows: [row]} = await admin.query<{waiting: string}>(
				'SELECT count(*) AS waiting FROM pg_stat_activity WHERE wait_event_type = $1 AND application_name = $2',
				['Lock', name],
			);
			if (Number(row?.waiting) >= count) {
				return;
			}

			await delay(10);
		}

		t.fail(`${count} lock waiters never showed up`);
	}

	test.serial('a logout that meets a rotation in flight takes the rotation\'s new pair with it', async t => {
		const name = `${schema}_logout`;
		const {tokens, tablePrefix} = await storesOn(newPool({application_name: name, max: 3}, t));
		const familyId = randomUUID();
		// Ids in the order that deadlocked a rotation which locked its token first and the family's
		// access token after, against a logout that locked the family's rows in id order.
		const access = record({familyId, id: `a-${randomUUID()}`});
		const refresh = record({familyId, type: 'refresh', id: `b-${randomUUID()}`});
		await tokens.create([access, refresh]);
		const next = [record({familyId, createdAt: start + 1}), record({familyId, type: 'refresh', createdAt: start + 1})];

		// Another process holds the refresh token's row, so both of ours queue up behind it:
		// the rotation first, then the logout.
		const holder = await admin.connect();
		try {
			await holder.query('BEGIN');
			await holder.query(`SELECT 1 FROM "${schema}"."${tablePrefix}tokens" WHERE id = $1 FOR UPDATE`, [refresh.id]);
			const rotating = tokens.rotate(refresh.digest, start + 1, undefined, next);
			await lockWaiters(t, name, 1);
			const revoking = tokens.revokeFamily(familyId);
			await lockWaiters(t, name, 2);
			await holder.query('COMMIT');
			t.deepEqual(await rotating, {kind: 'rotated'});
			t.is(await revoking, 3, 'the retired token and the new pair (the access token went with the rotation)');
		} finally {
			holder.release();
		}

		const left = await Promise.all([access, refresh, ...next].map(async token => tokens.find(token.digest)));
		t.deepEqual(left, [undefined, undefined, undefined, undefined], 'nothing of the session is left');
	});

	test.serial('rotation is exact on a server whose sessions default to SERIALIZABLE: no serialization failures, one winner', async t => {
		const pool = newPool({options: '-c default_transaction_isolation=serializable', max: 5}, t);
		const {rows: [row]} = await pool.query<{default_transaction_isolation: string}>('SHOW default_transaction_isolation');
		t.is(row?.default_transaction_isolation, 'serializable');
		const {tokens} = await storesOn(pool);
		const service = new TokenService({store: tokens, prefix: 'serial'});
		const pair = await service.issuePair('serial-user');
		const results = await Promise.allSettled(Array.from({length: 10}, async () => service.refresh(pair.refresh.token)));
		const statuses = results.map(result => (result.status === 'fulfilled' ? 200 : (result.reason as {status: number}).status));
		t.is(statuses.filter(status => status === 200).length, 1, statuses.join(','));
		t.is(statuses.filter(status => status === 400).length, 9, 'the others are refused, never a 503 of a serialization failure');
	});
	test.serial('a storm on sessions from four processes (refreshes of current and retired tokens, logouts, uses) never deadlocks, and a reuse leaves nothing of the session', async t => {
		const processes = await Promise.all(Array.from({length: 4}, async () => storesOn(newPool({max: 4}, t), 'storm_')));
		const services = processes.map(({tokens}) => new TokenService({store: tokens, prefix: 'storm', lastUsedInterval: 0}));
		const [first] = services as [TokenService];
		const failures: string[] = [];
		for (let round = 0; round < 8; round++) {
			const userId = `storm-${round}-${randomUUID()}`;
			const issued = await first.issuePair(userId);
			const second = await first.refresh(issued.refresh.token);
			const current = await first.refresh(second.refresh.token);
			const calls: Array<() => Promise<unknown>> = [
				...Array.from({length: 6}, () => async () => services[Math.floor(Math.random() * 4)]!.refresh(current.refresh.token)),
				...[issued, second].flatMap(retired => Array.from({length: 3}, () => async () => services[Math.floor(Math.random() * 4)]!.refresh(retired.refresh.token))),
				...Array.from({length: 2}, () => async () => services[Math.floor(Math.random() * 4)]!.revoke(current.access.token)),
				...Array.from({length: 4}, () => async () => services[Math.floor(Math.random() * 4)]!.verify(current.access.token, 'access')),
			];
			// Started a few milliseconds apart, so that some read before a rotation commits and some after.
			const results = await Promise.allSettled(calls.map(async call => {
				await delay(Math.random() * 6);
				return call();
			}));
			for (const result of results) {
				if (result.status === 'rejected' && (result.reason as {status?: unknown}).status !== 400) {
					failures.push(`round ${round}: ${String((result.reason as Error).cause ?? result.reason)}`);
				}
			}

			const {rows} = await admin.query(`SELECT id FROM "${schema}"."storm_tokens" WHERE family_id = $1`, [issued.access.record.familyId]);
			t.is(rows.length, 0, `round ${round}: nothing of the session is left`);
		}

		t.deepEqual(failures, [], 'only refusals (400), never a store error (a deadlock would be a 503)');
	});
}
