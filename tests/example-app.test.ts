import {spawn} from 'node:child_process';
import {randomUUID} from 'node:crypto';
import {mkdtempSync, rmSync} from 'node:fs';
import {tmpdir} from 'node:os';
import path from 'node:path';
import {once} from 'node:events';
import test, {type ExecutionContext} from 'ava';
import Database from 'better-sqlite3';
import {Validator} from '@seriousme/openapi-schema-validator';
import {Redis} from 'ioredis';
import {digestToken, isWellFormedToken, type TokenStore} from 'koa-stateless-auth';
import {createExampleApp, ensureAdmin, reuseGrace, tokenLifetimes, type ExampleOptions} from '../example-app/app.js';
import {openStores} from '../example-app/stores.js';
import {deletePrefix} from './fixtures/redis-helpers.js';
import {listen, rawRequest} from './helpers/http.js';
import {redisUrl, serviceAvailable} from './helpers/services.js';

// The scenarios of Flask-Stateless-Auth's example app, against ours, over HTTP: the library's
// account routes (/api/user/...) and the app's own routes beside them, on one TokenService; and the
// token lifecycle it gets from the library: rotation, reuse detection, sessions, restarts.

type Pair = {access_token: string; refresh_token: string; token_type: string; expires_in: number};
type Session = {id: string; hint: string; name: string | null; createdAt: string; lastUsedAt: string | null; expiresAt: string; current: boolean};
type Answer = {status: number; headers: Headers; body: unknown};

/** scrypt at a low cost, so that tests hash quickly; `npm start` uses the library's default. */
const lowCost = {ln: 10, r: 8, p: 1};
const second = 1000;
const password = 'correct horse battery';
const adminPassword = 'admin password 1';
// Asked first: every test is declared synchronously after it.
const redisAvailable = await serviceAvailable('Redis', redisUrl);

function temporaryDatabase(t: ExecutionContext): string {
	const directory = mkdtempSync(path.join(tmpdir(), 'koa-stateless-auth-'));
	t.teardown(() => {
		rmSync(directory, {recursive: true, force: true});
	});
	return path.join(directory, 'example.sqlite');
}

/** The store, with the name of every method called on it pushed to `calls`. */
function spyOn(store: TokenStore, calls: string[]): TokenStore {
	return new Proxy(store, {
		get(target, key) {
			const value: unknown = Reflect.get(target, key, target);
			if (typeof value !== 'function') {
				return value;
			}

			return (...args: unknown[]): unknown => {
				calls.push(String(key));
				return Reflect.apply(value, target, args);
			};
		},
	});
}

type SendOptions = {token?: string; scheme?: string; body?: unknown; form?: Record<string, string>};

async function start(t: ExecutionContext, {databasePath = ':memory:', ...options}: Partial<Omit<ExampleOptions, 'stores'>> & {databasePath?: string} = {}) {
	let clock = Date.now();
	const log: string[] = [];
	const stores = await openStores({DATABASE_PATH: databasePath});
	t.teardown(stores.close);
	const storeCalls: string[] = [];
	const example = createExampleApp({
		stores: {users: stores.users, tokens: spyOn(stores.tokens, storeCalls)}, now: () => clock, scrypt: lowCost, log: line => log.push(line), ...options,
	});
	const url = await listen(t, example.app);
	const send = async (method: string, route: string, {token, scheme = 'Bearer', body, form}: SendOptions = {}): Promise<Answer> => {
		const headers: Record<string, string> = {};
		if (token !== undefined) {
			headers['authorization'] = `${scheme} ${token}`;
		}

		let payload: string | undefined;
		if (body !== undefined) {
			headers['content-type'] = 'application/json';
			payload = JSON.stringify(body);
		} else if (form !== undefined) {
			headers['content-type'] = 'application/x-www-form-urlencoded';
			payload = new URLSearchParams(form).toString();
		}

		const response = await fetch(`${url}${route}`, {method, headers, ...(payload === undefined ? {} : {body: payload})});
		const text = await response.text();
		return {status: response.status, headers: response.headers, body: text === '' ? undefined : JSON.parse(text) as unknown};
	};

	const login = async (username: string, secret = password, name?: string) => {
		const response = await send('POST', '/api/user/login', {body: {username, password: secret, ...(name === undefined ? {} : {name})}});
		t.is(response.status, 200, JSON.stringify(response.body));
		return response.body as Pair;
	};

	const signUp = async (username: string, secret = password) => {
		t.is((await send('POST', '/user', {body: {username, password: secret}})).status, 201);
		return login(username, secret);
	};

	const refresh = async (refreshToken: string) => send('POST', '/api/user/refresh', {body: {refresh_token: refreshToken}});

	const sessions = async (token: string) => {
		const response = await send('GET', '/api/user/sessions', {token});
		t.is(response.status, 200);
		return (response.body as {sessions: Session[]}).sessions;
	};

	/** The first admin, made as `npm start` makes it, and logged in. */
	const admin = async (username = 'admin') => {
		t.is(await ensureAdmin(stores.users, {username, password: adminPassword, scrypt: lowCost}), 'created');
		return login(username, adminPassword);
	};

	return {
		...example, stores, url, send, signUp, login, refresh, sessions, admin, log, storeCalls, advance: (ms: number) => {
			clock += ms;
		},
	};
}

/**
RFC 6749 §5.2: a 400 with `error` and `error_description` (and, from the account routes, the
`field` that is wrong), and no Bearer challenge.
*/
function assertOAuthError(t: ExecutionContext, response: Answer, error: string, description?: string) {
	t.is(response.status, 400);
	t.like(response.body, {error, ...(description === undefined ? {} : {error_description: description})});
	t.deepEqual(Object.keys(response.body as object).filter(key => key !== 'field'), ['error', 'error_description']);
	t.is(response.headers.get('www-authenticate'), null);
	t.is(response.headers.get('cache-control'), 'no-store');
}

/** A token of the right shape whose checksum is wrong: a typo. */
function mistyped(token: string): string {
	const last = token.at(-1) === 'a' ? 'b' : 'a';
	return token.slice(0, -1) + last;
}

