import {spawn} from 'node:child_process';
import {mkdtempSync, rmSync} from 'node:fs';
import {tmpdir} from 'node:os';
import path from 'node:path';
import {once} from 'node:events';
import test, {type ExecutionContext} from 'ava';
import Database from 'better-sqlite3';
import {createExampleApp, accessTokenLifetime} from '../example-app/app.js';
import {listen, rawRequest} from './helpers/http.js';

// The scenarios of Flask-Stateless-Auth's example app, against ours, over HTTP.

type Pair = {access_token: string; refresh_token: string; token_type: string; expires_in: number};

async function start(t: ExecutionContext, databasePath = ':memory:') {
	let clock = Date.now();
	const example = createExampleApp({databasePath, now: () => clock});
	t.teardown(example.close);
	const url = await listen(t, example.app);
	const send = async (method: string, route: string, {token, scheme = 'Bearer', body}: {token?: string; scheme?: string; body?: unknown} = {}) => {
		const headers: Record<string, string> = {};
		if (token !== undefined) {
			headers['authorization'] = `${scheme} ${token}`;
		}

		if (body !== undefined) {
			headers['content-type'] = 'application/json';
		}

		const response = await fetch(`${url}${route}`, {method, headers, ...(body === undefined ? {} : {body: JSON.stringify(body)})});
		const text = await response.text();
		return {status: response.status, headers: response.headers, body: text === '' ? undefined : JSON.parse(text) as unknown};
	};

	const signUp = async (username: string, password = 'correct horse battery') => {
		t.is((await send('POST', '/user', {body: {username, password}})).status, 201);
		const login = await send('POST', '/token', {body: {username, password}});
		t.is(login.status, 201);
		return login.body as Pair;
	};

	return {...example, url, send, signUp, advance: (ms: number) => {
		clock += ms;
	}};
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
	t.is(wrongPassword.status, 400);
	t.deepEqual(wrongPassword.body, {error: {type: 'credentials', message: 'Invalid username or password'}});
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
	t.is((await send('PUT', '/token', {token: old.access_token})).status, 401, 'an access token cannot refresh');
	const refreshed = await send('PUT', '/token', {token: old.refresh_token});
	t.is(refreshed.status, 200);
	t.is(refreshed.headers.get('cache-control'), 'no-store');
	const pair = refreshed.body as Pair;
	t.not(pair.access_token, old.access_token);
	t.deepEqual((await send('GET', '/whoami', {token: pair.access_token})).body, {my_username: 'alice'});
	t.is((await send('GET', '/whoami', {token: old.access_token})).status, 401);
	t.is((await send('PUT', '/token', {token: old.refresh_token})).status, 401, 'a refresh token works once');
});

test('revoke: the pair stops working', async t => {
	const {send, signUp} = await start(t);
	const pair = await signUp('alice');
	t.is((await send('DELETE', '/token', {token: pair.access_token})).status, 204);
	t.is((await send('GET', '/secret', {token: pair.access_token})).status, 401);
	t.is((await send('PUT', '/token', {token: pair.refresh_token})).status, 401);
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
	t.is((await send('POST', '/token', {body: {username: 'alice', password: 'correct horse battery'}})).status, 400);
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
	const example = createExampleApp({databasePath: ':memory:', admins: ['root']});
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
	const example = createExampleApp({databasePath: ':memory:', machineKeys: {billing: ['old-key', 'new-key']}});
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
