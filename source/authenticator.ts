import type {Context} from 'koa';
import type {BearerErrorCode} from './challenge.js';
import type {StatelessAuthError} from './errors.js';

/**
How a route treats a request without credentials: `'required'` refuses it, `'optional'` lets it
through anonymously (`currentUser` undefined). Credentials that are present but invalid are refused
in both: there is no mode that lets them through, since a client that sent a wrong or expired
token must learn so, and must not silently get a stranger's view of the resource.
*/
export type AuthMode = 'required' | 'optional';

/**
Why an authenticator found nothing to judge: `'absent'`, the request carries none of its
credentials at all; `'other-scheme'`, it carries credentials of another scheme in the same header.
*/
export type NoCredentials = 'absent' | 'other-scheme';

/**
What an authenticator found: the principal (with the record that proved it, if any), or no
credentials meant for it.
*/
export type AuthenticatorResult<User, Token> =
	| {readonly ok: true; readonly user: User; readonly token: Token}
	| {readonly ok: false; readonly reason: NoCredentials};

/**
What the guard hands every authenticator, and what the library's authenticators hand the
application's callbacks (loaders, `authenticate`, `readPermissions`) as their last argument.
*/
export type LoaderOptions = {
	/**
	Aborted when the route's `loaderTimeout` passes before the callback settled: pass it on to a
	database query or `fetch` to cancel the work, whose result would be discarded anyway. Never
	aborted on a route without a timeout.
	*/
	readonly signal: AbortSignal;
};

/** Parameters of a challenge built for a refusal. */
export type ChallengeParameters = {
	/** The RFC 6750 `error` code, for schemes that have one. */
	readonly error?: BearerErrorCode;
	/** The permissions (scopes) that were needed, space-separated, for a 403. */
	readonly scope?: string;
};

/** An OpenAPI 3.1 Security Scheme Object, of the types these authenticators are. */
export type SecuritySchemeObject =
	| {readonly type: 'http'; readonly scheme: string; readonly bearerFormat?: string; readonly description?: string}
	| {readonly type: 'apiKey'; readonly name: string; readonly in: 'header' | 'query' | 'cookie'; readonly description?: string};

/**
The contract every way of authenticating satisfies, so that a route can run one or several.

- `authenticate(ctx, options)` resolves the request's principal, or says that the request carries
  no credentials for this authenticator, or throws (or rejects with) a `StatelessAuthError` when
  credentials meant for it are malformed or not accepted. It may answer synchronously. A falsy
  principal is refused like an unknown token; anything else it throws, or an answer of another
  shape, is an internal failure: a generic 500 whose `cause` it is. `options.signal` is aborted
  when the route's `loaderTimeout` passes.
- `challenge(parameters)` gives the `WWW-Authenticate` value to send with a refusal, or
  `undefined` for an authenticator that does not advertise itself.
- `missing(reason)`, when present, is the refusal to send when no authenticator of the route found
  credentials and this one is the route's first; without it, the bearer wording is used.
- `securitySchemeName` and `securityScheme` describe it in an OpenAPI document.
*/
export type Authenticator<User, Token = undefined> = {
	readonly securitySchemeName: string;
	readonly securityScheme: SecuritySchemeObject;
	authenticate(ctx: Context, options: LoaderOptions): AuthenticatorResult<User, Token> | PromiseLike<AuthenticatorResult<User, Token>>;
	challenge(parameters?: ChallengeParameters): string | undefined;
	missing?(reason: NoCredentials): StatelessAuthError;
};

/** The user type an authenticator resolves. */
export type UserOf<A> = A extends Authenticator<infer User, unknown> ? User : never;

/** The token (record) type an authenticator resolves. */
export type TokenOf<A> = A extends Authenticator<unknown, infer Token> ? Token : never;
