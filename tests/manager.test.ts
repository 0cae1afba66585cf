import {setTimeout as delay} from 'node:timers/promises';
import test from 'ava';
import Koa from 'koa';
import Router from '@koa/router';
import {
	StatelessAuthManager, StatelessAuthError, TokenMixin, UserMixin, authErrorHandler, tokenRequired,
	type StatelessAuthOptions,
} from '../source/index.js';
import {createTestApp, type TestToken, type TestUser} from './helpers/app.js';
import {listen} from './helpers/http.js';

const bearer = (token: string) => ({headers: {authorization: `Bearer ${token}`}});

/** Collect what the app emits on 'error' (which also silences Koa's console logging). */
function collectErrors(app: Koa): unknown[] {
	const errors: unknown[] = [];
	app.on('error', (error: unknown) => errors.push(error));
	return errors;
}

const rejectsOption = test.macro({
	exec(t, options: Record<string, unknown>, option: string) {
		const error = t.throws(() => new StatelessAuthManager(options as StatelessAuthOptions), {instanceOf: TypeError});
		t.true(error?.message.includes(`\`${option}\``), error?.message);
	},
	title: (provided, options) => provided ?? `the constructor refuses ${JSON.stringify(options)}`,
});

test('a realm with a control character', rejectsOption, {realm: 'api\r\nSet-Cookie: x=1'}, 'realm');
test('a realm with a tab', rejectsOption, {realm: 'a\tb'}, 'realm');
test('a realm with non-ASCII', rejectsOption, {realm: 'r\u00E9alm'}, 'realm');
test('a realm that is not a string', rejectsOption, {realm: 42}, 'realm');
test(rejectsOption, {authType: 'Bear er'}, 'authType');
test(rejectsOption, {authType: ''}, 'authType');
test(rejectsOption, {header: 'X Auth'}, 'header');
test(rejectsOption, {tokenType: ''}, 'tokenType');
test(rejectsOption, {maxTokenLength: 0}, 'maxTokenLength');
test(rejectsOption, {maxTokenLength: 1.5}, 'maxTokenLength');
test(rejectsOption, {stateKey: 'currentToken'}, 'stateKey');
test(rejectsOption, {stateKey: ''}, 'stateKey');

test('a route with a bad scheme fails when it is declared', t => {
	const auth = new StatelessAuthManager();
	t.throws(() => auth.tokenRequired('access', 'Bad Scheme'), {instanceOf: TypeError, message: /`authType`/});
	t.throws(() => auth.tokenRequired({tokenType: ''}), {instanceOf: TypeError, message: /`tokenType`/});
	t.throws(() => tokenRequired({authType: 'a,b'}), {instanceOf: TypeError, message: /`authType`/});
	t.throws(() => auth.tokenRequired(42 as never), {instanceOf: TypeError, message: /options object/});
});

test('loaders must be functions', t => {
	const auth = new StatelessAuthManager();
	t.throws(() => auth.tokenLoader('nope' as never), {instanceOf: TypeError, message: /tokenLoader/});
	t.throws(() => auth.userLoader(undefined as never), {instanceOf: TypeError, message: /userLoader/});
});

test('the refresh route loads refresh tokens', async t => {
	const {app, calls} = createTestApp();
	const url = await listen(t, app);
	const refresh = await fetch(`${url}/refresh`, bearer('first-refresh'));
	t.deepEqual(await refresh.json(), {user: 'first_user', type: 'refresh'});
	const access = await fetch(`${url}/refresh`, bearer('first-access'));
	t.is(access.status, 401);
	t.deepEqual(calls.map(call => call.tokenType), ['refresh', 'refresh']);
});

test('a route without the middleware has no currentUser or currentToken', async t => {
	const {app, handled} = createTestApp();
	const url = await listen(t, app);
	const response = await fetch(`${url}/public`, bearer('first-access'));
	t.deepEqual(await response.json(), {hasUser: false, hasToken: false});
	t.deepEqual(handled, ['/public']);
});

test('ctx.state is cleared between requests on one connection', async t => {
	const {app} = createTestApp();
	const url = await listen(t, app);
	t.is((await fetch(`${url}/secret`, bearer('first-access'))).status, 200);
	t.deepEqual(await (await fetch(`${url}/public`)).json(), {hasUser: false, hasToken: false});
	t.is((await fetch(`${url}/secret`)).status, 401);
});

