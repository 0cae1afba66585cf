import type {Context} from 'koa';
import {isToken68} from '../authorization-header.js';
import type {Authenticator, AuthenticatorResult, ChallengeParameters, LoaderOptions} from '../authenticator.js';
import {formatChallenge, type BearerErrorCode} from '../challenge.js';
import {ConfigurationError, refusals} from '../errors.js';
import type {ActivatableUser, ExpirableToken} from '../mixins.js';
import {isPromiseLike} from '../promise-like.js';
import {createToken68Reader, type Missing} from './token68-scheme.js';

/** What a loader or callback may answer for "unknown": any falsy value (`NaN` too, at run time). */
export type Falsy = null | undefined | false | 0 | '';

/**
Finds the stored record of a token (an object), or answers a falsy value when there is none. The
last argument carries the `signal` that the route's `loaderTimeout` aborts.
*/
export type TokenLoader<Token> = (
	token: string,
	tokenType: string,
	authType: string,
	options: LoaderOptions,
) => Token | Falsy | Promise<Token | Falsy>;

/** Finds the user (an object) a token record belongs to, or answers a falsy value when there is none. */
export type UserLoader<User, Token> = (token: Token, options: LoaderOptions) => User | Falsy | Promise<User | Falsy>;

/** Finds the user (an object) an `Authorization: Token KEY` key belongs to, or answers a falsy value. */
export type ApiKeyLoader<User> = (key: string, options: LoaderOptions) => User | Falsy | Promise<User | Falsy>;

/** Where the authenticators find the loaders, which may be registered after routes are declared. */
export type LoaderSlots<User, Token> = {
	tokenLoader: TokenLoader<Token> | undefined;
	userLoader: UserLoader<User, Token> | undefined;
	apiKeyLoader: ApiKeyLoader<User> | undefined;
};

/**
Where a bearer token may come from besides the `Authorization` header (RFC 6750 §2.2 and §2.3).
Both are off by default; OAuth 2.1 tells servers to ignore query tokens.
*/
export type TokenSources = {
	/**
	Accept `?access_token=` in the query. Answers that used it carry `Cache-Control: private`.

	@default false
	*/
	readonly query?: boolean;
	/**
	Accept `access_token` in an `application/x-www-form-urlencoded` body (never on GET). Needs a body
	parser, such as `@koa/bodyparser`, before the route.

	@default false
	*/
	readonly body?: boolean;
};

export type BearerSettings = {
	readonly lowerCaseHeader: string;
	readonly authType: string;
	readonly tokenType: string;
	readonly realm: string | undefined;
	readonly maxTokenLength: number;
	readonly sources: TokenSources;
};

export function missingLoader(name: keyof LoaderSlots<unknown, unknown>): ConfigurationError {
	return new ConfigurationError(`no ${name} is registered on the StatelessAuthManager; call auth.${name}(fn) at start-up, before the app serves requests.`);
}

/** The challenges of a token68 scheme, built once: one per RFC 6750 error, and the bare one. */
export function createToken68Challenges(scheme: string, realm: string | undefined): (parameters?: ChallengeParameters) => string {
	const challenges = {
		none: formatChallenge(scheme, {realm}),
		invalid_request: formatChallenge(scheme, {realm, error: 'invalid_request'}),
		invalid_token: formatChallenge(scheme, {realm, error: 'invalid_token'}),
		insufficient_scope: formatChallenge(scheme, {realm, error: 'insufficient_scope'}),
	} satisfies Record<BearerErrorCode | 'none', string>;
	return parameters => parameters?.scope === undefined
		? challenges[parameters?.error ?? 'none']
		: formatChallenge(scheme, {realm, error: parameters.error, scope: parameters.scope});
}

/**
What a loader answered, as a record: a falsy answer is "unknown" (a 401 like any unknown token),
whatever the types said; an answer that is neither falsy nor an object breaks the loader's
contract (`() => true`, a stray id), an internal failure that must not let the request in.
*/
export function checkLoaded<T>(value: T | Falsy, loader: keyof LoaderSlots<unknown, unknown>): T {
	if (!value) {
		throw refusals.invalidToken();
	}

	if (typeof value !== 'object' && typeof value !== 'function') {
		throw new TypeError(`The ${loader} answered a ${typeof value}; a loader answers an object, or a falsy value for "unknown".`);
	}

	return value;
}

/** Reject a user that is missing or inactive, like an unknown token. */
export function checkUser<User>(loaded: User | Falsy, loader: 'userLoader' | 'apiKeyLoader'): User {
	const user = checkLoaded(loaded, loader);
	const {isActive} = user as ActivatableUser;
	if (isActive !== undefined && !isActive) {
		throw refusals.invalidToken();
	}

	return user;
}

/** One `access_token` from the query or a form body: a string, or a 400 for a repeated or malformed one. */
function readTokenParameter(value: unknown, maxLength: number): string | undefined {
	if (value === undefined) {
		return undefined;
	}

	if (typeof value !== 'string' || value.length > maxLength || !isToken68(value)) {
		throw refusals.malformed();
	}

	return value;
}

