import {EventEmitter} from 'node:events';
import type Koa from 'koa';
import type {Context, DefaultContext, Middleware} from 'koa';
import {registerManager} from './app-registry.js';
import {defaultMaxTokenLength} from './authorization-header.js';
import type {Authenticator} from './authenticator.js';
import {
	createBearerAuthenticator, type ApiKeyLoader, type LoaderSlots, type TokenLoader, type TokenSources, type UserLoader,
} from './authenticators/bearer.js';
import {createTokenKeyAuthenticator, createTokenKeyRefuser} from './authenticators/token-key.js';
import {assertChallengeText, assertToken} from './challenge.js';
import {requestStorage} from './current-user.js';
import {attachRouteSecurity} from './openapi.js';
import type {StatelessAuthError} from './errors.js';
import {createGuard, type AuthMiddleware, type AuthMode, type AuthState, type GuardReporter} from './guard.js';
import {normalisePermissions, readUserPermissions, type PermissionRequirement, type PermissionsReader} from './permissions.js';

type CommonOptions = {
	/**
	The request header that carries `<authType> <token>`, matched case-insensitively.

	@default 'Authorization'
	*/
	readonly header?: string;
	/**
	The default scheme of routes, compared case-insensitively with what the client sends; also the
	scheme of their `WWW-Authenticate` challenge.

	@default 'Bearer'
	*/
	readonly authType?: string;
	/**
	The default token type of routes, handed to the token loader.

	@default 'access'
	*/
	readonly tokenType?: string;
	/**
	The `realm` of challenges: printable ASCII. Without it, challenges have no realm.

	@default undefined
	*/
	readonly realm?: string;
	/**
	The longest token accepted, in characters; a longer one is a 400 before any loader runs.

	@default 4096
	*/
	readonly maxTokenLength?: number;
	/**
	Where bearer tokens may come from besides the header; each route may say otherwise.

	@default {query: false, body: false}
	*/
	readonly tokenSources?: TokenSources;
	/**
	How long, in milliseconds, a request's loaders and callbacks (token, user and API-key loaders,
	`authenticate` callbacks, `readPermissions`) may take together before the request is answered
	503 with `Retry-After`, the timeout is emitted on `app.on('error')` and their late result is
	discarded; their `signal` is then aborted. `false` waits for ever. Each route may say otherwise.

	@default 10000
	*/
	readonly loaderTimeout?: number | false;
	/**
	Keep the user of each request in an `AsyncLocalStorage`, for `currentUser()`. Off by default:
	on Node 20 a live `AsyncLocalStorage` slows every promise of the process a little.

	@default false
	*/
	readonly asyncContext?: boolean;
};

/**
Options of {@link StatelessAuthManager}. `stateKey` is the key of the user on `ctx.state`
(`currentUser` by default; the token record is always on `currentToken`). To use another key, name
it in the third type argument too, so that the types of `ctx.state` follow:
`new StatelessAuthManager<Token, User, 'me'>({stateKey: 'me'})`.
*/
export type StatelessAuthOptions<StateKey extends string = 'currentUser'> = CommonOptions &
	([StateKey] extends ['currentUser'] ? {readonly stateKey?: StateKey} : {readonly stateKey: StateKey});

/** Options of `auth.bearer()`: one route's bearer authenticator; each defaults to the manager's. */
export type BearerOptions = {
	/**
	The token type handed to the token loader, such as `'access'` or `'refresh'`.

	@default the manager's `tokenType`
	*/
	readonly tokenType?: string;
	/**
	The scheme this route accepts, and the scheme of its challenge. The token loader receives it as
	written here, whatever case the client used.

	@default the manager's `authType`
	*/
	readonly authType?: string;
	/**
	Where the token may come from besides the header.

	@default the manager's `tokenSources`
	*/
	readonly tokenSources?: TokenSources;
};

