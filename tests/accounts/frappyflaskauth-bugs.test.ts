// frappyflaskauth's bugs, one test each, showing they are not ours: its expiry option was ignored,
// a logout did not survive a restart, no_user_management left routes on, and passwords were MD5.
import {mkdtemp, rm} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import Database from 'better-sqlite3';
import {SqliteTokenStore, SqliteUserStore} from '../../source/stores/sqlite.js';
import type {StoreFactory} from '../stores/contract.js';
import {accountStoreFactories} from './stores.js';
import {harness, type Pair} from './harness.js';

const P = '/api/user';

for (const factory of accountStoreFactories) {
	const title = (text: string) => `${factory.name}: ${text}`;

	test(title('tokenExpiration is honoured: the access token lives exactly that long, longer or shorter than the service default'), async t => {
		for (const tokenExpiration of [600, 7200]) {
			// The service's accessTtl is 86400 in the harness: tokenExpiration decides, in both directions.
			const h = await harness(t, factory, {tokenExpiration});
			await h.user('alice', 'alice password');
			const issuedAt = h.clock;
			const pair = await h.login('alice', 'alice password');
			t.is(pair.expires_in, tokenExpiration);
			h.clock = issuedAt + tokenExpiration * 1000 - 1;
			t.is((await h.call('GET', `${P}/me`, {token: pair.access_token})).status, 200, `${tokenExpiration}: alive 1 ms before`);
			h.clock = issuedAt + tokenExpiration * 1000;
			const expired = await h.call('GET', `${P}/me`, {token: pair.access_token});
			t.is(expired.status, 401, `${tokenExpiration}: expired at tokenExpiration`);
			t.deepEqual(expired.body, {error: 'expired_token', error_description: 'access token expired'});
			t.is(expired.header('www-authenticate'), 'Bearer realm="accounts", error="invalid_token"');
			// A refresh gives a new access token that lives tokenExpiration from then.
			const next = (await h.call('POST', `${P}/refresh`, {body: {refresh_token: pair.refresh_token}})).body as Pair;
			t.is(next.expires_in, tokenExpiration);
			h.clock += tokenExpiration * 1000 - 1;
			t.is((await h.call('GET', `${P}/me`, {token: next.access_token})).status, 200);
			h.clock += 1;
			t.is((await h.call('GET', `${P}/me`, {token: next.access_token})).status, 401);
		}

		const defaults = await harness(t, factory);
		await defaults.user('bob', 'bob password');
		t.is((await defaults.login('bob', 'bob password')).expires_in, 86_400, 'frappyflaskauth\'s default');
	});

	test(title('a TokenService whose access tokens live shorter than tokenExpiration is a loud 500, not a silent shorter life'), async t => {
		const h = await harness(t, factory, {service: {accessTtl: 3600}});
		await h.user('alice', 'alice password');
		const answer = await h.call('POST', `${P}/login`, {body: {username: 'alice', password: 'alice password'}});
		t.is(answer.status, 500);
		t.false(answer.text.includes('accessTtl'), 'the fix goes to the log, not to the client');
		t.is(h.errors.length, 1);
		t.regex(String(h.errors[0]), /tokenExpiration is 86400 s, but the TokenService's access tokens live 3600 s: make the service with accessTtl >= tokenExpiration/);
		const alice = await h.users.getByUsername('alice');
		t.deepEqual(await h.tokens.sessions(alice!.id), [], 'the session it issued was revoked');
	});

	test(title('noUserManagement leaves no management route at all: 404, even for an admin'), async t => {
		const h = await harness(t, factory, {noUserManagement: true, allowOwnProfileEdit: true});
		const admin = await h.admin();
		const alice = await h.user('alice', 'alice password');
		const routes: Array<[string, string, unknown]> = [
			['GET', '/users', undefined],
			['GET', '/users?page=2', undefined],
			['POST', '/users', {username: 'eve', password: 'eve password'}],
			['GET', `/users/${alice.id}`, undefined],
			['DELETE', `/users/${alice.id}`, undefined],
			['PUT', `/users/${alice.id}/permissions`, {permissions: ['admin']}],
			['PUT', `/users/${alice.id}/profile`, {profile: {x: 1}}],
			['PUT', `/users/${alice.id}/password`, {password: 'new password'}],
		];
		for (const [method, route, body] of routes) {
			const answer = await h.call(method, `${P}${route}`, {token: admin.access_token, ...(body === undefined ? {} : {body})});
			t.is(answer.status, 404, `${method} ${route}`);
		}

		t.false(h.mounted.routes.some(route => route.path.includes('/users')));
		t.false(Object.keys(h.mounted.openapi().paths).some(route => route.includes('/users')), 'nor in the document');
		t.like(await h.users.getById(alice.id), {permissions: [], profile: {}});
		t.is(await h.users.getByUsername('eve'), undefined);
		t.is((await h.call('GET', `${P}/me`, {token: admin.access_token})).status, 200, 'the own routes are there');
		t.is((await h.call('PUT', `${P}/me/profile`, {token: admin.access_token, body: {profile: {x: 1}}})).status, 200, 'and my own profile, which is not management');
	});

	test(title('passwords are scrypt, never MD5: every stored hash starts with $scrypt$'), async t => {
		const h = await harness(t, factory, {passwordParameters: {ln: 11, r: 8, p: 1}});
		const admin = await h.admin();
		const created = (await h.call('POST', `${P}/users`, {token: admin.access_token, body: {username: 'alice', password: 'alice password'}})).body as {id: string};
		const stored = async () => (await h.users.getById(created.id))!.passwordHash;
		const md5ish = /^[\da-f]{32}$/i;
		const first = await stored();
		t.regex(first, /^\$scrypt\$ln=11,r=8,p=1\$[\w-]{22}\$[\w-]{43}$/);
		t.notRegex(first, md5ish);
		const pair = await h.login('alice', 'alice password');
		t.is((await h.call('PUT', `${P}/password`, {token: pair.access_token, body: {oldPassword: 'alice password', newPassword: 'second password'}})).status, 204);
		t.regex(await stored(), /^\$scrypt\$ln=11,/);
		t.not(await stored(), first);
		t.is((await h.call('PUT', `${P}/users/${created.id}/password`, {token: admin.access_token, body: {password: 'third password'}})).status, 204);
		t.regex(await stored(), /^\$scrypt\$ln=11,/);
		// A hash made at other parameters is replaced at the next login, now that the password is known.
		const legacy = (await h.user('bob', 'bob password')).id;
		t.regex((await h.users.getById(legacy))!.passwordHash, /^\$scrypt\$ln=10,/);
		await h.login('bob', 'bob password');
		t.regex((await h.users.getById(legacy))!.passwordHash, /^\$scrypt\$ln=11,/);
	});
}

test('sqlite: a logout survives a restart: revoke, close, reopen the file, and the token is refused', async t => {
	const directory = await mkdtemp(path.join(os.tmpdir(), 'ksa-accounts-restart-'));
	t.teardown(async () => {
		await rm(directory, {recursive: true, force: true});
	});
	const file = path.join(directory, 'auth.db');
	// One factory per "process lifetime", over the same file; close() keeps the file.
	const over = (db: Database.Database): StoreFactory => ({
		name: 'sqlite-file',
		async create() {
			const tokens = new SqliteTokenStore(db);
			const users = new SqliteUserStore(db);
			await tokens.migrate();
			await users.migrate();
			return {tokens, users, async close() {}};
		},
	});

	const firstDb = new Database(file);
	const first = await harness(t, over(firstDb));
	await first.user('alice', 'alice password');
	const loggedOut = await first.login('alice', 'alice password');
	const kept = await first.login('alice', 'alice password');
	t.is((await first.call('POST', `${P}/logout`, {token: loggedOut.access_token})).status, 204);
	firstDb.close();

	// The restart: a new connection, new stores, a new service and app.
	const secondDb = new Database(file);
	t.teardown(() => {
		secondDb.close();
	});
	const second = await harness(t, over(secondDb), {noAdmin: true});
	t.is((await second.call('GET', `${P}/me`, {token: loggedOut.access_token})).status, 401, 'the logged-out token stays refused');
	t.like(await second.call('POST', `${P}/refresh`, {body: {refresh_token: loggedOut.refresh_token}}), {status: 400, body: {error: 'invalid_grant'}});
	t.like(await second.call('GET', `${P}/me`, {token: kept.access_token}), {status: 200, body: {username: 'alice'}}, 'the restart forgot nothing else');
	// revokeAll (logout everywhere) survives too.
	t.is((await second.call('POST', `${P}/logout-all`, {token: kept.access_token})).status, 204);
	const thirdDb = new Database(file);
	t.teardown(() => {
		thirdDb.close();
	});
	const third = await harness(t, over(thirdDb), {noAdmin: true});
	t.is((await third.call('GET', `${P}/me`, {token: kept.access_token})).status, 401);
});
