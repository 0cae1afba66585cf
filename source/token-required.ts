import type {DefaultContext, Middleware, Next, ParameterizedContext} from 'koa';
import {lookupManager} from './app-registry.js';
import type {AuthMode} from './authenticator.js';
import {ConfigurationError} from './errors.js';
import type {AuthMiddleware, AuthState} from './guard.js';
import type {TokenRequiredMiddleware, TokenRequiredOptions} from './options.js';
import {normaliseTokenRequired} from './route-options.js';

type RouteOptionsOf<User, Token> = Omit<TokenRequiredOptions<User, Token>, 'mode' | 'allowApiKey'>;

/**
`tokenRequired` without a manager at hand: the middleware finds the manager registered on the
application with `auth.initApp(app)` through `ctx.app`. Name the types it loads in the type
arguments, as the manager knows them: `tokenRequired<User, TokenRecord>()`. Its options are
validated when the route is declared, and typed, exactly as `auth.tokenRequired`'s.

An application with no manager registered answers 500 and emits an error saying how to fix it.

@example
```
auth.initApp(app);
router.get('/whoami', tokenRequired<User, TokenRecord>(), ctx => {
	ctx.body = {username: ctx.state.currentUser.username};
});
```
*/
// One signature per mode and key setting rather than inferred type parameters: with the types
// named (`tokenRequired<User, Token>(...)`), TypeScript infers no other type argument, so the
// options' literal `mode` and `allowApiKey` pick the signature instead.
export function tokenRequired<User = unknown, Token = unknown, StateKey extends string = 'currentUser'>(
	options: RouteOptionsOf<User, Token> & {readonly mode: 'optional'; readonly allowApiKey: true},
): TokenRequiredMiddleware<User, Token, StateKey, 'optional', true>;
export function tokenRequired<User = unknown, Token = unknown, StateKey extends string = 'currentUser'>(
	options: RouteOptionsOf<User, Token> & {readonly mode: 'optional'; readonly allowApiKey?: false},
): TokenRequiredMiddleware<User, Token, StateKey, 'optional', false>;
export function tokenRequired<User = unknown, Token = unknown, StateKey extends string = 'currentUser'>(
	options: RouteOptionsOf<User, Token> & {readonly mode?: 'required'; readonly allowApiKey: true},
): TokenRequiredMiddleware<User, Token, StateKey, 'required', true>;
export function tokenRequired<User = unknown, Token = unknown, StateKey extends string = 'currentUser'>(
	options?: RouteOptionsOf<User, Token> & {readonly mode?: 'required'; readonly allowApiKey?: false},
): TokenRequiredMiddleware<User, Token, StateKey, 'required', false>;
export function tokenRequired<User = unknown, Token = unknown, StateKey extends string = 'currentUser'>(
	options: TokenRequiredOptions<User, Token>,
): TokenRequiredMiddleware<User, Token, StateKey, AuthMode, boolean>;
export function tokenRequired<User = unknown, Token = unknown, StateKey extends string = 'currentUser'>(
	tokenType: string,
	authType?: string,
): AuthMiddleware<User, Token, StateKey>;
export function tokenRequired(
	first?: TokenRequiredOptions | string,
	authType?: string,
): Middleware<never, DefaultContext, unknown> {
	// Validated now, so that a bad option fails at start-up rather than at the first request.
	const options = normaliseTokenRequired(first, authType);
	type State = AuthState<unknown, unknown>;
	const built = new WeakMap<object, Middleware<State, DefaultContext, unknown>>();

	return async function tokenRequired(ctx: ParameterizedContext<State>, next: Next) {
		const manager = lookupManager(ctx.app);
		if (manager === undefined) {
			throw new ConfigurationError('tokenRequired() ran in an app with no StatelessAuthManager; call auth.initApp(app) at start-up, or use auth.tokenRequired().');
		}

		let middleware = built.get(manager);
		if (middleware === undefined) {
			middleware = manager.tokenRequired(options) as Middleware<State, DefaultContext, unknown>;
			built.set(manager, middleware);
		}

		await middleware(ctx, next);
	};
}
