import {spawn} from 'node:child_process';
import {mkdtempSync, rmSync} from 'node:fs';
import {tmpdir} from 'node:os';
import path from 'node:path';
import {once} from 'node:events';
import test, {type ExecutionContext} from 'ava';
import Database from 'better-sqlite3';
import {digestToken, isWellFormedToken, type TokenStore} from 'koa-stateless-auth';
import {createExampleApp, reuseGrace, tokenLifetimes, type ExampleOptions} from '../example-app/app.js';
import {openStores} from '../example-app/stores.js';
import {listen, rawRequest} from './helpers/http.js';

// The scenarios of Flask-Stateless-Auth's example app, against ours, over HTTP; and the token
// lifecycle it gets from the library: rotation, reuse detection, sessions, restarts.

type Pair = {access_token: string; refresh_token: string; token_type: string; expires_in: number};
type Session = {id: string; hint: string; created_at: string; last_used_at: string | null; expires_at: string; current: boolean};

/** scrypt at a low cost, so that tests hash quickly; `npm start` uses the library's default. */
const lowCost = {ln: 10, r: 8, p: 1};
const second = 1000;

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
	const send = async (method: string, route: string, {token, scheme = 'Bearer', body, form}: {token?: string; scheme?: string; body?: unknown; form?: Record<string, string>} = {}) => {
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

	const login = async (username: string, password = 'correct horse battery') => {
		const response = await send('POST', '/token', {body: {username, password}});
		t.is(response.status, 200);
		return response.body as Pair;
	};

	const signUp = async (username: string, password = 'correct horse battery') => {
		t.is((await send('POST', '/user', {body: {username, password}})).status, 201);
		return login(username, password);
	};

	const sessions = async (token: string) => {
		const response = await send('GET', '/sessions', {token});
		t.is(response.status, 200);
		return (response.body as {sessions: Session[]}).sessions;
	};

	return {
		...example, stores, url, send, signUp, login, sessions, log, storeCalls, advance: (ms: number) => {
			clock += ms;
		},
	};
}

/** RFC 6749 §5.2: a 400 with `error` and `error_description`, and no Bearer challenge. */
function assertOAuthError(t: ExecutionContext, response: {status: number; headers: Headers; body: unknown}, error: string, description?: string) {
	t.is(response.status, 400);
	t.like(response.body, {error, ...(description === undefined ? {} : {error_description: description})});
	t.deepEqual(Object.keys(response.body as object), ['error', 'error_description']);
	t.is(response.headers.get('www-authenticate'), null);
}

/** A token of the right shape whose checksum is wrong: a typo. */
function mistyped(token: string): string {
	const last = token.at(-1) === 'a' ? 'b' : 'a';
	return token.slice(0, -1) + last;
}

test('create a user', async t => {
	const {send, users} = await start(t);
	const created = await send('POST', '/user', {body: {username: 'alice', password: 'correct horse'}});
	t.is(created.status, 201);
	const {id} = created.body as {id: string};
	t.deepEqual(created.body, {id, username: 'alice'});
	t.regex(id, /^[\da-f]{8}-[\da-f]{4}-[\da-f]{4}-[\da-f]{4}-[\da-f]{12}$/, 'ids are strings (UUIDs)');
	t.like(await users.getById(id), {username: 'alice', permissions: [], isActive: true});
	const again = await send('POST', '/user', {body: {username: 'alice', password: 'another one'}});
	t.is(again.status, 409);
});

test('creating a user with a bad body is a 400 with the app\'s JSON', async t => {
	const {send} = await start(t);
	const short = await send('POST', '/user', {body: {username: 'bob', password: 'short'}});
	t.is(short.status, 400);
	t.deepEqual(short.body, {error: {type: 'request', message: 'password must be 8 to 1024 characters'}});
	t.is((await send('POST', '/user', {body: {password: 'long enough'}})).status, 400);
	t.is((await send('POST', '/user', {body: ['not', 'an', 'object']})).status, 400);
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
	t.false(users.includes('correct horse battery'));
	t.regex(users, /\$scrypt\$ln=10,r=8,p=1\$/);
});