test('sign up: a user, with no permission; the same name again, however typed, is a 409', async t => {
	const {send, users} = await start(t);
	const created = await send('POST', '/user', {body: {username: 'alice', password: 'correct horse'}});
	t.is(created.status, 201);
	const {id} = created.body as {id: string};
	t.deepEqual(created.body, {id, username: 'alice'});
	t.regex(id, /^[\da-f]{8}-[\da-f]{4}-[\da-f]{4}-[\da-f]{4}-[\da-f]{12}$/, 'ids are strings (UUIDs)');
	t.like(await users.getById(id), {username: 'alice', permissions: [], profile: {}, isActive: true});
	const again = await send('POST', '/user', {body: {username: ' ａｌｉｃｅ ', password: 'another one'}});
	t.is(again.status, 409, 'NFKC and trimmed, as the account routes compare names');
	t.deepEqual(again.body, {error: 'username_taken', error_description: 'That username is taken', field: 'username'});
});

test('signing up with a bad body is a 400 in the account routes\' shape, naming the field; nobody signs up into a permission', async t => {
	const {send, users} = await start(t);
	const short = await send('POST', '/user', {body: {username: 'bob', password: 'short'}});
	t.is(short.status, 400);
	t.deepEqual(short.body, {error: 'invalid_request', error_description: 'password: At least 8 characters', field: 'password'});
	t.like((await send('POST', '/user', {body: {password: 'long enough'}})).body, {error: 'invalid_request', field: 'username'});
	t.like((await send('POST', '/user', {body: {username: 'bob smith', password: 'long enough'}})).body, {error: 'invalid_request', field: 'username'});
	t.deepEqual((await send('POST', '/user', {body: ['not', 'an', 'object']})).body, {error: 'invalid_request', error_description: 'The request body must be a JSON object'});
	const admin = await send('POST', '/user', {body: {username: 'mallory', password: 'long enough', permissions: ['admin']}});
	t.is(admin.status, 400);
	t.like(admin.body, {error: 'invalid_request', field: 'permissions'});
	t.is(await users.getByUsername('mallory'), undefined);
});

test('get a token pair: the library\'s format, never stored as sent, nor the password', async t => {
	const databasePath = temporaryDatabase(t);
	const {signUp} = await start(t, {databasePath});
	const pair = await signUp('alice');
	t.is(pair.token_type, 'Bearer');
	t.is(pair.expires_in, 3600);
	t.regex(pair.access_token, /^example_at_[\dA-Za-z]{49}$/);
	t.regex(pair.refresh_token, /^example_rt_[\dA-Za-z]{49}$/);
	t.true(isWellFormedToken(pair.access_token, ['example_at']));
	t.true(isWellFormedToken(pair.refresh_token, ['example_rt']));
	const db = new Database(databasePath, {readonly: true});
	t.teardown(() => db.close());
	const tokens = JSON.stringify(db.prepare('SELECT * FROM ksa_tokens').all());
	t.false(tokens.includes(pair.access_token));
	t.false(tokens.includes(pair.refresh_token));
	t.true(tokens.includes(digestToken(pair.access_token)), 'kept as a digest');
	const users = JSON.stringify(db.prepare('SELECT * FROM ksa_users').all());
	t.false(users.includes(password));
	t.regex(users, /\$scrypt\$ln=10,r=8,p=1\$/);
});

test('an unknown user and a wrong password get the same answer', async t => {
	const {send, signUp} = await start(t);
	await signUp('alice');
	const wrongPassword = await send('POST', '/api/user/login', {body: {username: 'alice', password: 'not the password'}});
	const unknownUser = await send('POST', '/api/user/login', {body: {username: 'mallory', password: 'not the password'}});
	assertOAuthError(t, wrongPassword, 'invalid_grant', 'Invalid username or password');
	t.deepEqual([unknownUser.status, unknownUser.body], [wrongPassword.status, wrongPassword.body]);
});

test('secret and whoami with the access token', async t => {
	const {send, signUp} = await start(t);
	const {access_token: token} = await signUp('alice');
	const secret = await send('GET', '/secret', {token});
	t.is(secret.status, 200);
	t.deepEqual(secret.body, {secret: 'Stateless auth is awesome :O'});
	t.deepEqual((await send('GET', '/whoami', {token})).body, {my_username: 'alice'});
	t.like((await send('GET', '/api/user/me', {token})).body, {username: 'alice', permissions: [], isActive: true});
});

test('refresh: the refresh token buys a new pair of the same session, and the old pair stops working', async t => {
	const {send, signUp, sessions, refresh, advance} = await start(t);
	const old = await signUp('alice');
	assertOAuthError(t, await refresh(old.access_token), 'invalid_grant', 'Invalid refresh token');
	const [session] = await sessions(old.access_token);
	const refreshed = await refresh(old.refresh_token);
	t.is(refreshed.status, 200);
	t.is(refreshed.headers.get('cache-control'), 'no-store');
	t.is(refreshed.headers.get('pragma'), 'no-cache');
	const pair = refreshed.body as Pair;
	t.deepEqual(Object.keys(pair), ['access_token', 'token_type', 'expires_in', 'refresh_token']);
	t.like(pair, {token_type: 'Bearer', expires_in: 3600});
	t.not(pair.access_token, old.access_token);
	t.not(pair.refresh_token, old.refresh_token);
	t.deepEqual((await send('GET', '/whoami', {token: pair.access_token})).body, {my_username: 'alice'});
	t.is((await send('GET', '/whoami', {token: old.access_token})).status, 401);
	t.deepEqual((await sessions(pair.access_token)).map(({id}) => id), [session!.id], 'one session still');
	advance(60 * second);
	t.is((await refresh(pair.refresh_token)).status, 200, 'the new refresh token works');
});

test('a retry within the grace window gets the same pair', async t => {
	const {send, signUp, refresh, advance} = await start(t);
	const old = await signUp('alice');
	const first = await refresh(old.refresh_token);
	t.is(first.status, 200);
	advance(reuseGrace * second / 2);
	const retry = await refresh(old.refresh_token);
	t.is(retry.status, 200);
	const [a, b] = [first.body as Pair, retry.body as Pair];
	t.is(b.access_token, a.access_token);
	t.is(b.refresh_token, a.refresh_token);
	t.is((await send('GET', '/whoami', {token: b.access_token})).status, 200);
});

