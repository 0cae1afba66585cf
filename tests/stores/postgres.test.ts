// The store contract on PostgreSQL. This run works in a schema of its own (a random name, dropped
// at the end), so that runs on one server never meet; each check gets tables of its own in it (a
// table prefix), empty as the contract asks.
import {randomBytes} from 'node:crypto';
import test from 'ava';
import pg from 'pg';
import {PostgresTokenStore, PostgresUserStore} from '../../source/stores/postgres.js';
import {databaseUrl, serviceAvailable} from '../helpers/services.js';
import {storeContract} from './contract.js';

if (await serviceAvailable('PostgreSQL', databaseUrl)) {
	const schema = `kss_contract_${randomBytes(6).toString('hex')}`;
	// One pool for every check: ava runs them at once, and a pool each would exhaust max_connections.
	const pool = new pg.Pool({connectionString: databaseUrl, max: 10});
	pool.on('error', error => {
		console.error(`PostgreSQL idle connection error: ${error.message}`);
	});
	test.after.always(async () => {
		await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
		await pool.end();
	});

	let checks = 0;
	storeContract({
		name: 'postgres',
		async create() {
			const options = {schema, tablePrefix: `c${++checks}_`};
			const tokens = new PostgresTokenStore(pool, options);
			const users = new PostgresUserStore(pool, options);
			await tokens.migrate();
			await users.migrate();
			return {tokens, users, close: async () => undefined};
		},
	});
}
