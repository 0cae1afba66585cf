import test from 'ava';
import {openApiSecurity, tokenRequired} from '../source/index.js';
import {createFixture} from './helpers/fixture.js';
import {listen, rawRequest} from './helpers/http.js';

// relation: 'and' (fastify-auth's): an application's header key AND a user's bearer token.
async function start(t: Parameters<typeof listen>[0]) {
	const {auth, machines, basic, app, router, handled} = createFixture();
	const both = auth.protect({authenticators: [machines, auth.bearer()], relation: 'and'});
	router.get('/both', both, ctx => {
		handled.push(ctx.path);
		const [caller, user] = ctx.state.currentUser;
		const [, token] = ctx.state.currentToken;
		ctx.body = {app: caller.appName, user: user.name, scopes: token.scopes, byMachines: ctx.state.authenticator === machines};
	});
	router.get('/both-admin', auth.protect({
		authenticators: [machines, auth.bearer()],
		relation: 'and',
		permissions: ['admin'],
		readPermissions: ([, user]) => user.permissions,
	}), ctx => {
		handled.push(ctx.path);
		ctx.body = 'ok';
	});
	router.get('/which', auth.protect({authenticators: [auth.bearer(), basic]}), ctx => {
		ctx.body = {bearer: ctx.state.authenticator !== basic, basic: ctx.state.authenticator === basic};
	});
	app.use(router.routes());
	return {url: await listen(t, app), handled, both};
}

test('both credentials valid: both principals and tokens reach ctx.state, in order', async t => {
	const {url} = await start(t);
	const response = await rawRequest(url, '/both', [['X-MyApp-ApiKey', 'billing-key-1'], ['Authorization', 'Bearer alice-token']]);
	t.is(response.status, 200);
	t.deepEqual(JSON.parse(response.body), {app: 'billing', user: 'alice', scopes: ['read'], byMachines: true});
});

test('one of the two missing: that one\'s refusal and challenge, never a way in', async t => {
	const {url, handled} = await start(t);
	const noBearer = await rawRequest(url, '/both', [['X-MyApp-ApiKey', 'billing-key-1']]);
	t.is(noBearer.status, 401);
	t.deepEqual(JSON.parse(noBearer.body), {error: 'Request error: No token provided'});
	t.deepEqual(noBearer.headerLines('www-authenticate'), ['Bearer realm="api"']);
	const noKey = await rawRequest(url, '/both', [['Authorization', 'Bearer alice-token']]);
	t.is(noKey.status, 401);
	t.deepEqual(JSON.parse(noKey.body), {error: 'Request error: No API key provided'});
	t.deepEqual(noKey.headerLines('www-authenticate'), ['ApiKey realm="machines", header="X-MyApp-ApiKey"']);
	t.deepEqual(handled, []);
});

test('neither: one 401 with both challenges; a wrong one: its own refusal', async t => {
	const {url, handled} = await start(t);
	const neither = await rawRequest(url, '/both', []);
	t.is(neither.status, 401);
	t.is(neither.headerLines('www-authenticate').length, 2);
	const wrongKey = await rawRequest(url, '/both', [['X-MyApp-ApiKey', 'nope'], ['Authorization', 'Bearer alice-token']]);
	t.is(wrongKey.status, 401);
	t.deepEqual(JSON.parse(wrongKey.body), {error: 'Token error: Invalid API key'});
	const wrongToken = await rawRequest(url, '/both', [['X-MyApp-ApiKey', 'billing-key-1'], ['Authorization', 'Bearer nope']]);
	t.deepEqual(wrongToken.headerLines('www-authenticate'), ['Bearer realm="api", error="invalid_token"']);
	t.deepEqual(handled, []);
});

test('permissions on an all-of route are read by the route\'s own reader', async t => {
	const {url} = await start(t);
	t.is((await rawRequest(url, '/both-admin', [['X-MyApp-ApiKey', 'billing-key-1'], ['Authorization', 'Bearer alice-token']])).status, 200);
	const bob = await rawRequest(url, '/both-admin', [['X-MyApp-ApiKey', 'billing-key-1'], ['Authorization', 'Bearer bob-token']]);
	t.is(bob.status, 403);
	t.deepEqual(bob.headerLines('www-authenticate'), ['Bearer realm="api", error="insufficient_scope", scope="admin"']);
});

