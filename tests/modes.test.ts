import test from 'ava';
import {createFixture, whoami} from './helpers/fixture.js';
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

test('present but invalid credentials: refused, never anonymous', async t => {
	const {url, handled} = await start(t);
	t.is((await fetch(`${url}/feed`, {headers: {authorization: 'Bearer nope'}})).status, 401);
	t.is((await rawRequest(url, '/feed', [['Authorization', 'Bearer a b']])).status, 400);
	const otherScheme = await fetch(`${url}/feed`, {headers: {authorization: 'Snaker x'}});
	t.is(otherScheme.status, 401);
	t.deepEqual(await otherScheme.json(), {error: 'Request error: Invalid token type'});
	t.deepEqual(handled, []);
});

test('a mode other than required or optional is refused when the route is declared', t => {
	const {auth} = createFixture();
	t.throws(() => auth.tokenRequired({mode: 'lenient' as never}), {instanceOf: TypeError, message: /`mode`/});
});
