import {EventEmitter} from 'node:events';
import type Koa from 'koa';
import type {Context, DefaultContext, Middleware} from 'koa';
import {registerManager} from './app-registry.js';
import {defaultMaxTokenLength} from './authorization-header.js';
import type {Authenticator, AuthMode} from './authenticator.js';
import {
	createBearerAuthenticator, missingLoader, type ApiKeyLoader, type LoaderSlots, type TokenLoader, type TokenSources, type UserLoader,
} from './authenticators/bearer.js';
import {createTokenKeyAuthenticator, refuseTokenKeys} from './authenticators/token-key.js';
import {assertChallengeText, assertToken} from './challenge.js';
import {requestStorage} from './current-user.js';
import {refusals, unknownAndReported, type Messages} from './errors.js';
import type {TokenRecord} from './stores/types.js';
import {TokenService} from './tokens/service.js';
import {createGuard, type AuthMiddleware, type GuardReporter} from './guard.js';
import {attachRouteSecurity} from './openapi.js';
import {
	USE_DEFAULT,
	type AnyAuthenticator, type AuthenticatorEntry, type AuthGroup, type BearerOptions, type CommonOptions, type GroupOptions, type Protect,
	type ProtectOptions, type RouteOptions, type StatelessAuthEvents, type StatelessAuthOptions, type TokenRequiredMiddleware,
	type TokenRequiredOptions,
} from './options.js';
import {normalisePermissions, readUserPermissions} from './permissions.js';
import {
	assertFunction, assertTokenSources, assertTokenType, defaultLoaderTimeout, normaliseTokenRequired, validateOptions, assertLoaderTimeout,
} from './route-options.js';