/** What every protected route may say, whatever its authenticators. */
export type RouteOptions<User, Token> = {
	/**
	The permissions the route needs: a list (all of them), or `{allOf, anyOf}`. Missing ones are a
	403 `insufficient_scope` naming what was needed.

	@default none
	*/
	readonly permissions?: PermissionRequirement;
	/**
	Reads what the principal may do.

	@default reads `user.permissions`
	*/
	readonly readPermissions?: PermissionsReader<User, Token>;
	/**
	`'optional'` lets a request without credentials through anonymously; invalid credentials are
	refused in every mode.

	@default 'required'
	*/
	readonly mode?: AuthMode;
	/**
	How long, in milliseconds, this route's callbacks may take before a 503; `false` for no limit.

	@default the group's, else the manager's
	*/
	readonly loaderTimeout?: number | false;
};

/** Options of one route's {@link StatelessAuthManager.tokenRequired}. */
export type TokenRequiredOptions<User = unknown, Token = unknown> = BearerOptions & RouteOptions<User, Token> & {
	/**
	Also accept `Authorization: Token KEY` keys, resolved by the manager's `apiKeyLoader`. On routes
	without it, a `Token` key is a 403 (when an `apiKeyLoader` is registered).

	@default false
	*/
	readonly allowApiKey?: boolean;
};

/** Marks, in a route's `authenticators`, where the defaults of its group go. */
export const USE_DEFAULT: unique symbol = Symbol('koa-stateless-auth.USE_DEFAULT');

/** An authenticator of any principal, as a route's list holds them. */
export type AnyAuthenticator = Authenticator<unknown, unknown>;

/** One entry of a route's `authenticators`: an authenticator, or where the defaults go. */
export type AuthenticatorEntry = AnyAuthenticator | typeof USE_DEFAULT;

type EntryUser<Entry, DefaultUser> = Entry extends typeof USE_DEFAULT ? DefaultUser : Entry extends Authenticator<infer U, unknown> ? U : never;
type EntryToken<Entry, DefaultToken> = Entry extends typeof USE_DEFAULT ? DefaultToken : Entry extends Authenticator<unknown, infer T> ? T : never;
type Anonymous<Mode> = Mode extends 'optional' ? undefined : never;

/** Options of `protect()`: the route's authenticators (any-of), permissions and mode. */
export type ProtectOptions<Entries extends readonly AuthenticatorEntry[], Mode extends AuthMode, User, Token> = RouteOptions<User, Token> & {
	/**
	Tried in order, the first that succeeds wins. `USE_DEFAULT` stands for the group's defaults, so
	`[USE_DEFAULT, apiKeys]` extends them and `[apiKeys]` overrides them.

	@default [USE_DEFAULT]
	*/
	readonly authenticators?: Entries;
	readonly mode?: Mode;
};

/** The user (or undefined, for optional routes) a route with these entries resolves. */
export type RouteUser<Entries extends readonly AuthenticatorEntry[], Mode, DefaultUser> = EntryUser<Entries[number], DefaultUser> | Anonymous<Mode>;
/** The token record (or undefined) a route with these entries resolves. */
export type RouteToken<Entries extends readonly AuthenticatorEntry[], Mode, DefaultToken> = EntryToken<Entries[number], DefaultToken> | Anonymous<Mode>;

/** `protect()`, typed by the defaults it expands `USE_DEFAULT` to. */
export type Protect<DefaultUser, DefaultToken, StateKey extends string> = {
	/** A public route after all: the middleware only calls `next()`. */
	(options: {readonly authenticators: null}): Middleware<Partial<AuthState<undefined, undefined, StateKey>>, DefaultContext, unknown>;
	<const Entries extends readonly AuthenticatorEntry[] = readonly [typeof USE_DEFAULT], const Mode extends AuthMode = 'required'>(
		options?: ProtectOptions<Entries, Mode, EntryUser<Entries[number], DefaultUser>, EntryToken<Entries[number], DefaultToken>>,
	): AuthMiddleware<RouteUser<Entries, Mode, DefaultUser>, RouteToken<Entries, Mode, DefaultToken>, StateKey>;
};

/** Group defaults: what `USE_DEFAULT` stands for in the group's routes, and their permissions and mode. */
export type GroupOptions<User, Token> = RouteOptions<User, Token> & {
	readonly authenticators: Authenticator<User, Token> | ReadonlyArray<Authenticator<User, Token>>;
};