test('two refreshes at once with one refresh token: one rotation, and both get its pair', async t => {
	const {send, signUp, sessions, refresh} = await start(t);
	const old = await signUp('alice');
	const answers = await Promise.all([refresh(old.refresh_token), refresh(old.refresh_token)]);
	t.deepEqual(answers.map(answer => answer.status), [200, 200]);
	const [a, b] = answers.map(answer => answer.body as Pair);
	t.is(a!.refresh_token, b!.refresh_token);
	t.is((await send('GET', '/whoami', {token: a!.access_token})).status, 200);
	t.is((await sessions(a!.access_token)).length, 1);
});

test('a refresh token used again after the grace window: invalid_grant, and the whole session is revoked', async t => {
	const {send, signUp, login, refresh, advance, accounts} = await start(t);
	const reused: unknown[] = [];
	accounts.events.on('tokenReused', event => reused.push(event));
	const stolen = await signUp('alice');
	const other = await login('alice');
	const newer = (await refresh(stolen.refresh_token)).body as Pair;
	t.is((await send('GET', '/whoami', {token: newer.access_token})).status, 200);
	advance((reuseGrace + 1) * second);
	assertOAuthError(t, await refresh(stolen.refresh_token), 'invalid_grant', 'Invalid refresh token');
	t.is(reused.length, 1, 'the accounts\' tokenReused event');
	t.is((await send('GET', '/whoami', {token: newer.access_token})).status, 401, 'the newer access token is refused too');
	assertOAuthError(t, await refresh(newer.refresh_token), 'invalid_grant', 'Invalid refresh token');
	t.is((await send('GET', '/whoami', {token: other.access_token})).status, 200, 'another session of the same user lives on');
});

test('a refresh that loses its session to a logout between check and rotation issues nothing', async t => {
	const databasePath = temporaryDatabase(t);
	const {signUp, sessions, refresh, stores} = await start(t, {databasePath});
	const old = await signUp('alice');
	const [session] = await sessions(old.access_token);
	// Another process logs the session out after the service has read the refresh token as current.
	const store = stores.tokens;
	const rotate = store.rotate.bind(store);
	store.rotate = async (...args) => {
		t.is(await store.revokeFamily(session!.id), 2);
		return rotate(...args);
	};

	assertOAuthError(t, await refresh(old.refresh_token), 'invalid_grant', 'Invalid refresh token');
	const db = new Database(databasePath, {readonly: true});
	t.teardown(() => db.close());
	t.deepEqual(db.prepare('SELECT COUNT(*) AS tokens FROM ksa_tokens').get(), {tokens: 0});
});

test('log out: this session\'s pair stops working, and no other session', async t => {
	const {send, signUp, login, refresh} = await start(t);
	const pair = await signUp('alice');
	const other = await login('alice');
	const refused = await send('POST', '/api/user/logout', {token: pair.refresh_token});
	t.is(refused.status, 401, 'a refresh token is not an access token');
	t.deepEqual(refused.body, {error: 'invalid_token', error_description: 'Invalid token'});
	const loggedOut = await send('POST', '/api/user/logout', {token: pair.access_token});
	t.is(loggedOut.status, 204);
	t.is(loggedOut.body, undefined);
	t.is((await send('GET', '/secret', {token: pair.access_token})).status, 401);
	assertOAuthError(t, await refresh(pair.refresh_token), 'invalid_grant');
	t.is((await send('GET', '/whoami', {token: other.access_token})).status, 200, 'another session of the same user');
	t.is((await refresh(other.refresh_token)).status, 200);
});

test('log out everywhere: every session and API key of mine', async t => {
	const {send, signUp, login, refresh} = await start(t);
	const first = await signUp('alice');
	const second = await login('alice');
	const bob = await signUp('bob');
	const key = ((await send('POST', '/api/user/api-keys', {token: first.access_token, body: {name: 'cron'}})).body as {key: string}).key;
	t.is((await send('POST', '/api/user/logout-all', {token: second.access_token})).status, 204);
	for (const token of [first.access_token, second.access_token]) {
		t.is((await send('GET', '/whoami', {token})).status, 401);
	}

	t.is((await send('GET', '/whoami', {token: key, scheme: 'Token'})).status, 401, 'the API key too');
	assertOAuthError(t, await refresh(first.refresh_token), 'invalid_grant');
	t.is((await send('GET', '/whoami', {token: bob.access_token})).status, 200, 'another user');
});

test('log in: RFC 6749 §5.1, a 200 with the pair and no-store', async t => {
	const {send} = await start(t);
	await send('POST', '/user', {body: {username: 'alice', password}});
	const response = await send('POST', '/api/user/login', {body: {username: 'alice', password}});
	t.is(response.status, 200);
	t.is(response.headers.get('cache-control'), 'no-store');
	t.is(response.headers.get('pragma'), 'no-cache');
	t.regex(response.headers.get('content-type') ?? '', /^application\/json/);
	const pair = response.body as Pair;
	t.deepEqual(Object.keys(pair), ['access_token', 'token_type', 'expires_in', 'refresh_token']);
	t.like(pair, {token_type: 'Bearer', expires_in: 3600});
	t.is((await send('GET', '/whoami', {token: pair.access_token})).status, 200);
});

test('log in with a form: the password grant of RFC 6749 §4.3', async t => {
	const {send, refresh} = await start(t);
	await send('POST', '/user', {body: {username: 'alice', password}});
	const response = await send('POST', '/api/user/login', {form: {grant_type: 'password', username: 'alice', password}});
	t.is(response.status, 200);
	const pair = response.body as Pair;
	t.is((await send('GET', '/whoami', {token: pair.access_token})).status, 200);
	t.is((await send('POST', '/api/user/refresh', {form: {grant_type: 'refresh_token', refresh_token: pair.refresh_token}})).status, 200, 'a refresh with a form (§6)');
	// Another grant type is refused as a request the endpoint cannot use (the account routes do not
	// answer RFC 6749's `unsupported_grant_type`).
	assertOAuthError(t, await send('POST', '/api/user/login', {form: {grant_type: 'client_credentials', username: 'alice', password}}), 'invalid_request');
	assertOAuthError(t, await send('POST', '/api/user/login', {body: {grant_type: ['password'], username: 'alice', password}}), 'invalid_request');
	assertOAuthError(t, await refresh(''), 'invalid_request');
});

