// One regression test (or a few) per hardening of commit 15189fc, over real HTTP.
import {execFile} from 'node:child_process';
import {setTimeout as delay} from 'node:timers/promises';
import {promisify} from 'node:util';
import test, {type ExecutionContext} from 'ava';
import Koa, {type Context} from 'koa';
import Router from '@koa/router';
import {
	HttpAuth, HttpBasicAuth, LoaderTimeoutError, StatelessAuthError, StatelessAuthManager, authErrorHandler, isStatelessAuthError,
	type Authenticator, type Authorization,
} from '../source/index.js';
import {listen, rawRequest} from './helpers/http.js';

type User = {readonly id: number; readonly name: string};
type Service = {readonly service: string};

const bearer = (token: string): Array<[string, string]> => [['Authorization', `Bearer ${token}`]];
const basicHeader = (user: string, password: string): Array<[string, string]> => [['Authorization', `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`]];
const invalidToken = JSON.stringify({error: 'Token error: Invalid token'});

/** A Koa app with (or without) authErrorHandler that records what it emits on 'error' and which routes ran. */
function createApp(withHandler = true) {
	const app = new Koa();
	const errors: unknown[] = [];
	app.on('error', (error: unknown) => errors.push(error));
	if (withHandler) {
		app.use(authErrorHandler());
	}

	const handled: string[] = [];
	const router = new Router<object>();
	const handler = (ctx: Context) => {
		handled.push(ctx.path);
		ctx.body = {route: ctx.path, principal: (ctx.state as {currentUser?: unknown}).currentUser ?? null};
	};

	return {app, errors, handled, router, handler};
}

function serve(t: ExecutionContext, app: Koa, router: Router<object>): Promise<string> {
	app.use(router.routes());
	return listen(t, app);
}

// 1. Falsy principals are unknown, on every authenticator.

test('an apiKeyLoader written as `known.has(key) && svc` refuses an unknown key with 401 instead of letting it in', async t => {
	const known = new Set(['k-billing']);
	const svc: Service = {service: 'billing'};
	const auth = new StatelessAuthManager<Service, object>({realm: 'api'});
	auth.tokenLoader(() => undefined);
	auth.userLoader(() => undefined);
	auth.apiKeyLoader(key => known.has(key) && svc);
	const {app, errors, handled, router, handler} = createApp();
	router.get('/export', auth.tokenRequired({allowApiKey: true}), handler);
	const url = await serve(t, app, router);

	const unknown = await rawRequest(url, '/export', [['Authorization', 'Token k-stranger']]);
	t.is(unknown.status, 401);
	t.is(unknown.body, invalidToken);
	t.deepEqual(unknown.headerLines('www-authenticate'), ['Token realm="api", error="invalid_token"']);
	t.deepEqual(handled, []);

	const good = await rawRequest(url, '/export', [['Authorization', 'Token k-billing']]);
	t.is(good.status, 200);
	t.deepEqual(JSON.parse(good.body), {route: '/export', principal: {service: 'billing'}});
	t.deepEqual(errors, []);
});

test('a userLoader written as `r => r.active && user` refuses an inactive record with 401 instead of letting it in', async t => {
	const user: User = {id: 1, name: 'alice'};
	const auth = new StatelessAuthManager<User, {active: boolean}>({realm: 'api'});
	auth.tokenLoader(token => ({active: token === 'live'}));
	auth.userLoader(r => r.active && user);
	const {app, errors, handled, router, handler} = createApp();
	router.get('/me', auth.tokenRequired(), handler);
	const url = await serve(t, app, router);

	const inactive = await rawRequest(url, '/me', bearer('stale'));
	t.is(inactive.status, 401);
	t.is(inactive.body, invalidToken);
	t.deepEqual(inactive.headerLines('www-authenticate'), ['Bearer realm="api", error="invalid_token"']);
	t.deepEqual(handled, []);

	const live = await rawRequest(url, '/me', bearer('live'));
	t.is(live.status, 200);
	t.deepEqual(JSON.parse(live.body), {route: '/me', principal: user});
	t.deepEqual(errors, []);
});

const falsyValues: ReadonlyArray<[string, unknown]> = [['false', false], ['0', 0], ['\'\'', ''], ['NaN', Number.NaN], ['null', null], ['undefined', undefined]];

