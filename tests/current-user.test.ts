import {setTimeout as delay} from 'node:timers/promises';
import test from 'ava';
import Koa from 'koa';
import Router from '@koa/router';
import {StatelessAuthManager, currentUser} from '../source/index.js';
import {listen} from './helpers/http.js';

type User = {id: number};

// A service far from the route, reading the user of the request in progress.
async function loadProfile(): Promise<{id: number | null} | {error: string}> {
	await delay(Math.random() * 5);
	await Promise.resolve();
	try {
		return {id: currentUser<User>()?.id ?? null};
	} catch (error) {
		return {error: (error as Error).name};
	}
}

async function start(t: Parameters<typeof listen>[0]) {
	const auth = new StatelessAuthManager<User, {userId: number}>({asyncContext: true});
	auth.tokenLoader(async token => {
		await delay(Math.random() * 5);
		return {userId: Number(token.slice(1))};
	});
	auth.userLoader(record => ({id: record.userId}));
	const app = new Koa();
	const router = new Router<object>();
	router.get('/me', auth.tokenRequired(), async ctx => {
		ctx.body = await loadProfile();
	});
	router.get('/maybe', auth.tokenRequired({mode: 'optional'}), async ctx => {
		ctx.body = await loadProfile();
	});
	router.get('/opted-out', auth.protect({authenticators: null}), async ctx => {
		ctx.body = await loadProfile();
	});
	router.get('/public', async ctx => {
		ctx.body = await loadProfile();
	});
	// A second manager in the same process, without asyncContext: its routes must not quietly read undefined.
	const other = new StatelessAuthManager<User, {userId: number}>();
	other.tokenLoader(token => ({userId: Number(token.slice(1))}));
	other.userLoader(record => ({id: record.userId}));
	router.get('/other-manager', other.tokenRequired(), async ctx => {
		ctx.body = await loadProfile();
	});
	app.use(router.routes());
	return listen(t, app);
}

test('currentUser() gives each of 200 concurrent requests its own user, deep in its call chain', async t => {
	const url = await start(t);
	const ids = Array.from({length: 200}, (_, index) => index + 1);
	const answers = await Promise.all(ids.map(async id => (await fetch(`${url}/me`, {headers: {authorization: `Bearer u${id}`}})).json()));
	t.deepEqual(answers, ids.map(id => ({id})));
});

test('currentUser() is undefined for anonymous requests on optional and opted-out routes', async t => {
	const url = await start(t);
	t.deepEqual(await (await fetch(`${url}/maybe`)).json(), {id: null});
	t.deepEqual(await (await fetch(`${url}/opted-out`)).json(), {id: null});
	t.deepEqual(await (await fetch(`${url}/maybe`, {headers: {authorization: 'Bearer u7'}})).json(), {id: 7});
});

test('currentUser() throws outside the routes of a manager with asyncContext, even while one exists', async t => {
	const url = await start(t);
	t.throws(() => currentUser(), {message: /outside a route of a StatelessAuthManager created with `asyncContext: true`/});
	t.deepEqual(await (await fetch(`${url}/public`)).json(), {error: 'ConfigurationError'});
	t.deepEqual(await (await fetch(`${url}/other-manager`, {headers: {authorization: 'Bearer u3'}})).json(), {error: 'ConfigurationError'});
	await fetch(`${url}/me`, {headers: {authorization: 'Bearer u5'}});
	t.throws(() => currentUser(), {message: /asyncContext: true/}, 'nothing leaks out of the requests');
});