test('log-in failures are RFC 6749 §5.2 errors: invalid_grant or invalid_request', async t => {
	const {send, signUp, url} = await start(t);
	await signUp('alice');
	assertOAuthError(t, await send('POST', '/api/user/login', {body: {username: 'alice', password: 'not the password'}}), 'invalid_grant', 'Invalid username or password');
	const missing = await send('POST', '/api/user/login', {body: {username: 'alice'}});
	assertOAuthError(t, missing, 'invalid_request');
	t.like(missing.body, {field: 'password'});
	assertOAuthError(t, await send('POST', '/api/user/login', {body: {password}}), 'invalid_request');
	assertOAuthError(t, await send('POST', '/api/user/login'), 'invalid_request');
	const malformed = await fetch(`${url}/api/user/login`, {method: 'POST', headers: {'content-type': 'application/json'}, body: '{"username":"alice",'});
	t.is(malformed.status, 400);
	t.deepEqual(await malformed.json(), {error: 'invalid_request', error_description: 'Request body is not valid JSON'});
	const text = await fetch(`${url}/api/user/login`, {method: 'POST', headers: {'content-type': 'text/plain'}, body: 'alice'});
	t.is(text.status, 415);
	t.like(await text.json(), {error: 'invalid_request'});
});

test('refresh failures are RFC 6749 §5.2 errors: invalid_grant or invalid_request', async t => {
	const {send, signUp, refresh, advance} = await start(t);
	const pair = await signUp('alice');
	assertOAuthError(t, await send('POST', '/api/user/refresh', {body: {}}), 'invalid_request');
	assertOAuthError(t, await send('POST', '/api/user/refresh', {body: {refresh_token: pair.refresh_token, scope: 'more'}}), 'invalid_request');
	assertOAuthError(t, await refresh('bm9wZQ'), 'invalid_grant', 'Invalid refresh token');
	assertOAuthError(t, await refresh(mistyped(pair.refresh_token)), 'invalid_grant', 'Invalid refresh token');
	advance(tokenLifetimes.refresh * second);
	assertOAuthError(t, await refresh(pair.refresh_token), 'invalid_grant', 'Invalid refresh token');
});

test('log out with the refresh token alone, once the access token has expired (RFC 7009)', async t => {
	const {send, signUp, refresh, advance} = await start(t);
	const pair = await signUp('alice');
	advance(tokenLifetimes.access * second);
	t.is((await send('GET', '/whoami', {token: pair.access_token})).status, 401, 'the access token has expired');
	t.is((await send('POST', '/api/user/logout', {token: pair.access_token})).status, 401, 'so the account routes\' logout refuses it');
	t.is((await send('POST', '/token/revoke', {form: {token: pair.refresh_token}})).status, 200);
	assertOAuthError(t, await refresh(pair.refresh_token), 'invalid_grant', 'Invalid refresh token');
});

test('POST /token/revoke (RFC 7009): either token revokes the pair, form or JSON', async t => {
	const {send, signUp, login, refresh} = await start(t);
	const first = await signUp('alice');
	const revoked = await send('POST', '/token/revoke', {form: {token: first.refresh_token, token_type_hint: 'refresh_token'}});
	t.is(revoked.status, 200);
	t.is(revoked.headers.get('cache-control'), 'no-store');
	t.is((await send('GET', '/whoami', {token: first.access_token})).status, 401);
	assertOAuthError(t, await refresh(first.refresh_token), 'invalid_grant');

	const second = await login('alice');
	// A wrong hint is only a hint (RFC 7009 §2.1).
	t.is((await send('POST', '/token/revoke', {body: {token: second.access_token, token_type_hint: 'refresh_token'}})).status, 200);
	assertOAuthError(t, await refresh(second.refresh_token), 'invalid_grant');
	t.is((await send('GET', '/whoami', {token: second.access_token})).status, 401);

	t.is((await send('POST', '/token/revoke', {form: {token: 'bm9wZQ'}})).status, 200, 'an unknown token is not an error');
	assertOAuthError(t, await send('POST', '/token/revoke', {form: {}}), 'invalid_request', 'token is required');
	assertOAuthError(t, await send('POST', '/token/revoke', {body: {token: ['a', 'b']}}), 'invalid_request');
});

test('an expired access token is refused, and the refresh token still works', async t => {
	const {send, signUp, refresh, advance} = await start(t);
	const pair = await signUp('alice');
	advance(tokenLifetimes.access * second);
	const expired = await send('GET', '/secret', {token: pair.access_token});
	t.is(expired.status, 401);
	t.deepEqual(expired.body, {error: {type: 'token', message: 'access token expired'}});
	t.is(expired.headers.get('www-authenticate'), 'Bearer realm="example", error="invalid_token"');
	const me = await send('GET', '/api/user/me', {token: pair.access_token});
	t.deepEqual([me.status, me.body], [401, {error: 'expired_token', error_description: 'access token expired'}]);
	t.is((await refresh(pair.refresh_token)).status, 200);
});

test('a deactivated user\'s tokens are refused like unknown ones, and a refresh ends the session', async t => {
	const {send, signUp, refresh, users} = await start(t);
	const pair = await signUp('alice');
	const alice = await users.getByUsername('alice');
	t.true(await users.update(alice!.id, {isActive: false}));
	const refused = await send('GET', '/whoami', {token: pair.access_token});
	t.is(refused.status, 401);
	t.deepEqual(refused.body, {error: {type: 'token', message: 'Invalid token'}});
	assertOAuthError(t, await send('POST', '/api/user/login', {body: {username: 'alice', password}}), 'invalid_grant');
	assertOAuthError(t, await refresh(pair.refresh_token), 'invalid_grant');
	t.true(await users.update(alice!.id, {isActive: true}));
	assertOAuthError(t, await refresh(pair.refresh_token), 'invalid_grant', 'Invalid refresh token');
	t.is((await send('GET', '/whoami', {token: pair.access_token})).status, 401, 'the session is gone');
});