test('a tokenLoader answering each falsy value is refused like an unknown token', async t => {
	const answers = new Map(falsyValues.map(([, value], index) => [`t${index}`, value]));
	const auth = new StatelessAuthManager<User, object>({realm: 'api'});
	auth.tokenLoader(token => (token === 'good' ? {} : answers.get(token) as never));
	auth.userLoader(() => ({id: 1, name: 'alice'}));
	const {app, errors, handled, router, handler} = createApp();
	router.get('/me', auth.tokenRequired(), handler);
	const url = await serve(t, app, router);
	for (const token of answers.keys()) {
		const response = await rawRequest(url, '/me', bearer(token));
		t.is(response.status, 401, token);
		t.is(response.body, invalidToken, token);
	}

	t.deepEqual(handled, []);
	t.is((await rawRequest(url, '/me', bearer('good'))).status, 200);
	t.deepEqual(errors, []);
});

test('HttpBasicAuth refuses a falsy answer of authenticate with its one identical 401', async t => {
	const basic = new HttpBasicAuth<User>({
		realm: 'admin',
		authenticate: ({username}) => (username === 'alice' ? {id: 1, name: 'alice'} : (falsyValues.find(([name]) => name === username)?.[1] as never)),
	});
	const auth = new StatelessAuthManager();
	const {app, errors, handled, router, handler} = createApp();
	router.get('/basic', auth.protect({authenticators: [basic]}), handler);
	const url = await serve(t, app, router);
	const missing = await rawRequest(url, '/basic', []);
	for (const [name] of falsyValues) {
		const response = await rawRequest(url, '/basic', basicHeader(name, 'pw'));
		t.is(response.status, 401, name);
		t.is(response.body, JSON.stringify({error: 'Request error: Authentication required'}), name);
		t.deepEqual(response.headerLines('www-authenticate'), ['Basic realm="admin", charset="UTF-8"'], name);
		t.deepEqual(response.headers, missing.headers.map(([key, value]): [string, string] => [key, key === 'date' ? response.header('date') ?? '' : value]), `${name}: byte-identical to a missing header`);
	}

	t.deepEqual(handled, []);
	t.is((await rawRequest(url, '/basic', basicHeader('alice', 'pw'))).status, 200);
	t.deepEqual(errors, []);
});

test('a custom HttpAuth subclass refuses a falsy answer of its authenticate callback', async t => {
	class KeyAuth extends HttpAuth<User, Authorization & {key: string}> {
		readonly scheme = 'Key';
		protected override readonly credentialsHeader = 'x-key';

		getAuthorization(ctx: Context) {
			const key = ctx.get('X-Key');
			return key === '' ? undefined : {authType: 'key', key};
		}
	}

	const keyAuth = new KeyAuth({realm: 'keys', authenticate: ({key}) => (key === 'good' ? {id: 1, name: 'alice'} : (falsyValues.find(([name]) => name === key)?.[1] as never))});
	const auth = new StatelessAuthManager();
	const {app, errors, handled, router, handler} = createApp();
	router.get('/keyed', auth.protect({authenticators: [keyAuth]}), handler);
	const url = await serve(t, app, router);
	for (const [name] of falsyValues) {
		const response = await rawRequest(url, '/keyed', [['X-Key', name]]);
		t.is(response.status, 401, name);
		t.is(response.body, JSON.stringify({error: 'Request error: Authentication required'}), name);
		t.deepEqual(response.headerLines('www-authenticate'), ['Key realm="keys"'], name);
	}

	t.deepEqual(handled, []);
	t.is((await rawRequest(url, '/keyed', [['X-Key', 'good']])).status, 200);
	t.deepEqual(errors, []);
});

test('a custom Authenticator object answering {ok: true} with a falsy user is refused like an unknown token', async t => {
	const custom: Authenticator<User> = {
		securitySchemeName: 'customAuth',
		securityScheme: {type: 'apiKey', in: 'header', name: 'X-Custom'},
		authenticate(ctx) {
			const value = ctx.get('X-Custom');
			if (value === '') {
				return {ok: false, reason: 'absent'};
			}

			const user = value === 'good' ? {id: 1, name: 'alice'} : falsyValues.find(([name]) => name === value)?.[1] as never;
			return value.startsWith('async-') ? Promise.resolve({ok: true, user: falsyValues.find(([name]) => `async-${name}` === value)?.[1] as never, token: undefined}) : {ok: true, user, token: undefined};
		},
		challenge: parameters => (parameters?.error === undefined ? 'Custom realm="c"' : `Custom realm="c", error="${parameters.error}"`),
	};
	const auth = new StatelessAuthManager();
	const {app, errors, handled, router, handler} = createApp();
	router.get('/custom', auth.protect({authenticators: [custom]}), handler);
	const url = await serve(t, app, router);
	for (const value of falsyValues.flatMap(([name]) => [name, `async-${name}`])) {
		const response = await rawRequest(url, '/custom', [['X-Custom', value]]);
		t.is(response.status, 401, value);
		t.is(response.body, invalidToken, value);
		t.deepEqual(response.headerLines('www-authenticate'), ['Custom realm="c", error="invalid_token"'], value);
	}

	t.deepEqual(handled, []);
	t.is((await rawRequest(url, '/custom', [['X-Custom', 'good']])).status, 200);
	t.deepEqual(errors, []);
});