/**
The manager's bearer path as an authenticator: reads `<authType> <token>` from the header (and
from the query or a form body when switched on), then runs the token loader, the record's expiry
check, the user loader and the user's `isActive`. Settings are normalised by the caller; the
challenges are built here once.
*/
export function createBearerAuthenticator<User extends object, Token extends object>(
	settings: BearerSettings,
	loaders: LoaderSlots<User, Token>,
): Authenticator<User, Token> {
	const {lowerCaseHeader, authType, tokenType, realm, maxTokenLength, sources} = settings;
	const readHeader = createToken68Reader({lowerCaseHeader, scheme: authType, maxLength: maxTokenLength});
	const useQuery = sources.query === true;
	const useBody = sources.body === true;
	type Result = AuthenticatorResult<User, Token>;

	function readFromSources(ctx: Context): string | Missing {
		const fromHeader = readHeader(ctx);

		const fromQuery = useQuery ? readTokenParameter(ctx.query['access_token'], maxTokenLength) : undefined;
		const body = useBody && ctx.method !== 'GET' && ctx.is('application/x-www-form-urlencoded') !== false
			? (ctx.request as {body?: unknown}).body
			: undefined;
		const fromBody = typeof body === 'object' && body !== null
			? readTokenParameter((body as Record<string, unknown>)['access_token'], maxTokenLength)
			: undefined;
		const found = [typeof fromHeader === 'string' ? fromHeader : undefined, fromQuery, fromBody].filter(value => value !== undefined);
		if (found.length > 1) {
			// RFC 6750 §2: a client must not use more than one method in a request.
			throw refusals.malformed('Token sent by more than one method');
		}

		if (fromQuery !== undefined) {
			// RFC 6750 §2.3: an answer to a URI carrying a token must not be shared by caches.
			ctx.set('Cache-Control', 'private');
			return fromQuery;
		}

		return fromBody ?? fromHeader;
	}

	const readCredentials = useQuery || useBody ? readFromSources : readHeader;

	const checkToken = (token: Token | Falsy): Token => checkLoaded(token, 'tokenLoader');

	function expiryOf(token: Token): unknown {
		const record = token as ExpirableToken;
		return typeof record.tokenExpired === 'function' ? record.tokenExpired(tokenType, authType) : false;
	}

	function checkExpiry(expired: unknown): void {
		if (expired) {
			throw refusals.expired(tokenType);
		}
	}

	function userLoaderOf(): UserLoader<User, Token> {
		const {userLoader} = loaders;
		if (userLoader === undefined) {
			throw missingLoader('userLoader');
		}

		return userLoader;
	}

	// The rest of the checks once a loader has answered with a promise. One async function
	// awaiting what is a promise costs less than a chain of then() (see bench/, in-process rows).
	async function continueAsync(loaded: PromiseLike<Token | Falsy> | Token, options: LoaderOptions, pendingExpiry?: PromiseLike<unknown>): Promise<Result> {
		const token = checkToken(isPromiseLike(loaded) ? await loaded : loaded);
		let expired = pendingExpiry ?? expiryOf(token);
		if (isPromiseLike(expired)) {
			expired = await expired;
		}

		checkExpiry(expired);
		let user = userLoaderOf()(token, options);
		if (isPromiseLike(user)) {
			user = await user;
		}

		return {ok: true, user: checkUser(user, 'userLoader'), token};
	}

	// Not async: when the loaders answer at once, a request costs no promise and no tick here.
	function authenticate(ctx: Context, options: LoaderOptions): Result | Promise<Result> {
		const credentials = readCredentials(ctx);
		if (typeof credentials !== 'string') {
			return credentials;
		}

		const {tokenLoader} = loaders;
		if (tokenLoader === undefined) {
			throw missingLoader('tokenLoader');
		}

		const userLoader = userLoaderOf();
		const loaded = tokenLoader(credentials, tokenType, authType, options);
		if (isPromiseLike(loaded)) {
			return continueAsync(loaded, options);
		}

		const token = checkToken(loaded);
		const expired = expiryOf(token);
		if (isPromiseLike(expired)) {
			return continueAsync(token, options, expired);
		}

		checkExpiry(expired);
		const user = userLoader(token, options);
		return isPromiseLike(user)
			? Promise.resolve(user).then(found => ({ok: true, user: checkUser(found, 'userLoader'), token}))
			: {ok: true, user: checkUser(user, 'userLoader'), token};
	}

	const isBearer = authType.toLowerCase() === 'bearer';
	return {
		securitySchemeName: `${authType.toLowerCase()}Auth`,
		securityScheme: {type: 'http', scheme: isBearer ? 'bearer' : authType},
		authenticate,
		challenge: createToken68Challenges(authType, realm),
		missing: refusals.missing,
	};
}
