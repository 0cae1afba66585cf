import test, {type ExecutionContext} from 'ava';
import Koa from 'koa';
import Router from '@koa/router';
import {
	HeaderApiKeyAuthenticator, StatelessAuthError, StatelessAuthManager, TokenService, authErrorHandler,
	type TokenRecord, type TokenServiceOptions, type TokenStore,
} from '../source/index.js';
import {MemoryTokenStore} from '../source/stores/memory.js';
import {listen} from './helpers/http.js';

type User = {readonly id: string; readonly name: string};
const users = new Map<string, User>([['u1', {id: 'u1', name: 'alice'}], ['u2', {id: 'u2', name: 'bob'}]]);

const methods = ['create', 'find', 'touch', 'rotate', 'revokeFamily', 'revokeUser', 'epoch', 'list', 'prune'] as const;
type Method = typeof methods[number];

/** A memory store that counts calls per method, and whose methods a test may replace at any time. */
function countingStore() {
	const inner = new MemoryTokenStore();
	const calls: Method[] = [];
	const overrides: Partial<Record<Method, (...args: unknown[]) => Promise<unknown>>> = {};
	const store = Object.fromEntries(methods.map(method => [method, async (...args: unknown[]): Promise<unknown> => {
		calls.push(method);
		const own = overrides[method] ?? (inner[method].bind(inner) as (...given: unknown[]) => Promise<unknown>);
		return own(...args);
	}])) as unknown as TokenStore;
	return {store, inner, calls, overrides};
}

const start = 1_700_000_000_000;

/**
An app over real HTTP: a manager that takes its tokens from a service, routes for access tokens,
refresh tokens, `Token` keys and header keys, and authErrorHandler answering the reason.
*/
async function serve(t: ExecutionContext, options: Partial<TokenServiceOptions> = {}) {
	const counting = countingStore();
	const clock = {now: start};
	const service = new TokenService({store: counting.store, prefix: 'myapp', now: () => clock.now, ...options});
	const auth = new StatelessAuthManager<User, TokenRecord>({realm: 'api'}).useTokens(service);
	auth.userLoader(record => users.get(record.userId));
	const machines = new HeaderApiKeyAuthenticator({header: 'X-Api-Key', keys: service});
	const errors: unknown[] = [];
	const app = new Koa();
	app.on('error', (error: unknown) => errors.push(error));
	app.use(authErrorHandler({format: error => ({reason: error.reason, error: error.fullMsg})}));
	const router = new Router<object>();
	router.get('/me', auth.tokenRequired(), ctx => {
		ctx.body = {user: ctx.state.currentUser, token: ctx.state.currentToken};
	});
	router.post('/token', auth.tokenRequired({tokenType: 'refresh'}), ctx => {
		ctx.body = {user: ctx.state.currentUser, type: ctx.state.currentToken.type};
	});
	router.get('/keys', auth.tokenRequired({allowApiKey: true}), ctx => {
		ctx.body = {user: ctx.state.currentUser};
	});
	router.get('/m2m', auth.protect({authenticators: [machines]}), ctx => {
		ctx.body = {principal: ctx.state.currentUser};
	});
	app.use(router.routes());
	const url = await listen(t, app);
	const request = async (path: string, headers: Record<string, string> = {}, method = 'GET') => {
		const response = await fetch(`${url}${path}`, {method, headers});
		const text = await response.text();
		return {status: response.status, headers: response.headers, text, body: JSON.parse(text) as Record<string, unknown>};
	};

	const bearer = (token: string) => ({authorization: `Bearer ${token}`});
	return {...counting, service, clock, errors, request, bearer};
}

const flipLast = (token: string) => token.slice(0, -1) + (token.endsWith('0') ? '1' : '0');

test('a valid access token is a 200 with its user, and ctx.state.currentToken is its record, without the token', async t => {
	const {service, request, bearer} = await serve(t);
	const {access} = await service.issuePair('u1', {scopes: ['read']});
	const response = await request('/me', bearer(access.token));
	t.is(response.status, 200);
	t.deepEqual(response.body['user'], {id: 'u1', name: 'alice'});
	t.like(response.body['token'], {id: access.record.id, digest: access.record.digest, type: 'access', userId: 'u1', familyId: access.record.familyId, scopes: ['read']});
	t.false(response.text.includes(access.token), 'the record carries no token text');
	t.false(response.text.includes(access.token.slice(-49, -6)), 'nor its random part');
});