test('an invalid token', async t => {
	const {send} = await start(t);
	const refused = await send('GET', '/secret', {token: 'bm9wZQ=='});
	t.is(refused.status, 401);
	t.deepEqual(refused.body, {error: {type: 'token', message: 'Invalid token'}});
});

test('a malformed, mistyped or misplaced token never reaches the store', async t => {
	const {send, signUp, refresh, storeCalls} = await start(t);
	const pair = await signUp('alice');
	const made = (prefix: string) => `${prefix}_${'A'.repeat(49)}`;
	storeCalls.length = 0;
	for (const token of [mistyped(pair.access_token), made('example_at'), 'bm9wZQ==', pair.refresh_token, made('other_at'), made('example_key')]) {
		const refused = await send('GET', '/whoami', {token});
		t.is(refused.status, 401, token);
		t.deepEqual(refused.body, {error: {type: 'token', message: 'Invalid token'}});
		t.is((await send('GET', '/api/user/me', {token})).status, 401, token);
	}

	t.is((await send('GET', '/whoami', {token: mistyped(pair.access_token), scheme: 'Token'})).status, 401, 'nor a mistyped API key');
	for (const token of [mistyped(pair.refresh_token), pair.access_token, made('example_rt')]) {
		assertOAuthError(t, await refresh(token), 'invalid_grant', 'Invalid refresh token');
	}

	t.is((await send('POST', '/token/revoke', {form: {token: mistyped(pair.access_token)}})).status, 200);
	t.is((await send('POST', '/token/revoke', {form: {token: mistyped(pair.refresh_token)}})).status, 200);
	t.deepEqual(storeCalls, [], 'no store call');
	t.is((await send('GET', '/whoami', {token: pair.access_token})).status, 200, 'nothing was revoked');
	t.true(storeCalls.includes('find'), 'a good token is looked up');
});

test('a bad request: a malformed header', async t => {
	const {url} = await start(t);
	const refused = await rawRequest(url, '/secret', [['Authorization', 'Bearer not a token']]);
	t.is(refused.status, 400);
	t.deepEqual(JSON.parse(refused.body), {error: {type: 'request', message: 'Malformed authorization header'}});
	t.is(refused.header('www-authenticate'), 'Bearer realm="example", error="invalid_request"');
});

test('a wrong scheme', async t => {
	const {send, signUp} = await start(t);
	const {access_token: token} = await signUp('alice');
	const refused = await send('GET', '/secret', {token, scheme: 'Snaker'});
	t.is(refused.status, 401);
	t.deepEqual(refused.body, {error: {type: 'request', message: 'Invalid token type'}});
	t.is(refused.headers.get('www-authenticate'), 'Bearer realm="example"');
});

test('a wrong header name', async t => {
	const {url, signUp} = await start(t);
	const {access_token: token} = await signUp('alice');
	const refused = await fetch(`${url}/secret`, {headers: {'x-authorization': `Bearer ${token}`}});
	t.is(refused.status, 401);
	t.deepEqual(await refused.json(), {error: {type: 'request', message: 'No token provided'}});
});

test('the guards\' refusals on the account routes are in the account routes\' shape, with their challenge', async t => {
	const {send, signUp} = await start(t);
	const {access_token: token} = await signUp('alice');
	const none = await send('GET', '/api/user/sessions');
	t.deepEqual([none.status, none.body], [401, {error: 'missing_credentials', error_description: 'No token provided'}]);
	t.is(none.headers.get('www-authenticate'), 'Bearer realm="example"');
	t.is(none.headers.get('cache-control'), 'no-store');
	const scope = await send('GET', '/api/user/users', {token});
	t.deepEqual([scope.status, scope.body], [403, {error: 'insufficient_scope', error_description: 'Insufficient permissions'}]);
	t.is(scope.headers.get('www-authenticate'), 'Bearer realm="example", error="insufficient_scope", scope="admin"');
	const wrong = await send('PUT', '/api/user/password', {token, body: {oldPassword: 'not the password', newPassword: 'a new password'}});
	t.deepEqual([wrong.status, wrong.body], [400, {error: 'invalid_password', error_description: 'The current password is wrong', field: 'oldPassword'}]);
});

test('the context is cleared between requests', async t => {
	const {send, signUp} = await start(t);
	const alice = await signUp('alice');
	const bob = await signUp('bob');
	t.deepEqual((await send('GET', '/whoami', {token: alice.access_token})).body, {my_username: 'alice'});
	t.deepEqual((await send('GET', '/public', {token: alice.access_token})).body, {message: 'anyone may read this', current_user: null});
	t.deepEqual((await send('GET', '/whoami', {token: bob.access_token})).body, {my_username: 'bob'});
	t.is((await send('GET', '/whoami')).status, 401);
});

test('concurrent requests of many users each see their own user', async t => {
	const {send, signUp} = await start(t);
	const names = ['alice', 'bob', 'carol', 'dave'];
	const pairs = await Promise.all(names.map(async name => signUp(name)));
	const rounds = Array.from({length: 50}, (_, index) => index % names.length);
	const answers = await Promise.all(rounds.map(async index => (await send('GET', '/whoami', {token: pairs[index]!.access_token})).body));
	t.deepEqual(answers, rounds.map(index => ({my_username: names[index]})));
});

