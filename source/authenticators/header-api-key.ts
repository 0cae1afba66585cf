import type {Context} from 'koa';
import {readHeaderLines} from '../authorization-header.js';
import type {Authenticator, AuthenticatorResult, SecuritySchemeObject} from '../authenticator.js';
import {assertChallengeText, assertToken, formatChallenge} from '../challenge.js';
import {refusals, StatelessAuthError, unknownAndReported} from '../errors.js';
import {TokenService} from '../tokens/service.js';
import {digestSecret, findDigest} from '../secrets.js';

/** Options of {@link HeaderApiKeyAuthenticator}. */
export type HeaderApiKeyOptions = {
	/**
	The request header that carries the key, matched case-insensitively.

	@default 'X-API-Key'
	*/
	readonly header?: string;
	/**
	The `realm` of the challenge; printable ASCII.

	@default undefined
	*/
	readonly realm?: string;
	/**
	The name of the scheme in an OpenAPI document.

	@default 'apiKeyAuth'
	*/
	readonly securitySchemeName?: string;
	/**
	The longest key accepted, in characters.

	@default 4096
	*/
	readonly maxKeyLength?: number;
	/**
	Also accept the API keys of a {@link TokenService} (`tokens.issue(userId, 'api_key', {name})`),
	looked up by digest with their expiry and last use; their principal is
	`{appName: <name>, userId}`. Keys registered with `registerKey` are checked first, in memory.

	@default undefined
	*/
	readonly keys?: TokenService;
};

/**
What a header API key authenticates: the application the key was registered (or issued) for, and
for a key of a token service, the user who owns it.
*/
export type ApiKeyPrincipal = {
	readonly appName: string;
	readonly userId?: string;
};

// On ctx.state under a symbol, not in a WeakMap keyed by context: a WeakMap entry per request
// made the garbage collector's work measurable in the benchmark.
const appNameKey = Symbol('koa-stateless-auth.appName');

/**
The application name a header API key authenticated on this request, or `undefined` when the
request was not authenticated by one.
*/
export function authenticatedAppName(ctx: Context): string | undefined {
	return (ctx.state as Record<symbol, string | undefined>)[appNameKey];
}

/**
Machine-to-machine keys in a header of their own (Flask-Rebar's `HeaderApiKeyAuthenticator`):
several keys per application, so that a key can be rotated without downtime, and revocation. Only
SHA-256 digests of the keys are kept, and a request's key is compared with every one of them in
constant time, with no early exit. The principal on `ctx.state` is `{appName}`.

@example
```
const machines = new HeaderApiKeyAuthenticator({header: 'X-MyApp-ApiKey'});
machines.registerKey(process.env.BILLING_KEY, 'billing');
router.post('/m2m/invoices', auth.protect({authenticators: [machines]}), ctx => {
	ctx.body = {caller: authenticatedAppName(ctx)};
});
```
*/
export class HeaderApiKeyAuthenticator implements Authenticator<ApiKeyPrincipal> {
	readonly securitySchemeName: string;
	readonly securityScheme: SecuritySchemeObject;
	readonly #lowerCaseHeader: string;
	readonly #maxKeyLength: number;
	readonly #challenge: string;
	readonly #keys: TokenService | undefined;
	#digests: Buffer[] = [];
	#names: string[] = [];

	constructor(options: HeaderApiKeyOptions = {}) {
		const {header = 'X-API-Key', realm, securitySchemeName = 'apiKeyAuth', maxKeyLength = 4096, keys} = options;
		if (keys !== undefined && !(keys instanceof TokenService)) {
			throw new TypeError('The `keys` option must be a TokenService.');
		}

		this.#keys = keys;
		assertToken(header, 'header');
		if (realm !== undefined) {
			assertChallengeText(realm, 'realm');
		}

		if (!Number.isSafeInteger(maxKeyLength) || maxKeyLength < 1) {
			throw new TypeError(`The \`maxKeyLength\` option must be a positive integer, got ${String(maxKeyLength)}.`);
		}

		this.#lowerCaseHeader = header.toLowerCase();
		this.#maxKeyLength = maxKeyLength;
		this.#challenge = formatChallenge('ApiKey', {realm, header});
		this.securitySchemeName = securitySchemeName;
		this.securityScheme = {type: 'apiKey', in: 'header', name: header};
	}

	/**
	Accept `key` for `appName`. An application may have several keys at once (rotate by
	registering the new key, then revoking the old one); registering a key again moves it.
	*/
	registerKey(key: string, appName = 'default'): this {
		if (typeof key !== 'string' || key.trim() !== key || key === '' || key.length > this.#maxKeyLength) {
			throw new TypeError('registerKey() takes a non-empty key without surrounding whitespace, within maxKeyLength.');
		}

		if (typeof appName !== 'string' || appName === '') {
			throw new TypeError('registerKey() takes a non-empty application name.');
		}

		this.revokeKey(key);
		this.#digests = [...this.#digests, digestSecret(key)];
		this.#names = [...this.#names, appName];
		return this;
	}

	/** Stop accepting `key`; answers whether it was registered. */
	revokeKey(key: string): boolean {
		const index = findDigest(digestSecret(key), this.#digests);
		if (index === -1) {
			return false;
		}

		this.#digests = this.#digests.filter((_, at) => at !== index);
		this.#names = this.#names.filter((_, at) => at !== index);
		return true;
	}

	authenticate(ctx: Context): AuthenticatorResult<ApiKeyPrincipal, undefined> | Promise<AuthenticatorResult<ApiKeyPrincipal, undefined>> {
		const value = readHeaderLines(ctx.req.rawHeaders, this.#lowerCaseHeader);
		if (value === undefined || value === '') {
			return {ok: false, reason: 'absent'};
		}

		if (typeof value !== 'string') {
			throw refusals.malformed('Malformed API key header');
		}

		// Node has trimmed the value; an over-long one is refused before it is hashed.
		const index = value.length > this.#maxKeyLength ? -1 : findDigest(digestSecret(value), this.#digests);
		const appName = this.#names[index];
		if (appName === undefined) {
			if (this.#keys !== undefined && value.length <= this.#maxKeyLength) {
				return this.#fromService(ctx, this.#keys, value);
			}

			throw refusals.invalidApiKey();
		}

		(ctx.state as Record<symbol, string>)[appNameKey] = appName;
		return {ok: true, user: {appName}, token: undefined};
	}

	async #fromService(ctx: Context, keys: TokenService, value: string): Promise<AuthenticatorResult<ApiKeyPrincipal, undefined>> {
		const result = await keys.verify(value, 'api_key');
		if (!result.valid) {
			throw result.reason === 'corrupt' ? unknownAndReported(result.error, refusals.invalidApiKey) : refusals.invalidApiKey();
		}

		const appName = result.record.name ?? 'default';
		(ctx.state as Record<symbol, string>)[appNameKey] = appName;
		return {ok: true, user: {appName, userId: result.record.userId}, token: undefined};
	}

	challenge(): string {
		return this.#challenge;
	}

	missing(): StatelessAuthError {
		return new StatelessAuthError('No API key provided', 401, 'request', {reason: 'missing_credentials'});
	}
}
