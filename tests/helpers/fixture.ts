import Koa from 'koa';
import Router from '@koa/router';
import {
	HeaderApiKeyAuthenticator, HttpBasicAuth, StatelessAuthManager, authErrorHandler, type StatelessAuthOptions,
} from '../../source/index.js';

export type Token = {readonly userId: number; readonly scopes: readonly string[]};
export type User = {readonly id: number; readonly name: string; readonly permissions: readonly string[]; readonly isActive?: boolean};

export const people: Record<number, User> = {
	1: {id: 1, name: 'alice', permissions: ['view', 'admin']},
	2: {id: 2, name: 'bob', permissions: ['view']},
	3: {id: 3, name: 'carol', permissions: ['reports']},
};

export const bearerTokens: Record<string, Token> = {
	'alice-token': {userId: 1, scopes: ['read']},
	'bob-token': {userId: 2, scopes: ['read', 'write']},
	'carol-token': {userId: 3, scopes: []},
};

export const apiKeys: Record<string, number> = {'alice-key': 1, 'bob-key': 2};

export const basicPasswords: Record<string, string> = {alice: 'alice-password', bob: 'bob-password'};

export const basicHeader = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

/** A manager over the people above, with bearer tokens, `Token` keys, Basic and a header API key authenticator. */
export function createFixture(options: StatelessAuthOptions = {realm: 'api'}) {
	const auth = new StatelessAuthManager<User, Token>(options);
	auth.tokenLoader(token => bearerTokens[token]);
	auth.userLoader(record => people[record.userId]);
	auth.apiKeyLoader(async key => {
		const id = apiKeys[key];
		return id === undefined ? undefined : people[id];
	});
	const basic = new HttpBasicAuth<User>({
		realm: 'basic area',
		authenticate: ({username, password}) => (basicPasswords[username] === password ? Object.values(people).find(person => person.name === username) : undefined),
	});
	const machines = new HeaderApiKeyAuthenticator({header: 'X-MyApp-ApiKey', realm: 'machines'});
	machines.registerKey('billing-key-1', 'billing');
	machines.registerKey('billing-key-2', 'billing');
	machines.registerKey('reports-key', 'reports');
	const app = new Koa();
	app.use(authErrorHandler());
	const router = new Router<object>();
	const handled: string[] = [];
	return {auth, basic, machines, app, router, handled};
}

/** Answer with who the request is, through a route that records that it ran. */
export function whoami(handled: string[]) {
	return (ctx: Koa.ParameterizedContext<{currentUser?: {name?: string; appName?: string} | undefined; currentToken?: unknown}>) => {
		handled.push(ctx.path);
		const user = ctx.state.currentUser;
		ctx.body = {who: user?.name ?? user?.appName ?? null};
	};
}

export async function finish(app: Koa, router: Router<object>): Promise<Koa> {
	app.use(router.routes());
	return app;
}