test('an unknown user and a wrong password get the same answer', async t => {
	const {send, signUp} = await start(t);
	await signUp('alice');
	const wrongPassword = await send('POST', '/token', {body: {username: 'alice', password: 'not the password'}});
	const unknownUser = await send('POST', '/token', {body: {username: 'mallory', password: 'not the password'}});
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
});

test('refresh: the refresh token buys a new pair of the same session, and the old pair stops working', async t => {
	const {send, signUp, sessions, advance} = await start(t);
	const old = await signUp('alice');
	assertOAuthError(t, await send('PUT', '/token', {token: old.access_token}), 'invalid_grant', 'Invalid refresh token');
	const [session] = await sessions(old.access_token);
	const refreshed = await send('PUT', '/token', {token: old.refresh_token});
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
	t.is((await send('PUT', '/token', {token: pair.refresh_token})).status, 200, 'the new refresh token works');
});

test('a retry within the grace window gets the same pair, with the time it has left', async t => {
	const {send, signUp, advance} = await start(t);
	const old = await signUp('alice');
	const first = await send('PUT', '/token', {token: old.refresh_token});
	t.is(first.status, 200);
	advance(reuseGrace * second / 2);
	const retry = await send('PUT', '/token', {token: old.refresh_token});
	t.is(retry.status, 200);
	const [a, b] = [first.body as Pair, retry.body as Pair];
	t.is(b.access_token, a.access_token);
	t.is(b.refresh_token, a.refresh_token);
	t.is(b.expires_in, 3600 - (reuseGrace / 2), 'expires_in counts from the pair\'s expiry');
	t.is((await send('GET', '/whoami', {token: b.access_token})).status, 200);
});

test('two refreshes at once with one refresh token: one rotation, and both get its pair', async t => {
	const {send, signUp, sessions} = await start(t);
	const old = await signUp('alice');
	const answers = await Promise.all([send('PUT', '/token', {token: old.refresh_token}), send('PUT', '/token', {token: old.refresh_token})]);
	t.deepEqual(answers.map(answer => answer.status), [200, 200]);
	const [a, b] = answers.map(answer => answer.body as Pair);
	t.is(a!.refresh_token, b!.refresh_token);
	t.is((await send('GET', '/whoami', {token: a!.access_token})).status, 200);
	t.is((await sessions(a!.access_token)).length, 1);
});

test('a refresh token used again after the grace window: invalid_grant, and the whole session is revoked', async t => {
	const {send, signUp, login, advance} = await start(t);
	const stolen = await signUp('alice');
	const other = await login('alice');
	const newer = (await send('PUT', '/token', {token: stolen.refresh_token})).body as Pair;
	t.is((await send('GET', '/whoami', {token: newer.access_token})).status, 200);
	advance((reuseGrace + 1) * second);
	assertOAuthError(t, await send('PUT', '/token', {token: stolen.refresh_token}), 'invalid_grant', 'Invalid refresh token');
	t.is((await send('GET', '/whoami', {token: newer.access_token})).status, 401, 'the newer access token is refused too');
	assertOAuthError(t, await send('PUT', '/token', {token: newer.refresh_token}), 'invalid_grant', 'Invalid refresh token');
	t.is((await send('GET', '/whoami', {token: other.access_token})).status, 200, 'another session of the same user lives on');
});

test('a refresh that loses its session to a logout between check and rotation issues nothing', async t => {
	const databasePath = temporaryDatabase(t);
	const {send, signUp, sessions, stores} = await start(t, {databasePath});
	const old = await signUp('alice');
	const [session] = await sessions(old.access_token);
	// Another process logs the session out after the service has read the refresh token as current.
	const store = stores.tokens;
	const rotate = store.rotate.bind(store);
	store.rotate = async (...args) => {
		t.is(await store.revokeFamily(session!.id), 2);
		return rotate(...args);
	};

	assertOAuthError(t, await send('PUT', '/token', {token: old.refresh_token}), 'invalid_grant', 'Invalid refresh token');
	const db = new Database(databasePath, {readonly: true});
	t.teardown(() => db.close());
	t.deepEqual(db.prepare('SELECT COUNT(*) AS tokens FROM ksa_tokens').get(), {tokens: 0});
});