test('sessions: mine, with names, hints and times and never a token; I can revoke one of mine, not another\'s', async t => {
	const {send, signUp, login, sessions, refresh, advance} = await start(t);
	t.is((await send('POST', '/user', {body: {username: 'alice', password}})).status, 201);
	const phone = await login('alice', password, 'phone');
	advance(second);
	const laptop = await login('alice', password, 'laptop');
	advance(second);
	const tablet = await login('alice');
	const bob = await signUp('bob');
	t.is((await send('GET', '/whoami', {token: phone.access_token})).status, 200);
	const response = await send('GET', '/api/user/sessions', {token: laptop.access_token});
	t.is(response.status, 200);
	t.is(response.headers.get('cache-control'), 'no-store');
	const text = JSON.stringify(response.body);
	for (const token of [phone, laptop, tablet].flatMap(pair => [pair.access_token, pair.refresh_token])) {
		t.false(text.includes(token));
	}

	const hint = (pair: Pair) => `example_rt_${pair.refresh_token.slice('example_rt_'.length, 'example_rt_'.length + 4)}…`;
	const [first, current, unused] = (response.body as {sessions: Session[]}).sessions;
	t.like(first, {current: false, hint: hint(phone), name: 'phone'});
	t.like(current, {current: true, hint: hint(laptop), name: 'laptop'});
	t.like(unused, {current: false, hint: hint(tablet), name: null, lastUsedAt: null});
	t.not(first!.lastUsedAt, null, 'the phone has used its access token');
	t.not(current!.lastUsedAt, null, 'the laptop is using it now');
	t.is(new Date(current!.createdAt).getTime() - new Date(first!.createdAt).getTime(), second);
	t.is(new Date(current!.expiresAt).getTime() - new Date(current!.createdAt).getTime(), tokenLifetimes.refresh * second);
	t.is((await sessions(bob.access_token)).length, 1);

	const notMine = await send('DELETE', `/api/user/sessions/${first!.id}`, {token: bob.access_token});
	t.is(notMine.status, 404);
	t.deepEqual(notMine.body, {error: 'not_found', error_description: 'No such session'});
	t.is((await send('GET', '/whoami', {token: phone.access_token})).status, 200);
	t.is((await send('DELETE', `/api/user/sessions/${first!.id}`, {token: laptop.access_token})).status, 204);
	t.is((await send('GET', '/whoami', {token: phone.access_token})).status, 401);
	assertOAuthError(t, await refresh(phone.refresh_token), 'invalid_grant');
	t.deepEqual((await sessions(laptop.access_token)).map(({id}) => id), [current!.id, unused!.id]);
	t.is((await send('DELETE', `/api/user/sessions/${first!.id}`, {token: laptop.access_token})).status, 404, 'already gone');
	t.is((await send('GET', '/api/user/sessions')).status, 401);
});

test('an API key made at /api/user/api-keys works on the routes that allow keys, and only there', async t => {
	const {send, signUp} = await start(t);
	const {access_token: token} = await signUp('alice');
	const created = await send('POST', '/api/user/api-keys', {token, body: {name: 'backup script'}});
	t.is(created.status, 201);
	const {id, key, hint} = created.body as {id: string; key: string; hint: string};
	t.regex(key, /^example_key_[\dA-Za-z]{49}$/);
	t.true(key.startsWith(hint.slice(0, -1)));
	const listed = await send('GET', '/api/user/api-keys', {token});
	t.like(listed.body, {apiKeys: [{id, name: 'backup script', hint}]});
	t.false(JSON.stringify(listed.body).includes(key), 'listed by its hint, never the key');

	t.deepEqual((await send('GET', '/whoami', {token: key, scheme: 'Token'})).body, {my_username: 'alice'}, 'the app\'s own route that allows keys');
	t.like((await send('GET', '/api/user/me', {token: key, scheme: 'Token'})).body, {username: 'alice'});
	const secret = await send('GET', '/secret', {token: key, scheme: 'Token'});
	t.deepEqual([secret.status, secret.body], [403, {error: {type: 'scope', message: 'API keys are not accepted on this route'}}]);
	const sessions = await send('GET', '/api/user/sessions', {token: key, scheme: 'Token'});
	t.deepEqual([sessions.status, sessions.body], [403, {error: 'api_key_not_allowed', error_description: 'API keys are not accepted on this route'}]);
	t.is((await send('GET', '/whoami', {token: key})).status, 401, 'a key is not a bearer token');

	t.is((await send('DELETE', `/api/user/api-keys/${id}`, {token})).status, 204);
	t.is((await send('GET', '/whoami', {token: key, scheme: 'Token'})).status, 401, 'revoked');
});

test('my profile and my password, through the account routes', async t => {
	const {send, signUp, login} = await start(t);
	const {access_token: token} = await signUp('alice');
	const profile = await send('PUT', '/api/user/me/profile', {token, body: {profile: {nickname: 'al'}}});
	t.is(profile.status, 200, 'allowOwnProfileEdit');
	t.like(profile.body, {username: 'alice', profile: {nickname: 'al'}});
	t.is((await send('PUT', '/api/user/password', {token, body: {oldPassword: password, newPassword: 'battery staple'}})).status, 204);
	assertOAuthError(t, await send('POST', '/api/user/login', {body: {username: 'alice', password}}), 'invalid_grant');
	await login('alice', 'battery staple');
	t.deepEqual((await send('GET', '/basic/whoami', {token: Buffer.from('alice:battery staple').toString('base64'), scheme: 'Basic'})).body, {my_username: 'alice'});
});

test('log-in guesses are throttled: a 429 with Retry-After, before any password is checked', async t => {
	const {send, signUp} = await start(t);
	await signUp('alice');
	for (let attempt = 1; attempt <= 5; attempt++) {
		assertOAuthError(t, await send('POST', '/api/user/login', {body: {username: 'alice', password: `guess ${attempt}`}}), 'invalid_grant');
	}

	const refused = await send('POST', '/api/user/login', {body: {username: 'alice', password}});
	t.is(refused.status, 429, 'the right password too');
	t.like(refused.body, {error: 'too_many_requests'});
	t.regex(refused.headers.get('retry-after') ?? '', /^\d+$/);
});

