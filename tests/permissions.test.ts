import test from 'ava';
import {createFixture, whoami, basicHeader, type Token, type User} from './helpers/fixture.js';
import {listen} from './helpers/http.js';

// Rule 10: authenticated but lacking a permission is a 403 `insufficient_scope` naming what was needed.
async function start(t: Parameters<typeof listen>[0]) {
	const {auth, basic, app, router, handled} = createFixture();
	router.get('/admin', auth.tokenRequired({permissions: ['admin']}), whoami(handled));
	router.get('/both', auth.tokenRequired({permissions: ['view', 'admin']}), whoami(handled));
	router.get('/any', auth.tokenRequired({permissions: {anyOf: ['admin', 'reports']}}), whoami(handled));
	router.get('/mixed', auth.tokenRequired({permissions: {allOf: ['view'], anyOf: ['admin', 'reports']}}), whoami(handled));
	router.get('/scopes', auth.tokenRequired({permissions: ['write'], readPermissions: (_user: User, record: Token) => record.scopes}), whoami(handled));
	router.get('/basic-admin', auth.protect({authenticators: [basic], permissions: ['admin']}), whoami(handled));
	router.get('/async-reader', auth.tokenRequired({permissions: ['admin'], readPermissions: async (user: User) => new Set(user.permissions)}), whoami(handled));
	app.use(router.routes());
	return {url: await listen(t, app), handled};
}

const bearer = (token: string) => ({headers: {authorization: `Bearer ${token}`}});

test('a user with the permission is let in', async t => {
	const {url} = await start(t);
	t.deepEqual(await (await fetch(`${url}/admin`, bearer('alice-token'))).json(), {who: 'alice'});
});

test('a user without it is a 403 insufficient_scope naming what was needed', async t => {
	const {url, handled} = await start(t);
	const response = await fetch(`${url}/admin`, bearer('bob-token'));
	t.is(response.status, 403);
	t.deepEqual(await response.json(), {error: 'Scope error: Insufficient permissions'});
	t.is(response.headers.get('www-authenticate'), 'Bearer realm="api", error="insufficient_scope", scope="admin"');
	t.deepEqual(handled, []);
});

test('a list needs all of its permissions', async t => {
	const {url} = await start(t);
	t.is((await fetch(`${url}/both`, bearer('alice-token'))).status, 200);
	const bob = await fetch(`${url}/both`, bearer('bob-token'));
	t.is(bob.status, 403);
	t.is(bob.headers.get('www-authenticate'), 'Bearer realm="api", error="insufficient_scope", scope="view admin"');
});

test('anyOf needs one of them; allOf and anyOf combine', async t => {
	const {url} = await start(t);
	t.is((await fetch(`${url}/any`, bearer('alice-token'))).status, 200);
	t.is((await fetch(`${url}/any`, bearer('carol-token'))).status, 200);
	t.is((await fetch(`${url}/any`, bearer('bob-token'))).status, 403);
	t.is((await fetch(`${url}/mixed`, bearer('alice-token'))).status, 200);
	t.is((await fetch(`${url}/mixed`, bearer('carol-token'))).status, 403, 'carol has reports but not view');
});

test('permissions can come from the token record (scopes)', async t => {
	const {url} = await start(t);
	t.deepEqual(await (await fetch(`${url}/scopes`, bearer('bob-token'))).json(), {who: 'bob'});
	t.is((await fetch(`${url}/scopes`, bearer('alice-token'))).status, 403, 'alice is an admin, but her token cannot write');
});

test('an async reader works', async t => {
	const {url} = await start(t);
	t.is((await fetch(`${url}/async-reader`, bearer('alice-token'))).status, 200);
	t.is((await fetch(`${url}/async-reader`, bearer('bob-token'))).status, 403);
});

test('permissions work the same with Basic', async t => {
	const {url} = await start(t);
	t.is((await fetch(`${url}/basic-admin`, {headers: {authorization: basicHeader('alice', 'alice-password')}})).status, 200);
	const bob = await fetch(`${url}/basic-admin`, {headers: {authorization: basicHeader('bob', 'bob-password')}});
	t.is(bob.status, 403);
	t.deepEqual(await bob.json(), {error: 'Scope error: Insufficient permissions'});
	t.is(bob.headers.get('www-authenticate'), 'Basic realm="basic area", charset="UTF-8"');
});

test('an invalid token is still a 401, before any permission', async t => {
	const {url} = await start(t);
	t.is((await fetch(`${url}/admin`, bearer('nope'))).status, 401);
});

test('permission names are validated when the route is declared', t => {
	const {auth} = createFixture();
	t.throws(() => auth.tokenRequired({permissions: ['two words']}), {instanceOf: TypeError, message: /`permissions`/});
	t.throws(() => auth.tokenRequired({permissions: {anyOf: ['a"b']}}), {instanceOf: TypeError, message: /`permissions.anyOf`/});
	t.throws(() => auth.tokenRequired({permissions: 'admin' as never}), {instanceOf: TypeError, message: /`permissions`/});
	t.throws(() => auth.tokenRequired({permissions: {oneOf: ['admin']} as never}), {instanceOf: TypeError, message: /`permissions`/});
	t.throws(() => auth.tokenRequired({readPermissions: 'user.permissions' as never, permissions: ['a']}), {instanceOf: TypeError, message: /`readPermissions`/});
});
