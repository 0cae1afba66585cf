import test from 'ava';
import Koa, {type Context} from 'koa';
import {HttpAuth, StatelessAuthManager, authErrorHandler, getAuthorizationHeader, type Authorization} from '../source/index.js';
import {listen} from './helpers/http.js';

// The seed's custom X-API-Key scheme, written on HttpAuth in a few lines (as in the README).
type App = {name: string};
const apps = new Map<string, App>([['key1', {name: 'scheduler'}]]);

class ApiKeyAuth extends HttpAuth<App, Authorization & {key: string}> {
	readonly scheme = 'API-Key';
	protected override readonly credentialsHeader = 'x-api-key';

	getAuthorization(ctx: Context) {
		const key = ctx.get('X-API-Key');
		return key === '' ? undefined : {authType: 'apikey', key};
	}
}

async function start(t: Parameters<typeof listen>[0]) {
	const apiKeyAuth = new ApiKeyAuth({realm: 'Scheduler API', authenticate: async ({key}) => apps.get(key)});
	const auth = new StatelessAuthManager();
	const app = new Koa();
	app.use(authErrorHandler());
	app.use(auth.protect({authenticators: [apiKeyAuth]}));
	app.use(ctx => {
		ctx.body = {app: (ctx.state as {currentUser: App}).currentUser.name};
	});
	return listen(t, app);
}

test('a custom HttpAuth scheme accepts its credentials', async t => {
	const url = await start(t);
	t.deepEqual(await (await fetch(url, {headers: {'x-api-key': 'key1'}})).json(), {app: 'scheduler'});
});

test('a custom HttpAuth scheme refuses wrong and missing credentials alike, with its challenge', async t => {
	const url = await start(t);
	const wrong = await fetch(url, {headers: {'x-api-key': 'key2'}});
	const missing = await fetch(url);
	for (const response of [wrong, missing]) {
		t.is(response.status, 401);
		t.is(response.headers.get('www-authenticate'), 'API-Key realm="Scheduler API"');
		t.deepEqual(await response.json(), {error: 'Request error: Authentication required'});
	}
});

test('getAuthorizationHeader gives the lower-cased scheme and the credentials, or undefined', async t => {
	const app = new Koa();
	app.use(ctx => {
		ctx.body = {parsed: getAuthorizationHeader(ctx) ?? null};
	});
	const url = await listen(t, app);
	const read = async (value?: string) => (await (await fetch(url, value === undefined ? {} : {headers: {authorization: value}})).json() as {parsed: unknown}).parsed;
	t.deepEqual(await read('Basic dXNlcjpwYXNz'), {scheme: 'basic', credentials: 'dXNlcjpwYXNz'});
	t.deepEqual(await read('BEARER abc='), {scheme: 'bearer', credentials: 'abc='});
	t.is(await read(), null);
	t.is(await read('Bearer a b'), null);
});
