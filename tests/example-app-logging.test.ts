import {spawn} from 'node:child_process';
import {once} from 'node:events';
import {mkdtempSync, rmSync} from 'node:fs';
import {tmpdir} from 'node:os';
import path from 'node:path';
import {gzipSync} from 'node:zlib';
import test, {type ExecutionContext} from 'ava';
import {createExampleApp, ensureAdmin, type ExampleOptions} from '../example-app/app.js';
import {openStores} from '../example-app/stores.js';
import {listen, rawRequest} from './helpers/http.js';

// What the example app writes to its log, for requests that carry passwords and tokens: one
// summary line (status, method, path, error names and codes), never a body, a header, a query
// string, a token, a password, or an error's message.

const password = 'hunter2 Zebra-Quartz 91';
type Pair = {access_token: string; refresh_token: string};
/** scrypt at a low cost, so that tests hash quickly. */
const scrypt = {ln: 10, r: 8, p: 1};

async function start(t: ExecutionContext, options: Partial<Omit<ExampleOptions, 'stores'>> = {}) {
	const log: string[] = [];
	const stores = await openStores({DATABASE_PATH: ':memory:'});
	t.teardown(stores.close);
	const example = createExampleApp({stores, scrypt, log: line => log.push(line), ...options});
	const url = await listen(t, example.app);
	const post = async (route: string, body: string, headers: Record<string, string> = {'content-type': 'application/json'}) => {
		const response = await fetch(`${url}${route}`, {method: 'POST', headers, body});
		return {status: response.status, type: response.headers.get('content-type'), text: await response.text()};
	};

	const signUp = async (username: string, {admin = false} = {}) => {
		const credentials = JSON.stringify({username, password});
		if (admin) {
			t.is(await ensureAdmin(stores.users, {username, password, scrypt}), 'created');
		} else {
			t.is((await post('/user', credentials)).status, 201);
		}

		const login = await post('/api/user/login', credentials);
		t.is(login.status, 200, admin ? 'admin' : username);
		return JSON.parse(login.text) as Pair;
	};

	return {...example, stores, url, log, post, signUp};
}

/** Neither the log nor any answer holds a secret, or a piece of one. */
function assertNothingLeaks(t: ExecutionContext, texts: readonly string[], secrets: readonly string[]) {
	for (const text of texts) {
		for (const secret of [password, 'hunter2', 'Zebra-Quartz', ...secrets]) {
			t.false(text.includes(secret), `${JSON.stringify(text)} holds a secret`);
		}
	}
}

function summary(status: number, method: string, route: string, error: string) {
	return `request failed ${JSON.stringify({status, method, path: route, error})}`;
}

test.serial('by default the app logs to console.error, and only a summary', async t => {
	const written: unknown[][] = [];
	const methods = ['log', 'error', 'warn', 'info', 'debug'] as const;
	const originals = methods.map(method => console[method].bind(console));
	for (const method of methods) {
		console[method] = (...parts: unknown[]) => {
			written.push(parts);
		};
	}

	try {
		const stores = await openStores({DATABASE_PATH: ':memory:'});
		t.teardown(stores.close);
		const example = createExampleApp({stores, scrypt});
		const url = await listen(t, example.app);
		const response = await fetch(`${url}/api/user/login`, {method: 'POST', headers: {'content-type': 'application/json'}, body: `{"username":"alice","password":"${password}"`});
		t.is(response.status, 400);
		t.deepEqual(await response.json(), {error: 'invalid_request', error_description: 'Request body is not valid JSON'});
	} finally {
		for (const [index, method] of methods.entries()) {
			console[method] = originals[index]!;
		}
	}

	t.deepEqual(written, [[summary(400, 'POST', '/api/user/login', 'RequestBodyError(entity.parse.failed)')]]);
});

test('malformed JSON is a 400 in the route\'s error shape, and the log holds no part of it', async t => {
	const {post, log, url, signUp} = await start(t);
	const pair = await signUp('alice');
	// The first is the issue's example; V8 quotes the second in its message ("...password":correct ho"...).
	const bodies = [`{"username":"alice","password":"${password}"`, `{"username":"alice","password":${password}}`];
	const answers = [];
	for (const body of bodies) {
		const token = await post('/api/user/login?debug=correct%20horse', body);
		t.is(token.status, 400);
		t.regex(token.type ?? '', /^application\/json/);
		t.deepEqual(JSON.parse(token.text), {error: 'invalid_request', error_description: 'Request body is not valid JSON'});
		const user = await post('/user', body);
		t.is(user.status, 400);
		t.deepEqual(JSON.parse(user.text), {error: 'invalid_request', error_description: 'Request body is not valid JSON'});
		const profile = await fetch(`${url}/api/user/me/profile`, {method: 'PUT', headers: {'content-type': 'application/json', authorization: `Bearer ${pair.access_token}`}, body});
		t.is(profile.status, 400);
		const profileText = await profile.text();
		t.deepEqual(JSON.parse(profileText), {error: 'invalid_request', error_description: 'Request body is not valid JSON'});
		answers.push(token.text, user.text, profileText);
	}

	const line = (method: string, route: string) => summary(400, method, route, 'RequestBodyError(entity.parse.failed)');
	const round = [line('POST', '/api/user/login'), line('POST', '/user'), line('PUT', '/api/user/me/profile')];
	t.deepEqual(log, [...round, ...round]);
	assertNothingLeaks(t, [...log, ...answers], []);
});

