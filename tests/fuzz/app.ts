import Koa from 'koa';
import Router from '@koa/router';
import {HeaderApiKeyAuthenticator, HttpBasicAuth, StatelessAuthManager, authErrorHandler} from '../../source/index.js';
import {
	basicAccounts, basicRealm, bearerRealm, bearerTokens, machineHeader, machineKeys, machineRealm, routes, tokenKeys, users,
} from './world.js';

type TokenRecord = {readonly userId: number};
type Principal = {readonly name?: string; readonly appName?: string};

/**
The app under test: one route per kind, each answering `{who}` (the user's name, the
application's name, or null when anonymous). Every `error` the app emits is collected in `errors`:
with these loaders (which never throw) there must be none.
*/
export function createFuzzApp() {
	// No type arguments: the records are cast where they are read, so that this file does not depend
	// on the order of the manager's type parameters.
	const auth = new StatelessAuthManager({realm: bearerRealm});
	auth.tokenLoader(token => {
		const userId = bearerTokens.get(token);
		return userId === undefined ? undefined : {userId};
	});
	auth.userLoader(record => users.get((record as TokenRecord).userId));
	auth.apiKeyLoader(key => {
		const userId = tokenKeys.get(key);
		return userId === undefined ? undefined : users.get(userId);
	});
	const basic = new HttpBasicAuth<{name: string}>({
		realm: basicRealm,
		authenticate: ({username, password}) => (basicAccounts.has(username) && basicAccounts.get(username) === password ? {name: username} : undefined),
	});
	const machines = new HeaderApiKeyAuthenticator({header: machineHeader, realm: machineRealm});
	for (const [key, appName] of machineKeys) {
		machines.registerKey(key, appName);
	}

	const app = new Koa();
	const errors: unknown[] = [];
	app.on('error', (error: unknown) => errors.push(error));
	app.use(authErrorHandler());
	const router = new Router<object>();
	const who = (ctx: Koa.ParameterizedContext<{currentUser?: Principal | undefined}>) => {
		const principal = ctx.state.currentUser;
		ctx.body = {who: principal?.name ?? principal?.appName ?? null};
	};

	router.get(routes.bearer, auth.tokenRequired(), who);
	router.get(routes.optional, auth.tokenRequired({mode: 'optional'}), who);
	router.get(routes.keys, auth.tokenRequired({allowApiKey: true}), who);
	router.get(routes.basic, auth.protect({authenticators: [basic]}), who);
	router.get(routes.headerKey, auth.protect({authenticators: [machines]}), who);
	app.use(router.routes());
	return {app, errors};
}