test('revoke: the pair stops working', async t => {
	const {send, signUp} = await start(t);
	const pair = await signUp('alice');
	const revoked = await send('DELETE', '/token', {token: pair.access_token});
	t.is(revoked.status, 204);
	t.is(revoked.body, undefined);
	t.is((await send('GET', '/secret', {token: pair.access_token})).status, 401);
	assertOAuthError(t, await send('PUT', '/token', {token: pair.refresh_token}), 'invalid_grant');
});

test('log in: RFC 6749 §5.1, a 200 with the pair and no-store', async t => {
	const {send} = await start(t);
	await send('POST', '/user', {body: {username: 'alice', password: 'correct horse battery'}});
	const response = await send('POST', '/token', {body: {username: 'alice', password: 'correct horse battery'}});
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
	const {send} = await start(t);
	await send('POST', '/user', {body: {username: 'alice', password: 'correct horse battery'}});
	const response = await send('POST', '/token', {form: {grant_type: 'password', username: 'alice', password: 'correct horse battery'}});
	t.is(response.status, 200);
	t.is((await send('GET', '/whoami', {token: (response.body as Pair).access_token})).status, 200);
	assertOAuthError(t, await send('POST', '/token', {form: {grant_type: 'client_credentials', username: 'alice', password: 'correct horse battery'}}), 'unsupported_grant_type');
	assertOAuthError(t, await send('POST', '/token', {body: {grant_type: ['password'], username: 'alice', password: 'correct horse battery'}}), 'invalid_request');
});

test('log-in failures are RFC 6749 §5.2 errors: invalid_grant or invalid_request', async t => {
	const {send, signUp, url} = await start(t);
	await signUp('alice');
	const wrong = await send('POST', '/token', {body: {username: 'alice', password: 'not the password'}});
	assertOAuthError(t, wrong, 'invalid_grant', 'Invalid username or password');
	t.is(wrong.headers.get('cache-control'), 'no-store');
	assertOAuthError(t, await send('POST', '/token', {body: {username: 'alice'}}), 'invalid_request', 'password must be 8 to 1024 characters');
	assertOAuthError(t, await send('POST', '/token', {body: {password: 'correct horse battery'}}), 'invalid_request');
	assertOAuthError(t, await send('POST', '/token'), 'invalid_request');
	const malformed = await fetch(`${url}/token`, {method: 'POST', headers: {'content-type': 'application/json'}, body: '{"username":"alice",'});
	t.is(malformed.status, 400);
	t.deepEqual(await malformed.json(), {error: 'invalid_request', error_description: 'Request body is not valid JSON'});
});

test('refresh failures are RFC 6749 §5.2 errors: invalid_grant or invalid_request', async t => {
	const {send, signUp, advance, url} = await start(t);
	const pair = await signUp('alice');
	assertOAuthError(t, await send('PUT', '/token'), 'invalid_request', 'No token provided');
	assertOAuthError(t, await send('PUT', '/token', {token: pair.refresh_token, scheme: 'Basic'}), 'invalid_request', 'Invalid token type');
	const malformed = await rawRequest(url, '/token', [['Authorization', 'Bearer not a token']], 'PUT');
	t.is(malformed.status, 400);
	t.deepEqual(JSON.parse(malformed.body), {error: 'invalid_request', error_description: 'Malformed authorization header'});
	assertOAuthError(t, await send('PUT', '/token', {token: 'bm9wZQ'}), 'invalid_grant', 'Invalid refresh token');
	assertOAuthError(t, await send('PUT', '/token', {token: mistyped(pair.refresh_token)}), 'invalid_grant', 'Invalid refresh token');
	advance(tokenLifetimes.refresh * second);
	assertOAuthError(t, await send('PUT', '/token', {token: pair.refresh_token}), 'invalid_grant', 'Invalid refresh token');
});

