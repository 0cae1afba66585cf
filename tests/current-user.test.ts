import {setTimeout as delay} from 'node:timers/promises';
import test from 'ava';
import Koa from 'koa';
import Router from '@koa/router';
import {StatelessAuthManager, currentUser} from '../source/index.js';
import {listen} from './helpers/http.js';

type User = {id: number};

// A service far from the route, reading the user of the request in progress.
async function loadProfile(): Promise<{id: number | null}> {
	await delay(Math.random() * 5);
	await Promise.resolve();
	return {id: currentUser<User>()?.id ?? null};
}

async function start(t: Parameters<typeof listen>[0]) {
	const auth = new StatelessAuthManager<{userId: number}, User>({asyncContext: true});
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
	router.get('/public', async ctx => {
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

test('currentUser() is undefined outside a request, on public routes and for anonymous requests', async t => {
	const url = await start(t);
	t.is(currentUser(), undefined);
	t.deepEqual(await (await fetch(`${url}/public`)).json(), {id: null});
	t.deepEqual(await (await fetch(`${url}/maybe`)).json(), {id: null});
	t.deepEqual(await (await fetch(`${url}/maybe`, {headers: {authorization: 'Bearer u7'}})).json(), {id: 7});
	t.is(currentUser(), undefined, 'nothing leaks out of the requests');
});