const truthyNonObjects: ReadonlyArray<[string, unknown]> = [['number', 7], ['string', 'alice'], ['boolean', true], ['symbol', Symbol('user')]];

const truthyNonObject = test.macro({
	async exec(t, loader: 'tokenLoader' | 'userLoader' | 'apiKeyLoader') {
		let answer: unknown;
		const auth = new StatelessAuthManager<object, object>({realm: 'api'});
		auth.tokenLoader(token => (loader === 'tokenLoader' && token === 'odd' ? answer as never : {}));
		auth.userLoader(() => (loader === 'userLoader' ? answer as never : {id: 1}));
		auth.apiKeyLoader(() => (loader === 'apiKeyLoader' ? answer as never : {id: 1}));
		const {app, errors, handled, router, handler} = createApp();
		router.get('/r', auth.tokenRequired({allowApiKey: true}), handler);
		const url = await serve(t, app, router);
		const credentials: Array<[string, string]> = loader === 'apiKeyLoader' ? [['Authorization', 'Token odd']] : bearer('odd');
		for (const [type, value] of truthyNonObjects) {
			answer = value;
			const response = await rawRequest(url, '/r', credentials);
			t.is(response.status, 500, type);
			t.is(response.body, JSON.stringify({error: 'Server error: Internal server error'}), type);
			t.deepEqual(response.headerLines('www-authenticate'), [], type);
			const emitted = errors.at(-1) as StatelessAuthError;
			t.true(emitted.cause instanceof TypeError, type);
			t.is((emitted.cause as TypeError).message, `The ${loader} answered a ${type}; a loader answers an object, or a falsy value for "unknown".`);
		}

		t.is(errors.length, truthyNonObjects.length);
		t.deepEqual(handled, []);
		// Arrays and {} are objects: records and principals.
		for (const value of [[], {}]) {
			answer = value;
			t.is((await rawRequest(url, '/r', credentials)).status, 200);
		}

		t.deepEqual(handled, ['/r', '/r']);
	},
	title: (_provided, loader: string) => `${loader === 'apiKeyLoader' ? 'an' : 'a'} ${loader} answering a truthy non-object (number, string, true, symbol) gets a generic 500 with a TypeError cause, while arrays and {} are accepted`,
});

test(truthyNonObject, 'tokenLoader');
test(truthyNonObject, 'userLoader');
test(truthyNonObject, 'apiKeyLoader');

// 2. StatelessAuthError checks its headers and status.

const badHeaders: ReadonlyArray<[string, Record<string, unknown>, RegExp]> = [
	['CR and LF in a value', {'X-Reason': 'a\r\nSet-Cookie: x=1'}, /header "X-Reason"/],
	['a lone LF in a value', {'X-Reason': 'a\nb'}, /header "X-Reason"/],
	['NUL in a value', {'X-Reason': 'a\0b'}, /header "X-Reason"/],
	['U+2028 in a value', {'X-Reason': 'a\u2028b'}, /header "X-Reason"/],
	['U+0100 in a value', {'X-Reason': '\u0100'}, /header "X-Reason"/],
	['an emoji in a value', {'X-Reason': '\u{1F511}'}, /header "X-Reason"/],
	['a bad value in a list', {'X-Reason': ['fine', 'bad\r\n']}, /header "X-Reason"/],
	['a number as a value', {'X-Reason': 5}, /header "X-Reason"/],
	['a space in a name', {'X Y': 'z'}, /header name "X Y"/],
	['a colon in a name', {'X:Y': 'z'}, /header name "X:Y"/],
	['an empty name', {'': 'z'}, /header name ""/],
];

test('the StatelessAuthError constructor throws a TypeError naming a header Node could not send', t => {
	for (const [what, headers, message] of badHeaders) {
		t.throws(() => new StatelessAuthError('Nope', 401, 'token', {headers: headers as never}), {instanceOf: TypeError, message}, what);
	}

	t.notThrows(() => new StatelessAuthError('Nope', 401, 'token', {headers: {'X-Latin': 'caf\u00E9', 'X-Tab': 'a\tb', 'X-List': ['a', 'b']}}), 'tab and Latin-1 are what Node sends');
});

