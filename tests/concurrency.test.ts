// 200 concurrent requests of different users, with random loader delays, across routes of two
// managers and a Basic authenticator with different realms, some of whose loaders throw one shared
// StatelessAuthError instance: no answer carries another request's user or another route's challenge.
import {setTimeout as delay} from 'node:timers/promises';
import test from 'ava';
import Koa, {type Context} from 'koa';
import Router from '@koa/router';
import {HttpBasicAuth, StatelessAuthError, StatelessAuthManager, authErrorHandler} from '../source/index.js';
import {listen, rawRequest} from './helpers/http.js';

type TokenRecord = {readonly userId: number; readonly realm: string};
type User = {readonly id: number; readonly name: string; readonly realm: string};

const jitter = () => delay(Math.floor(Math.random() * 11));

/** The id in a credential such as `good-17`, and what kind of credential it is. */
function parse(credential: string): {kind: string; id: number} {
	const [kind = '', id = ''] = credential.split('-');
	return {kind, id: Number(id)};
}

type Route = {
	readonly path: string;
	readonly credentials: (credential: string) => Array<[string, string]>;
	/** The one WWW-Authenticate line of a refusal by a loader. */
	readonly challenge: string;
	/** The answer to an unknown principal. */
	readonly unknownMessage: string;
	readonly realm: string;
};

const basicHeader = (user: string) => `Basic ${Buffer.from(`${user}:pw`).toString('base64')}`;

const routes: readonly Route[] = [
	{path: '/alpha', credentials: c => [['Authorization', `Bearer ${c}`]], challenge: 'Bearer realm="alpha", error="invalid_token"', unknownMessage: 'Token error: Invalid token', realm: 'alpha'},
	{path: '/beta', credentials: c => [['Authorization', `Bearer ${c}`]], challenge: 'Bearer realm="beta", error="invalid_token"', unknownMessage: 'Token error: Invalid token', realm: 'beta'},
	{path: '/gamma', credentials: c => [['Authorization', basicHeader(c)]], challenge: 'Basic realm="gamma", charset="UTF-8"', unknownMessage: 'Request error: Authentication required', realm: 'gamma'},
	{path: '/alpha-key', credentials: c => [['Authorization', `Token ${c}`]], challenge: 'Token realm="alpha", error="invalid_token"', unknownMessage: 'Token error: Invalid token', realm: 'alpha'},
];

/** Two managers and a Basic authenticator, whose loaders throw `shared` for `shared-N` credentials. */
function start(shared: StatelessAuthError, withHandler: boolean) {
	const events: Array<{manager: string; event: string; path: string; credential: string; id?: number}> = [];
	const managers = ['alpha', 'beta'].map(realm => {
		const auth = new StatelessAuthManager<User, TokenRecord>({realm});
		auth.tokenLoader(async token => {
			await jitter();
			const {kind, id} = parse(token);
			if (kind === 'shared') {
				throw shared;
			}

			return kind === 'good' ? {userId: id, realm} : null;
		});
		auth.userLoader(async record => {
			await jitter();
			return {id: record.userId, name: `user-${record.userId}`, realm: record.realm};
		});
		auth.apiKeyLoader(async key => {
			await jitter();
			const {kind, id} = parse(key);
			if (kind === 'shared') {
				throw shared;
			}

			return kind === 'good' && {id, name: `user-${id}`, realm};
		});
		auth.on('authorized', (ctx, principal) => {
			events.push({manager: realm, event: 'authorized', path: ctx.path, credential: ctx.get('authorization'), id: (principal as User).id});
		});
		auth.on('unauthorized', ctx => {
			events.push({manager: realm, event: 'unauthorized', path: ctx.path, credential: ctx.get('authorization')});
		});
		return auth;
	});
	const [alpha, beta] = managers as [StatelessAuthManager<User, TokenRecord>, StatelessAuthManager<User, TokenRecord>];
	const basic = new HttpBasicAuth<User>({
		realm: 'gamma',
		async authenticate({username}) {
			await jitter();
			const {kind, id} = parse(username);
			if (kind === 'shared') {
				throw shared;
			}

			return kind === 'good' ? {id, name: `user-${id}`, realm: 'gamma'} : undefined;
		},
	});

	const app = new Koa();
	const errors: unknown[] = [];
	app.on('error', (error: unknown) => errors.push(error));
	if (withHandler) {
		app.use(authErrorHandler());
	}

	const router = new Router<object>();
	const handler = async (ctx: Context) => {
		await jitter();
		const user = (ctx.state as {currentUser: User}).currentUser;
		ctx.set('X-User', String(user.id));
		ctx.body = {route: ctx.path, id: user.id, name: user.name, realm: user.realm};
	};

	router.get('/alpha', alpha.tokenRequired(), handler);
	router.get('/beta', beta.tokenRequired(), handler);
	router.get('/gamma', alpha.protect({authenticators: [basic]}), handler);
	router.get('/alpha-key', alpha.tokenRequired({allowApiKey: true}), handler);
	app.use(router.routes());
	return {app, errors, events};
}