test('log out with the refresh token alone, once the access token has expired', async t => {
	const {send, signUp, advance} = await start(t);
	const pair = await signUp('alice');
	advance(tokenLifetimes.access * second);
	t.is((await send('GET', '/whoami', {token: pair.access_token})).status, 401, 'the access token has expired');
	t.is((await send('DELETE', '/token', {token: pair.refresh_token})).status, 204);
	assertOAuthError(t, await send('PUT', '/token', {token: pair.refresh_token}), 'invalid_grant', 'Invalid refresh token');
});

test('revoking the refresh token revokes its access token, and no other pair', async t => {
	const {send, signUp, login} = await start(t);
	const first = await signUp('alice');
	const second = await login('alice');
	t.is((await send('DELETE', '/token', {token: first.refresh_token})).status, 204);
	t.is((await send('GET', '/whoami', {token: first.access_token})).status, 401);
	t.is((await send('GET', '/whoami', {token: second.access_token})).status, 200, 'another session of the same user');
	t.is((await send('PUT', '/token', {token: second.refresh_token})).status, 200);
});

test('DELETE /token needs a bearer token, and a token already unknown is no error', async t => {
	const {send, signUp, url} = await start(t);
	const pair = await signUp('alice');
	assertOAuthError(t, await send('DELETE', '/token'), 'invalid_request', 'No token provided');
	assertOAuthError(t, await send('DELETE', '/token', {token: pair.refresh_token, scheme: 'Basic'}), 'invalid_request');
	const twice = await rawRequest(url, '/token', [['Authorization', `Bearer ${pair.access_token}`], ['Authorization', `Bearer ${pair.access_token}`]], 'DELETE');
	t.is(twice.status, 400, 'two Authorization lines');
	t.like(JSON.parse(twice.body), {error: 'invalid_request'});
	t.is((await send('GET', '/whoami', {token: pair.access_token})).status, 200, 'nothing was revoked by refused requests');
	t.is((await send('DELETE', '/token', {token: pair.access_token})).status, 204);
	t.is((await send('DELETE', '/token', {token: pair.access_token})).status, 204, 'RFC 7009 §2.2: an unknown token is not an error');
});

test('POST /token/revoke (RFC 7009): either token revokes the pair, form or JSON', async t => {
	const {send, signUp, login} = await start(t);
	const first = await signUp('alice');
	const revoked = await send('POST', '/token/revoke', {form: {token: first.refresh_token, token_type_hint: 'refresh_token'}});
	t.is(revoked.status, 200);
	t.is(revoked.headers.get('cache-control'), 'no-store');
	t.is((await send('GET', '/whoami', {token: first.access_token})).status, 401);
	assertOAuthError(t, await send('PUT', '/token', {token: first.refresh_token}), 'invalid_grant');

	const second = await login('alice');
	// A wrong hint is only a hint (RFC 7009 §2.1).
	t.is((await send('POST', '/token/revoke', {body: {token: second.access_token, token_type_hint: 'refresh_token'}})).status, 200);
	assertOAuthError(t, await send('PUT', '/token', {token: second.refresh_token}), 'invalid_grant');
	t.is((await send('GET', '/whoami', {token: second.access_token})).status, 401);

	t.is((await send('POST', '/token/revoke', {form: {token: 'bm9wZQ'}})).status, 200, 'an unknown token is not an error');
	assertOAuthError(t, await send('POST', '/token/revoke', {form: {}}), 'invalid_request', 'token is required');
	assertOAuthError(t, await send('POST', '/token/revoke', {body: {token: ['a', 'b']}}), 'invalid_request');
});

test('an expired access token is refused, and the refresh token still works', async t => {
	const {send, signUp, advance} = await start(t);
	const pair = await signUp('alice');
	advance(tokenLifetimes.access * second);
	const expired = await send('GET', '/secret', {token: pair.access_token});
	t.is(expired.status, 401);
	t.deepEqual(expired.body, {error: {type: 'token', message: 'access token expired'}});
	t.is(expired.headers.get('www-authenticate'), 'Bearer realm="example", error="invalid_token"');
	t.is((await send('PUT', '/token', {token: pair.refresh_token})).status, 200);
});