/** A group of routes with default authenticators (Flask-Rebar's registry defaults). */
export type AuthGroup<User, Token, StateKey extends string> = {
	readonly protect: Protect<User, Token, StateKey>;
};

/**
The manager's events and their arguments. `authorized` carries the principal of whichever
authenticator won, which is a `User` of the manager on its own bearer routes and whatever a Basic
or API-key authenticator resolves elsewhere; hence `unknown`.
*/
export type StatelessAuthEvents = {
	/** A request was authenticated; `ctx.state` already holds the principal. */
	authorized: [ctx: Context, principal: unknown];
	/** A request was refused with a 4xx, for audit logs. Internal failures go to `app.emit('error')` instead. */
	unauthorized: [ctx: Context, error: StatelessAuthError];
};

/** What `tokenRequired` resolves: a key has no token record; an optional route may be anonymous. */
export type TokenRequiredMiddleware<User, Token, StateKey extends string, Mode extends AuthMode, AllowApiKey extends boolean> = AuthMiddleware<
	User | Anonymous<Mode>,
	Token | (AllowApiKey extends true ? undefined : never) | Anonymous<Mode>,
	StateKey
>;

/**
Validate a route's options once, when the route is declared: `tokenRequired` takes nothing, an
options object, or the token type and scheme.
*/
export function normaliseRouteOptions<Options extends BearerOptions>(first: Options | string | undefined, authType: string | undefined): Options {
	const options = (typeof first === 'string'
		? (authType === undefined ? {tokenType: first} : {tokenType: first, authType})
		: first ?? {}) as Options;
	// Callers in JavaScript can pass anything.
	if (typeof (options as unknown) !== 'object' || (options as unknown) === null) {
		throw new TypeError('tokenRequired() takes an options object, or a token type and an auth type.');
	}

	if (options.tokenType !== undefined) {
		assertTokenType(options.tokenType, 'tokenType');
	}

	if (options.authType !== undefined) {
		assertToken(options.authType, 'authType');
	}

	return {...options};
}

function assertTokenType(value: unknown, option: string): asserts value is string {
	if (typeof value !== 'string' || value === '') {
		throw new TypeError(`The \`${option}\` option must be a non-empty string, got ${JSON.stringify(value)}.`);
	}
}

/** The default `loaderTimeout`: far beyond any healthy datastore's answer, well within a client's patience. */
const defaultLoaderTimeout = 10_000;
// setTimeout's longest delay; a longer one would fire at once.
const longestTimeout = 2_147_483_647;

function assertLoaderTimeout(value: unknown): asserts value is number | false | undefined {
	if (value !== undefined && value !== false && !(typeof value === 'number' && Number.isFinite(value) && value > 0 && value <= longestTimeout)) {
		throw new TypeError(`The \`loaderTimeout\` option must be a number of milliseconds from 1 to ${longestTimeout}, or false, got ${JSON.stringify(value)}.`);
	}
}

function assertMode(value: unknown): asserts value is AuthMode | undefined {
	if (value !== undefined && value !== 'required' && value !== 'optional') {
		throw new TypeError(`The \`mode\` option must be 'required' or 'optional', got ${JSON.stringify(value)}.`);
	}
}

/**
Holds the loaders and options of an application's stateless authentication, and makes the
middleware that protects routes.

@typeParam Token - What the token loader returns: the stored token record.
@typeParam User - What the user loader returns.
@typeParam StateKey - The key of the user on `ctx.state`.

@example
```
const auth = new StatelessAuthManager<TokenRecord, User>({realm: 'api'});
auth.tokenLoader(async (token, tokenType) => tokens.findByHash(sha256(token), tokenType));
auth.userLoader(async record => users.findById(record.userId));

router.get('/whoami', auth.tokenRequired(), ctx => {
	ctx.body = {username: ctx.state.currentUser.username};
});
```
*/
export class StatelessAuthManager<
	Token extends object = object,
	User extends object = object,
	StateKey extends string = 'currentUser',
