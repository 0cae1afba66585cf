import type {Context, DefaultContext, Middleware} from 'koa';
import type {Authenticator, AuthMode} from './authenticator.js';
import type {TokenSources} from './authenticators/bearer.js';
import type {RefusalReason, StatelessAuthError} from './errors.js';
import type {AuthMiddleware, AuthState} from './guard.js';
import type {PermissionRequirement, PermissionsReader} from './permissions.js';

/** The options a manager takes whatever its `stateKey`. */
export type CommonOptions = {
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
	/**
	The message of refusals, per reason, instead of the library's wording: `{invalid_token: 'Sign in
	again'}`. Applies to every refusal the manager's routes answer, with `authErrorHandler` or Koa's
	own handler alike; `fullMsg` and `message` follow.

	@default {}
	*/
	readonly messages?: Readonly<Partial<Record<RefusalReason, string>>>;
};

/**
Options of {@link StatelessAuthManager}. `stateKey` is the key of the user on `ctx.state`
(`currentUser` by default; the token record is always on `currentToken`). To use another key, name
it in the third type argument too, so that the types of `ctx.state` follow:
`new StatelessAuthManager<User, Token, 'me'>({stateKey: 'me'})`.
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

/**
How a route's authenticators combine: `'or'`, the first that succeeds wins; `'and'`, every one of
them must succeed (an application's header key and a user's bearer token), and the route's
principal and token are tuples, one entry per authenticator.
*/
export type Relation = 'or' | 'and';

/** Options of `protect()`: the route's authenticators, how they combine, permissions and mode. */
export type ProtectOptions<Entries extends readonly AuthenticatorEntry[], Mode extends AuthMode, User, Token, R extends Relation = Relation> = RouteOptions<User, Token> & {
	/**
	Tried in order. `USE_DEFAULT` stands for the group's defaults, so `[USE_DEFAULT, apiKeys]` extends
	them and `[apiKeys]` overrides them.

	@default [USE_DEFAULT]
	*/
	readonly authenticators?: Entries;
	readonly mode?: Mode;
	/**
	`'or'`: the first authenticator that succeeds wins. `'and'`: all must succeed; `currentUser` is
	then the tuple of their principals and `currentToken` the tuple of their tokens, in order.

	@default 'or'
	*/
	readonly relation?: R;
};

type AllOf<Entries extends readonly AuthenticatorEntry[], Default, Pick extends 'user' | 'token'> = {
	-readonly [Index in keyof Entries]: Pick extends 'user' ? EntryUser<Entries[Index], Default> : EntryToken<Entries[Index], Default>;
};

/** The user (or undefined, for optional routes) a route with these entries resolves. */
export type RouteUser<Entries extends readonly AuthenticatorEntry[], Mode, DefaultUser, R extends Relation = 'or'> =
	| (R extends 'and' ? AllOf<Entries, DefaultUser, 'user'> : EntryUser<Entries[number], DefaultUser>)
	| Anonymous<Mode>;
/** The token record (or undefined) a route with these entries resolves. */
export type RouteToken<Entries extends readonly AuthenticatorEntry[], Mode, DefaultToken, R extends Relation = 'or'> =
	| (R extends 'and' ? AllOf<Entries, DefaultToken, 'token'> : EntryToken<Entries[number], DefaultToken>)
	| Anonymous<Mode>;

/** `protect()`, typed by the defaults it expands `USE_DEFAULT` to. */
export type Protect<DefaultUser, DefaultToken, StateKey extends string> = {
	/** A public route after all: the middleware only calls `next()`. */
	(options: {readonly authenticators: null}): Middleware<Partial<AuthState<undefined, undefined, StateKey>>, DefaultContext, unknown>;
	<const Entries extends readonly AuthenticatorEntry[] = readonly [typeof USE_DEFAULT], const Mode extends AuthMode = 'required', const R extends Relation = 'or'>(
		options?: ProtectOptions<Entries, Mode, RouteUser<Entries, never, DefaultUser, R>, RouteToken<Entries, never, DefaultToken, R>, R>,
	): AuthMiddleware<RouteUser<Entries, Mode, DefaultUser, R>, RouteToken<Entries, Mode, DefaultToken, R>, StateKey>;
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