test('an oversized body is a 413 in the route\'s error shape, and the log holds no part of it', async t => {
	const {post, log, url} = await start(t);
	const body = JSON.stringify({username: 'alice', password, padding: 'x'.repeat(20 * 1024)});
	const declared = await post('/api/user/login', body);
	t.is(declared.status, 413);
	t.deepEqual(JSON.parse(declared.text), {error: 'invalid_request', error_description: 'Request body is larger than 16kb'});
	// Without a Content-Length, the limit is found while reading.
	const chunks = [body.slice(0, 10_000), body.slice(10_000)].map(chunk => `${chunk.length.toString(16)}\r\n${chunk}\r\n`).join('');
	const chunked = await rawRequest(url, '/user', [['Content-Type', 'application/json'], ['Transfer-Encoding', 'chunked']], 'POST', `${chunks}0\r\n\r\n`);
	t.is(chunked.status, 413);
	t.deepEqual(JSON.parse(chunked.body), {error: 'invalid_request', error_description: 'Request body is larger than 16kb'});
	t.deepEqual(log, [summary(413, 'POST', '/api/user/login', 'RequestBodyError(entity.too.large)'), summary(413, 'POST', '/user', 'RequestBodyError(entity.too.large)')]);
	assertNothingLeaks(t, [...log, declared.text, chunked.body], []);
});

test('another charset, an unknown Content-Encoding, a body that does not inflate: 4xx in the route\'s error shape', async t => {
	const {post, log} = await start(t);
	const credentials = JSON.stringify({username: 'alice', password});
	const latin1 = await post('/user', credentials, {'content-type': 'application/json; charset=latin1'});
	t.is(latin1.status, 415);
	t.deepEqual(JSON.parse(latin1.text), {error: 'invalid_request', error_description: 'Request body must be UTF-8'});
	const compress = await post('/api/user/login', credentials, {'content-type': 'application/json', 'content-encoding': 'compress'});
	t.is(compress.status, 415);
	t.deepEqual(JSON.parse(compress.text), {error: 'invalid_request', error_description: 'Content-Encoding is not supported'});
	const garbage = await post('/api/user/login', credentials, {'content-type': 'application/json', 'content-encoding': 'gzip'});
	t.is(garbage.status, 400, 'a client error, not a 500');
	t.deepEqual(JSON.parse(garbage.text), {error: 'invalid_request', error_description: 'Request body could not be decompressed'});
	t.deepEqual(log, [
		summary(415, 'POST', '/user', 'RequestBodyError(charset.unsupported)'),
		summary(415, 'POST', '/api/user/login', 'RequestBodyError(encoding.unsupported)'),
		summary(400, 'POST', '/api/user/login', 'RequestBodyError(encoding.invalid)'),
	]);
	assertNothingLeaks(t, [...log, latin1.text, compress.text, garbage.text], []);

	// UTF-8, said so, and gzip that inflates are read as usual, by the account routes too.
	const {url} = await start(t);
	const gzipped = {method: 'POST', headers: {'content-type': 'application/json; charset=UTF-8', 'content-encoding': 'gzip'}, body: gzipSync(credentials)};
	t.is((await fetch(`${url}/user`, gzipped)).status, 201);
	t.is((await fetch(`${url}/api/user/login`, gzipped)).status, 200);
});

/** A driver's error that holds what it was given, as some do. */
class DatabaseDownError extends Error {
	readonly code = 'SQLITE_IOERR';
	readonly body: unknown;
	readonly headers: unknown;

	constructor(message: string, body: unknown, headers: unknown) {
		super(message);
		this.name = 'DatabaseDownError';
		this.body = body;
		this.headers = headers;
	}
}

