import test from 'ava';
import Koa from 'koa';
import {StatelessAuthError, authErrorHandler} from '../source/index.js';
import {createTestApp} from './helpers/app.js';
import {listen} from './helpers/http.js';

test('the default format is {error: fullMsg}', async t => {
	const {app} = createTestApp();
	const url = await listen(t, app);
	const response = await fetch(`${url}/secret`);
	t.is(response.status, 401);
	t.is(response.headers.get('content-type'), 'application/json; charset=utf-8');
	t.is(await response.text(), '{"error":"Request error: No token provided"}');
});

test('a custom format shapes the JSON and sees the context', async t => {
	const app = new Koa();
	app.use(authErrorHandler({format: (error, ctx) => ({message: error.msg, kind: error.type, status: error.code, path: ctx.path})}));
	app.use(() => {
		throw new StatelessAuthError('Nope', 403, 'scope', {headers: {'WWW-Authenticate': 'Bearer error="insufficient_scope"'}});
	});
	const url = await listen(t, app);
	const response = await fetch(`${url}/admin`);
	t.is(response.status, 403);
	t.deepEqual(await response.json(), {message: 'Nope', kind: 'scope', status: 403, path: '/admin'});
	t.is(response.headers.get('www-authenticate'), 'Bearer error="insufficient_scope"');
});

test('a 5xx is answered generically and emitted on the app', async t => {
	const app = new Koa();
	const emitted: unknown[] = [];
	app.on('error', (error: unknown) => emitted.push(error));
	app.use(authErrorHandler());
	const failure = new StatelessAuthError('Internal server error', 503, 'server', {cause: new Error('pool exhausted')});
	app.use(() => {
		throw failure;
	});
	const url = await listen(t, app);
	const response = await fetch(url);
	t.is(response.status, 503);
	t.deepEqual(await response.json(), {error: 'Server error: Service unavailable'});
	t.is(emitted.length, 1);
	t.is((emitted[0] as Error).cause, failure, 'what went wrong is the cause of what is emitted');
});

test('a 4xx is not emitted on the app', async t => {
	const {app} = createTestApp();
	const emitted: unknown[] = [];
	app.on('error', (error: unknown) => emitted.push(error));
	const url = await listen(t, app);
	await fetch(`${url}/secret`);
	t.deepEqual(emitted, []);
});

test('errors that are not auth errors pass through untouched', async t => {
	const app = new Koa();
	const emitted: unknown[] = [];
	app.on('error', (error: unknown) => emitted.push(error));
	app.use(authErrorHandler());
	const failure = Object.assign(new Error('teapot'), {status: 418, expose: true});
	app.use(() => {
		throw failure;
	});
	const url = await listen(t, app);
	const response = await fetch(url);
	t.is(response.status, 418);
	t.is(await response.text(), 'teapot');
	t.deepEqual(emitted, [failure]);
});

test('headers set before the refusal are kept', async t => {
	const {app: inner} = createTestApp();
	const app = new Koa();
	app.use(async (ctx, next) => {
		ctx.set('Access-Control-Allow-Origin', '*');
		await next();
	});
	app.use(inner.middleware[0]!);
	app.use(inner.middleware[1]!);
	const url = await listen(t, app);
	const response = await fetch(`${url}/secret`);
	t.is(response.status, 401);
	t.is(response.headers.get('access-control-allow-origin'), '*');
});

test('format must be a function', t => {
	t.throws(() => authErrorHandler({format: 'json' as never}), {instanceOf: TypeError, message: /`format`/});
});