test('a StatelessAuthError\'s headers are frozen and its status can only be set to 400-599', t => {
	const error = new StatelessAuthError('Nope', 401, 'token', {headers: {'X-A': 'a', 'X-List': ['a', 'b']}});
	t.true(Object.isFrozen(error.headers));
	t.true(Object.isFrozen(error.headers['X-List']));
	t.throws(() => {
		(error.headers as Record<string, string>)['Set-Cookie'] = 'x=1';
	}, {instanceOf: TypeError});
	for (const status of [200, 302, 399, 600, 401.5, Number.NaN]) {
		t.throws(() => {
			error.status = status;
		}, {instanceOf: TypeError}, String(status));
	}

	t.is(error.status, 401);
	error.status = 404;
	t.is(error.status, 404);
	t.is(error.code, 404);
});

const badErrorFromLoader = test.macro({
	async exec(t, withHandler: boolean) {
		const auth = new StatelessAuthManager<User, object>({realm: 'api'});
		auth.tokenLoader(token => {
			if (token === 'good') {
				return {};
			}

			const bad = badHeaders[Number(token.slice(1))];
			throw new StatelessAuthError('Token revoked', 401, 'token', {headers: bad?.[1] as never});
		});
		auth.userLoader(() => ({id: 1, name: 'alice'}));
		const {app, errors, handled, router, handler} = createApp(withHandler);
		router.get('/me', auth.tokenRequired(), handler);
		const url = await serve(t, app, router);
		for (const [index, [what, , message]] of badHeaders.entries()) {
			const response = await rawRequest(url, '/me', bearer(`b${index}`));
			t.is(response.status, 500, what);
			t.is(response.body, withHandler ? JSON.stringify({error: 'Server error: Internal server error'}) : 'Internal Server Error', what);
			t.deepEqual(response.headerLines('set-cookie'), [], what);
			t.deepEqual(response.headerLines('x-reason'), [], what);
			const emitted = errors.at(-1) as StatelessAuthError;
			t.is(emitted.status, 500, what);
			t.true(emitted.cause instanceof TypeError, what);
			t.regex((emitted.cause as TypeError).message, message, what);
		}

		t.is(errors.length, badHeaders.length);
		t.deepEqual(handled, []);
		t.is((await rawRequest(url, '/me', bearer('good'))).status, 200, 'the server still serves');
	},
	title: (_provided, withHandler: boolean) => `a loader that builds a StatelessAuthError with a bad header gets a generic 500 and the server keeps serving ${withHandler ? 'with authErrorHandler' : 'under Koa\'s default error handler'}`,
});

test(badErrorFromLoader, true);
test(badErrorFromLoader, false);

const tamperedErrorFromLoader = test.macro({
	async exec(t, withHandler: boolean) {
		const auth = new StatelessAuthManager<User, object>({realm: 'api'});
		auth.tokenLoader(token => {
			if (token === 'good') {
				return {};
			}

			// Past the constructor's checks: the headers replaced on a made error.
			const error = new StatelessAuthError('Token revoked', 401, 'token');
			Object.defineProperty(error, 'headers', {value: {'X-Reason': 'a\r\nSet-Cookie: x=1'}});
			throw error;
		});
		auth.userLoader(() => ({id: 1, name: 'alice'}));
		const {app, errors, handled, router, handler} = createApp(withHandler);
		router.get('/me', auth.tokenRequired(), handler);
		const url = await serve(t, app, router);
		const response = await rawRequest(url, '/me', bearer('tampered'));
		t.is(response.status, 500);
		t.deepEqual(response.headerLines('set-cookie'), []);
		t.is(errors.length, 1);
		t.deepEqual(handled, []);
		t.is((await rawRequest(url, '/me', bearer('good'))).status, 200, 'the server still serves');
	},
	title: (_provided, withHandler: boolean) => `a loader that swaps bad headers onto a made StatelessAuthError gets a generic 500 ${withHandler ? 'with authErrorHandler' : 'under Koa\'s default error handler'}`,
});

test(tamperedErrorFromLoader, true);
test(tamperedErrorFromLoader, false);