test('concurrent requests from different users never see each other\'s user', async t => {
	const auth = new StatelessAuthManager<{id: number}, {userId: number}>();
	// Random delays in both loaders interleave the requests.
	auth.tokenLoader(async token => {
		await delay(Math.random() * 5);
		return {userId: Number(token.slice(1))};
	});
	auth.userLoader(async record => {
		await delay(Math.random() * 5);
		return {id: record.userId};
	});
	const app = new Koa();
	const router = new Router<object>();
	router.get('/whoami', auth.tokenRequired(), async ctx => {
		await delay(Math.random() * 5);
		ctx.body = {id: ctx.state.currentUser.id, tokenUser: ctx.state.currentToken.userId};
	});
	app.use(router.routes());
	const url = await listen(t, app);
	const ids = Array.from({length: 200}, (_, index) => index);
	const answers = await Promise.all(ids.map(async id => (await fetch(`${url}/whoami`, bearer(`u${id}`))).json()));
	t.deepEqual(answers, ids.map(id => ({id, tokenUser: id})));
});

test('a custom stateKey puts the user there', async t => {
	const auth = new StatelessAuthManager<{name: string}, {id: string}, 'me'>({stateKey: 'me'});
	auth.tokenLoader(token => ({id: token}));
	auth.userLoader(record => ({name: `user ${record.id}`}));
	const app = new Koa();
	const router = new Router<object>();
	router.get('/', auth.tokenRequired(), ctx => {
		ctx.body = {me: ctx.state.me.name, token: ctx.state.currentToken.id, currentUser: (ctx.state as Record<string, unknown>)['currentUser'] ?? null};
	});
	app.use(router.routes());
	const url = await listen(t, app);
	t.deepEqual(await (await fetch(url, bearer('abc'))).json(), {me: 'user abc', token: 'abc', currentUser: null});
});

test('a custom header and scheme are read instead of Authorization', async t => {
	const auth = new StatelessAuthManager<{name: string}, {id: string}>({header: 'X-Auth-Token', authType: 'Key', realm: 'x'});
	auth.tokenLoader(token => (token === 'good' ? {id: token} : undefined));
	auth.userLoader(() => ({name: 'n'}));
	const app = new Koa();
	app.use(authErrorHandler());
	app.use(auth.tokenRequired());
	app.use(ctx => {
		ctx.body = 'ok';
	});
	const url = await listen(t, app);
	t.is(await (await fetch(url, {headers: {'x-auth-token': 'key good'}})).text(), 'ok');
	const inAuthorization = await fetch(url, {headers: {authorization: 'Key good'}});
	t.is(inAuthorization.status, 401);
	t.is(inAuthorization.headers.get('www-authenticate'), 'Key realm="x"');
	t.deepEqual(await inAuthorization.json(), {error: 'Request error: No token provided'});
});

test('the manager emits authorized and unauthorized', async t => {
	const {app, auth} = createTestApp();
	const authorized: Array<[string, string]> = [];
	const unauthorized: Array<[string, string, number]> = [];
	auth.on('authorized', (ctx, user) => authorized.push([ctx.path, (user as TestUser).name]));
	auth.on('unauthorized', (ctx, error) => unauthorized.push([ctx.path, error.fullMsg, error.status]));
	const errors = collectErrors(app);
	const url = await listen(t, app);
	await fetch(`${url}/secret`, bearer('first-access'));
	await fetch(`${url}/secret`);
	await fetch(`${url}/secret`, bearer('nope'));
	await fetch(`${url}/secret`, {headers: {authorization: 'Bearer a b'}});
	await fetch(`${url}/secret`, bearer('explode'));
	t.deepEqual(authorized, [['/secret', 'first_user']]);
	t.deepEqual(unauthorized, [
		['/secret', 'Request error: No token provided', 401],
		['/secret', 'Token error: Invalid token', 401],
		['/secret', 'Request error: Malformed authorization header', 400],
	]);
	t.is(errors.length, 1, 'the 500 goes to app.emit(\'error\'), not to unauthorized');
});