test('a token store failure is a 503 with Retry-After, and the log names the error, not its message', async t => {
	const {signUp, stores, url, log} = await start(t);
	const pair = await signUp('alice');
	stores.tokens.find = async () => {
		throw new DatabaseDownError(`cannot read ${pair.access_token} / ${pair.refresh_token} (password ${password})`, {password}, {authorization: `Bearer ${pair.access_token}`});
	};

	const whoami = await fetch(`${url}/whoami?access_token=${pair.access_token}`, {headers: {authorization: `Bearer ${pair.access_token}`}});
	t.is(whoami.status, 503);
	t.is(whoami.headers.get('retry-after'), '1');
	const whoamiText = await whoami.text();
	t.deepEqual(JSON.parse(whoamiText), {error: {type: 'server', message: 'Service unavailable'}});
	const refresh = await fetch(`${url}/api/user/refresh`, {method: 'POST', headers: {'content-type': 'application/json'}, body: JSON.stringify({refresh_token: pair.refresh_token})});
	t.is(refresh.status, 503);
	t.is(refresh.headers.get('retry-after'), '1');
	const refreshText = await refresh.text();
	t.deepEqual(JSON.parse(refreshText), {error: 'temporarily_unavailable', error_description: 'Service unavailable'});

	t.is(log.length, 2);
	t.like(JSON.parse(log[0]!.replace(/^request failed /, '')), {status: 503, method: 'GET', path: '/whoami'});
	t.like(JSON.parse(log[1]!.replace(/^request failed /, '')), {status: 503, method: 'POST', path: '/api/user/refresh'});
	for (const line of log) {
		// The answer's generic error <- the service's 503 (store_unavailable) <- the driver's.
		t.regex(line, /"error":"StatelessAuthError <- StatelessAuthError <- DatabaseDownError\(SQLITE_IOERR\)"/, 'the cause, by name and code');
	}

	assertNothingLeaks(t, [...log, whoamiText, refreshText], [pair.access_token, pair.refresh_token, 'cannot read']);
});

test('a user loader failure is a generic 500, and the log names the error, not its message', async t => {
	const {signUp, stores, url, log} = await start(t);
	const pair = await signUp('alice');
	stores.users.getById = async () => {
		throw new DatabaseDownError(`cannot read the user of ${pair.access_token} (password ${password})`, {password}, {authorization: `Bearer ${pair.access_token}`});
	};

	const whoami = await fetch(`${url}/whoami`, {headers: {authorization: `Bearer ${pair.access_token}`}});
	t.is(whoami.status, 500);
	const whoamiText = await whoami.text();
	t.deepEqual(JSON.parse(whoamiText), {error: {type: 'server', message: 'Internal server error'}});
	t.deepEqual(log, [summary(500, 'GET', '/whoami', 'StatelessAuthError <- DatabaseDownError(SQLITE_IOERR)')]);
	assertNothingLeaks(t, [...log, whoamiText], [pair.access_token, pair.refresh_token, 'cannot read']);
});

test('a 500 in a route is a generic answer, and the log holds only a summary', async t => {
	const {signUp, stores, url, log, post} = await start(t);
	const root = await signUp('root', {admin: true});
	stores.users.list = async () => {
		throw new DatabaseDownError(`disk I/O error while serving ${root.access_token}`, {password}, {});
	};

	const listed = await fetch(`${url}/api/user/users?token=${root.refresh_token}`, {headers: {authorization: `Bearer ${root.access_token}`}});
	t.is(listed.status, 500);
	const listedText = await listed.text();
	t.deepEqual(JSON.parse(listedText), {error: 'internal_error', error_description: 'Internal server error'});

	// Failing while issuing a pair, after the password was checked: the token store's, a 503.
	stores.tokens.create = async () => {
		throw new Error(`constraint failed for password ${password}`);
	};

	const login = await post('/api/user/login', JSON.stringify({username: 'root', password}));
	t.is(login.status, 503);
	t.deepEqual(JSON.parse(login.text), {error: 'temporarily_unavailable', error_description: 'Service unavailable'});

	// Something that is not even an error, holding the password.
	stores.users.getByUsername = async () => {
		// eslint-disable-next-line @typescript-eslint/only-throw-error
		throw `no user for ${password}`;
	};

	const thrown = await post('/api/user/login', JSON.stringify({username: 'root', password}));
	t.is(thrown.status, 500);
	t.deepEqual(JSON.parse(thrown.text), {error: 'server_error', error_description: 'Internal server error'});

	t.deepEqual(log, [
		summary(500, 'GET', '/api/user/users', 'DatabaseDownError(SQLITE_IOERR)'),
		summary(503, 'POST', '/api/user/login', 'StatelessAuthError <- StatelessAuthError <- Error'),
		summary(500, 'POST', '/api/user/login', 'thrown string'),
	]);
	assertNothingLeaks(t, [...log, listedText, login.text, thrown.text], [root.access_token, root.refresh_token, 'disk I/O']);
});