test('a process whose loaders throw errors with bad headers survives Koa\'s default error handler and keeps serving', async t => {
	const run = promisify(execFile);
	const {stdout, stderr} = await run(process.execPath, ['--import=./ts-node-register.js', 'tests/fixtures/bad-header-server.ts'], {timeout: 30_000});
	// execFile rejects on a non-zero exit code or a signal: getting here means the child exited cleanly.
	const results = JSON.parse(stdout) as Array<{token: string; status: number; body: string; setCookie: string | null}>;
	t.deepEqual(results, [
		{token: 'crlf', status: 500, body: 'Internal Server Error', setCookie: null},
		{token: 'unicode', status: 500, body: 'Internal Server Error', setCookie: null},
		{token: 'name', status: 500, body: 'Internal Server Error', setCookie: null},
		{token: 'swapped', status: 500, body: 'Internal Server Error', setCookie: null},
		{token: 'good', status: 200, body: '{"name":"good"}', setCookie: null},
	]);
	// Koa's default handler logged each 500 (it logs nothing it exposes).
	t.is(stderr.match(/StatelessAuthError: Server error: Internal server error/g)?.length, 4, stderr);
});

// 3. No cross-talk through a shared error instance.

test('one StatelessAuthError instance thrown on routes of different realms answers each with its own challenge and is never written to', async t => {
	const shared = new StatelessAuthError('Token revoked', 401, 'token', {headers: {'X-Revoked': 'yes'}});
	const throwShared = (): never => {
		throw shared;
	};

	const alpha = new StatelessAuthManager<User, object>({realm: 'alpha'});
	alpha.tokenLoader(throwShared);
	alpha.userLoader(() => undefined);
	const beta = new StatelessAuthManager<User, object>({realm: 'beta', authType: 'Token2'});
	beta.tokenLoader(throwShared);
	beta.userLoader(() => undefined);
	const basic = new HttpBasicAuth<User>({realm: 'gamma', authenticate: throwShared});
	for (const withHandler of [true, false]) {
		const {app, errors, handled, router, handler} = createApp(withHandler);
		router.get('/alpha', alpha.tokenRequired(), handler);
		router.get('/alpha-bearer', alpha.protect({authenticators: [alpha.bearer({tokenType: 'refresh'})]}), handler);
		router.get('/beta', beta.tokenRequired(), handler);
		router.get('/gamma', alpha.protect({authenticators: [basic]}), handler);
		const url = await serve(t, app, router);
		const cases: Array<[string, Array<[string, string]>, string]> = [
			['/alpha', bearer('x'), 'Bearer realm="alpha", error="invalid_token"'],
			['/beta', [['Authorization', 'Token2 x']], 'Token2 realm="beta", error="invalid_token"'],
			['/gamma', basicHeader('u', 'p'), 'Basic realm="gamma", charset="UTF-8"'],
			['/alpha-bearer', bearer('x'), 'Bearer realm="alpha", error="invalid_token"'],
			['/beta', [['Authorization', 'Token2 x']], 'Token2 realm="beta", error="invalid_token"'],
			['/alpha', bearer('x'), 'Bearer realm="alpha", error="invalid_token"'],
		];
		for (const [path, lines, challenge] of cases) {
			const response = await rawRequest(url, path, lines);
			t.is(response.status, 401, path);
			t.is(response.body, withHandler ? JSON.stringify({error: 'Token error: Token revoked'}) : 'Token error: Token revoked', path);
			t.deepEqual(response.headerLines('www-authenticate'), [challenge], path);
			t.deepEqual(response.headerLines('x-revoked'), ['yes'], path);
		}

		t.deepEqual(handled, []);
		t.is(errors.length, withHandler ? 0 : cases.length);
		t.false(errors.includes(shared), 'Koa is handed a copy, never the shared instance');
	}

	t.deepEqual(shared.headers, {'X-Revoked': 'yes'});
	t.true(Object.isFrozen(shared.headers));
	t.is(shared.status, 401);
	t.is(shared.fullMsg, 'Token error: Token revoked');
});

// 4. A loader's own 5xx is answered generically.

const ownServerError = test.macro({
	async exec(t, status: 500 | 503, withHandler: boolean) {
		const thrown = new StatelessAuthError('Replica down, dsn=postgres://app:hunter2@db', status, 'server', {headers: {'Retry-After': '5'}});
		const auth = new StatelessAuthManager<User, object>({realm: 'api'});
		auth.tokenLoader(() => {
			throw thrown;
		});
		auth.userLoader(() => undefined);
		const {app, errors, handled, router, handler} = createApp(withHandler);
		router.get('/me', auth.tokenRequired(), handler);
		const url = await serve(t, app, router);
		const response = await rawRequest(url, '/me', bearer('x'));
		const generic = status === 503 ? 'Service unavailable' : 'Internal server error';
		t.is(response.status, status);
		t.is(response.body, withHandler ? JSON.stringify({error: `Server error: ${generic}`}) : (status === 503 ? 'Service Unavailable' : 'Internal Server Error'));
		t.deepEqual(response.headerLines('retry-after'), ['5']);
		t.deepEqual(response.headerLines('www-authenticate'), []);
		t.false(JSON.stringify(response.headers).includes('hunter2'));
		t.false(response.body.includes('hunter2'));
		t.deepEqual(handled, []);
		t.is(errors.length, 1);
		const emitted = errors[0] as StatelessAuthError;
		t.is(emitted.message, `Server error: ${generic}`);
		t.is(emitted.cause, thrown, 'the loader\'s message reaches app.on(\'error\') only as the cause');
	},
	title: (_provided, status: number, withHandler: boolean) => `a loader's own ${status} StatelessAuthError is answered with a generic body ${withHandler ? 'with authErrorHandler' : 'under Koa\'s default error handler'}, its message only in the emitted cause`,
});

