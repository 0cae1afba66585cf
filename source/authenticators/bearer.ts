import type {Context} from 'koa';
import {parseAuthorizationHeader, readHeaderLines} from '../authorization-header.js';
import type {Authenticator, AuthenticatorResult} from '../authenticator.js';
import {formatChallenge, type BearerErrorCode} from '../challenge.js';
import {isStatelessAuthError, refusals, type StatelessAuthError} from '../errors.js';
import type {ActivatableUser, ExpirableToken} from '../mixins.js';

/** Finds the stored record of a token, or answers `null`/`undefined` when there is none. */
export type TokenLoader<Token> = (
	token: string,
	tokenType: string,
	authType: string,
) => Token | null | undefined | Promise<Token | null | undefined>;

/** Finds the user a token record belongs to, or answers `null`/`undefined` when there is none. */
export type UserLoader<Token, User> = (token: Token) => User | null | undefined | Promise<User | null | undefined>;

/** Where the bearer authenticator finds the loaders, which may be registered after routes are declared. */
export type LoaderSlots<Token, User> = {
	tokenLoader: TokenLoader<Token> | undefined;
	userLoader: UserLoader<Token, User> | undefined;
};

export type BearerSettings = {
	readonly lowerCaseHeader: string;
	readonly authType: string;
	readonly tokenType: string;
	readonly realm: string | undefined;
	readonly maxTokenLength: number;
};

function toAuthError(error: unknown): StatelessAuthError {
	return isStatelessAuthError(error) ? error : refusals.internal(error);
}

function missingLoader(name: 'tokenLoader' | 'userLoader'): Error {
	return new Error(`koa-stateless-auth: no ${name} is registered on the StatelessAuthManager; call auth.${name}(fn) at start-up, before the app serves requests.`);
}

/**
The manager's bearer path as an authenticator: reads `<authType> <token>` from the header, then
runs the token loader, the record's expiry check, the user loader and the user's `isActive`.
Settings are normalised by the caller; the challenges are built here once.
*/
export function createBearerAuthenticator<Token extends object, User extends object>(
	settings: BearerSettings,
	loaders: LoaderSlots<Token, User>,
): Authenticator<User, Token> {
	const {lowerCaseHeader, authType, tokenType, realm, maxTokenLength} = settings;
	const lowerCaseScheme = authType.toLowerCase();
	const parseOptions = {maxLength: maxTokenLength};
	const challenges = {
		none: formatChallenge(authType, {realm}),
		invalid_request: formatChallenge(authType, {realm, error: 'invalid_request'}),
		invalid_token: formatChallenge(authType, {realm, error: 'invalid_token'}),
		insufficient_scope: formatChallenge(authType, {realm, error: 'insufficient_scope'}),
	} satisfies Record<BearerErrorCode | 'none', string>;

	async function authenticate(ctx: Context): Promise<AuthenticatorResult<User, Token>> {
		const parsed = parseAuthorizationHeader(readHeaderLines(ctx.req.rawHeaders, lowerCaseHeader), parseOptions);
		if (parsed.kind === 'absent') {
			return {ok: false, reason: 'absent'};
		}

		// Another scheme is not ours to judge, whatever its syntax; duplicate lines are always wrong.
		if (parsed.kind === 'malformed' && parsed.reason === 'duplicate') {
			throw refusals.malformed();
		}

		if (parsed.scheme?.toLowerCase() !== lowerCaseScheme) {
			return {ok: false, reason: 'other-scheme'};
		}

		if (parsed.kind === 'malformed') {
			throw refusals.malformed();
		}

		const {tokenLoader, userLoader} = loaders;
		if (tokenLoader === undefined) {
			throw missingLoader('tokenLoader');
		}

		if (userLoader === undefined) {
			throw missingLoader('userLoader');
		}

		try {
			const token = await tokenLoader(parsed.credentials, tokenType, authType);
			if (token === null || token === undefined) {
				throw refusals.invalidToken();
			}

			// Await only a promise: most records answer synchronously, and a tick per request shows.
			let expired = (token as ExpirableToken).tokenExpired?.(tokenType, authType);
			if (expired !== undefined && typeof expired !== 'boolean') {
				expired = await expired;
			}

			if (expired) {
				throw refusals.expired(tokenType);
			}

			const user = await userLoader(token);
			if (user === null || user === undefined) {
				throw refusals.invalidToken();
			}

			const {isActive} = user as ActivatableUser;
			if (isActive !== undefined && !isActive) {
				throw refusals.invalidToken();
			}

			return {ok: true, user, token};
		} catch (error) {
			throw toAuthError(error);
		}
	}

	return {
		scheme: authType,
		authenticate,
		challenge: (error?: BearerErrorCode) => challenges[error ?? 'none'],
	};
}
