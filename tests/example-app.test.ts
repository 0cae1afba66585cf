import {spawn} from 'node:child_process';
import {mkdtempSync, rmSync} from 'node:fs';
import {tmpdir} from 'node:os';
import path from 'node:path';
import {once} from 'node:events';
import test, {type ExecutionContext} from 'ava';
import Database from 'better-sqlite3';
import {createExampleApp, accessTokenLifetime, refreshTokenLifetime} from '../example-app/app.js';
import {hashToken} from '../example-app/secrets.js';
import {listen, rawRequest} from './helpers/http.js';

// The scenarios of Flask-Stateless-Auth's example app, against ours, over HTTP.

type Pair = {access_token: string; refresh_token: string; token_type: string; expires_in: number};

async function start(t: ExecutionContext, databasePath = ':memory:') {
	let clock = Date.now();
	const log: string[] = [];
	const example = createExampleApp({databasePath, now: () => clock, log: line => log.push(line)});
	t.teardown(example.close);
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

	const signUp = async (username: string, password = 'correct horse battery') => {
		t.is((await send('POST', '/user', {body: {username, password}})).status, 201);
		return login(username, password);
	};

	const login = async (username: string, password = 'correct horse battery') => {
		const response = await send('POST', '/token', {body: {username, password}});
		t.is(response.status, 200);
		return response.body as Pair;
	};

	return {...example, url, send, signUp, login, log, advance: (ms: number) => {
		clock += ms;
	}};
}

/** RFC 6749 §5.2: a 400 with `error` and `error_description`, and no Bearer challenge. */
function assertOAuthError(t: ExecutionContext, response: {status: number; headers: Headers; body: unknown}, error: string, description?: string) {
	t.is(response.status, 400);
	t.like(response.body, {error, ...(description === undefined ? {} : {error_description: description})});
	t.deepEqual(Object.keys(response.body as object), ['error', 'error_description']);
	t.is(response.headers.get('www-authenticate'), null);
}