test('a restart keeps the sessions: the access token still works and the refresh token still rotates', async t => {
	const databasePath = temporaryDatabase(t);
	const first = await openStores({DATABASE_PATH: databasePath});
	t.teardown(first.close);
	const firstApp = createExampleApp({stores: first, scrypt: lowCost, log: t.log});
	const firstUrl = await listen(t, firstApp.app);
	const post = async (url: string, route: string, body: unknown) =>
		fetch(`${url}${route}`, {method: 'POST', headers: {'content-type': 'application/json'}, body: JSON.stringify(body)});
	t.is((await post(firstUrl, '/user', {username: 'alice', password})).status, 201);
	const pair = await (await post(firstUrl, '/api/user/login', {username: 'alice', password})).json() as Pair;
	const loggedOut = await (await post(firstUrl, '/api/user/login', {username: 'alice', password})).json() as Pair;
	t.is((await fetch(`${firstUrl}/api/user/logout`, {method: 'POST', headers: {authorization: `Bearer ${loggedOut.access_token}`}})).status, 204);
	await first.close();
	t.is((await fetch(`${firstUrl}/whoami`, {headers: {authorization: `Bearer ${pair.access_token}`}})).status, 503, 'the first app has no database now');

	const second = await openStores({DATABASE_PATH: databasePath});
	t.teardown(second.close);
	const url = await listen(t, createExampleApp({stores: second, scrypt: lowCost, log: t.log}).app);
	const whoami = await fetch(`${url}/whoami`, {headers: {authorization: `Bearer ${pair.access_token}`}});
	t.is(whoami.status, 200);
	t.deepEqual(await whoami.json(), {my_username: 'alice'});
	t.is((await fetch(`${url}/whoami`, {headers: {authorization: `Bearer ${loggedOut.access_token}`}})).status, 401, 'a logout survives the restart');
	const refreshed = await post(url, '/api/user/refresh', {refresh_token: pair.refresh_token});
	t.is(refreshed.status, 200);
	const next = await refreshed.json() as Pair;
	t.not(next.refresh_token, pair.refresh_token);
	t.is((await fetch(`${url}/whoami`, {headers: {authorization: `Bearer ${next.access_token}`}})).status, 200);
	t.is((await fetch(`${url}/whoami`, {headers: {authorization: `Bearer ${pair.access_token}`}})).status, 401, 'the old access token was rotated out');
});

test('a password hashed at another cost is hashed again at the next log-in', async t => {
	const stores = await openStores({DATABASE_PATH: ':memory:'});
	t.teardown(stores.close);
	const credentials = {username: 'alice', password};
	const post = async (url: string, route: string) =>
		fetch(`${url}${route}`, {method: 'POST', headers: {'content-type': 'application/json'}, body: JSON.stringify(credentials)});
	const before = await listen(t, createExampleApp({stores, scrypt: lowCost, log: t.log}).app);
	t.is((await post(before, '/user')).status, 201);
	const hashed = (await stores.users.getByUsername('alice'))?.passwordHash;
	t.regex(hashed ?? '', /^\$scrypt\$ln=10,r=8,p=1\$/);

	const after = await listen(t, createExampleApp({stores, scrypt: {ln: 11, r: 8, p: 1}, log: t.log}).app);
	t.is((await post(after, '/api/user/login')).status, 200);
	const rehashed = (await stores.users.getByUsername('alice'))?.passwordHash;
	t.regex(rehashed ?? '', /^\$scrypt\$ln=11,r=8,p=1\$/);
	t.is((await post(after, '/api/user/login')).status, 200, 'the new hash verifies');
	t.is((await stores.users.getByUsername('alice'))?.passwordHash, rehashed, 'and is not hashed again');
	t.is((await post(before, '/api/user/login')).status, 200, 'an older hash cost still verifies');
});

test('the OpenAPI document of the account routes is served, valid, and lists what the app mounted', async t => {
	const {send} = await start(t);
	const response = await send('GET', '/openapi.json');
	t.is(response.status, 200);
	t.regex(response.headers.get('content-type') ?? '', /^application\/json/);
	const document = response.body as {openapi: string; info: {title: string}; paths: Record<string, Record<string, {operationId: string; security: unknown}>>};
	const result = await new Validator().validate(document);
	t.true(result.valid, JSON.stringify(result.errors));
	t.is(document.openapi, '3.1.0');
	t.like(document.info, {title: 'koa-stateless-auth example: account API'});
	const operations = Object.entries(document.paths).flatMap(([route, methods]) => Object.keys(methods).map(method => `${method.toUpperCase()} ${route}`));
	for (const operation of ['POST /api/user/login', 'POST /api/user/refresh', 'POST /api/user/api-keys', 'PUT /api/user/me/profile', 'GET /api/user/users']) {
		t.true(operations.includes(operation), operation);
	}

	t.is(operations.length, 19, 'every route, with apiKeys and allowOwnProfileEdit');
	t.deepEqual(document.paths['/api/user/me']?.['get']?.security, [{bearerAuth: []}, {tokenAuth: []}]);
	t.deepEqual(document.paths['/api/user/users']?.['get']?.security, [{bearerAuth: ['admin']}]);
});

test('npm start\'s program prints its URL and a curl line for every route, and serves', async t => {
	const directory = mkdtempSync(path.join(tmpdir(), 'koa-stateless-auth-'));
	const child = spawn(process.execPath, ['--import=./ts-node-register.js', 'example-app/main.ts'], {
		env: {...process.env, PORT: '0', DATABASE_PATH: path.join(directory, 'main.sqlite'), ADMIN_PASSWORD: adminPassword},
		stdio: ['ignore', 'pipe', 'inherit'],
	});
	t.teardown(() => {
		child.kill();
		rmSync(directory, {recursive: true, force: true});
	});
	// Keep reading stdout to the end: leaving a for-await loop would close the pipe, and the
	// program's next console.log would die of EPIPE.
	let output = '';
	await new Promise<void>(resolve => {
		child.stdout.on('data', (chunk: Buffer) => {
			output += String(chunk);
			if (output.includes('/openapi.json')) {
				resolve();
			}
		});
	});

	const url = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(output)?.[1] ?? '';
	t.truthy(url, output);
	t.regex(output, /main\.sqlite/, 'where the data is');
	t.regex(output, /admin: admin \(created\)/);
	t.false(output.includes(adminPassword), 'the admin password is never printed');

	// Every route the app's router has, the account routes included, has its curl line.
	const stores = await openStores({DATABASE_PATH: ':memory:'});
	t.teardown(stores.close);
	const {router} = createExampleApp({stores});
	const escape = (text: string) => text.replaceAll(/[.*+?^${}()|[\]\\]/g, '\\$&');
	let routes = 0;
	for (const layer of router.stack) {
		for (const method of layer.methods.filter(method => method !== 'HEAD')) {
			routes++;
			const route = escape(String(layer.path)).replaceAll(/:\w+/g, '\\$[A-Z_]+');
			const line = new RegExp(`curl -s ${method === 'GET' ? '' : `-X ${method} `}"?${escape(url)}${route}(?=[\\s"?]|$)`, 'm');
			t.regex(output, line, `${method} ${String(layer.path)}`);
		}
	}

	t.is(routes, 19 + 8, 'the account routes and the app\'s own');

	const response = await fetch(`${url}/public`);
	t.is(response.status, 200);
	const login = await fetch(`${url}/api/user/login`, {method: 'POST', body: new URLSearchParams({username: 'admin', password: adminPassword})});
	t.is(login.status, 200, 'the admin made at start logs in');
	const {access_token: token} = await login.json() as Pair;
	t.is((await fetch(`${url}/api/user/users`, {headers: {authorization: `Bearer ${token}`}})).status, 200);
	child.kill('SIGTERM');
	const [code, signal] = await once(child, 'exit') as [number | null, string | null];
	t.true(code === 0 || signal === 'SIGTERM');
});