test('an all-of route with permissions but no reader is refused at declaration', t => {
	const {auth, machines} = createFixture();
	t.throws(() => auth.protect({authenticators: [machines, auth.bearer()], relation: 'and', permissions: ['admin']}), {instanceOf: TypeError, message: /readPermissions/});
	t.throws(() => auth.protect({authenticators: [machines], relation: 'both' as never}), {instanceOf: TypeError, message: /`relation`/});
});

test('OpenAPI: an all-of route is one requirement naming both schemes', async t => {
	const {both} = await start(t);
	t.deepEqual(openApiSecurity(both)?.security, [{apiKeyAuth: [], bearerAuth: []}]);
});

test('ctx.state.authenticator is the authenticator that accepted the request', async t => {
	const {url} = await start(t);
	t.deepEqual(await (await fetch(`${url}/which`, {headers: {authorization: 'Bearer alice-token'}})).json(), {bearer: true, basic: false});
	t.deepEqual(await (await fetch(`${url}/which`, {headers: {authorization: `Basic ${Buffer.from('bob:bob-password').toString('base64')}`}})).json(), {bearer: false, basic: true});
});

test('two different schemes under one OpenAPI name on a route are refused at declaration', t => {
	const {auth} = createFixture();
	// A bearer path whose scheme is `Token` is named tokenAuth, like the Token keys, but is an http scheme.
	t.throws(() => auth.protect({authenticators: [auth.bearer({authType: 'Token'}), auth.tokenKey()]}), {instanceOf: TypeError, message: /"tokenAuth"/});
	t.notThrows(() => auth.protect({authenticators: [auth.bearer({tokenType: 'access'}), auth.bearer({tokenType: 'refresh'})]}), 'the same scheme twice is one scheme');
});

test('a Token key is judged by the route\'s own Token-scheme authenticator, whatever its OpenAPI name', async t => {
	const {auth, app, router} = createFixture();
	const keys = auth.tokenKey();
	const renamed = {...keys, securitySchemeName: 'keys', authenticate: keys.authenticate.bind(keys), challenge: keys.challenge.bind(keys)};
	router.get('/renamed', auth.protect({authenticators: [renamed]}), ctx => {
		ctx.body = {who: (ctx.state.currentUser as {name: string}).name};
	});
	app.use(router.routes());
	const url = await listen(t, app);
	t.deepEqual(await (await fetch(`${url}/renamed`, {headers: {authorization: 'Token alice-key'}})).json(), {who: 'alice'});
});

// Every entry point validates its options when the route is declared.
const misspelt: Array<[string, () => unknown]> = [
	['auth.tokenRequired with a misspelt option', () => createFixture().auth.tokenRequired({permision: ['admin']} as never)],
	['the module-level tokenRequired with a string permission', () => tokenRequired({permissions: 'admin' as never})],
	['the module-level tokenRequired with an unknown mode', () => tokenRequired({mode: 'lenient' as never})],
	['the module-level tokenRequired with a reader that is not a function', () => tokenRequired({permissions: ['a'], readPermissions: 'user.scopes' as never})],
	['the module-level tokenRequired with a misspelt option', () => tokenRequired({allowApiKeys: true} as never)],
	['protect with a misspelt option', () => createFixture().auth.protect({permisions: ['a']} as never)],
	['defaults with a bad timeout', () => createFixture().auth.defaults({authenticators: [createFixture().basic], loaderTimeout: -1})],
	['bearer with a bad token source', () => createFixture().auth.bearer({tokenSources: {query: 'yes'}} as never)],
	['tokenRequired with a non-boolean allowApiKey', () => createFixture().auth.tokenRequired({allowApiKey: 'yes'} as never)],
];
for (const [title, declare] of misspelt) {
	test(`${title} is a TypeError at declaration`, t => {
		t.throws(declare, {instanceOf: TypeError});
	});
}
