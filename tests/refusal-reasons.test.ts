import test from 'ava';
import Koa from 'koa';
import Router from '@koa/router';
import {StatelessAuthError, StatelessAuthManager, authErrorHandler, type RefusalReason} from '../source/index.js';
import {basicHeader, createFixture} from './helpers/fixture.js';
import {listen, rawRequest} from './helpers/http.js';

// Every refusal carries a stable reason; the format sees it, so an app never matches message strings.
async function start(t: Parameters<typeof listen>[0], messages?: Partial<Record<RefusalReason, string>>) {
	const {auth, basic, machines, app, router} = createFixture({realm: 'api', ...(messages === undefined ? {} : {messages})});
	const errors: unknown[] = [];
	app.on('error', (error: unknown) => errors.push(error));
	auth.tokenLoader(token => {
		if (token === 'expired-token') {
			return {userId: 1, scopes: [], tokenExpired: () => true};
		}

		if (token === 'explode') {
			throw new Error('disk on fire');
		}

		if (token === 'slow') {
			return new Promise(() => undefined);
		}

		if (token === 'limited') {
			throw new StatelessAuthError('Slow down', 429, 'request');
		}

		return token === 'alice-token' ? {userId: 1, scopes: []} : token === 'bob-token' ? {userId: 2, scopes: []} : undefined;
	});
	router.get('/bearer', auth.tokenRequired({loaderTimeout: 30}), ctx => {
		ctx.body = 'ok';
	});
	router.get('/admin', auth.tokenRequired({permissions: ['admin']}), ctx => {
		ctx.body = 'ok';
	});
	router.get('/basic', auth.protect({authenticators: [basic]}), ctx => {
		ctx.body = 'ok';
	});
	router.get('/machines', auth.protect({authenticators: [machines]}), ctx => {
		ctx.body = 'ok';
	});
	router.get('/keys', auth.tokenRequired({allowApiKey: true}), ctx => {
		ctx.body = 'ok';
	});
	// The fixture's app has authErrorHandler with the default format; this one, inside it, shows the reason.
	app.use(async (ctx, next) => {
		try {
			await next();
		} catch (error) {
			ctx.set('X-Reason', (error as StatelessAuthError).reason);
			throw error;
		}
	});
	app.use(router.routes());
	return {url: await listen(t, app), errors};
}

type Row = {path: string; lines: Array<[string, string]>; status: number; reason: RefusalReason};
const rows: Array<[string, Row]> = [
	['no credentials', {path: '/bearer', lines: [], status: 401, reason: 'missing_credentials'}],
	['another scheme', {path: '/bearer', lines: [['Authorization', 'Snaker x']], status: 401, reason: 'unsupported_scheme'}],
	['a malformed token', {path: '/bearer', lines: [['Authorization', 'Bearer a b']], status: 400, reason: 'malformed_credentials'}],
	['duplicate lines', {path: '/bearer', lines: [['Authorization', 'Bearer a'], ['Authorization', 'Bearer b']], status: 400, reason: 'malformed_credentials'}],
	['an unknown token', {path: '/bearer', lines: [['Authorization', 'Bearer nope']], status: 401, reason: 'invalid_token'}],
	['an expired token', {path: '/bearer', lines: [['Authorization', 'Bearer expired-token']], status: 401, reason: 'expired_token'}],
	['a missing permission', {path: '/admin', lines: [['Authorization', 'Bearer bob-token']], status: 403, reason: 'insufficient_scope'}],
	['a Token key where keys are not taken', {path: '/bearer', lines: [['Authorization', 'Token alice-key']], status: 403, reason: 'api_key_not_allowed'}],
	['an unknown Token key', {path: '/keys', lines: [['Authorization', 'Token nope']], status: 401, reason: 'invalid_token'}],
	['a wrong header API key', {path: '/machines', lines: [['X-MyApp-ApiKey', 'nope']], status: 401, reason: 'invalid_api_key'}],
	['a missing header API key', {path: '/machines', lines: [], status: 401, reason: 'missing_credentials'}],
	['a wrong Basic password', {path: '/basic', lines: [['Authorization', basicHeader('alice', 'nope')]], status: 401, reason: 'authentication_failed'}],
	['no Basic credentials', {path: '/basic', lines: [], status: 401, reason: 'authentication_failed'}],
	['a loader\'s own 429', {path: '/bearer', lines: [['Authorization', 'Bearer limited']], status: 429, reason: 'request_refused'}],
	['a loader that throws', {path: '/bearer', lines: [['Authorization', 'Bearer explode']], status: 500, reason: 'internal_error'}],
	['a loader that never settles', {path: '/bearer', lines: [['Authorization', 'Bearer slow']], status: 503, reason: 'loader_timeout'}],
];

