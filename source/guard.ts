import type {AsyncLocalStorage} from 'node:async_hooks';
import type {Context, DefaultContext, Middleware, Next, ParameterizedContext} from 'koa';
import type {Authenticator, NoCredentials} from './authenticator.js';
import type {BearerErrorCode} from './challenge.js';
import {ConfigurationError, isStatelessAuthError, refusals, StatelessAuthError} from './errors.js';
import {checkPermissions, type NormalisedPermissions, type PermissionsReader} from './permissions.js';
import {attachRouteSecurity, describeRoute} from './openapi.js';
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

/**
How a route treats a request without credentials: `'required'` refuses it, `'optional'` lets it
through anonymously (`currentUser` undefined). Credentials that are present but invalid are refused
in both: there is no mode that lets them through, since a client that sent a wrong or expired
token must learn so, and must not silently get a stranger's view of the resource.
*/
export type AuthMode = 'required' | 'optional';

/** Where a guard reports what it decided: the manager's events. */
export type GuardReporter<User> = {
	authorized(ctx: Context, user: User): void;
	unauthorized(ctx: Context, error: StatelessAuthError): void;
};

export type GuardSettings<User, Token, StateKey extends string> = {
	readonly authenticators: ReadonlyArray<Authenticator<User, Token>>;
	readonly stateKey: StateKey;
	readonly reporter: GuardReporter<User>;
	readonly mode: AuthMode;
	readonly permissions: NormalisedPermissions | undefined;
	readonly readPermissions: PermissionsReader<User, Token>;
	readonly storage: AsyncLocalStorage<{readonly user: unknown}> | undefined;
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
The middleware around a route's authenticators, tried in order: the first that resolves a
principal wins, and its principal goes on `ctx.state`; when credentials meant for one are present
but wrong, its refusal is the answer (no falling through to the next, or to anonymous); when none
found credentials, one 401 carries every challenge. Then the permissions. A refusal leaves with its
authenticator's challenge and is reported; any other failure (a loader that throws) becomes a
generic 500 whose cause it is; a configuration mistake passes through untouched.
*/
export function createGuard<User, Token, StateKey extends string>(
	settings: GuardSettings<User, Token, StateKey>,
): AuthMiddleware<User, Token, StateKey> {
	const {authenticators, stateKey, reporter, mode, permissions, readPermissions, storage} = settings;
	const [first] = authenticators;
	if (first === undefined) {
		throw new TypeError('A protected route needs at least one authenticator; use `authenticators: null` to opt out of authentication.');
	}

	const count = authenticators.length;
	const missing = (reason: NoCredentials) => (first.missing === undefined ? refusals.missing(reason) : first.missing(reason));
	// One field line per scheme (RFC 9110 §11.6.1), built once.
	const advertised = authenticators.map(authenticator => authenticator.challenge()).filter(challenge => challenge !== undefined);
	const [onlyChallenge] = advertised;
	const noCredentialsChallenge = advertised.length === 1 && onlyChallenge !== undefined ? onlyChallenge : advertised;

	function refuse(ctx: Context, thrown: unknown, authenticator: Authenticator<User, Token> | undefined): unknown {
		if (thrown instanceof ConfigurationError) {
			return thrown;
		}

		const error = isStatelessAuthError(thrown) ? thrown : refusals.internal(thrown);
		const code = authenticator === undefined ? undefined : challengeErrorFor(error);
		const challenge = code === undefined
			? undefined
			: authenticator?.challenge(code === 'none' ? undefined : {error: code, ...(code === 'insufficient_scope' && permissions ? {scope: permissions.scope} : {})});
		if (challenge !== undefined) {
			error.headers = {...error.headers, 'WWW-Authenticate': challenge};
		}

		if (error.status < 500) {
			reporter.unauthorized(ctx, error);
		}

		return error;
	}

	return attachRouteSecurity(async function authenticate(ctx: ParameterizedContext<AuthState<User, Token, StateKey>>, next: Next) {
		let current: Authenticator<User, Token> | undefined;
		let found: {readonly user: User; readonly token: Token} | undefined;
		let otherScheme = false;
		try {
			// An indexed loop: for-of allocates an iterator per request on this hot path.
			for (let index = 0; index < count; index++) {
				const authenticator = authenticators[index] as Authenticator<User, Token>;
				current = authenticator;
				let result = authenticator.authenticate(ctx);
				if (isPromiseLike(result)) {
					result = await result;
				}

				if (result.ok) {
					found = result;
					break;
				}

				otherScheme ||= result.reason === 'other-scheme';
			}

			if (found !== undefined && permissions !== undefined) {
				let allowed = checkPermissions(readPermissions(found.user, found.token), permissions);
				if (isPromiseLike(allowed)) {
					allowed = await allowed;
				}

				if (!allowed) {
					throw new StatelessAuthError('Insufficient permissions', 403, 'scope');
				}
			}
		} catch (error) {
			throw refuse(ctx, error, current);
		}

		if (found === undefined) {
			if (mode === 'optional' && !otherScheme) {
				await (storage === undefined ? next() : storage.run({user: undefined}, next));
				return;
			}

			const error = missing(otherScheme ? 'other-scheme' : 'absent');
			error.headers = {...error.headers, 'WWW-Authenticate': noCredentialsChallenge};
			throw refuse(ctx, error, undefined);
		}

		const state = ctx.state as Record<string, unknown>;
		state[stateKey] = found.user;
		state['currentToken'] = found.token;
		reporter.authorized(ctx, found.user);
		// Inline rather than a helper: one more async function is a measurable cost per request.
		await (storage === undefined ? next() : storage.run({user: found.user}, next));
	}, describeRoute(authenticators as ReadonlyArray<Authenticator<unknown, unknown>>, permissions, mode));
}