const kinds = ['good', 'good', 'shared', 'good', 'unknown'] as const;

const concurrentRequests = test.macro({
	async exec(t, withHandler: boolean) {
		const shared = new StatelessAuthError('Token revoked', 401, 'token', {headers: {'X-Revoked': 'yes'}});
		const {app, errors, events} = start(shared, withHandler);
		const url = await listen(t, app);
		const plan = Array.from({length: 200}, (_, index) => ({
			index,
			route: routes[index % routes.length]!,
			kind: kinds[Math.floor(index / routes.length) % kinds.length]!,
		}));
		const responses = await Promise.all(plan.map(async ({index, route, kind}) => rawRequest(url, route.path, route.credentials(`${kind}-${index}`))));
		const body = (message: string) => (withHandler ? JSON.stringify({error: message}) : message);

		let refused = 0;
		for (const [position, {index, route, kind}] of plan.entries()) {
			const response = responses[position]!;
			const label = `request ${index}: ${kind} on ${route.path}`;
			switch (kind) {
				case 'good': {
					t.is(response.status, 200, label);
					t.is(response.body, JSON.stringify({route: route.path, id: index, name: `user-${index}`, realm: route.realm}), label);
					t.deepEqual(response.headerLines('x-user'), [String(index)], label);
					t.deepEqual(response.headerLines('www-authenticate'), [], label);
					t.deepEqual(response.headerLines('x-revoked'), [], label);
					break;
				}

				case 'shared': {
					refused++;
					t.is(response.status, 401, label);
					t.is(response.body, body('Token error: Token revoked'), label);
					t.deepEqual(response.headerLines('www-authenticate'), [route.challenge], label);
					t.deepEqual(response.headerLines('x-revoked'), ['yes'], label);
					t.deepEqual(response.headerLines('x-user'), [], label);
					break;
				}

				case 'unknown': {
					refused++;
					t.is(response.status, 401, label);
					t.is(response.body, body(route.unknownMessage), label);
					t.deepEqual(response.headerLines('www-authenticate'), [route.challenge], label);
					t.deepEqual(response.headerLines('x-revoked'), [], label);
					t.deepEqual(response.headerLines('x-user'), [], label);
					break;
				}
			}
		}

		// Every event names its own request: the right manager, and the principal of its own credential.
		t.is(events.length, 200);
		for (const event of events) {
			const route = routes.find(candidate => candidate.path === event.path)!;
			t.is(event.manager, route.path === '/beta' ? 'beta' : 'alpha', event.path);
			if (event.event === 'authorized') {
				const credential = route.path === '/gamma'
					? Buffer.from(event.credential.slice('Basic '.length), 'base64').toString().split(':')[0]!
					: event.credential.split(' ')[1]!;
				t.is(event.id, parse(credential).id, `${event.path} ${credential}`);
			}
		}

		t.is(events.filter(event => event.event === 'unauthorized').length, refused);
		// Koa's own handler emits every refusal; authErrorHandler only 5xx, and there are none.
		t.is(errors.length, withHandler ? 0 : refused);
		t.false(errors.includes(shared), 'the shared instance is never handed to Koa');

		// The shared instance is as it was made.
		t.deepEqual(shared.headers, {'X-Revoked': 'yes'});
		t.true(Object.isFrozen(shared.headers));
		t.is(shared.status, 401);
		t.is(shared.fullMsg, 'Token error: Token revoked');
		t.false('cause' in shared);
	},
	title: (_provided, withHandler: boolean) => `200 concurrent requests across routes of different realms never carry another request's user or another route's challenge ${withHandler ? 'with authErrorHandler' : 'under Koa\'s default error handler'}`,
});

test(concurrentRequests, true);
test(concurrentRequests, false);