const refusedOffline = test.macro({
	async exec(t, make: (token: string) => string) {
		const {service, request, bearer, calls} = await serve(t);
		const {access} = await service.issuePair('u1');
		calls.length = 0;
		const response = await request('/me', bearer(make(access.token)));
		t.is(response.status, 401);
		t.is(response.body['reason'], 'invalid_token');
		t.is(response.headers.get('www-authenticate'), 'Bearer realm="api", error="invalid_token"');
		t.deepEqual(calls, [], 'the store was not asked');
	},
	title: provided => `${provided ?? ''} is a 401 invalid_token, and the store is not asked`,
});

test('a made-up token', refusedOffline, () => 'not-a-token');
test('a token with a wrong checksum', refusedOffline, flipLast);
test('a truncated token', refusedOffline, token => token.slice(0, -3));
test('a token of another prefix', refusedOffline, token => token.replace('myapp_at_', 'other_at_'));

test('an expired access token is a 401 with the reason expired_token', async t => {
	const {service, request, bearer, clock} = await serve(t, {accessTtl: 60});
	const {access} = await service.issuePair('u1');
	t.is((await request('/me', bearer(access.token))).status, 200);
	clock.now = access.expiresAt;
	const response = await request('/me', bearer(access.token));
	t.is(response.status, 401);
	t.deepEqual(response.body, {reason: 'expired_token', error: 'Token error: access token expired'});
	t.is(response.headers.get('www-authenticate'), 'Bearer realm="api", error="invalid_token"');
});

test('an access token past its idle timeout is a 401 expired_token', async t => {
	const {service, request, bearer, clock} = await serve(t, {idleTimeout: 300});
	const {access} = await service.issuePair('u1');
	clock.now += 300_000;
	const response = await request('/me', bearer(access.token));
	t.is(response.status, 401);
	t.is(response.body['reason'], 'expired_token');
});

test('a refresh token on an access route is a 401 invalid_token, and an access token on a refresh route too', async t => {
	const {service, request, bearer} = await serve(t);
	const {access, refresh} = await service.issuePair('u1');
	const onAccess = await request('/me', bearer(refresh.token));
	t.is(onAccess.status, 401);
	t.is(onAccess.body['reason'], 'invalid_token');
	const onRefresh = await request('/token', bearer(access.token), 'POST');
	t.is(onRefresh.status, 401);
	t.is(onRefresh.body['reason'], 'invalid_token');
});

test('tokenRequired({tokenType: \'refresh\'}) accepts the refresh token', async t => {
	const {service, request, bearer} = await serve(t);
	const {refresh} = await service.issuePair('u2');
	const response = await request('/token', bearer(refresh.token), 'POST');
	t.is(response.status, 200);
	t.deepEqual(response.body, {user: {id: 'u2', name: 'bob'}, type: 'refresh'});
});

test('a revoked session is a 401 invalid_token for both of its tokens', async t => {
	const {service, request, bearer} = await serve(t);
	const pair = await service.issuePair('u1');
	const other = await service.issuePair('u1');
	t.true(await service.revoke(pair.refresh.token));
	for (const [path, token, method] of [['/me', pair.access.token, 'GET'], ['/token', pair.refresh.token, 'POST']] as const) {
		const response = await request(path, bearer(token), method);
		t.is(response.status, 401, path);
		t.is(response.body['reason'], 'invalid_token');
	}

	t.is((await request('/me', bearer(other.access.token))).status, 200, 'the other session lives');
});

test('after a rotation the old access token is a 401 and the new one a 200', async t => {
	const {service, request, bearer} = await serve(t);
	const old = await service.issuePair('u1');
	const fresh = await service.refresh(old.refresh.token);
	t.is((await request('/me', bearer(old.access.token))).status, 401);
	t.is((await request('/me', bearer(fresh.access.token))).status, 200);
});

