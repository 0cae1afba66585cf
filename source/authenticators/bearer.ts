import type {Context} from 'koa';
import {equalsIgnoreAsciiCase, parseAuthorizationHeader, readHeaderLines} from '../authorization-header.js';
import type {Authenticator, AuthenticatorResult} from '../authenticator.js';
import {formatChallenge, type BearerErrorCode} from '../challenge.js';
import {ConfigurationError, refusals} from '../errors.js';
import type {ActivatableUser, ExpirableToken} from '../mixins.js';
import {isPromiseLike} from '../promise-like.js';

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

function missingLoader(name: 'tokenLoader' | 'userLoader'): ConfigurationError {
	return new ConfigurationError(`no ${name} is registered on the StatelessAuthManager; call auth.${name}(fn) at start-up, before the app serves requests.`);
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

	type Result = AuthenticatorResult<User, Token>;

	function checkToken(token: Token | null | undefined): Token {
		if (token === null || token === undefined) {
			throw refusals.invalidToken();
		}

		return token;
	}

	function expiryOf(token: Token): unknown {
		const record = token as ExpirableToken;
		return typeof record.tokenExpired === 'function' ? record.tokenExpired(tokenType, authType) : false;
	}

	function checkExpiry(expired: unknown): void {
		if (expired) {
			throw refusals.expired(tokenType);
		}
	}

	function checkUser(user: User | null | undefined, token: Token): Result {
		if (user === null || user === undefined) {
			throw refusals.invalidToken();
		}

		const {isActive} = user as ActivatableUser;
		if (isActive !== undefined && !isActive) {
			throw refusals.invalidToken();
		}

		return {ok: true, user, token};
	}

	// The rest of the checks once a loader has answered with a promise. One async function
	// awaiting what is a promise costs less than a chain of then() (see bench/, in-process rows).
	async function continueAsync(loaded: PromiseLike<Token | null | undefined> | Token, pendingExpiry?: PromiseLike<unknown>): Promise<Result> {
		const token = checkToken(isPromiseLike(loaded) ? await loaded : loaded);
		let expired = pendingExpiry ?? expiryOf(token);
		if (isPromiseLike(expired)) {
			expired = await expired;
		}

		checkExpiry(expired);
		let user = userLoaderOf()(token);
		if (isPromiseLike(user)) {
			user = await user;
		}

		return checkUser(user, token);
	}

	function userLoaderOf(): UserLoader<Token, User> {
		const {userLoader} = loaders;
		if (userLoader === undefined) {
			throw missingLoader('userLoader');
		}

		return userLoader;
	}

	// The common case, a well-formed value of our scheme, in one regex; anything else goes to the
	// parser, which decides what it is. Plain `i`, not `iu`: no non-ASCII letter folds into ASCII.
	const escapedScheme = authType.replaceAll(/[^A-Za-z\d]/g, String.raw`\$&`);
	const wellFormed = new RegExp(String.raw`^${escapedScheme} +([A-Za-z\d\-._~+/]+=*)$`, 'i');

	function readCredentials(ctx: Context): string | Exclude<Result, {ok: true}> {
		const value = readHeaderLines(ctx.req.rawHeaders, lowerCaseHeader);
		if (typeof value === 'string') {
			const credentials = wellFormed.exec(value)?.[1];
			if (credentials !== undefined && credentials.length <= maxTokenLength) {
				return credentials;
			}
		}

		const parsed = parseAuthorizationHeader(value, parseOptions);
		if (parsed.kind === 'absent') {
			return {ok: false, reason: 'absent'};
		}

		// Another scheme is not ours to judge, whatever its syntax; duplicate lines are always wrong.
		if (parsed.kind === 'malformed' && parsed.reason === 'duplicate') {
			throw refusals.malformed();
		}

		if (parsed.scheme === undefined || !equalsIgnoreAsciiCase(parsed.scheme, lowerCaseScheme)) {
			return {ok: false, reason: 'other-scheme'};
		}

		if (parsed.kind === 'malformed') {
			throw refusals.malformed();
		}

		return parsed.credentials;
	}

	// Not async: when the loaders answer at once, a request costs no promise and no tick here.
	function authenticate(ctx: Context): Result | Promise<Result> {
		const credentials = readCredentials(ctx);
		if (typeof credentials !== 'string') {
			return credentials;
		}

		const {tokenLoader} = loaders;
		if (tokenLoader === undefined) {
			throw missingLoader('tokenLoader');
		}

		const userLoader = userLoaderOf();
		const loaded = tokenLoader(credentials, tokenType, authType);
		if (isPromiseLike(loaded)) {
			return continueAsync(loaded);
		}

		const token = checkToken(loaded);
		const expired = expiryOf(token);
		if (isPromiseLike(expired)) {
			return continueAsync(token, expired);
		}

		checkExpiry(expired);
		const user = userLoader(token);
		return isPromiseLike(user) ? Promise.resolve(user).then(found => checkUser(found, token)) : checkUser(user, token);
	}

	return {
		scheme: authType,
		authenticate,
		challenge: (error?: BearerErrorCode) => challenges[error ?? 'none'],
	};
}