test('refusals are answered, not logged', async t => {
	const {signUp, url, log, post} = await start(t);
	const pair = await signUp('alice');
	t.is((await post('/api/user/login', JSON.stringify({username: 'alice', password: `${password}!`}))).status, 400);
	t.is((await fetch(`${url}/whoami`, {headers: {authorization: `Bearer ${pair.refresh_token}`}})).status, 401);
	t.is((await fetch(`${url}/api/user/me`, {headers: {authorization: `Bearer ${pair.refresh_token}`}})).status, 401);
	t.is((await post('/api/user/refresh', JSON.stringify({refresh_token: pair.access_token}))).status, 400);
	t.is((await fetch(`${url}/basic/whoami`, {headers: {authorization: `Basic ${Buffer.from(`alice:${password}?`).toString('base64')}`}})).status, 401);
	t.is((await fetch(`${url}/api/user/password`, {method: 'PUT', headers: {'content-type': 'application/json', authorization: `Bearer ${pair.access_token}`}, body: JSON.stringify({oldPassword: `${password}!`, newPassword: `${password}?`})})).status, 400);
	t.is((await post('/user', JSON.stringify({username: 'alice', password}))).status, 409);
	t.deepEqual(log, []);
});

test('npm start\'s program writes no body, header, token, password or key to its output, the admin\'s included', async t => {
	const directory = mkdtempSync(path.join(tmpdir(), 'koa-stateless-auth-'));
	const machineKey = 'm2m-key-that-must-stay-secret';
	const adminUsername = 'root';
	const adminPassword = 'admin Password-that-must-stay-secret';
	const child = spawn(process.execPath, ['--import=./ts-node-register.js', 'example-app/main.ts'], {
		env: {...process.env, PORT: '0', DATABASE_PATH: path.join(directory, 'main.sqlite'), M2M_API_KEY: machineKey, ADMIN_USERNAME: adminUsername, ADMIN_PASSWORD: adminPassword},
		stdio: ['ignore', 'pipe', 'pipe'],
	});
	t.teardown(() => {
		child.kill();
		rmSync(directory, {recursive: true, force: true});
	});
	let stdout = '';
	let stderr = '';
	child.stderr.on('data', (chunk: Buffer) => {
		stderr += String(chunk);
	});
	await new Promise<void>(resolve => {
		child.stdout.on('data', (chunk: Buffer) => {
			stdout += String(chunk);
			if (stdout.includes('/openapi.json')) {
				resolve();
			}
		});
	});
	const url = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(stdout)?.[1] ?? '';
	const post = async (route: string, body: string | Uint8Array, headers: Record<string, string> = {'content-type': 'application/json'}) =>
		(await fetch(`${url}${route}`, {method: 'POST', headers, body})).status;

	const credentials = JSON.stringify({username: 'alice', password});
	t.is(await post('/user', credentials), 201);
	const pair = await (await fetch(`${url}/api/user/login`, {method: 'POST', headers: {'content-type': 'application/json'}, body: credentials})).json() as Pair;
	t.is(await post('/api/user/login', `{"username":"alice","password":"${password}"`), 400);
	t.is(await post('/api/user/login', JSON.stringify({username: 'alice', password, padding: 'x'.repeat(20 * 1024)})), 413);
	t.is(await post('/api/user/login', credentials, {'content-type': 'application/json', 'content-encoding': 'gzip'}), 400);
	t.is(await post('/api/user/login', `{"username":"alice","password":"${password}!"}`), 400);
	t.is(await post('/api/user/login', new URLSearchParams({username: adminUsername, password: adminPassword}).toString(), {'content-type': 'application/x-www-form-urlencoded'}), 200);
	t.is(await post('/m2m/ping', '', {'x-example-apikey': machineKey}), 200);
	const key = await (await fetch(`${url}/api/user/api-keys`, {method: 'POST', headers: {'content-type': 'application/json', authorization: `Bearer ${pair.access_token}`}, body: '{"name":"cron"}'})).json() as {key: string};
	t.is((await fetch(`${url}/whoami`, {headers: {authorization: `Token ${key.key}`}})).status, 200);
	t.is((await fetch(`${url}/whoami?access_token=${pair.refresh_token}`, {headers: {authorization: `Bearer ${pair.access_token}`}})).status, 200);
	t.is(await post('/token/revoke', `token=${pair.refresh_token}`, {'content-type': 'application/x-www-form-urlencoded'}), 200);

	child.kill('SIGTERM');
	await once(child, 'close');
	t.deepEqual(stderr.trim().split('\n'), [
		summary(400, 'POST', '/api/user/login', 'RequestBodyError(entity.parse.failed)'),
		summary(413, 'POST', '/api/user/login', 'RequestBodyError(entity.too.large)'),
		summary(400, 'POST', '/api/user/login', 'RequestBodyError(encoding.invalid)'),
	]);
	assertNothingLeaks(t, [stdout, stderr], [pair.access_token, pair.refresh_token, key.key, machineKey, adminPassword]);
});
