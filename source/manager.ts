import {EventEmitter} from 'node:events';
import type Koa from 'koa';
import type {Context} from 'koa';
import {registerManager} from './app-registry.js';
import {defaultMaxTokenLength} from './authorization-header.js';
import {createBearerAuthenticator, type LoaderSlots, type TokenLoader, type UserLoader} from './authenticators/bearer.js';
import {assertChallengeText, assertToken} from './challenge.js';
import type {StatelessAuthError} from './errors.js';
import {createGuard, type AuthMiddleware, type GuardReporter} from './guard.js';

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
};

/**
Options of {@link StatelessAuthManager}. `stateKey` is the key of the user on `ctx.state`
(`currentUser` by default; the token record is always on `currentToken`). To use another key, name
it in the third type argument too, so that the types of `ctx.state` follow:
`new StatelessAuthManager<Token, User, 'me'>({stateKey: 'me'})`.
*/
export type StatelessAuthOptions<StateKey extends string = 'currentUser'> = CommonOptions &
	([StateKey] extends ['currentUser'] ? {readonly stateKey?: StateKey} : {readonly stateKey: StateKey});

/** Options of one route's {@link StatelessAuthManager.tokenRequired}; each defaults to the manager's. */
export type TokenRequiredOptions = {
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
};

/** The manager's events and their arguments. */
export type StatelessAuthEvents<User> = {
	/** A request was authenticated; `ctx.state` already holds the user. */
	authorized: [ctx: Context, user: User];
	/** A request was refused with a 4xx, for audit logs. Internal failures go to `app.emit('error')` instead. */
	unauthorized: [ctx: Context, error: StatelessAuthError];
};

/**
Validate a route's options once, when the route is declared: `tokenRequired` takes nothing, an
options object, or the token type and scheme.
*/
export function normaliseRouteOptions(first: TokenRequiredOptions | string | undefined, authType: string | undefined): TokenRequiredOptions {
	const options: TokenRequiredOptions = typeof first === 'string'
		? (authType === undefined ? {tokenType: first} : {tokenType: first, authType})
		: first ?? {};
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
> extends EventEmitter<StatelessAuthEvents<User>> {
	readonly #loaders: LoaderSlots<Token, User> = {tokenLoader: undefined, userLoader: undefined};
	readonly #lowerCaseHeader: string;
	readonly #authType: string;
	readonly #tokenType: string;
	readonly #realm: string | undefined;
	readonly #maxTokenLength: number;
	readonly #stateKey: StateKey;
	readonly #reporter: GuardReporter<User> = {
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
		} = (options ?? {}) as CommonOptions & {stateKey?: string};
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
		this.#stateKey = stateKey as StateKey;
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
	Middleware that lets a request through only with a valid token, and puts its user on
	`ctx.state` (under `currentUser` by default) and its record on `ctx.state.currentToken`.
	Refusals are thrown as `StatelessAuthError`s carrying the route's `WWW-Authenticate` challenge.

	@example
	```
	router.get('/secret', auth.tokenRequired(), handler);
	router.get('/secret', auth.tokenRequired('access', 'Bearer'), handler);
	router.put('/token', auth.tokenRequired({tokenType: 'refresh'}), handler);
	```
	*/
	tokenRequired(options?: TokenRequiredOptions): AuthMiddleware<User, Token, StateKey>;
	tokenRequired(tokenType: string, authType?: string): AuthMiddleware<User, Token, StateKey>;
	tokenRequired(first?: TokenRequiredOptions | string, secondAuthType?: string): AuthMiddleware<User, Token, StateKey> {
		const {tokenType = this.#tokenType, authType = this.#authType} = normaliseRouteOptions(first, secondAuthType);
		const bearer = createBearerAuthenticator(
			{lowerCaseHeader: this.#lowerCaseHeader, authType, tokenType, realm: this.#realm, maxTokenLength: this.#maxTokenLength},
			this.#loaders,
		);
		return createGuard(bearer, this.#stateKey, this.#reporter);
	}

	/**
	Register this manager on a Koa application, so that the module-level `tokenRequired()` finds it
	through `ctx.app`. An application has one manager.
	*/
	initApp(app: Koa): this {
		registerManager(app, this);
		return this;
	}
}

function assertFunction(value: unknown, name: string): void {
	if (typeof value !== 'function') {
		throw new TypeError(`auth.${name}() takes a function, got ${typeof value}.`);
	}
}