test('a deactivated user\'s tokens are refused like unknown ones, and a refresh ends the session', async t => {
	const {send, signUp, users} = await start(t);
	const pair = await signUp('alice');
	const alice = await users.getByUsername('alice');
	t.true(await users.update(alice!.id, {isActive: false}));
	const refused = await send('GET', '/whoami', {token: pair.access_token});
	t.is(refused.status, 401);
	t.deepEqual(refused.body, {error: {type: 'token', message: 'Invalid token'}});
	assertOAuthError(t, await send('POST', '/token', {body: {username: 'alice', password: 'correct horse battery'}}), 'invalid_grant');
	assertOAuthError(t, await send('PUT', '/token', {token: pair.refresh_token}), 'invalid_grant');
	t.true(await users.update(alice!.id, {isActive: true}));
	assertOAuthError(t, await send('PUT', '/token', {token: pair.refresh_token}), 'invalid_grant', 'Invalid refresh token');
	t.is((await send('GET', '/whoami', {token: pair.access_token})).status, 401, 'the session is gone');
});

test('an invalid token', async t => {
	const {send} = await start(t);
	const refused = await send('GET', '/secret', {token: 'bm9wZQ=='});
	t.is(refused.status, 401);
	t.deepEqual(refused.body, {error: {type: 'token', message: 'Invalid token'}});
});