test(ownServerError, 500, true);
test(ownServerError, 503, true);
test(ownServerError, 500, false);
test(ownServerError, 503, false);

test('a custom format is handed the generic 5xx, never the loader\'s message', async t => {
	const auth = new StatelessAuthManager<User, object>({realm: 'api'});
	auth.tokenLoader(() => {
		throw new StatelessAuthError('hunter2 leaked', 503, 'server');
	});
	auth.userLoader(() => undefined);
	const app = new Koa();
	app.on('error', () => undefined);
	const seen: string[] = [];
	app.use(authErrorHandler({format: error => {
		seen.push(error.msg);
		return {msg: error.msg};
	}}));
	const router = new Router<object>();
	router.get('/me', auth.tokenRequired(), ctx => {
		ctx.body = 'in';
	});
	const url = await serve(t, app, router);
	const response = await rawRequest(url, '/me', bearer('x'));
	t.is(response.status, 503);
	t.is(response.body, '{"msg":"Service unavailable"}');
	t.deepEqual(seen, ['Service unavailable']);
});

// 5. Foreign branded objects and errors that throw when read.

const brand = Symbol.for('koa-stateless-auth.StatelessAuthError');

const unreadable: ReadonlyArray<[string, () => unknown]> = [
	['a foreign branded object with status 200', () => ({[brand]: true, status: 200, code: 200, msg: 'OK', type: 'token', fullMsg: 'OK', message: 'OK', expose: true, headers: {}})],
	['a foreign branded object with status 302 and a Location', () => ({[brand]: true, status: 302, code: 302, msg: 'Found', type: 'token', expose: true, headers: {Location: 'https://evil.example/'}})],
	['a foreign branded object with status 204', () => Object.assign(new Error('x'), {[brand]: true, status: 204, msg: 'x', type: 'token', headers: {}})],
	['a subclass whose status getter answers 200', () => {
		class Sneaky extends StatelessAuthError {
			override get status(): number {
				return 200;
			}

			override set status(_value: number) {
				// Ignored.
			}
		}

		return new Sneaky('Token revoked');
	}],
	['an error whose headers getter throws', () => {
		const error = new StatelessAuthError('Token revoked');
		Object.defineProperty(error, 'headers', {get() {
			throw new Error('hunter2');
		}});
		return error;
	}],
	['a foreign branded object whose status getter throws', () => ({[brand]: true, get status(): number {
		throw new Error('hunter2');
	}, msg: 'x', type: 'token', headers: {}})],
	['a Proxy whose traps throw', () => new Proxy(new StatelessAuthError('Token revoked'), {
		has() {
			throw new Error('hunter2');
		},
		get() {
			throw new Error('hunter2');
		},
	})],
];

const unreadableError = test.macro({
	async exec(t, withHandler: boolean) {
		let current: unknown;
		const auth = new StatelessAuthManager<User, object>({realm: 'api'});
		auth.tokenLoader(token => {
			if (token === 'good') {
				return {};
			}

			throw current;
		});
		auth.userLoader(() => ({id: 1, name: 'alice'}));
		const {app, errors, handled, router, handler} = createApp(withHandler);
		router.get('/me', auth.tokenRequired(), handler);
		const url = await serve(t, app, router);
		for (const [what, make] of unreadable) {
			current = make();
			const response = await rawRequest(url, '/me', bearer('x'));
			t.is(response.status, 500, what);
			t.is(response.body, withHandler ? JSON.stringify({error: 'Server error: Internal server error'}) : 'Internal Server Error', what);
			t.deepEqual(response.headerLines('location'), [], what);
			t.false(response.body.includes('hunter2'), what);
			const emitted = errors.at(-1);
			t.true(isStatelessAuthError(emitted), what);
			t.is((emitted as StatelessAuthError).status, 500, what);
			const cause = (emitted as StatelessAuthError).cause;
			t.true(cause instanceof TypeError, what);
			t.is((cause as TypeError).cause, current, `${what}: what was thrown is the cause's cause`);
		}

		t.is(errors.length, unreadable.length);
		t.deepEqual(handled, []);
		t.is((await rawRequest(url, '/me', bearer('good'))).status, 200, 'the server still serves');
	},
	title: (_provided, withHandler: boolean) => `a foreign branded object with a success status, or an error whose properties throw, is a generic 500 ${withHandler ? 'with authErrorHandler' : 'under Koa\'s default error handler'}`,
});

