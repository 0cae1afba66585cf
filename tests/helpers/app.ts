import Koa from 'koa';
import Router from '@koa/router';
import {
	StatelessAuthManager, authErrorHandler, StatelessAuthError, type StatelessAuthOptions,
} from '../../source/index.js';

export type TestToken = {
	readonly token: string;
	readonly userId: number;
	readonly type: string;
	readonly expired?: boolean;
};

export type TestUser = {
	readonly id: number;
	readonly name: string;
	readonly isActive?: boolean;
};

export const users: readonly TestUser[] = [
	{id: 1, name: 'first_user'},
	{id: 2, name: 'second_user'},
	{id: 3, name: 'disabled_user', isActive: false},
];

export const tokens: readonly TestToken[] = [
	{token: 'first-access', userId: 1, type: 'access'},
	{token: 'first-refresh', userId: 1, type: 'refresh'},
	{token: 'second-access', userId: 2, type: 'access'},
	{token: 'disabled-access', userId: 3, type: 'access'},
	{token: 'orphan-access', userId: 99, type: 'access'},
	{token: 'padded+/==', userId: 2, type: 'access'},
];

export type LoaderCall = {token: string; tokenType: string; authType: string};

/**
A Koa app with one manager over in-memory records and a few routes; `calls` records every token
loader call and `handled` every route handler that ran.
*/
export function createTestApp(options: StatelessAuthOptions = {realm: 'api'}, {errorHandler = true} = {}) {
	const auth = new StatelessAuthManager<TestUser, TestToken>(options);
	const calls: LoaderCall[] = [];
	const handled: string[] = [];
	auth.tokenLoader((token, tokenType, authType) => {
		calls.push({token, tokenType, authType});
		if (token === 'explode') {
			throw new Error('database is down: password=hunter2');
		}

		if (token === 'revoked') {
			throw new StatelessAuthError('Token revoked', 401, 'token');
		}

		if (token === 'forbidden') {
			throw new StatelessAuthError('Token may not be used here', 403, 'scope');
		}

		if (token === 'rate-limited') {
			throw new StatelessAuthError('Slow down', 429, 'request');
		}

		const record = tokens.find(candidate => candidate.token === token && candidate.type === tokenType);
		return record === undefined ? undefined : {...record, tokenExpired: () => record.expired === true};
	});
	auth.userLoader(async record => users.find(user => user.id === record.userId));

	const app = new Koa();
	if (errorHandler) {
		app.use(authErrorHandler());
	}

	const router = new Router<object>();
	router.get('/secret', auth.tokenRequired(), ctx => {
		handled.push('/secret');
		ctx.body = {secret: 'Stateless auth is awesome', user: ctx.state.currentUser.name};
	});
	router.get('/refresh', auth.tokenRequired({tokenType: 'refresh'}), ctx => {
		handled.push('/refresh');
		ctx.body = {user: ctx.state.currentUser.name, type: ctx.state.currentToken.type};
	});
	router.get('/token-scheme', auth.tokenRequired('access', 'Token'), ctx => {
		handled.push('/token-scheme');
		ctx.body = {user: ctx.state.currentUser.name};
	});
	router.get('/public', ctx => {
		handled.push('/public');
		const state = ctx.state as Record<string, unknown>;
		ctx.body = {hasUser: state['currentUser'] !== undefined, hasToken: state['currentToken'] !== undefined};
	});
	app.use(router.routes());
	return {app, auth, calls, handled};
}
