import test from 'ava';
import {bodyParser} from '@koa/bodyparser';
import {createFixture, whoami} from './helpers/fixture.js';
import {listen, rawRequest} from './helpers/http.js';

// RFC 6750 §2.2 and §2.3, rules 14 and 15: the query and the form body, only when switched on.
async function start(t: Parameters<typeof listen>[0]) {
	const {auth, app, router, handled} = createFixture();
	app.use(bodyParser({enableTypes: ['json', 'form']}));
	router.all('/header-only', auth.tokenRequired(), whoami(handled));
	router.all('/query', auth.tokenRequired({tokenSources: {query: true}}), whoami(handled));
	router.all('/body', auth.tokenRequired({tokenSources: {body: true}}), whoami(handled));
	router.all('/all', auth.tokenRequired({tokenSources: {query: true, body: true}}), whoami(handled));
	app.use(router.routes());
	return {url: await listen(t, app), handled};
}

const form = (body: string, extra: Record<string, string> = {}) => ({method: 'POST', headers: {'content-type': 'application/x-www-form-urlencoded', ...extra}, body});

test('the query and the body are ignored unless switched on', async t => {
	const {url} = await start(t);
	t.is((await fetch(`${url}/header-only?access_token=alice-token`)).status, 401);
	t.is((await fetch(`${url}/header-only`, form('access_token=alice-token'))).status, 401);
});

test('a query token is accepted where switched on, and the answer is Cache-Control: private', async t => {
	const {url} = await start(t);
	const response = await fetch(`${url}/query?access_token=alice-token`);
	t.deepEqual(await response.json(), {who: 'alice'});
	t.is(response.headers.get('cache-control'), 'private');
	const header = await fetch(`${url}/query`, {headers: {authorization: 'Bearer bob-token'}});
	t.deepEqual(await header.json(), {who: 'bob'});
	t.is(header.headers.get('cache-control'), null, 'only answers that used the query');
});

test('a form-body token is accepted where switched on, never on GET, never in JSON', async t => {
	const {url} = await start(t);
	t.deepEqual(await (await fetch(`${url}/body`, form('access_token=bob-token&other=1'))).json(), {who: 'bob'});
	const raw = 'access_token=bob-token';
	const post = await rawRequest(url, '/body', [['Content-Type', 'application/x-www-form-urlencoded'], ['Content-Length', String(raw.length)]], 'POST', raw);
	t.is(post.status, 200, 'the same raw request as a POST is accepted');
	const get = await rawRequest(url, '/body', [['Content-Type', 'application/x-www-form-urlencoded'], ['Content-Length', String(raw.length)]], 'GET', raw);
	t.is(get.status, 401);
	const json = await fetch(`${url}/body`, {method: 'POST', headers: {'content-type': 'application/json'}, body: JSON.stringify({access_token: 'bob-token'})});
	t.is(json.status, 401);
});

test('a token sent by more than one method is a 400 invalid_request', async t => {
	const {url, handled} = await start(t);
	const headerAndQuery = await fetch(`${url}/all?access_token=alice-token`, {headers: {authorization: 'Bearer alice-token'}});
	t.is(headerAndQuery.status, 400);
	t.deepEqual(await headerAndQuery.json(), {error: 'Request error: Token sent by more than one method'});
	t.is(headerAndQuery.headers.get('www-authenticate'), 'Bearer realm="api", error="invalid_request"');
	t.is((await fetch(`${url}/all?access_token=alice-token`, form('access_token=alice-token'))).status, 400);
	t.is((await fetch(`${url}/all`, form('access_token=alice-token', {authorization: 'Bearer alice-token'}))).status, 400);
	t.deepEqual(handled, []);
});

test('a repeated or malformed access_token is a 400', async t => {
	const {url} = await start(t);
	t.is((await fetch(`${url}/query?access_token=alice-token&access_token=alice-token`)).status, 400);
	t.is((await fetch(`${url}/query?access_token=${encodeURIComponent('alice token')}`)).status, 400);
	t.is((await fetch(`${url}/body`, form('access_token=a&access_token=b'))).status, 400);
});

test('an unknown query token is an invalid token', async t => {
	const {url} = await start(t);
	const response = await fetch(`${url}/query?access_token=nope`);
	t.is(response.status, 401);
	t.deepEqual(await response.json(), {error: 'Token error: Invalid token'});
});

test('the manager may switch a source on for every route', async t => {
	const {auth, app, router, handled} = createFixture({realm: 'api', tokenSources: {query: true}});
	router.get('/x', auth.tokenRequired(), whoami(handled));
	router.get('/off', auth.tokenRequired({tokenSources: {}}), whoami(handled));
	app.use(router.routes());
	const url = await listen(t, app);
	t.is((await fetch(`${url}/x?access_token=alice-token`)).status, 200);
	t.is((await fetch(`${url}/off?access_token=alice-token`)).status, 401);
});