> extends EventEmitter<StatelessAuthEvents> {
	/**
	Protect a route with any authenticators, tried in order (the manager's bearer path by default),
	with permissions and a mode. `authenticators: null` opts a route out.

	@example
	```
	router.get('/reports', auth.protect({authenticators: [USE_DEFAULT, basic], permissions: ['reports']}), handler);
	```
	*/
	readonly protect: Protect<User, Token, StateKey>;

	readonly #loaders: LoaderSlots<Token, User> = {tokenLoader: undefined, userLoader: undefined, apiKeyLoader: undefined};
	readonly #lowerCaseHeader: string;
	readonly #authType: string;
	readonly #tokenType: string;
	readonly #realm: string | undefined;
	readonly #maxTokenLength: number;
	readonly #tokenSources: TokenSources;
	readonly #stateKey: StateKey;
	readonly #asyncContext: boolean;
	readonly #loaderTimeout: number | false;
	#defaultBearer: Authenticator<User, Token> | undefined;
	#tokenKey: Authenticator<User> | undefined;
	readonly #reporter: GuardReporter<unknown> = {
		authorized: (ctx, user) => {
			// Most apps listen to neither event; skip emit()'s work on the hot path when none listens.
			if (this.listenerCount('authorized') !== 0) {
				this.emit('authorized', ctx, user);
			}
		},
		unauthorized: (ctx, error) => {
			this.emit('unauthorized', ctx, error);
		},
	};

	constructor(...[options]: [StateKey] extends ['currentUser']
		? [options?: StatelessAuthOptions<StateKey>]
		: [options: StatelessAuthOptions<StateKey>]) {
		super();
		const {
			header = 'Authorization',
			authType = 'Bearer',
			tokenType = 'access',
			realm,
			maxTokenLength = defaultMaxTokenLength,
			stateKey = 'currentUser',
			tokenSources = {},
			asyncContext = false,
			loaderTimeout = defaultLoaderTimeout,
		} = (options ?? {}) as CommonOptions & {stateKey?: string};
		assertLoaderTimeout(loaderTimeout);
		assertToken(header, 'header');
		assertToken(authType, 'authType');
		assertTokenType(tokenType, 'tokenType');
		if (realm !== undefined) {
			assertChallengeText(realm, 'realm');
		}

		if (!Number.isSafeInteger(maxTokenLength) || maxTokenLength < 1) {
			throw new TypeError(`The \`maxTokenLength\` option must be a positive integer, got ${String(maxTokenLength)}.`);
		}

		if (typeof stateKey !== 'string' || stateKey === '' || stateKey === 'currentToken') {
			throw new TypeError(`The \`stateKey\` option must be a non-empty string other than "currentToken", got ${JSON.stringify(stateKey)}.`);
		}

		this.#lowerCaseHeader = header.toLowerCase();
		this.#authType = authType;
		this.#tokenType = tokenType;
		this.#realm = realm;
		this.#maxTokenLength = maxTokenLength;
		this.#tokenSources = {...tokenSources};
		this.#stateKey = stateKey as StateKey;
		this.#asyncContext = asyncContext;
		this.#loaderTimeout = loaderTimeout;
		this.protect = ((routeOptions?: ProtectOptions<readonly AuthenticatorEntry[], AuthMode, unknown, unknown> | {authenticators: null}) =>
			this.#protect([this.#bearerDefault()], {}, routeOptions)) as Protect<User, Token, StateKey>;
	}

	/**
	Register the function that finds a token's stored record, given the token as sent, the route's
	token type and the route's auth type (as configured, not as the client spelled it). Answer
	`null` or `undefined` for an unknown token, or throw a `StatelessAuthError` to refuse with a
	message of your own. Anything else it throws becomes a 500.
	*/
	tokenLoader(loader: TokenLoader<Token>): this {
		assertFunction(loader, 'tokenLoader');
		this.#loaders.tokenLoader = loader;
		return this;
	}

	/**
	Register the function that finds the user a token record belongs to. Answer `null` or
	`undefined` when there is none; the request is then refused like an unknown token.
	*/
	userLoader(loader: UserLoader<Token, User>): this {
		assertFunction(loader, 'userLoader');
		this.#loaders.userLoader = loader;
		return this;
	}

	/**
	Register the function that finds the user of an `Authorization: Token KEY` key, for routes with
	`allowApiKey: true` (or `auth.tokenKey()` among their authenticators). Once registered, a `Token`
	key on any other protected route is a 403 that says so.
	*/
	apiKeyLoader(loader: ApiKeyLoader<User>): this {
		assertFunction(loader, 'apiKeyLoader');
		this.#loaders.apiKeyLoader = loader;
		return this;
	}

	/**
	The manager's bearer path as an authenticator, to list among a route's `authenticators`.
	*/
	bearer(options: BearerOptions = {}): Authenticator<User, Token> {
		const {tokenType = this.#tokenType, authType = this.#authType, tokenSources = this.#tokenSources} = normaliseRouteOptions(options, undefined);
		return createBearerAuthenticator(
			{lowerCaseHeader: this.#lowerCaseHeader, authType, tokenType, realm: this.#realm, maxTokenLength: this.#maxTokenLength, sources: tokenSources},
			this.#loaders,
		);
	}

	/** `Authorization: Token KEY` keys, resolved by the `apiKeyLoader`, as an authenticator. */
	tokenKey(): Authenticator<User> {
		this.#tokenKey ??= createTokenKeyAuthenticator(
			{lowerCaseHeader: this.#lowerCaseHeader, realm: this.#realm, maxTokenLength: this.#maxTokenLength},
			this.#loaders,
		);
		return this.#tokenKey;
	}

	/**
	Middleware that lets a request through only with a valid token, and puts its user on
	`ctx.state` (under `currentUser` by default) and its record on `ctx.state.currentToken`.
	Refusals are thrown as `StatelessAuthError`s carrying the route's `WWW-Authenticate` challenge.

	@example
	```
	router.get('/secret', auth.tokenRequired(), handler);
	router.get('/secret', auth.tokenRequired('access', 'Bearer'), handler);
	router.put('/token', auth.tokenRequired({tokenType: 'refresh'}), handler);
	router.get('/admin', auth.tokenRequired({permissions: ['admin']}), handler);
	```
	*/
	tokenRequired<const Mode extends AuthMode = 'required', const AllowApiKey extends boolean = false>(
		options?: TokenRequiredOptions<User, Token> & {readonly mode?: Mode; readonly allowApiKey?: AllowApiKey},
	): TokenRequiredMiddleware<User, Token, StateKey, Mode, AllowApiKey>;
	tokenRequired(tokenType: string, authType?: string): AuthMiddleware<User, Token, StateKey>;
	tokenRequired(first?: TokenRequiredOptions<User, Token> | string, secondAuthType?: string): Middleware<never, DefaultContext, unknown> {
		const options = normaliseRouteOptions(first, secondAuthType);
		const {tokenType, authType, tokenSources, allowApiKey = false, ...routeOptions} = options;
		const bearer = this.bearer({
			...(tokenType === undefined ? {} : {tokenType}),
			...(authType === undefined ? {} : {authType}),
			...(tokenSources === undefined ? {} : {tokenSources}),
		});
		const authenticators: AnyAuthenticator[] = allowApiKey ? [bearer, this.tokenKey()] : [bearer];
		return this.#protect([], {}, {...routeOptions, authenticators} as ProtectOptions<readonly AuthenticatorEntry[], AuthMode, unknown, unknown>);
	}

	/**
	A group of routes sharing default authenticators (and permissions and mode): each of its routes
	uses the defaults, extends them (`[USE_DEFAULT, other]`), overrides them (`[other]`), or opts out
	(`authenticators: null`).

	@example
	```
	const machines = auth.defaults({authenticators: [apiKeys]});
	router.get('/m2m/jobs', machines.protect(), handler);                                  // the default
	router.get('/m2m/report', machines.protect({authenticators: [USE_DEFAULT, basic]}), h); // extended
	router.get('/m2m/health', machines.protect({authenticators: null}), handler);          // public
	```
	*/
	defaults<GroupUser = User, GroupToken = Token>(options: GroupOptions<GroupUser, GroupToken>): AuthGroup<GroupUser, GroupToken, StateKey> {
		const {authenticators, ...routeDefaults} = options;
		const list = Array.isArray(authenticators) ? [...authenticators as AnyAuthenticator[]] : [authenticators as AnyAuthenticator];
		// Validated now, like a route's own options, so that a bad default fails at start-up.
		assertMode(routeDefaults.mode);
		assertLoaderTimeout(routeDefaults.loaderTimeout);
		normalisePermissions(routeDefaults.permissions);
		const groupDefaults = routeDefaults as RouteOptions<unknown, unknown>;
		return {
			protect: ((routeOptions?: ProtectOptions<readonly AuthenticatorEntry[], AuthMode, unknown, unknown> | {authenticators: null}) =>
				this.#protect(list, groupDefaults, routeOptions)) as Protect<GroupUser, GroupToken, StateKey>,
		};
	}

	/**
	Register this manager on a Koa application, so that the module-level `tokenRequired()` finds it
	through `ctx.app`. An application has one manager.
	*/
	initApp(app: Koa): this {
		registerManager(app, this);
		return this;
	}

	#bearerDefault(): Authenticator<User, Token> {
		this.#defaultBearer ??= this.bearer();
		return this.#defaultBearer;
	}

	#protect(
		defaults: readonly AnyAuthenticator[],
		groupOptions: RouteOptions<unknown, unknown>,
		routeOptions: ProtectOptions<readonly AuthenticatorEntry[], AuthMode, unknown, unknown> | {authenticators: null} | undefined = {},
	): Middleware<never, DefaultContext, unknown> {
		const storage = this.#asyncContext ? requestStorage() : undefined;
		if (routeOptions.authenticators === null) {
			// Anonymous, and inside the storage, so that currentUser() answers undefined here.
			return attachRouteSecurity(async function publicRoute(_ctx, next) {
				await (storage === undefined ? next() : storage.run({user: undefined}, next));
			}, {security: [], securitySchemes: {}});
		}

		const {authenticators: entries = [USE_DEFAULT], ...own} = routeOptions;
		if (!Array.isArray(entries) || entries.length === 0) {
			throw new TypeError('The `authenticators` option must be a non-empty list, or null to opt out.');
		}

		const authenticators = entries.flatMap(entry => (entry === USE_DEFAULT ? defaults : [entry]));
		for (const authenticator of authenticators) {
			if (typeof (authenticator as Partial<AnyAuthenticator>).authenticate !== 'function' || typeof (authenticator as Partial<AnyAuthenticator>).challenge !== 'function') {
				throw new TypeError('Every entry of `authenticators` must be an authenticator (with authenticate and challenge) or USE_DEFAULT.');
			}
		}

		const {
			mode = groupOptions.mode ?? 'required',
			permissions = groupOptions.permissions,
			readPermissions = groupOptions.readPermissions,
			loaderTimeout = groupOptions.loaderTimeout ?? this.#loaderTimeout,
		} = own;
		assertMode(mode);
		assertLoaderTimeout(loaderTimeout);
		// A `Token` key where a route requires credentials but does not take keys is a clear 403, not
		// "Invalid token type". On an optional route it is another scheme, served anonymously (rule 7).
		if (mode === 'required' && !authenticators.some(authenticator => authenticator.securitySchemeName === 'tokenAuth')) {
			authenticators.push(createTokenKeyRefuser(this.#lowerCaseHeader, this.#loaders));
		}

		if (readPermissions !== undefined) {
			assertFunction(readPermissions, 'readPermissions');
		}

		return createGuard({
			authenticators,
			stateKey: this.#stateKey,
			reporter: this.#reporter,
			mode,
			permissions: normalisePermissions(permissions),
			readPermissions: readPermissions ?? readUserPermissions,
			storage,
			loaderTimeout: loaderTimeout === false ? undefined : loaderTimeout,
		}) as Middleware<never, DefaultContext, unknown>;
	}
}

function assertFunction(value: unknown, name: string): void {
	if (typeof value !== 'function') {
		throw new TypeError(`\`${name}\` must be a function, got ${typeof value}.`);
	}
}