test('a malformed, mistyped or misplaced token never reaches the store', async t => {
	const {send, signUp, storeCalls} = await start(t);
	const pair = await signUp('alice');
	const made = (prefix: string) => `${prefix}_${'A'.repeat(49)}`;
	storeCalls.length = 0;
	for (const token of [mistyped(pair.access_token), made('example_at'), 'bm9wZQ==', pair.refresh_token, made('other_at')]) {
		const refused = await send('GET', '/whoami', {token});
		t.is(refused.status, 401, token);
		t.deepEqual(refused.body, {error: {type: 'token', message: 'Invalid token'}});
	}

	for (const token of [mistyped(pair.refresh_token), pair.access_token, made('example_rt')]) {
		assertOAuthError(t, await send('PUT', '/token', {token}), 'invalid_grant', 'Invalid refresh token');
	}

	t.is((await send('DELETE', '/token', {token: mistyped(pair.refresh_token)})).status, 204);
	t.is((await send('POST', '/token/revoke', {form: {token: mistyped(pair.access_token)}})).status, 200);
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

test('sessions: mine, with hints and times and never a token; I can revoke one of mine, not another\'s', async t => {
	const {send, signUp, login, sessions, advance} = await start(t);
	const phone = await signUp('alice');
	advance(second);
	const laptop = await login('alice');
	advance(second);
	const tablet = await login('alice');
	const bob = await signUp('bob');
	t.is((await send('GET', '/whoami', {token: phone.access_token})).status, 200);
	const response = await send('GET', '/sessions', {token: laptop.access_token});
	t.is(response.status, 200);
	t.is(response.headers.get('cache-control'), 'no-store');
	const text = JSON.stringify(response.body);
	for (const token of [phone, laptop, tablet].flatMap(pair => [pair.access_token, pair.refresh_token])) {
		t.false(text.includes(token));
	}

	const hint = (pair: Pair) => `example_rt_${pair.refresh_token.slice('example_rt_'.length, 'example_rt_'.length + 4)}…`;
	const [first, current, unused] = (response.body as {sessions: Session[]}).sessions;
	t.like(first, {current: false, hint: hint(phone)});
	t.like(current, {current: true, hint: hint(laptop)});
	t.like(unused, {current: false, hint: hint(tablet), last_used_at: null});
	t.not(first!.last_used_at, null, 'the phone has used its access token');
	t.not(current!.last_used_at, null, 'the laptop is using it now');
	t.is(new Date(current!.created_at).getTime() - new Date(first!.created_at).getTime(), second);
	t.is(new Date(current!.expires_at).getTime() - new Date(current!.created_at).getTime(), tokenLifetimes.refresh * second);
	t.is((await sessions(bob.access_token)).length, 1);

	const notMine = await send('DELETE', `/sessions/${first!.id}`, {token: bob.access_token});
	t.is(notMine.status, 404);
	t.deepEqual(notMine.body, {error: {type: 'request', message: 'no such session'}});
	t.is((await send('GET', '/whoami', {token: phone.access_token})).status, 200);
	t.is((await send('DELETE', `/sessions/${first!.id}`, {token: laptop.access_token})).status, 204);
	t.is((await send('GET', '/whoami', {token: phone.access_token})).status, 401);
	assertOAuthError(t, await send('PUT', '/token', {token: phone.refresh_token}), 'invalid_grant');
	t.deepEqual((await sessions(laptop.access_token)).map(({id}) => id), [current!.id, unused!.id]);
	t.is((await send('DELETE', `/sessions/${first!.id}`, {token: laptop.access_token})).status, 404, 'already gone');
	t.is((await send('GET', '/sessions')).status, 401);
});

test('a restart keeps the sessions: the access token still works and the refresh token still rotates', async t => {
	const databasePath = temporaryDatabase(t);
	const first = await openStores({DATABASE_PATH: databasePath});
	t.teardown(first.close);
	const firstApp = createExampleApp({stores: first, scrypt: lowCost, log: t.log});
	const firstUrl = await listen(t, firstApp.app);
	const post = async (url: string, route: string, body: unknown) =>
		fetch(`${url}${route}`, {method: 'POST', headers: {'content-type': 'application/json'}, body: JSON.stringify(body)});
	t.is((await post(firstUrl, '/user', {username: 'alice', password: 'correct horse battery'})).status, 201);
	const pair = await (await post(firstUrl, '/token', {username: 'alice', password: 'correct horse battery'})).json() as Pair;
	await first.close();
	t.is((await fetch(`${firstUrl}/whoami`, {headers: {authorization: `Bearer ${pair.access_token}`}})).status, 503, 'the first app has no database now');

	const second = await openStores({DATABASE_PATH: databasePath});
	t.teardown(second.close);
	const url = await listen(t, createExampleApp({stores: second, scrypt: lowCost, log: t.log}).app);
	const whoami = await fetch(`${url}/whoami`, {headers: {authorization: `Bearer ${pair.access_token}`}});
	t.is(whoami.status, 200);
	t.deepEqual(await whoami.json(), {my_username: 'alice'});
	const refreshed = await fetch(`${url}/token`, {method: 'PUT', headers: {authorization: `Bearer ${pair.refresh_token}`}});
	t.is(refreshed.status, 200);
	const next = await refreshed.json() as Pair;
	t.not(next.refresh_token, pair.refresh_token);
	t.is((await fetch(`${url}/whoami`, {headers: {authorization: `Bearer ${next.access_token}`}})).status, 200);
	t.is((await fetch(`${url}/whoami`, {headers: {authorization: `Bearer ${pair.access_token}`}})).status, 401, 'the old access token was rotated out');
});

test('a password hashed at another cost is hashed again at the next log-in', async t => {
	const stores = await openStores({DATABASE_PATH: ':memory:'});
	t.teardown(stores.close);
	const credentials = {username: 'alice', password: 'correct horse battery'};
	const post = async (url: string, route: string) =>
		fetch(`${url}${route}`, {method: 'POST', headers: {'content-type': 'application/json'}, body: JSON.stringify(credentials)});
	const before = await listen(t, createExampleApp({stores, scrypt: lowCost, log: t.log}).app);
	t.is((await post(before, '/user')).status, 201);
	const hashed = (await stores.users.getByUsername('alice'))?.passwordHash;
	t.regex(hashed ?? '', /^\$scrypt\$ln=10,r=8,p=1\$/);

	const after = await listen(t, createExampleApp({stores, scrypt: {ln: 11, r: 8, p: 1}, log: t.log}).app);
	t.is((await post(after, '/token')).status, 200);
	const rehashed = (await stores.users.getByUsername('alice'))?.passwordHash;
	t.regex(rehashed ?? '', /^\$scrypt\$ln=11,r=8,p=1\$/);
	t.is((await post(after, '/token')).status, 200, 'the new hash verifies');
	t.is((await stores.users.getByUsername('alice'))?.passwordHash, rehashed, 'and is not hashed again');
	t.is((await post(before, '/token')).status, 200, 'an older hash cost still verifies');
});

test('npm start\'s program prints its URL and curl lines, and serves', async t => {
	const directory = mkdtempSync(path.join(tmpdir(), 'koa-stateless-auth-'));
	const child = spawn(process.execPath, ['--import=./ts-node-register.js', 'example-app/main.ts'], {
		env: {...process.env, PORT: '0', DATABASE_PATH: path.join(directory, 'main.sqlite')},
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
			if (output.includes('/m2m/ping')) {
				resolve();
			}
		});
	});

	const url = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(output)?.[1];
	t.truthy(url, output);
	t.regex(output, /main\.sqlite/, 'where the data is');
	for (const route of ['/user', '/token', '/whoami', '/secret', '/sessions', '/public', '/basic/whoami', '/token/revoke', '/admin/users', '/m2m/ping']) {
		t.true(output.includes(`curl -s ${route === '/basic/whoami' ? '-u \'alice:correct horse\' ' : ''}`) && output.includes(`${url ?? ''}${route}`), route);
	}

	const response = await fetch(`${url}/public`);
	t.is(response.status, 200);
	child.kill('SIGTERM');
	const [code, signal] = await once(child, 'exit') as [number | null, string | null];
	t.true(code === 0 || signal === 'SIGTERM');
});