test('revokeAll makes every token and key of the user a 401, and leaves other users alone', async t => {
	const {service, request, bearer} = await serve(t);
	const pairs = await Promise.all([service.issuePair('u1'), service.issuePair('u1'), service.issuePair('u1')]);
	const key = await service.issue('u1', 'api_key', {name: 'billing'});
	const bob = await service.issuePair('u2');
	await service.revokeAll('u1');
	for (const pair of pairs) {
		t.is((await request('/me', bearer(pair.access.token))).status, 401);
		t.is((await request('/token', bearer(pair.refresh.token), 'POST')).status, 401);
	}

	t.is((await request('/keys', {authorization: `Token ${key.token}`})).status, 401);
	t.is((await request('/m2m', {'x-api-key': key.token})).status, 401);
	t.is((await request('/me', bearer(bob.access.token))).status, 200);
	const fresh = await service.issuePair('u1');
	t.is((await request('/me', bearer(fresh.access.token))).status, 200, 'a login after revokeAll works');
});

test('an API key works as "Authorization: Token <key>" on a route with allowApiKey', async t => {
	const {service, request, bearer} = await serve(t);
	const key = await service.issue('u1', 'api_key', {name: 'billing'});
	const response = await request('/keys', {authorization: `Token ${key.token}`});
	t.is(response.status, 200);
	t.deepEqual(response.body, {user: {id: 'u1', name: 'alice'}});

	const asBearer = await request('/me', bearer(key.token));
	t.is(asBearer.status, 401, 'an API key is not a bearer access token');
	const onBearerRoute = await request('/me', {authorization: `Token ${key.token}`});
	t.is(onBearerRoute.status, 403, 'nor a Token key where the route takes none');
	t.is(onBearerRoute.body['reason'], 'api_key_not_allowed');
	const {access} = await service.issuePair('u1');
	const accessAsKey = await request('/keys', {authorization: `Token ${access.token}`});
	t.is(accessAsKey.status, 401, 'an access token is not an API key');
	t.is((await request('/keys', bearer(access.token))).status, 200, 'the route takes bearer tokens too');
	const wrong = await request('/keys', {authorization: `Token ${flipLast(key.token)}`});
	t.is(wrong.status, 401);
	t.is(wrong.body['reason'], 'invalid_token');
});

test('an API key of the service works in a header API key authenticator, as {appName, userId}', async t => {
	const {service, request, calls} = await serve(t);
	const key = await service.issue('u2', 'api_key', {name: 'billing'});
	const response = await request('/m2m', {'x-api-key': key.token});
	t.is(response.status, 200);
	t.deepEqual(response.body, {principal: {appName: 'billing', userId: 'u2'}});

	calls.length = 0;
	const wrong = await request('/m2m', {'x-api-key': flipLast(key.token)});
	t.is(wrong.status, 401);
	t.is(wrong.body['reason'], 'invalid_api_key');
	t.is(wrong.headers.get('www-authenticate'), 'ApiKey header="X-Api-Key"');
	t.deepEqual(calls, [], 'a key with a wrong checksum asks no store');
	const {access} = await service.issuePair('u2');
	t.is((await request('/m2m', {'x-api-key': access.token})).status, 401, 'an access token is not an API key');
	t.true(await service.revoke(key.token));
	t.is((await request('/m2m', {'x-api-key': key.token})).status, 401, 'a revoked key');
});

test('an API key issued without a name is the "default" application', async t => {
	const {service, request} = await serve(t);
	const key = await service.issue('u1', 'api_key');
	t.deepEqual((await request('/m2m', {'x-api-key': key.token})).body, {principal: {appName: 'default', userId: 'u1'}});
});

test('a token whose user is gone is a 401 invalid_token', async t => {
	const {service, request, bearer} = await serve(t);
	const {access} = await service.issuePair('u-deleted');
	const response = await request('/me', bearer(access.token));
	t.is(response.status, 401);
	t.is(response.body['reason'], 'invalid_token');
});

// --- A failing store

const storeFailure = new Error('connection refused: password=hunter2');

function causes(error: unknown): unknown[] {
	const chain: unknown[] = [];
	let current: unknown = error;
	while (current instanceof Error && chain.length < 10) {
		chain.push(current);
		current = current.cause;
	}

	return chain;
}