test('create a user', async t => {
	const {send} = await start(t);
	const created = await send('POST', '/user', {body: {username: 'alice', password: 'correct horse'}});
	t.is(created.status, 201);
	t.deepEqual(created.body, {id: 1, username: 'alice'});
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

test('get a token pair: 256 random bits each, never stored as sent', async t => {
	const directory = mkdtempSync(path.join(tmpdir(), 'koa-stateless-auth-'));
	t.teardown(() => {
		rmSync(directory, {recursive: true, force: true});
	});
	const databasePath = path.join(directory, 'example.sqlite');
	const {signUp} = await start(t, databasePath);
	const pair = await signUp('alice');
	t.is(pair.token_type, 'Bearer');
	t.is(pair.expires_in, 3600);
	for (const token of [pair.access_token, pair.refresh_token]) {
		t.regex(token, /^[\w-]{43}$/, '32 bytes in base64url');
	}

	t.not(pair.access_token, pair.refresh_token);
	const db = new Database(databasePath, {readonly: true});
	t.teardown(() => db.close());
	const dump = JSON.stringify(db.prepare('SELECT * FROM tokens').all());
	t.false(dump.includes(pair.access_token));
	t.false(dump.includes(pair.refresh_token));
	t.true(dump.includes('"access_hash"'));
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

test('refresh: the refresh token buys a new pair and the old pair stops working', async t => {
	const {send, signUp} = await start(t);
	const old = await signUp('alice');
	assertOAuthError(t, await send('PUT', '/token', {token: old.access_token}), 'invalid_grant', 'Invalid token');
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
	assertOAuthError(t, await send('PUT', '/token', {token: old.refresh_token}), 'invalid_grant', 'Invalid token');
	t.is((await send('PUT', '/token', {token: pair.refresh_token})).status, 200, 'the new refresh token works');
});

test('two refreshes with one refresh token: one new pair, and an invalid_grant', async t => {
	const {send, signUp} = await start(t);
	const old = await signUp('alice');
	const answers = await Promise.all([send('PUT', '/token', {token: old.refresh_token}), send('PUT', '/token', {token: old.refresh_token})]);
	const winners = answers.filter(answer => answer.status === 200);
	t.is(winners.length, 1);
	assertOAuthError(t, answers.find(answer => answer.status !== 200)!, 'invalid_grant');
	t.is((await send('GET', '/whoami', {token: (winners[0]!.body as Pair).access_token})).status, 200);
});

test('a refresh that loses its pair to another one between check and swap issues nothing', async t => {
	const directory = mkdtempSync(path.join(tmpdir(), 'koa-stateless-auth-'));
	t.teardown(() => {
		rmSync(directory, {recursive: true, force: true});
	});
	const databasePath = path.join(directory, 'example.sqlite');
	const {send, signUp, store} = await start(t, databasePath);
	const old = await signUp('alice');
	const replace = store.replaceTokens;
	// The other refresh (or a logout) wins after this one's guard has accepted the token.
	store.replaceTokens = Object.assign((...args: Parameters<typeof replace>) => {
		t.true(store.revokeTokens(hashToken(old.refresh_token)));
		return replace(...args);
	}, replace);
	assertOAuthError(t, await send('PUT', '/token', {token: old.refresh_token}), 'invalid_grant', 'Invalid token');
	const db = new Database(databasePath, {readonly: true});
	t.teardown(() => db.close());
	t.deepEqual(db.prepare('SELECT COUNT(*) AS pairs FROM tokens').get(), {pairs: 0});
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
	assertOAuthError(t, await send('PUT', '/token', {token: pair.refresh_token, scheme: 'Basic'}), 'invalid_request');
	const malformed = await rawRequest(url, '/token', [['Authorization', 'Bearer not a token']], 'PUT');
	t.is(malformed.status, 400);
	t.deepEqual(JSON.parse(malformed.body), {error: 'invalid_request', error_description: 'Malformed authorization header'});
	assertOAuthError(t, await send('PUT', '/token', {token: 'bm9wZQ'}), 'invalid_grant', 'Invalid token');
	advance(refreshTokenLifetime);
	assertOAuthError(t, await send('PUT', '/token', {token: pair.refresh_token}), 'invalid_grant', 'refresh token expired');
});

test('log out with the refresh token alone, once the access token has expired', async t => {
	const {send, signUp, advance} = await start(t);
	const pair = await signUp('alice');
	advance(accessTokenLifetime);
	t.is((await send('GET', '/whoami', {token: pair.access_token})).status, 401, 'the access token has expired');
	t.is((await send('DELETE', '/token', {token: pair.refresh_token})).status, 204);
	assertOAuthError(t, await send('PUT', '/token', {token: pair.refresh_token}), 'invalid_grant', 'Invalid token');
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
	advance(accessTokenLifetime);
	const expired = await send('GET', '/secret', {token: pair.access_token});
	t.is(expired.status, 401);
	t.deepEqual(expired.body, {error: {type: 'token', message: 'access token expired'}});
	t.is(expired.headers.get('www-authenticate'), 'Bearer realm="example", error="invalid_token"');
	t.is((await send('PUT', '/token', {token: pair.refresh_token})).status, 200);
});

test('a deactivated user\'s token is refused like an unknown one', async t => {
	const {send, signUp, store} = await start(t);
	const pair = await signUp('alice');
	store.setActive(1, false);
	const refused = await send('GET', '/whoami', {token: pair.access_token});
	t.is(refused.status, 401);
	t.deepEqual(refused.body, {error: {type: 'token', message: 'Invalid token'}});
	assertOAuthError(t, await send('POST', '/token', {body: {username: 'alice', password: 'correct horse battery'}}), 'invalid_grant');
});

test('an invalid token', async t => {
	const {send} = await start(t);
	const refused = await send('GET', '/secret', {token: 'bm9wZQ=='});
	t.is(refused.status, 401);
	t.deepEqual(refused.body, {error: {type: 'token', message: 'Invalid token'}});
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

test('npm start\'s program prints its URL and a curl line, and serves', async t => {
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
			if (output.includes('/whoami')) {
				resolve();
			}
		});
	});

	const url = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(output)?.[1];
	t.truthy(url, output);
	t.regex(output, /curl -s -X POST http:\/\/127\.0\.0\.1:\d+\/token/);
	const response = await fetch(`${url}/public`);
	t.is(response.status, 200);
	child.kill('SIGTERM');
	const [code, signal] = await once(child, 'exit') as [number | null, string | null];
	t.true(code === 0 || signal === 'SIGTERM');
});

test('the admin route needs the admin permission', async t => {
	const example = createExampleApp({databasePath: ':memory:', admins: ['root'], log: t.log});
	t.teardown(example.close);
	const url = await listen(t, example.app);
	const signUp = async (username: string) => {
		await fetch(`${url}/user`, {method: 'POST', headers: {'content-type': 'application/json'}, body: JSON.stringify({username, password: 'long enough!'})});
		const response = await fetch(`${url}/token`, {method: 'POST', headers: {'content-type': 'application/json'}, body: JSON.stringify({username, password: 'long enough!'})});
		return (await response.json() as Pair).access_token;
	};

	const root = await signUp('root');
	const alice = await signUp('alice');
	const listed = await fetch(`${url}/admin/users`, {headers: {authorization: `Bearer ${root}`}});
	t.is(listed.status, 200);
	t.deepEqual(await listed.json(), {users: [{id: 1, username: 'root', permissions: ['admin']}, {id: 2, username: 'alice', permissions: []}]});
	const refused = await fetch(`${url}/admin/users`, {headers: {authorization: `Bearer ${alice}`}});
	t.is(refused.status, 403);
	t.deepEqual(await refused.json(), {error: {type: 'scope', message: 'Insufficient permissions'}});
	t.is(refused.headers.get('www-authenticate'), 'Bearer realm="example", error="insufficient_scope", scope="admin"');
});

test('the machine-to-machine route takes a header API key and names the caller', async t => {
	const example = createExampleApp({databasePath: ':memory:', machineKeys: {billing: ['old-key', 'new-key']}, log: t.log});
	t.teardown(example.close);
	const url = await listen(t, example.app);
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
	const {url, signUp} = await start(t);
	await signUp('alice');
	const basic = (user: string, password: string) => ({headers: {authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`}});
	const ok = await fetch(`${url}/basic/whoami`, basic('alice', 'correct horse battery'));
	t.deepEqual(await ok.json(), {my_username: 'alice'});
	const answers = await Promise.all([basic('alice', 'wrong password'), basic('mallory', 'correct horse battery'), {}].map(async init => {
		const response = await fetch(`${url}/basic/whoami`, init);
		return [response.status, response.headers.get('www-authenticate'), await response.text()];
	}));
	t.deepEqual(answers[0], [401, 'Basic realm="example", charset="UTF-8"', '{"error":{"type":"request","message":"Authentication required"}}']);
	t.deepEqual(answers[1], answers[0]);
	t.deepEqual(answers[2], answers[0]);
});
