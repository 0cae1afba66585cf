import test from 'ava';
import {basicHeader, createFixture, whoami} from './helpers/fixture.js';
import {listen, rawRequest} from './helpers/http.js';

// Optional mode: no credentials is anonymous; credentials that are present are judged as ever.
async function start(t: Parameters<typeof listen>[0]) {
	const {auth, basic, app, router, handled} = createFixture();
	router.get('/feed', auth.tokenRequired({mode: 'optional'}), whoami(handled));
	router.get('/feed-any', auth.protect({authenticators: [auth.bearer(), basic], mode: 'optional'}), whoami(handled));
	app.use(router.routes());
	return {url: await listen(t, app), handled};
}

test('no credentials: anonymous, with currentUser undefined', async t => {
	const {url, handled} = await start(t);
	const response = await fetch(`${url}/feed`);
	t.is(response.status, 200);
	t.deepEqual(await response.json(), {who: null});
	t.deepEqual((await (await fetch(`${url}/feed-any`)).json()), {who: null});
	t.deepEqual(handled, ['/feed', '/feed-any']);
});

test('valid credentials: the user', async t => {
	const {url} = await start(t);
	t.deepEqual(await (await fetch(`${url}/feed`, {headers: {authorization: 'Bearer alice-token'}})).json(), {who: 'alice'});
});

test('present but invalid credentials for the route\'s own schemes: refused, never anonymous', async t => {
	const {url, handled} = await start(t);
	t.is((await fetch(`${url}/feed`, {headers: {authorization: 'Bearer nope'}})).status, 401);
	t.is((await rawRequest(url, '/feed', [['Authorization', 'Bearer a b']])).status, 400);
	t.is((await fetch(`${url}/feed-any`, {headers: {authorization: basicHeader('alice', 'wrong')}})).status, 401);
	t.is((await rawRequest(url, '/feed', [['Authorization', 'Bearer a'], ['Authorization', 'Basic b']])).status, 400, 'duplicate lines');
	t.deepEqual(handled, []);
});

// Rule 7: a header of another scheme is no credentials (a proxy that adds Basic to every request).
for (const value of ['Snaker x', 'Basic dXNlcjpwYXNz', 'Token alice-key', 'Bearerabc', 'Digest username="x"']) {
	test(`another scheme (${value}) on an optional route is served anonymously`, async t => {
		const {url, handled} = await start(t);
		const response = await fetch(`${url}/feed`, {headers: {authorization: value}});
		t.is(response.status, 200);
		t.deepEqual(await response.json(), {who: null});
		t.deepEqual(handled, ['/feed']);
	});
}

test('the same header on a required route is still a 401 with the challenge', async t => {
	const {auth, app, router} = createFixture();
	router.get('/required', auth.tokenRequired(), ctx => {
		ctx.body = 'served';
	});
	app.use(router.routes());
	const url = await listen(t, app);
	const response = await fetch(`${url}/required`, {headers: {authorization: 'Snaker x'}});
	t.is(response.status, 401);
	t.deepEqual(await response.json(), {error: 'Request error: Invalid token type'});
	t.is(response.headers.get('www-authenticate'), 'Bearer realm="api"');
});

test('a mode other than required or optional is refused when the route is declared', t => {
	const {auth} = createFixture();
	t.throws(() => auth.tokenRequired({mode: 'lenient' as never}), {instanceOf: TypeError, message: /`mode`/});
});
