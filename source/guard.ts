import type {AsyncLocalStorage} from 'node:async_hooks';
import type {Context, DefaultContext, Middleware, Next, ParameterizedContext} from 'koa';
import type {Authenticator, AuthenticatorResult, AuthMode, LoaderOptions, NoCredentials} from './authenticator.js';
import type {BearerErrorCode} from './challenge.js';
import {Deadline, timeoutQueue} from './deadline.js';
import {answerFor, ConfigurationError, refusals, reportedCause, type Messages, type StatelessAuthError} from './errors.js';
import {checkPermissions, type NormalisedPermissions, type PermissionsReader} from './permissions.js';
import {attachRouteSecurity, describeRoute} from './openapi.js';
import {isPromiseLike} from './promise-like.js';

/**
What a protected route puts on `ctx.state`: the user under `StateKey` (`currentUser` by default),
the token record under `currentToken`, and the authenticator that accepted the request under
`authenticator` (compare it with yours: `ctx.state.authenticator === basic`); `undefined` on an
anonymous request.
*/
export type AuthState<User, Token, StateKey extends string = 'currentUser'> = {
	[Key in StateKey]: User;
} & {
	currentToken: Token;
	authenticator: Authenticator<unknown, unknown> | (undefined extends User ? undefined : never);
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

export type GuardSettings<User, Token, StateKey extends string> = {
	readonly authenticators: ReadonlyArray<Authenticator<User, Token>>;
	readonly stateKey: StateKey;
	readonly reporter: GuardReporter<User>;
	readonly mode: AuthMode;
	readonly permissions: NormalisedPermissions | undefined;
	readonly readPermissions: PermissionsReader<User, Token>;
	readonly storage: AsyncLocalStorage<{readonly user: unknown}> | undefined;
	/** Milliseconds the callbacks of one request may take, or `undefined` for no limit. */
	readonly loaderTimeout: number | undefined;
	/** `'or'`: the first authenticator that succeeds wins; `'and'`: all must. */
	readonly relation: 'or' | 'and';
	/** Run when no authenticator found credentials on a required route; throws a refusal of its own. */
	readonly noCredentialsCheck: ((ctx: Context) => void) | undefined;
	/** The manager's messages per reason. */
	readonly messages: Messages | undefined;
};

/** Which RFC 6750 `error` a refusal's challenge carries, decided by its status and type. */
function challengeErrorFor(status: number, type: string): BearerErrorCode | 'none' | undefined {
	switch (status) {
		case 400: {
			return 'invalid_request';
		}

		case 401: {
			return type === 'request' ? 'none' : 'invalid_token';
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

// Handed to callbacks on routes without a timeout: a signal that is never aborted, shared.
const untimed: LoaderOptions = Object.freeze({signal: new AbortController().signal});

/**
What an authenticator answered, checked: whatever a custom authenticator (or an application's
callback behind it) hands back is untrusted. A falsy principal is an unknown one; an answer of
another shape is a broken contract, an internal failure.
*/
function checkResult<User, Token>(result: unknown): AuthenticatorResult<User, Token> {
	const answer = result as Partial<{ok: unknown; user: unknown}> | null | undefined;
	if (answer?.ok === false) {
		return answer as AuthenticatorResult<User, Token>;
	}

	if (answer?.ok !== true) {
		throw new TypeError('An authenticator answered neither {ok: true, user, token} nor {ok: false, reason}.');
	}

	if (!answer.user) {
		throw refusals.invalidToken();
	}

	return answer as AuthenticatorResult<User, Token>;
}

/**
The middleware around a route's authenticators, tried in order. With the relation `'or'`, the
first that resolves a principal wins; with `'and'`, every one must, and the principals and tokens
are tuples. When credentials meant for one are present but wrong, its refusal is the answer (no
falling through to the next, or to anonymous); when none found credentials, one 401 carries every
challenge (or, on an optional route, the request goes on anonymously). Then the permissions. A
refusal leaves as a new error carrying its authenticator's challenge, and is reported; any other
failure (a loader that throws) becomes a generic 500 whose cause it is; callbacks that take longer
than the timeout, a 503; a configuration mistake passes through untouched.
*/
export function createGuard<User, Token, StateKey extends string>(
	settings: GuardSettings<User, Token, StateKey>,
): AuthMiddleware<User, Token, StateKey> {
	const {authenticators, relation, stateKey, reporter, mode, permissions, readPermissions, storage, loaderTimeout, noCredentialsCheck, messages} = settings;
	const [first] = authenticators;
	if (first === undefined) {
		throw new TypeError('A protected route needs at least one authenticator; use `authenticators: null` to opt out of authentication.');
	}

	const count = authenticators.length;
	const all = relation === 'and';
	const missingOf = (authenticator: Authenticator<User, Token>, reason: NoCredentials) =>
		(authenticator.missing === undefined ? refusals.missing(reason) : authenticator.missing(reason));
	// One field line per scheme (RFC 9110 §11.6.1), built once.
	const advertised = authenticators.flatMap(authenticator => authenticator.challenge() ?? []);
	const [onlyChallenge] = advertised;
	const noCredentialsChallenge = advertised.length === 1 && onlyChallenge !== undefined ? onlyChallenge : advertised;
	const scope = permissions?.scope;
	const queue = loaderTimeout === undefined ? undefined : timeoutQueue(loaderTimeout);
	type ChallengeFor = (status: number, type: string) => string | readonly string[] | undefined;
	// The "no credentials" refusal carries every challenge, whatever its wording.
	const noCredentials: ChallengeFor = status => (status < 500 ? noCredentialsChallenge : undefined);
	// A refusal by one authenticator carries its own challenge, with the RFC 6750 error its status means.
	const challenges: ChallengeFor[] = authenticators.map(authenticator => (status, type) => {
		const code = challengeErrorFor(status, type);
		return code === undefined
			? undefined
			: authenticator.challenge(code === 'none' ? undefined : {error: code, ...(code === 'insufficient_scope' && scope !== undefined ? {scope} : {})});
	});

	function refuse(ctx: Context, thrown: unknown, challengeFor: ChallengeFor | undefined): unknown {
		try {
			if (thrown instanceof ConfigurationError) {
				return thrown;
			}
		} catch {
			// A thrown Proxy whose traps throw: answerFor makes it a generic 500.
		}

		const report = reportedCause(thrown);
		if (report !== undefined) {
			ctx.app.emit('error', report, ctx);
		}

		const error = answerFor(thrown, challengeFor, messages);
		if (error.status < 500) {
			reporter.unauthorized(ctx, error);
		}

		return error;
	}

	return attachRouteSecurity(async function authenticate(ctx: ParameterizedContext<AuthState<User, Token, StateKey>>, next: Next) {
		let current = -1;
		let found: {readonly user: unknown; readonly token: unknown} | undefined;
		let otherScheme = false;
		// On an 'and' route: what each authenticator resolved, and the first that found nothing.
		let users: unknown[] | undefined;
		let tokens: unknown[] | undefined;
		let firstMissing = -1;
		let firstMissingReason: NoCredentials = 'absent';
		const deadline = queue === undefined ? undefined : new Deadline(queue);
		const options = deadline ?? untimed;
		try {
			// An indexed loop: for-of allocates an iterator per request on this hot path.
			for (let index = 0; index < count; index++) {
				current = index;
				let result = (authenticators[index] as Authenticator<User, Token>).authenticate(ctx, options);
				if (isPromiseLike(result)) {
					result = await (deadline === undefined ? result : deadline.race(result));
				}

				result = checkResult(result);
				if (!all) {
					if (result.ok) {
						found = result;
						break;
					}

					otherScheme ||= result.reason === 'other-scheme';
				} else if (result.ok) {
					(users ??= []).push(result.user);
					(tokens ??= []).push(result.token);
				} else {
					otherScheme ||= result.reason === 'other-scheme';
					if (firstMissing === -1) {
						firstMissing = index;
						firstMissingReason = result.reason;
					}
				}
			}

			if (all && users !== undefined) {
				if (firstMissing !== -1) {
					// Some credentials, not all: the missing ones' refusal, whatever the mode.
					current = firstMissing;
					throw missingOf(authenticators[firstMissing] as Authenticator<User, Token>, firstMissingReason);
				}

				found = {user: users, token: tokens};
			}

			if (found !== undefined && permissions !== undefined) {
				let allowed = checkPermissions(readPermissions(found.user as User, found.token as Token, options), permissions);
				if (isPromiseLike(allowed)) {
					allowed = await (deadline === undefined ? allowed : deadline.race(allowed));
				}

				if (!allowed) {
					throw refusals.insufficientScope();
				}
			}
		} catch (error) {
			throw refuse(ctx, error, challenges[current]);
		} finally {
			deadline?.clear();
		}

		if (found === undefined) {
			// Rule 7: another scheme is no credentials, so an optional route serves it anonymously.
			if (mode === 'optional') {
				await (storage === undefined ? next() : storage.run({user: undefined}, next));
				return;
			}

			try {
				// Credentials a required route cannot take, with an answer of their own (a `Token` key: 403).
				noCredentialsCheck?.(ctx);
			} catch (error) {
				throw refuse(ctx, error, undefined);
			}

			throw refuse(ctx, missingOf(first, otherScheme ? 'other-scheme' : 'absent'), noCredentials);
		}

		const state = ctx.state as Record<string, unknown>;
		state[stateKey] = found.user;
		state['currentToken'] = found.token;
		state['authenticator'] = authenticators[all ? 0 : current];
		reporter.authorized(ctx, found.user as User);
		// Inline rather than a helper: one more async function is a measurable cost per request.
		await (storage === undefined ? next() : storage.run({user: found.user}, next));
	}, describeRoute(authenticators as ReadonlyArray<Authenticator<unknown, unknown>>, permissions, mode, relation));
}