for (const [title, row] of rows) {
	test(`${title} is refused with the reason ${row.reason}`, async t => {
		const {url} = await start(t);
		// fetch merges repeated names, so duplicate lines go raw; a raw request half-closes its socket,
		// which a server answering after a delay (the timeout row) would see as the client gone.
		const names = row.lines.map(([name]) => name.toLowerCase());
		if (new Set(names).size === names.length) {
			const response = await fetch(`${url}${row.path}`, {headers: row.lines});
			t.is(response.status, row.status);
			t.is(response.headers.get('x-reason'), row.reason);
		} else {
			const response = await rawRequest(url, row.path, row.lines);
			t.is(response.status, row.status);
			t.is(response.header('x-reason'), row.reason);
		}
	});
}

test('messages reword a refusal by its reason, in the body, fullMsg and Koa\'s text alike', async t => {
	const {url} = await start(t, {invalid_token: 'Please sign in again', missing_credentials: 'Sign in first'});
	const unknown = await fetch(`${url}/bearer`, {headers: {authorization: 'Bearer nope'}});
	t.is(unknown.status, 401);
	t.deepEqual(await unknown.json(), {error: 'Token error: Please sign in again'});
	t.is(unknown.headers.get('www-authenticate'), 'Bearer realm="api", error="invalid_token"');
	t.deepEqual(await (await fetch(`${url}/bearer`)).json(), {error: 'Request error: Sign in first'});
	t.deepEqual(await (await fetch(`${url}/bearer`, {headers: {authorization: 'Bearer expired-token'}})).json(), {error: 'Token error: access token expired'}, 'other reasons keep their wording');
});

test('rewording Basic\'s one reason keeps every Basic failure byte-identical', async t => {
	const {url} = await start(t, {authentication_failed: 'Who are you?'});
	const missing = await rawRequest(url, '/basic', []);
	const wrong = await rawRequest(url, '/basic', [['Authorization', basicHeader('alice', 'nope')]]);
	const malformed = await rawRequest(url, '/basic', [['Authorization', 'Basic !!!']]);
	t.is(missing.body, '{"error":"Request error: Who are you?"}');
	for (const response of [wrong, malformed]) {
		t.is(response.status, missing.status);
		t.is(response.body, missing.body);
		t.deepEqual(response.headerLines('www-authenticate'), missing.headerLines('www-authenticate'));
	}
});

test('an application\'s own error may name its reason, and keeps it through the middleware', async t => {
	const auth = new StatelessAuthManager<{id: number}, {id: number}>();
	auth.tokenLoader(() => {
		throw new StatelessAuthError('Token revoked', 401, 'token', {reason: 'invalid_token'});
	});
	auth.userLoader(record => record);
	const app = new Koa();
	app.use(authErrorHandler({format: error => ({reason: error.reason, message: error.msg})}));
	const router = new Router<object>();
	router.get('/x', auth.tokenRequired(), ctx => {
		ctx.body = 'ok';
	});
	app.use(router.routes());
	const url = await listen(t, app);
	t.deepEqual(await (await fetch(`${url}/x`, {headers: {authorization: 'Bearer x'}})).json(), {reason: 'invalid_token', message: 'Token revoked'});
});

test('a reason defaults from the status and type, and must be a non-empty string', t => {
	t.is(new StatelessAuthError('x', 401, 'token').reason, 'invalid_token');
	t.is(new StatelessAuthError('x', 401, 'request').reason, 'missing_credentials');
	t.is(new StatelessAuthError('x', 400, 'request').reason, 'malformed_credentials');
	t.is(new StatelessAuthError('x', 403, 'scope').reason, 'insufficient_scope');
	t.is(new StatelessAuthError('x', 429, 'request').reason, 'request_refused');
	t.is(new StatelessAuthError('x', 503, 'server').reason, 'service_unavailable');
	t.is(new StatelessAuthError('x', 502, 'server').reason, 'internal_error');
	t.is(new StatelessAuthError('x', 401, 'token', {reason: 'revoked'}).reason, 'revoked');
	t.throws(() => new StatelessAuthError('x', 401, 'token', {reason: ''}), {instanceOf: TypeError, message: /reason/});
});

test('messages must map reasons to strings', t => {
	t.throws(() => new StatelessAuthManager({messages: {invalid_token: 42 as never}}), {instanceOf: TypeError, message: /`messages`/});
});