/**
Holds the loaders and options of an application's stateless authentication, and makes the
middleware that protects routes.

@typeParam User - What the user loader returns.
@typeParam Token - What the token loader returns: the stored token record.
@typeParam StateKey - The key of the user on `ctx.state`.

@example
```
const auth = new StatelessAuthManager<User, TokenRecord>({realm: 'api'});
auth.tokenLoader(async (token, tokenType) => tokens.findByHash(sha256(token), tokenType));
auth.userLoader(async record => users.findById(record.userId));

router.get('/whoami', auth.tokenRequired(), ctx => {
	ctx.body = {username: ctx.state.currentUser.username};
});
```
*/
export class StatelessAuthManager<
	User extends object = object,
	Token extends object = object,
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

	readonly #loaders: LoaderSlots<User, Token> = {tokenLoader: undefined, userLoader: undefined, apiKeyLoader: undefined};
	readonly #lowerCaseHeader: string;
	readonly #authType: string;
	readonly #tokenType: string;
	readonly #realm: string | undefined;
	readonly #maxTokenLength: number;
	readonly #tokenSources: TokenSources;
	readonly #stateKey: StateKey;
	readonly #asyncContext: boolean;
	readonly #loaderTimeout: number | false;
	readonly #messages: Messages | undefined;
	readonly #refuseTokenKeys: (ctx: Context) => void;
	// The bearer authenticators this manager made, known by identity (never by an OpenAPI name).
	readonly #bearers = new WeakSet<object>();
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
			messages,
		} = (options ?? {}) as CommonOptions & {stateKey?: string};
		assertLoaderTimeout(loaderTimeout);
		assertTokenSources(tokenSources);
		assertMessages(messages);
		assertToken(header, 'header');
		assertToken(authType, 'authType');
		assertTokenType(tokenType, 'tokenType');
		if (realm !== undefined) {
			assertChallengeText(realm, 'realm');
		}

		if (!Number.isSafeInteger(maxTokenLength) || maxTokenLength < 1) {
			throw new TypeError(`The \`maxTokenLength\` option must be a positive integer, got ${String(maxTokenLength)}.`);
		}

		if (typeof stateKey !== 'string' || stateKey === '' || stateKey === 'currentToken' || stateKey === 'authenticator') {
			throw new TypeError(`The \`stateKey\` option must be a non-empty string other than "currentToken" and "authenticator", got ${JSON.stringify(stateKey)}.`);
		}

		this.#lowerCaseHeader = header.toLowerCase();
		this.#refuseTokenKeys = refuseTokenKeys(this.#lowerCaseHeader, this.#loaders);
		this.#authType = authType;
		this.#tokenType = tokenType;
		this.#realm = realm;
		this.#maxTokenLength = maxTokenLength;
		this.#tokenSources = {...tokenSources};
		this.#stateKey = stateKey as StateKey;
		this.#asyncContext = asyncContext;
		this.#loaderTimeout = loaderTimeout;
		this.#messages = messages === undefined ? undefined : Object.freeze({...messages});
		this.protect = ((routeOptions?: AnyProtectOptions | {authenticators: null}) =>
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
	userLoader(loader: UserLoader<User, Token>): this {
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
	Take tokens from a {@link TokenService}: registers the token loader (access and refresh tokens,
	by the route's `tokenType`) and the `apiKeyLoader` (its API keys, for `Token` keys), so that only
	the user loader is left to write. Everything else (permissions, modes, events, OpenAPI) is
	unchanged. A token of the wrong format or checksum is refused before the store is asked; an
	expired one as `expired_token`; a store that fails answers 503 with `Retry-After`; a corrupt
	record is refused as unknown and reported on `app.emit('error')`. `ctx.state.currentToken` is
	the token's `TokenRecord` (a digest, never the token).

	@example
	```
	const tokens = new TokenService({store: new MemoryTokenStore(), prefix: 'myapp'});
	const auth = new StatelessAuthManager<User, TokenRecord>().useTokens(tokens);
	auth.userLoader(record => users.getById(record.userId));
	```
	*/
	useTokens(this: StatelessAuthManager<User, TokenRecord, StateKey>, service: TokenService): StatelessAuthManager<User, TokenRecord, StateKey> {
		if (!(service instanceof TokenService)) {
			throw new TypeError('useTokens() takes a TokenService.');
		}

		const load = async (token: string, tokenType: string): Promise<TokenRecord | undefined> => {
			if (tokenType !== 'access' && tokenType !== 'refresh' && tokenType !== 'api_key') {
				return undefined;
			}

			const result = await service.verify(token, tokenType);
			if (result.valid) {
				return result.record;
			}

			if (result.reason === 'expired') {
				throw refusals.expired(tokenType);
			}

			if (result.reason === 'corrupt') {
				throw unknownAndReported(result.error);
			}

			return undefined;
		};

		this.tokenLoader(load);
		const loaders = this.#loaders;
		this.apiKeyLoader(async (key, options) => {
			const record = await load(key, 'api_key');
			if (record === undefined) {
				return undefined;
			}

			const {userLoader} = loaders;
			if (userLoader === undefined) {
				throw missingLoader('userLoader');
			}

			return userLoader(record, options);
		});
		return this;
	}

	/**
	The manager's bearer path as an authenticator, to list among a route's `authenticators`.
	*/
	bearer(options: BearerOptions = {}): Authenticator<User, Token> {
		const {tokenType = this.#tokenType, authType = this.#authType, tokenSources = this.#tokenSources} = validateOptions(options, 'bearer');
		const bearer = createBearerAuthenticator(
			{lowerCaseHeader: this.#lowerCaseHeader, authType, tokenType, realm: this.#realm, maxTokenLength: this.#maxTokenLength, sources: tokenSources},
			this.#loaders,
		);
		this.#bearers.add(bearer);
		return bearer;
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
		const options = normaliseTokenRequired(first, secondAuthType);
		const {tokenType, authType, tokenSources, allowApiKey = false, ...routeOptions} = options;
		const bearer = this.bearer({
			...(tokenType === undefined ? {} : {tokenType}),
			...(authType === undefined ? {} : {authType}),
			...(tokenSources === undefined ? {} : {tokenSources}),
		});
		const authenticators: AnyAuthenticator[] = allowApiKey ? [bearer, this.tokenKey()] : [bearer];
		return this.#protect([], {}, {...routeOptions, authenticators} as AnyProtectOptions);
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
		// Validated now, like a route's own options, so that a bad default fails at start-up.
		const {authenticators, ...routeDefaults} = validateOptions(options, 'defaults');
		const list = Array.isArray(authenticators) ? [...authenticators as AnyAuthenticator[]] : [authenticators as AnyAuthenticator];
		assertAuthenticators(list);
		const groupDefaults = routeDefaults as RouteOptions<unknown, unknown>;
		return {
			protect: ((routeOptions?: AnyProtectOptions | {authenticators: null}) =>
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
		given: AnyProtectOptions | {authenticators: null} | undefined = {},
	): Middleware<never, DefaultContext, unknown> {
		const storage = this.#asyncContext ? requestStorage() : undefined;
		if ((given as {authenticators?: unknown} | null)?.authenticators === null) {
			// Anonymous, and inside the storage, so that currentUser() answers undefined here.
			return attachRouteSecurity(async function publicRoute(_ctx, next) {
				await (storage === undefined ? next() : storage.run({user: undefined}, next));
			}, {security: [], securitySchemes: {}});
		}

		const {authenticators: entries = [USE_DEFAULT], relation = 'or', ...own} = validateOptions(given as AnyProtectOptions, 'protect');
		if (!Array.isArray(entries) || entries.length === 0) {
			throw new TypeError('The `authenticators` option must be a non-empty list, or null to opt out.');
		}

		if (relation === 'and' && entries.includes(USE_DEFAULT) && defaults.length !== 1) {
			throw new TypeError('With `relation: \'and\'`, USE_DEFAULT must stand for exactly one authenticator (each entry is one member of the tuple).');
		}

		const authenticators = entries.flatMap(entry => (entry === USE_DEFAULT ? defaults : [entry]));
		assertAuthenticators(authenticators);
		const {
			mode = groupOptions.mode ?? 'required',
			permissions = groupOptions.permissions,
			readPermissions = groupOptions.readPermissions,
			loaderTimeout = groupOptions.loaderTimeout ?? this.#loaderTimeout,
		} = own;
		if (relation === 'and' && permissions !== undefined && readPermissions === undefined) {
			throw new TypeError('With `relation: \'and\'`, a route with `permissions` needs `readPermissions`: say which of the principals grants them.');
		}

		return createGuard({
			authenticators,
			relation,
			stateKey: this.#stateKey,
			reporter: this.#reporter,
			mode,
			permissions: normalisePermissions(permissions),
			readPermissions: readPermissions ?? readUserPermissions,
			storage,
			loaderTimeout: loaderTimeout === false ? undefined : loaderTimeout,
			// A `Token` key where a required route found no credentials it takes is a clear 403, not
			// "Invalid token type". On an optional route it is another scheme, served anonymously (rule 7).
			// Only where the manager's own bearer path is among the authenticators: on a Basic or
			// header-key route, a `Token` header is just another scheme.
			noCredentialsCheck: mode === 'required' && authenticators.some(authenticator => this.#bearers.has(authenticator)) ? this.#refuseTokenKeys : undefined,
			messages: this.#messages,
		}) as Middleware<never, DefaultContext, unknown>;
	}
}

type AnyProtectOptions = ProtectOptions<readonly AuthenticatorEntry[], AuthMode, unknown, unknown>;

/**
Every entry must be an authenticator; two that share an OpenAPI scheme name must be the same scheme,
or the route's document would describe one of them wrongly.
*/
function assertAuthenticators(authenticators: readonly unknown[]): asserts authenticators is readonly AnyAuthenticator[] {
	const schemes = new Map<string, string>();
	for (const authenticator of authenticators) {
		const candidate = authenticator as Partial<AnyAuthenticator> | null;
		if (typeof candidate?.authenticate !== 'function' || typeof candidate.challenge !== 'function') {
			throw new TypeError('Every entry of `authenticators` must be an authenticator (with authenticate and challenge) or USE_DEFAULT.');
		}

		const {securitySchemeName: name, securityScheme} = candidate as AnyAuthenticator;
		const described = JSON.stringify(securityScheme);
		const earlier = schemes.get(name);
		if (earlier !== undefined && earlier !== described) {
			throw new TypeError(`Two authenticators of this route share the OpenAPI scheme name "${name}" but are different schemes (${earlier} and ${described}); give one another securitySchemeName.`);
		}

		schemes.set(name, described);
	}
}

function assertMessages(value: unknown): asserts value is Messages | undefined {
	if (value === undefined) {
		return;
	}

	if (typeof value !== 'object' || value === null || !Object.values(value).every(message => typeof message === 'string')) {
		throw new TypeError(`The \`messages\` option must map refusal reasons to strings, got ${JSON.stringify(value)}.`);
	}
}
