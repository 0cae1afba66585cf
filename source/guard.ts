import type {Context, DefaultContext, Middleware, Next, ParameterizedContext} from 'koa';
import type {Authenticator} from './authenticator.js';
import type {BearerErrorCode} from './challenge.js';
import {ConfigurationError, isStatelessAuthError, refusals, type StatelessAuthError} from './errors.js';
import {isPromiseLike} from './promise-like.js';

/**
What a protected route puts on `ctx.state`: the user under `StateKey` (`currentUser` by default)
and the token record under `currentToken`.
*/
export type AuthState<User, Token, StateKey extends string = 'currentUser'> = {
	[Key in StateKey]: User;
} & {
	currentToken: Token;
};

/** The Koa middleware a protected route runs, typed with what it puts on `ctx.state`. */
export type AuthMiddleware<User, Token, StateKey extends string = 'currentUser'> = Middleware<
	AuthState<User, Token, StateKey>,
	DefaultContext,
	unknown
>;

/** Where a guard reports what it decided: the manager's events. */
export type GuardReporter<User> = {
	authorized(ctx: Context, user: User): void;
	unauthorized(ctx: Context, error: StatelessAuthError): void;
};

/** Which RFC 6750 `error` a refusal's challenge carries, decided by its status and type. */
function challengeErrorFor(error: StatelessAuthError): BearerErrorCode | 'none' | undefined {
	switch (error.status) {
		case 400: {
			return 'invalid_request';
		}

		case 401: {
			return error.type === 'request' ? 'none' : 'invalid_token';
		}

		case 403: {
			return 'insufficient_scope';
		}

		default: {
			// A 5xx, or another 4xx a loader chose (429, say), is not a challenge.
			return undefined;
		}
	}
}

/**
The middleware around one authenticator: on success the principal goes on `ctx.state`; a refusal
leaves with the authenticator's challenge and is reported; any other failure of the authenticator
(a loader that throws) becomes a generic 500 whose cause it is; a configuration mistake passes
through untouched.
*/
export function createGuard<User, Token, StateKey extends string>(
	authenticator: Authenticator<User, Token>,
	stateKey: StateKey,
	reporter: GuardReporter<User>,
): AuthMiddleware<User, Token, StateKey> {
	function refuse(ctx: Context, thrown: unknown): unknown {
		if (thrown instanceof ConfigurationError) {
			return thrown;
		}

		const error = isStatelessAuthError(thrown) ? thrown : refusals.internal(thrown);

		const code = challengeErrorFor(error);
		if (code !== undefined) {
			error.headers = {...error.headers, 'WWW-Authenticate': authenticator.challenge(code === 'none' ? undefined : code)};
		}

		if (error.status < 500) {
			reporter.unauthorized(ctx, error);
		}

		return error;
	}

	return async function tokenRequired(ctx: ParameterizedContext<AuthState<User, Token, StateKey>>, next: Next) {
		let user: User;
		let token: Token;
		try {
			let result = authenticator.authenticate(ctx);
			if (isPromiseLike(result)) {
				result = await result;
			}

			if (!result.ok) {
				throw result.reason === 'absent' ? refusals.noCredentials() : refusals.otherScheme();
			}

			({user, token} = result);
		} catch (error) {
			throw refuse(ctx, error);
		}

		const state = ctx.state as Record<string, unknown>;
		state[stateKey] = user;
		state['currentToken'] = token;
		reporter.authorized(ctx, user);
		await next();
	};
}
