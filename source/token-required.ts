import type {DefaultContext, Middleware, Next, ParameterizedContext} from 'koa';
import {lookupManager} from './app-registry.js';
import {ConfigurationError} from './errors.js';
import type {AuthMiddleware, AuthState} from './guard.js';
import {normaliseRouteOptions, type TokenRequiredOptions} from './manager.js';

/**
`tokenRequired` without a manager at hand: the middleware finds the manager registered on the
application with `auth.initApp(app)` through `ctx.app`. Name the types it loads in the type
arguments, as the manager knows them: `tokenRequired<TokenRecord, User>()`.

An application with no manager registered answers 500 and emits an error saying how to fix it.

@example
```
auth.initApp(app);
router.get('/whoami', tokenRequired<TokenRecord, User>(), ctx => {
	ctx.body = {username: ctx.state.currentUser.username};
});
```
*/
export function tokenRequired<Token = unknown, User = unknown, StateKey extends string = 'currentUser'>(
	options?: TokenRequiredOptions,
): AuthMiddleware<User, Token, StateKey>;
export function tokenRequired<Token = unknown, User = unknown, StateKey extends string = 'currentUser'>(
	tokenType: string,
	authType?: string,
): AuthMiddleware<User, Token, StateKey>;
export function tokenRequired<Token = unknown, User = unknown, StateKey extends string = 'currentUser'>(
	first?: TokenRequiredOptions | string,
	authType?: string,
): AuthMiddleware<User, Token, StateKey> {
	// Validated now, so that a bad option fails at start-up rather than at the first request.
	const options = normaliseRouteOptions(first, authType);
	const built = new WeakMap<object, Middleware<AuthState<User, Token, StateKey>, DefaultContext, unknown>>();

	return async function tokenRequired(ctx: ParameterizedContext<AuthState<User, Token, StateKey>>, next: Next) {
		const manager = lookupManager(ctx.app);
		if (manager === undefined) {
			throw new ConfigurationError('tokenRequired() ran in an app with no StatelessAuthManager; call auth.initApp(app) at start-up, or use auth.tokenRequired().');
		}

		let middleware = built.get(manager);
		if (middleware === undefined) {
			middleware = manager.tokenRequired(options) as Middleware<AuthState<User, Token, StateKey>, DefaultContext, unknown>;
			built.set(manager, middleware);
		}

		await middleware(ctx, next);
	};
}
