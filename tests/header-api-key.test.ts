import test from 'ava';
import {HeaderApiKeyAuthenticator, authenticatedAppName, openApiSecurity} from '../source/index.js';
import {createFixture} from './helpers/fixture.js';
import {listen, rawRequest} from './helpers/http.js';

async function start(t: Parameters<typeof listen>[0]) {
	const fixture = createFixture();
	const {auth, machines, app, router, handled} = fixture;
	router.get('/m2m', auth.protect({authenticators: [machines]}), ctx => {
		handled.push(ctx.path);
		ctx.body = {appName: ctx.state.currentUser.appName, accessor: authenticatedAppName(ctx) ?? null};
	});
	app.use(router.routes());
	return {...fixture, url: await listen(t, app)};
}

const key = (value: string) => ({headers: {'x-myapp-apikey': value}});

test('a registered key is accepted, and its app name is on ctx.state and through the accessor', async t => {
	const {url} = await start(t);
	const response = await fetch(`${url}/m2m`, key('reports-key'));
	t.is(response.status, 200);
	t.deepEqual(await response.json(), {appName: 'reports', accessor: 'reports'});
});

test('both keys of one app are accepted (rotation)', async t => {
	const {url} = await start(t);
	for (const value of ['billing-key-1', 'billing-key-2']) {
		t.deepEqual(await (await fetch(`${url}/m2m`, key(value))).json(), {appName: 'billing', accessor: 'billing'});
	}
});

test('a wrong key is refused with a challenge', async t => {
	const {url, handled} = await start(t);
	for (const value of ['billing-key-3', 'BILLING-KEY-1', 'billing-key-1x', 'x'.repeat(5000)]) {
		const response = await fetch(`${url}/m2m`, key(value));
		t.is(response.status, 401);
		t.deepEqual(await response.json(), {error: 'Token error: Invalid API key'});
		t.is(response.headers.get('www-authenticate'), 'ApiKey realm="machines", header="X-MyApp-ApiKey"');
	}

	t.deepEqual(handled, []);
});

test('a revoked key is refused, the app\'s other key still works', async t => {
	const {url, machines} = await start(t);
	t.true(machines.revokeKey('billing-key-1'));
	t.false(machines.revokeKey('billing-key-1'), 'revoking twice says it was not registered');
	t.is((await fetch(`${url}/m2m`, key('billing-key-1'))).status, 401);
	t.is((await fetch(`${url}/m2m`, key('billing-key-2'))).status, 200);
});

test('no key is a 401 that says so; the header name is case-insensitive', async t => {
	const {url} = await start(t);
	const missing = await fetch(`${url}/m2m`);
	t.is(missing.status, 401);
	t.deepEqual(await missing.json(), {error: 'Request error: No API key provided'});
	t.is(missing.headers.get('www-authenticate'), 'ApiKey realm="machines", header="X-MyApp-ApiKey"');
	const raw = await rawRequest(url, '/m2m', [['X-MYAPP-APIKEY', 'reports-key']]);
	t.is(raw.status, 200);
});

test('a key on two header lines is a 400; a key in the query is not a key', async t => {
	const {url} = await start(t);
	const duplicate = await rawRequest(url, '/m2m', [['X-MyApp-ApiKey', 'reports-key'], ['X-MyApp-ApiKey', 'reports-key']]);
	t.is(duplicate.status, 400);
	t.is((await fetch(`${url}/m2m?api_key=reports-key&X-MyApp-ApiKey=reports-key`)).status, 401);
});

test('the accessor is undefined on requests not authenticated by a key', async t => {
	const {auth, app, router} = createFixture();
	router.get('/bearer', auth.tokenRequired(), ctx => {
		ctx.body = {accessor: authenticatedAppName(ctx) ?? null};
	});
	app.use(router.routes());
	const url = await listen(t, app);
	t.deepEqual(await (await fetch(`${url}/bearer`, {headers: {authorization: 'Bearer alice-token'}})).json(), {accessor: null});
});

test('registerKey validates its arguments, and the header option is validated', t => {
	const machines = new HeaderApiKeyAuthenticator();
	t.throws(() => machines.registerKey(''), {instanceOf: TypeError});
	t.throws(() => machines.registerKey(' padded '), {instanceOf: TypeError});
	t.throws(() => machines.registerKey('k', ''), {instanceOf: TypeError});
	t.throws(() => new HeaderApiKeyAuthenticator({header: 'X Bad'}), {instanceOf: TypeError, message: /`header`/});
	t.throws(() => new HeaderApiKeyAuthenticator({realm: '\n'}), {instanceOf: TypeError, message: /`realm`/});
	t.is(machines.registerKey('k'), machines);
	t.deepEqual(openApiSecurity(createFixture().auth.protect({authenticators: [machines]}))?.securitySchemes, {apiKeyAuth: {type: 'apiKey', in: 'header', name: 'X-API-Key'}});
});
