import test from 'ava';
import Koa from 'koa';
import {StatelessAuthManager, authErrorHandler} from '../source/index.js';
import {createFixture, whoami} from './helpers/fixture.js';
import {listen, rawRequest} from './helpers/http.js';

// `Authorization: Token KEY` (rule 20): accepted only where a route says so.
async function start(t: Parameters<typeof listen>[0]) {
	const {auth, app, router, handled} = createFixture();
	router.get('/bearer-only', auth.tokenRequired(), whoami(handled));
	router.get('/keys-too', auth.tokenRequired({allowApiKey: true}), whoami(handled));
	router.get('/protect', auth.protect(), whoami(handled));
	router.get('/keys-only', auth.protect({authenticators: [auth.tokenKey()]}), whoami(handled));
	app.use(router.routes());
	return {url: await listen(t, app), handled};
}

const token = (value: string) => ({headers: {authorization: value}});

test('a Token key is accepted where the route allows it, beside bearer tokens', async t => {
	const {url} = await start(t);
	t.deepEqual(await (await fetch(`${url}/keys-too`, token('Token alice-key'))).json(), {who: 'alice'});
	t.deepEqual(await (await fetch(`${url}/keys-too`, token('token bob-key'))).json(), {who: 'bob'});
	t.deepEqual(await (await fetch(`${url}/keys-too`, token('Bearer bob-token'))).json(), {who: 'bob'});
	t.deepEqual(await (await fetch(`${url}/keys-only`, token('Token bob-key'))).json(), {who: 'bob'});
});

test('a Token key is a 403 with a clear message on any other protected route', async t => {
	const {url, handled} = await start(t);
	for (const route of ['/bearer-only', '/protect']) {
		const response = await fetch(`${url}${route}`, token('Token alice-key'));
		t.is(response.status, 403, route);
		t.deepEqual(await response.json(), {error: 'Scope error: API keys are not accepted on this route'});
	}

	t.deepEqual(handled, []);
});

test('an unknown key is an invalid token; Token alone is malformed', async t => {
	const {url} = await start(t);
	const unknown = await fetch(`${url}/keys-too`, token('Token nope'));
	t.is(unknown.status, 401);
	t.deepEqual(await unknown.json(), {error: 'Token error: Invalid token'});
	t.is(unknown.headers.get('www-authenticate'), 'Token realm="api", error="invalid_token"');
	const alone = await rawRequest(url, '/keys-only', [['Authorization', 'Token']]);
	t.is(alone.status, 400);
	t.is(alone.header('www-authenticate'), 'Token realm="api", error="invalid_request"');
});

test('a route taking keys advertises both schemes, one header line each', async t => {
	const {url} = await start(t);
	const response = await rawRequest(url, '/keys-too', []);
	t.is(response.status, 401);
	t.deepEqual(response.headerLines('www-authenticate'), ['Bearer realm="api"', 'Token realm="api"']);
});

test('without an apiKeyLoader, a Token key on a bearer route is just another scheme', async t => {
	const auth = new StatelessAuthManager();
	auth.tokenLoader(() => undefined);
	auth.userLoader(() => undefined);
	const app = new Koa();
	app.use(authErrorHandler());
	app.use(auth.tokenRequired());
	const url = await listen(t, app);
	const response = await fetch(url, token('Token abc'));
	t.is(response.status, 401);
	t.deepEqual(await response.json(), {error: 'Request error: Invalid token type'});
});

test('a route taking keys without an apiKeyLoader answers 500 saying how to fix it', async t => {
	const auth = new StatelessAuthManager();
	const app = new Koa();
	const errors: unknown[] = [];
	app.on('error', (error: unknown) => errors.push(error));
	app.use(auth.tokenRequired({allowApiKey: true}));
	const url = await listen(t, app);
	t.is((await fetch(url, token('Token abc'))).status, 500);
	t.regex((errors[0] as Error).message, /call auth\.apiKeyLoader\(fn\) at start-up/);
});