test('the admin route needs the admin permission, and pages through users by name', async t => {
	const {send, signUp} = await start(t, {admins: ['root']});
	const root = (await signUp('root')).access_token;
	const alice = (await signUp('alice')).access_token;
	const listed = await send('GET', '/admin/users', {token: root});
	t.is(listed.status, 200);
	const {users} = listed.body as {users: Array<{id: string}>};
	t.deepEqual(listed.body, {
		users: [{id: users[0]!.id, username: 'alice', permissions: []}, {id: users[1]!.id, username: 'root', permissions: ['admin']}],
		total: 2,
	});
	t.deepEqual((await send('GET', '/admin/users?offset=1&limit=1', {token: root})).body, {users: [{id: users[1]!.id, username: 'root', permissions: ['admin']}], total: 2});
	const tooMany = await send('GET', '/admin/users?limit=1000', {token: root});
	t.is(tooMany.status, 400);
	t.deepEqual(tooMany.body, {error: {type: 'request', message: 'limit must be an integer from 0 to 100'}});
	const refused = await send('GET', '/admin/users', {token: alice});
	t.is(refused.status, 403);
	t.deepEqual(refused.body, {error: {type: 'scope', message: 'Insufficient permissions'}});
	t.is(refused.headers.get('www-authenticate'), 'Bearer realm="example", error="insufficient_scope", scope="admin"');
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
	const basic = (user: string, password: string) => ({headers: {authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`}});
	const ok = await fetch(`${url}/basic/whoami`, basic('alice', 'correct horse battery'));
	t.deepEqual(await ok.json(), {my_username: 'alice'});
	const alice = await users.getByUsername('alice');
	await users.update(alice!.id, {isActive: false});
	const answers = await Promise.all([basic('alice', 'wrong password'), basic('mallory', 'correct horse battery'), {}, basic('alice', 'correct horse battery')].map(async init => {
		const response = await fetch(`${url}/basic/whoami`, init);
		return [response.status, response.headers.get('www-authenticate'), await response.text()];
	}));
	t.deepEqual(answers[0], [401, 'Basic realm="example", charset="UTF-8"', '{"error":{"type":"request","message":"Authentication required"}}']);
	t.deepEqual(answers[1], answers[0]);
	t.deepEqual(answers[2], answers[0]);
	t.deepEqual(answers[3], answers[0], 'a deactivated user');
});