test(unreadableError, true);
test(unreadableError, false);

// 6. loaderTimeout.

test('a loader that settles after the loaderTimeout is answered 503 once, its late result discarded and its signal aborted', async t => {
	let signal: AbortSignal | undefined;
	let settled = false;
	// The slow loader settles only when the test lets it, after the answer arrived.
	let release: (value: undefined) => void = () => undefined;
	const gate = new Promise<undefined>(resolve => {
		release = resolve;
	});
	const auth = new StatelessAuthManager<User, object>({realm: 'api', loaderTimeout: 50});
	auth.tokenLoader(async (token, _tokenType, _authType, options) => {
		if (token === 'slow') {
			signal = options.signal;
			await gate;
			settled = true;
		}

		return {};
	});
	auth.userLoader(() => ({id: 1, name: 'alice'}));
	const {app, errors, handled, router, handler} = createApp();
	router.get('/me', auth.tokenRequired(), handler);
	const url = await serve(t, app, router);
	const response = await rawRequest(url, '/me', bearer('slow'));
	t.is(response.status, 503);
	t.is(response.body, JSON.stringify({error: 'Server error: Service unavailable'}));
	t.deepEqual(response.headerLines('retry-after'), ['1']);
	t.deepEqual(response.headerLines('www-authenticate'), []);
	t.false(response.body.includes('HTTP/1.1'), 'one answer only');
	t.false(settled);
	t.true(signal?.aborted);
	t.true(signal?.reason instanceof LoaderTimeoutError);
	t.is(errors.length, 1);
	const emitted = errors[0] as StatelessAuthError;
	t.true(isStatelessAuthError(emitted));
	t.is(emitted.status, 503);
	t.true(emitted.cause instanceof LoaderTimeoutError);
	t.is((emitted.cause as LoaderTimeoutError).name, 'LoaderTimeoutError');
	t.is((emitted.cause as LoaderTimeoutError).timeout, 50);
	t.is(signal?.reason, emitted.cause);

	// The late result: the route never runs, nothing more is emitted, nothing is left unhandled.
	release(undefined);
	await delay(20);
	t.true(settled);
	t.deepEqual(handled, []);
	t.is(errors.length, 1);
	t.is((await rawRequest(url, '/me', bearer('fast'))).status, 200);
	t.deepEqual(handled, ['/me']);
});

test('a loader, authenticate callback or readPermissions that rejects after the loaderTimeout leaves no unhandled rejection and emits nothing more', async t => {
	const unhandled: unknown[] = [];
	const onUnhandled = (reason: unknown) => unhandled.push(reason);
	process.on('unhandledRejection', onUnhandled);
	t.teardown(() => process.off('unhandledRejection', onUnhandled));
	let release: (value: undefined) => void = () => undefined;
	const gate = new Promise<undefined>(resolve => {
		release = resolve;
	});
	const lateFailure = async (): Promise<never> => {
		await gate;
		throw new Error('late: password=hunter2');
	};

	const auth = new StatelessAuthManager<User, object>({realm: 'api', loaderTimeout: 50});
	auth.tokenLoader(token => (token === 'late' ? lateFailure() : {}));
	auth.userLoader(() => ({id: 1, name: 'alice'}));
	const basic = new HttpBasicAuth<User>({realm: 'b', authenticate: lateFailure});
	const {app, errors, handled, router, handler} = createApp();
	router.get('/token', auth.tokenRequired(), handler);
	router.get('/basic', auth.protect({authenticators: [basic]}), handler);
	router.get('/perm', auth.tokenRequired({permissions: ['read'], readPermissions: lateFailure}), handler);
	const url = await serve(t, app, router);
	const statuses = await Promise.all([
		rawRequest(url, '/token', bearer('late')),
		rawRequest(url, '/basic', basicHeader('u', 'p')),
		rawRequest(url, '/perm', bearer('on-time')),
	].map(async pending => (await pending).status));
	t.deepEqual(statuses, [503, 503, 503]);
	t.is(errors.length, 3);
	release(undefined);
	await delay(20);
	t.deepEqual(unhandled, []);
	t.is(errors.length, 3, 'the late failures are dropped');
	t.deepEqual(handled, []);
});