test('a StatelessAuthError from a loader keeps its message, code and type, and gets the challenge', async t => {
	const {app} = createTestApp();
	const url = await listen(t, app);
	const revoked = await fetch(`${url}/secret`, bearer('revoked'));
	t.is(revoked.status, 401);
	t.deepEqual(await revoked.json(), {error: 'Token error: Token revoked'});
	t.is(revoked.headers.get('www-authenticate'), 'Bearer realm="api", error="invalid_token"');
	const forbidden = await fetch(`${url}/secret`, bearer('forbidden'));
	t.is(forbidden.status, 403);
	t.deepEqual(await forbidden.json(), {error: 'Scope error: Token may not be used here'});
	t.is(forbidden.headers.get('www-authenticate'), 'Bearer realm="api", error="insufficient_scope"');
	const limited = await fetch(`${url}/secret`, bearer('rate-limited'));
	t.is(limited.status, 429);
	t.deepEqual(await limited.json(), {error: 'Request error: Slow down'});
	t.is(limited.headers.get('www-authenticate'), null, 'a 429 is not a challenge');
});

test('a loader that throws answers a generic 500 and emits the original error as the cause', async t => {
	const {app, handled} = createTestApp();
	const errors = collectErrors(app);
	const url = await listen(t, app);
	const response = await fetch(`${url}/secret`, bearer('explode'));
	t.is(response.status, 500);
	const body = await response.text();
	t.is(body, '{"error":"Server error: Internal server error"}');
	t.false(body.includes('hunter2'));
	t.false(body.includes('explode'));
	t.is(response.headers.get('www-authenticate'), null);
	t.deepEqual(handled, []);
	t.is(errors.length, 1);
	const emitted = errors[0] as StatelessAuthError;
	t.is(emitted.type, 'server');
	t.is((emitted.cause as Error).message, 'database is down: password=hunter2');
});

test('every place a loader or record can throw becomes the same generic 500', async t => {
	const failures: Array<[string, (auth: StatelessAuthManager<TestUser, TestToken>) => void]> = [
		['userLoader', auth => auth.userLoader(() => Promise.reject(new Error('boom')))],
		['tokenExpired', auth => auth.tokenLoader(token => ({token, userId: 1, type: 'access', tokenExpired: () => Promise.reject(new Error('boom'))}))],
		['isActive', auth => auth.userLoader(() => ({id: 1, name: 'x', get isActive(): boolean {
			throw new Error('boom');
		}}))],
		['a thrown non-error', auth => auth.tokenLoader(() => {
			// eslint-disable-next-line @typescript-eslint/only-throw-error
			throw 'boom';
		})],
	];
	for (const [where, breakIt] of failures) {
		const {app, auth} = createTestApp();
		breakIt(auth);
		const errors = collectErrors(app);
		const url = await listen(t, app);
		const response = await fetch(`${url}/secret`, bearer('first-access'));
		t.is(response.status, 500, where);
		t.deepEqual(await response.json(), {error: 'Server error: Internal server error'}, where);
		t.is(errors.length, 1, where);
	}
});

test('token records and users may use the mixins', async t => {
	class Token extends TokenMixin {
		expired = false;
		override tokenExpired(tokenType: string) {
			return Promise.resolve(this.expired && tokenType === 'access');
		}
	}

	class User extends UserMixin {
		disabled = false;
		override get isActive() {
			return !this.disabled;
		}
	}

	t.false(new TokenMixin().tokenExpired('access', 'Bearer'));
	t.true(new UserMixin().isActive);
	const records = new Map([['live', new Token()], ['old', Object.assign(new Token(), {expired: true})], ['off', new Token()]]);
	const auth = new StatelessAuthManager<User, Token>();
	auth.tokenLoader(token => records.get(token));
	auth.userLoader(record => Object.assign(new User(), {disabled: record === records.get('off')}));
	const app = new Koa();
	app.use(authErrorHandler());
	app.use(auth.tokenRequired());
	app.use(ctx => {
		ctx.body = 'in';
	});
	const url = await listen(t, app);
	t.is(await (await fetch(url, bearer('live'))).text(), 'in');
	t.deepEqual(await (await fetch(url, bearer('old'))).json(), {error: 'Token error: access token expired'});
	t.deepEqual(await (await fetch(url, bearer('off'))).json(), {error: 'Token error: Invalid token'});
});

