import test from 'ava';
import {USE_DEFAULT} from '../source/index.js';
import {basicHeader, createFixture, whoami} from './helpers/fixture.js';
import {listen} from './helpers/http.js';

// Flask-Rebar's registry defaults: use, extend, override, opt out.
async function start(t: Parameters<typeof listen>[0]) {
	const {auth, basic, machines, app, router, handled} = createFixture();
	const m2m = auth.defaults({authenticators: [machines]});
	router.get('/m2m/default', m2m.protect(), whoami(handled));
	router.get('/m2m/extended', m2m.protect({authenticators: [USE_DEFAULT, basic]}), whoami(handled));
	router.get('/m2m/overridden', m2m.protect({authenticators: [basic]}), whoami(handled));
	router.get('/m2m/public', m2m.protect({authenticators: null}), whoami(handled));
	const admins = auth.defaults({authenticators: auth.bearer(), permissions: ['admin']});
	router.get('/admin/default', admins.protect(), whoami(handled));
	router.get('/admin/reports', admins.protect({permissions: ['view']}), whoami(handled));
	app.use(router.routes());
	return {url: await listen(t, app), handled};
}

const key = {headers: {'x-myapp-apikey': 'billing-key-1'}};
const basicBob = {headers: {authorization: basicHeader('bob', 'bob-password')}};

test('a route uses the group\'s default', async t => {
	const {url} = await start(t);
	t.deepEqual(await (await fetch(`${url}/m2m/default`, key)).json(), {who: 'billing'});
	t.is((await fetch(`${url}/m2m/default`, basicBob)).status, 401);
});

test('a route extends the default', async t => {
	const {url} = await start(t);
	t.deepEqual(await (await fetch(`${url}/m2m/extended`, key)).json(), {who: 'billing'});
	t.deepEqual(await (await fetch(`${url}/m2m/extended`, basicBob)).json(), {who: 'bob'});
});

test('a route overrides the default', async t => {
	const {url} = await start(t);
	t.is((await fetch(`${url}/m2m/overridden`, key)).status, 401);
	t.deepEqual(await (await fetch(`${url}/m2m/overridden`, basicBob)).json(), {who: 'bob'});
});

test('a route opts out of the default', async t => {
	const {url, handled} = await start(t);
	t.deepEqual(await (await fetch(`${url}/m2m/public`)).json(), {who: null});
	t.deepEqual(handled, ['/m2m/public']);
});

test('group permissions are defaults too, and a route may change them', async t => {
	const {url} = await start(t);
	t.is((await fetch(`${url}/admin/default`, {headers: {authorization: 'Bearer bob-token'}})).status, 403);
	t.is((await fetch(`${url}/admin/default`, {headers: {authorization: 'Bearer alice-token'}})).status, 200);
	t.is((await fetch(`${url}/admin/reports`, {headers: {authorization: 'Bearer bob-token'}})).status, 200);
});