test('the loaderTimeout covers a request\'s callbacks together, not each one', async t => {
	const auth = new StatelessAuthManager<User, object>({realm: 'api', loaderTimeout: 50});
	auth.tokenLoader(async () => {
		await delay(40);
		return {};
	});
	auth.userLoader(async () => {
		await delay(40);
		return {id: 1, name: 'alice'};
	});
	const {app, errors, handled, router, handler} = createApp();
	router.get('/me', auth.tokenRequired(), handler);
	const url = await serve(t, app, router);
	const response = await rawRequest(url, '/me', bearer('x'));
	t.is(response.status, 503);
	t.true((errors[0] as StatelessAuthError | undefined)?.cause instanceof LoaderTimeoutError);
	await delay(60);
	t.deepEqual(handled, []);
});

test('Retry-After is the loaderTimeout rounded up to whole seconds', async t => {
	const auth = new StatelessAuthManager<User, object>({realm: 'api', loaderTimeout: 1001});
	auth.tokenLoader(() => new Promise<never>(() => undefined));
	auth.userLoader(() => undefined);
	const {app, router, handler} = createApp();
	router.get('/me', auth.tokenRequired(), handler);
	const url = await serve(t, app, router);
	const response = await rawRequest(url, '/me', bearer('x'));
	t.is(response.status, 503);
	t.deepEqual(response.headerLines('retry-after'), ['2']);
});

const hangs = <T>(): Promise<T> => new Promise<T>(() => undefined);

test('loaderTimeout can be set per route, per group and per protect, and false turns it off', async t => {
	const auth = new StatelessAuthManager<User, object>({realm: 'api', loaderTimeout: 50});
	const basic = new HttpBasicAuth<User>({realm: 'b', authenticate: hangs});
	let slowSignal: AbortSignal | undefined;
	auth.tokenLoader(async (token, _tokenType, _authType, options) => {
		if (token === 'hang') {
			return hangs();
		}

		if (token === 'slow') {
			slowSignal = options.signal;
			await delay(120);
		}

		return {};
	});
	auth.userLoader(() => ({id: 1, name: 'alice'}));
	const manager10s = new StatelessAuthManager<User, object>({realm: 'api'});
	manager10s.tokenLoader(hangs);
	manager10s.userLoader(() => undefined);
	const group = manager10s.defaults({authenticators: manager10s.bearer(), loaderTimeout: 30});
	const {app, errors, handled, router, handler} = createApp();
	router.get('/off', auth.tokenRequired({loaderTimeout: false}), handler);
	router.get('/route', manager10s.tokenRequired({loaderTimeout: 30}), handler);
	router.get('/protect', auth.protect({authenticators: [basic], loaderTimeout: 30}), handler);
	router.get('/group', group.protect(), handler);
	const url = await serve(t, app, router);

	const off = await rawRequest(url, '/off', bearer('slow'));
	t.is(off.status, 200, 'no limit on the route: the slow loader is waited for');
	t.false(slowSignal?.aborted, 'and its signal is never aborted');
	for (const [path, lines] of [['/route', bearer('x')], ['/protect', basicHeader('u', 'p')], ['/group', bearer('x')]] as const) {
		const response = await rawRequest(url, path, [...lines]);
		t.is(response.status, 503, path);
		t.deepEqual(response.headerLines('retry-after'), ['1'], path);
		t.is(((errors.at(-1) as StatelessAuthError).cause as LoaderTimeoutError).timeout, 30, path);
	}

	t.deepEqual(handled, ['/off']);
	t.is(errors.length, 3);
});

test('without authErrorHandler a timed-out loader is Koa\'s own 503 with Retry-After', async t => {
	const auth = new StatelessAuthManager<User, object>({realm: 'api', loaderTimeout: 50});
	auth.tokenLoader(hangs);
	auth.userLoader(() => undefined);
	const {app, errors, handled, router, handler} = createApp(false);
	router.get('/me', auth.tokenRequired(), handler);
	const url = await serve(t, app, router);
	const response = await rawRequest(url, '/me', bearer('x'));
	t.is(response.status, 503);
	t.is(response.body, 'Service Unavailable');
	t.deepEqual(response.headerLines('retry-after'), ['1']);
	t.is(errors.length, 1);
	t.is(((errors[0] as StatelessAuthError).cause as Error).name, 'LoaderTimeoutError');
	t.deepEqual(handled, []);
});