test('the first admin: made once, with the admin permission, which the user routes need', async t => {
	const {send, signUp, admin, users} = await start(t);
	const {access_token: root} = await admin('root');
	t.is(await ensureAdmin(users, {username: 'root', password: 'another password', scrypt: lowCost}), 'exists', 'made once, its password left as it is');
	const {access_token: alice} = await signUp('alice');
	t.is(await ensureAdmin(users, {username: 'alice', password: adminPassword, scrypt: lowCost}), 'exists-without-permission', 'nobody becomes admin by name');
	const error = await t.throwsAsync(ensureAdmin(users, {username: 'admin', password: 'short', scrypt: lowCost}), {instanceOf: TypeError});
	t.false(error?.message.includes('short'), 'the message never holds the password');

	const listed = await send('GET', '/api/user/users', {token: root});
	t.is(listed.status, 200);
	t.like(listed.body, {total: 2, page: 1, users: [{username: 'alice', permissions: []}, {username: 'root', permissions: ['admin']}]});
	const refused = await send('GET', '/api/user/users', {token: alice});
	t.is(refused.status, 403);
	t.is(refused.headers.get('www-authenticate'), 'Bearer realm="example", error="insufficient_scope", scope="admin"');

	const created = await send('POST', '/api/user/users', {token: root, body: {username: 'bob', password: 'bob password', permissions: ['reports']}});
	t.is(created.status, 201);
	const {id} = created.body as {id: string};
	t.like((await send('PUT', `/api/user/users/${id}/permissions`, {token: root, body: {permissions: []}})).body, {username: 'bob', permissions: []});
	t.is((await send('DELETE', `/api/user/users/${id}`, {token: root})).status, 204);
	t.is(await users.getByUsername('bob'), undefined);
});

test('the machine-to-machine route takes a header API key and names the caller', async t => {
	const {url} = await start(t, {machineKeys: {billing: ['old-key', 'new-key']}});
	for (const key of ['old-key', 'new-key']) {
		const response = await fetch(`${url}/m2m/ping`, {method: 'POST', headers: {'x-example-apikey': key}});
		t.deepEqual(await response.json(), {pong: true, app: 'billing'});
	}

	const wrong = await fetch(`${url}/m2m/ping`, {method: 'POST', headers: {'x-example-apikey': 'nope'}});
	t.is(wrong.status, 401);
	t.is(wrong.headers.get('www-authenticate'), 'ApiKey realm="example", header="X-Example-ApiKey"');
	const bearer = await fetch(`${url}/m2m/ping`, {method: 'POST', headers: {authorization: 'Bearer x'}});
	t.is(bearer.status, 401, 'a bearer token is not a machine key');
});

test('the Basic route takes the same accounts, and answers every failure alike', async t => {
	const {url, signUp, users} = await start(t);
	await signUp('alice');
	const basic = (user: string, secret: string) => ({headers: {authorization: `Basic ${Buffer.from(`${user}:${secret}`).toString('base64')}`}});
	const ok = await fetch(`${url}/basic/whoami`, basic('alice', password));
	t.deepEqual(await ok.json(), {my_username: 'alice'});
	const alice = await users.getByUsername('alice');
	await users.update(alice!.id, {isActive: false});
	const answers = await Promise.all([basic('alice', 'wrong password'), basic('mallory', password), {}, basic('alice', password)].map(async init => {
		const response = await fetch(`${url}/basic/whoami`, init);
		return [response.status, response.headers.get('www-authenticate'), await response.text()];
	}));
	t.deepEqual(answers[0], [401, 'Basic realm="example", charset="UTF-8"', '{"error":{"type":"request","message":"Authentication required"}}']);
	t.deepEqual(answers[1], answers[0]);
	t.deepEqual(answers[2], answers[0]);
	t.deepEqual(answers[3], answers[0], 'a deactivated user');
});

if (redisAvailable) {
	test('on Redis, the log-in counters are in Redis: two instances count the guesses together', async t => {
		const rateLimitPrefix = `example-test-${randomUUID().slice(0, 8)}:login`;
		const client = new Redis(redisUrl);
		t.teardown(async () => {
			await deletePrefix(client, rateLimitPrefix);
			client.disconnect();
		});
		const urls = [];
		for (let instance = 0; instance < 2; instance++) {
			const stores = await openStores({REDIS_URL: redisUrl});
			t.teardown(stores.close);
			t.truthy(stores.redis, 'the client is answered');
			urls.push(await listen(t, createExampleApp({stores, scrypt: lowCost, rateLimitPrefix, log: t.log}).app));
		}

		// An unknown user: nothing is written but the counters.
		const username = `nobody-${randomUUID()}`;
		const guess = async (url: string) =>
			(await fetch(`${url}/api/user/login`, {method: 'POST', headers: {'content-type': 'application/json'}, body: JSON.stringify({username, password: 'a guess'})})).status;
		t.deepEqual([await guess(urls[0]!), await guess(urls[0]!), await guess(urls[0]!), await guess(urls[1]!), await guess(urls[1]!)], [400, 400, 400, 400, 400]);
		t.is(await guess(urls[1]!), 429, 'the sixth guess, the third on this instance');
		t.is(await guess(urls[0]!), 429);
		t.true((await client.keys(`${rateLimitPrefix}*`)).length > 0);
	});
}