test('a user whose isActive is 0 or null is refused, one without it is let in', async t => {
	const auth = new StatelessAuthManager<{isActive?: unknown}, {id: string}>();
	auth.tokenLoader(token => ({id: token}));
	auth.userLoader(({id}) => ({zero: {isActive: 0}, null: {isActive: null}, one: {isActive: 1}, none: {}})[id]);
	const app = new Koa();
	app.use(auth.tokenRequired());
	app.use(ctx => {
		ctx.body = 'in';
	});
	const url = await listen(t, app);
	const statuses = await Promise.all(['zero', 'null', 'one', 'none'].map(async id => (await fetch(url, bearer(id))).status));
	t.deepEqual(statuses, [401, 401, 200, 200]);
});

test('routes may be declared before the loaders are registered', async t => {
	const auth = new StatelessAuthManager<{name: string}, {id: string}>();
	const app = new Koa();
	app.use(auth.tokenRequired());
	app.use(ctx => {
		ctx.body = 'in';
	});
	auth.tokenLoader(token => ({id: token}));
	auth.userLoader(() => ({name: 'late'}));
	const url = await listen(t, app);
	t.is(await (await fetch(url, bearer('x'))).text(), 'in');
});

test('a missing loader answers 500 and emits an error that says how to fix it', async t => {
	for (const missing of ['tokenLoader', 'userLoader'] as const) {
		const auth = new StatelessAuthManager<{name: string}, {id: string}>();
		if (missing === 'userLoader') {
			auth.tokenLoader(token => ({id: token}));
		}

		const app = new Koa();
		app.use(authErrorHandler());
		app.use(auth.tokenRequired());
		const errors = collectErrors(app);
		const url = await listen(t, app);
		const response = await fetch(url, bearer('x'));
		t.is(response.status, 500);
		t.is(await response.text(), 'Internal Server Error');
		t.is(errors.length, 1);
		t.regex((errors[0] as Error).message, new RegExp(`call auth\\.${missing}\\(fn\\) at start-up`));
	}
});

test('the module-level tokenRequired finds the manager registered with initApp', async t => {
	const auth = new StatelessAuthManager<{name: string}, {id: string}>({realm: 'mod'});
	auth.tokenLoader(token => (token === 'ok' ? {id: token} : null));
	auth.userLoader(record => ({name: `n-${record.id}`}));
	const app = new Koa();
	t.is(auth.initApp(app), auth);
	t.notThrows(() => auth.initApp(app), 'registering the same manager twice is harmless');
	app.use(authErrorHandler());
	const router = new Router<object>();
	router.get('/x', tokenRequired<{name: string}, {id: string}>(), ctx => {
		ctx.body = {name: ctx.state.currentUser.name};
	});
	router.get('/refresh', tokenRequired('refresh', 'Bearer'), ctx => {
		ctx.body = 'refreshed';
	});
	app.use(router.routes());
	const url = await listen(t, app);
	t.deepEqual(await (await fetch(`${url}/x`, bearer('ok'))).json(), {name: 'n-ok'});
	t.deepEqual(await (await fetch(`${url}/x`, bearer('ok'))).json(), {name: 'n-ok'}, 'the built middleware is reused');
	t.is(await (await fetch(`${url}/refresh`, bearer('ok'))).text(), 'refreshed');
	const refused = await fetch(`${url}/x`);
	t.is(refused.headers.get('www-authenticate'), 'Bearer realm="mod"');
	t.throws(() => new StatelessAuthManager().initApp(app), {message: /already has a StatelessAuthManager/});
});

test('the module-level tokenRequired in an app without a manager answers 500 saying how to fix it', async t => {
	const app = new Koa();
	const errors = collectErrors(app);
	app.use(tokenRequired());
	const url = await listen(t, app);
	const response = await fetch(url, bearer('x'));
	t.is(response.status, 500);
	t.is(await response.text(), 'Internal Server Error');
	t.regex((errors[0] as Error).message, /call auth\.initApp\(app\) at start-up/);
});
