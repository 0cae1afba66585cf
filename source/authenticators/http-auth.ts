import type {Context} from 'koa';
import {readHeaderLines} from '../authorization-header.js';
import type {Authenticator, AuthenticatorResult, LoaderOptions, SecuritySchemeObject} from '../authenticator.js';
import type {Falsy} from './bearer.js';
import type {Authorization} from '../authorization.js';
import {assertChallengeText, assertToken, formatChallenge} from '../challenge.js';
import {StatelessAuthError} from '../errors.js';
import {isPromiseLike} from '../promise-like.js';

/**
Decides whether a request's credentials are good: the principal, or a falsy value (`false`, `null`,
`undefined`, `0`, `''`) to refuse. The last argument carries the `signal` the route's
`loaderTimeout` aborts.
*/
export type AuthenticateCallback<User, Credentials extends Authorization> = (
	credentials: Credentials,
	ctx: Context,
	options: LoaderOptions,
) => User | Falsy | Promise<User | Falsy>;

/** Options of an {@link HttpAuth}. */
export type HttpAuthOptions<User, Credentials extends Authorization> = {
	/** Checks the credentials `getAuthorization` read: the principal, or a falsy value to refuse. */
	readonly authenticate: AuthenticateCallback<User, Credentials>;
	/**
	The `realm` of the challenge; printable ASCII.

	@default undefined
	*/
	readonly realm?: string;
};

/**
A base class for schemes of your own, the TypeScript form of Flask-APScheduler's `HTTPAuth`:
implement `scheme` and `getAuthorization(ctx)`; override `getAuthenticateHeader()` for another
challenge. Every refusal (no credentials, malformed ones, a falsy answer of `authenticate`) is
the same 401 with the challenge, so that nothing tells one from another.

@example
```
class ApiKeyAuth extends HttpAuth<App, Authorization & {key: string}> {
	readonly scheme = 'API-Key';
	protected override readonly credentialsHeader = 'x-api-key';

	getAuthorization(ctx: Context) {
		const key = ctx.get('X-API-Key');
		return key === '' ? undefined : {authType: 'apikey', key};
	}
}

const apiKeyAuth = new ApiKeyAuth({realm: 'Scheduler API', authenticate: ({key}) => apps.get(key)});
router.get('/jobs', auth.protect({authenticators: [apiKeyAuth]}), handler);
```
*/
export abstract class HttpAuth<User, Credentials extends Authorization = Authorization> implements Authenticator<User> {
	/** The auth-scheme of the challenge, such as `Basic`. */
	abstract readonly scheme: string;
	/** The realm of the challenge, if any. */
	readonly realm: string | undefined;
	/**
	The header whose presence tells "credentials of another scheme" from "no credentials" when
	`getAuthorization` finds none (optional routes let only the second through).
	*/
	protected readonly credentialsHeader: string = 'authorization';
	readonly #authenticate: AuthenticateCallback<User, Credentials>;

	constructor(options: HttpAuthOptions<User, Credentials>) {
		const {authenticate, realm} = options;
		if (typeof authenticate !== 'function') {
			throw new TypeError(`The \`authenticate\` option must be a function, got ${typeof authenticate}.`);
		}

		if (realm !== undefined) {
			assertChallengeText(realm, 'realm');
		}

		this.#authenticate = authenticate;
		this.realm = realm;
	}

	/**
	Read the request's credentials for this scheme: the record, or `undefined` when it carries none.
	Throw `this.refusal()` for credentials of this scheme that cannot be read.
	*/
	abstract getAuthorization(ctx: Context): Credentials | undefined;

	/** The value of `WWW-Authenticate` on a refusal. */
	getAuthenticateHeader(): string {
		assertToken(this.scheme, 'scheme');
		return formatChallenge(this.scheme, {realm: this.realm});
	}

	/** The name of this scheme in an OpenAPI document's `components.securitySchemes`. */
	get securitySchemeName(): string {
		return `${this.scheme.toLowerCase()}Auth`;
	}

	/** This scheme as an OpenAPI Security Scheme Object. */
	get securityScheme(): SecuritySchemeObject {
		return {type: 'http', scheme: this.scheme.toLowerCase()};
	}

	authenticate(ctx: Context, options: LoaderOptions): AuthenticatorResult<User, undefined> | Promise<AuthenticatorResult<User, undefined>> {
		const credentials = this.getAuthorization(ctx);
		if (credentials === undefined) {
			return {ok: false, reason: readHeaderLines(ctx.req.rawHeaders, this.credentialsHeader) === undefined ? 'absent' : 'other-scheme'};
		}

		const user = this.#authenticate(credentials, ctx, options);
		return isPromiseLike(user) ? Promise.resolve(user).then(found => this.#accept(found)) : this.#accept(user);
	}

	challenge(): string {
		return this.getAuthenticateHeader();
	}

	missing(): StatelessAuthError {
		return this.refusal();
	}

	/** The one refusal of this scheme, whatever went wrong. */
	refusal(): StatelessAuthError {
		return new StatelessAuthError('Authentication required', 401, 'request', {reason: 'authentication_failed'});
	}

	#accept(user: User | Falsy): AuthenticatorResult<User, undefined> {
		// Any falsy answer refuses (`isKnown && user` answers false), whatever the types said.
		if (!user) {
			throw this.refusal();
		}

		return {ok: true, user, token: undefined};
	}
}
