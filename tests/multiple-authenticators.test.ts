import test from 'ava';
import {USE_DEFAULT} from '../source/index.js';
import {basicHeader, createFixture, whoami} from './helpers/fixture.js';
import {listen, rawRequest} from './helpers/http.js';

// Rule 11 and 21: any-of, one challenge per scheme, no fall-through from wrong credentials.
async function start(t: Parameters<typeof listen>[0]) {
	const {auth, basic, machines, app, router, handled} = createFixture();
	router.get('/any', auth.protect({authenticators: [USE_DEFAULT, basic, machines]}), whoami(handled));
	app.use(router.routes());
	return {url: await listen(t, app), handled};
}

test('the first authenticator that succeeds wins, whichever it is', async t => {
	const {url} = await start(t);
	t.deepEqual(await (await fetch(`${url}/any`, {headers: {authorization: 'Bearer alice-token'}})).json(), {who: 'alice'});
	t.deepEqual(await (await fetch(`${url}/any`, {headers: {authorization: basicHeader('bob', 'bob-password')}})).json(), {who: 'bob'});
	t.deepEqual(await (await fetch(`${url}/any`, {headers: {'x-myapp-apikey': 'reports-key'}})).json(), {who: 'reports'});
});

test('when none found credentials, one 401 carries every challenge on its own line', async t => {
	const {url, handled} = await start(t);
	const response = await rawRequest(url, '/any', []);
	t.is(response.status, 401);
	t.deepEqual(JSON.parse(response.body), {error: 'Request error: No token provided'});
	t.deepEqual(response.headerLines('www-authenticate'), [
		'Bearer realm="api"',
		'Basic realm="basic area", charset="UTF-8"',
		'ApiKey realm="machines", header="X-MyApp-ApiKey"',
	]);
	t.deepEqual(handled, []);
});

test('wrong credentials for one scheme are the answer: no falling through to another', async t => {
	const {url, handled} = await start(t);
	// A valid API key beside a wrong bearer token must not let the request in.
	const wrongBearer = await rawRequest(url, '/any', [['Authorization', 'Bearer nope'], ['X-MyApp-ApiKey', 'reports-key']]);
	t.is(wrongBearer.status, 401);
	t.deepEqual(wrongBearer.headerLines('www-authenticate'), ['Bearer realm="api", error="invalid_token"']);
	const wrongBasic = await rawRequest(url, '/any', [['Authorization', basicHeader('bob', 'nope')], ['X-MyApp-ApiKey', 'reports-key']]);
	t.is(wrongBasic.status, 401);
	t.deepEqual(wrongBasic.headerLines('www-authenticate'), ['Basic realm="basic area", charset="UTF-8"']);
	const wrongKey = await rawRequest(url, '/any', [['X-MyApp-ApiKey', 'nope']]);
	t.is(wrongKey.status, 401);
	t.deepEqual(JSON.parse(wrongKey.body), {error: 'Token error: Invalid API key'});
	t.deepEqual(handled, []);
});

test('an empty list of authenticators is refused when the route is declared', t => {
	const {auth} = createFixture();
	t.throws(() => auth.protect({authenticators: []}), {instanceOf: TypeError, message: /non-empty list/});
	t.throws(() => auth.protect({authenticators: [{} as never]}), {instanceOf: TypeError, message: /must be an authenticator/});
});