const unavailable = test.macro({
	async exec(t, send: (token: string, key: string) => [string, Record<string, string>, string?]) {
		const {service, request, overrides, errors} = await serve(t);
		const {access} = await service.issuePair('u1');
		const key = await service.issue('u1', 'api_key', {name: 'billing'});
		overrides.find = async () => {
			throw storeFailure;
		};

		const [path, headers, method] = send(access.token, key.token);
		const response = await request(path, headers, method);
		t.is(response.status, 503, 'never a 401 that would log the user out');
		t.is(response.headers.get('retry-after'), '1');
		t.is(response.headers.get('www-authenticate'), null);
		t.deepEqual(response.body, {reason: 'store_unavailable', error: 'Server error: Service unavailable'});
		t.false(response.text.includes('hunter2'));
		t.false(response.text.includes('connection refused'));
		t.is(errors.length, 1, 'the app hears of it once');
		const [reported] = errors;
		t.true(reported instanceof StatelessAuthError);
		t.is((reported as StatelessAuthError).status, 503);
		t.true(causes(reported).includes(storeFailure), 'the store\'s error is in its causes');
	},
	title: provided => `a store that fails answers ${provided ?? ''} with a generic 503 and Retry-After, reported on app.on('error')`,
});

test('a bearer access token', unavailable, access => ['/me', {authorization: `Bearer ${access}`}]);
test('a Token key', unavailable, (_access, key) => ['/keys', {authorization: `Token ${key}`}]);
test('a header API key', unavailable, (_access, key) => ['/m2m', {'x-api-key': key}]);

// --- A corrupt store

const corrupt = test.macro({
	async exec(t, send: (token: string, key: string) => [string, Record<string, string>]) {
		const {service, request, overrides, inner, errors} = await serve(t);
		const {access} = await service.issuePair('u1');
		const key = await service.issue('u1', 'api_key', {name: 'billing'});
		// What an unknown token or key of the right format answers on the same route.
		const strangers = new TokenService({store: new MemoryTokenStore(), prefix: 'myapp'});
		const [path, unknownHeaders] = send((await strangers.issuePair('u1')).access.token, (await strangers.issue('u1', 'api_key')).token);
		const unknown = await request(path, unknownHeaders);
		t.is(unknown.status, 401);
		t.deepEqual(errors, []);

		overrides.find = async (digest: unknown) => {
			const found = await inner.find(digest as string);
			return found === undefined ? undefined : {...found, record: {...found.record, expiresAt: 'never', scopes: null}};
		};

		const [, headers] = send(access.token, key.token);
		const response = await request(path, headers);
		t.is(response.status, 401);
		t.is(errors.length, 1, 'the app hears of the corrupt record');
		t.true(errors[0] instanceof TypeError, String(errors[0]));
		t.regex((errors[0] as Error).message, /not a token record/);
		t.false(response.text.includes('not a token record'), 'the client hears only the refusal');
		// "Refused as unknown": the very answer an unknown token gets there.
		t.deepEqual(response.body, unknown.body);
		t.is(response.headers.get('www-authenticate'), unknown.headers.get('www-authenticate'));
	},
	title: provided => `a corrupt record for ${provided ?? ''} is refused like an unknown one, and the manager reports the TypeError on app.on('error')`,
});

test('a bearer access token', corrupt, access => ['/me', {authorization: `Bearer ${access}`}]);
test('a Token key', corrupt, (_access, key) => ['/keys', {authorization: `Token ${key}`}]);
test('a header API key', corrupt, (_access, key) => ['/m2m', {'x-api-key': key}]);

test('useTokens takes only a TokenService', t => {
	const auth = new StatelessAuthManager<User, TokenRecord>();
	t.throws(() => auth.useTokens({verify: async () => ({valid: false, reason: 'unknown'})} as unknown as TokenService), {instanceOf: TypeError, message: /TokenService/});
	t.throws(() => new HeaderApiKeyAuthenticator({keys: {} as unknown as TokenService}), {instanceOf: TypeError, message: /`keys`/});
});
