import type {Context} from 'koa';
import {equalsIgnoreAsciiCase, parseAuthorizationHeader, readHeaderLines} from '../authorization-header.js';
import type {Authenticator, AuthenticatorResult, LoaderOptions} from '../authenticator.js';
import {isPromiseLike} from '../promise-like.js';
import {refusals} from '../errors.js';
import {checkUser, createToken68Challenges, missingLoader, type ApiKeyLoader, type Falsy} from './bearer.js';
import {createToken68Reader} from './token68-scheme.js';

export type TokenKeySettings = {
	readonly lowerCaseHeader: string;
	readonly realm: string | undefined;
	readonly maxTokenLength: number;
};

const scheme = 'Token';

/**
`Authorization: Token KEY` (Django REST framework's convention, frappyflaskauth's API keys): the
same grammar as Bearer, resolved to a user by the manager's `apiKeyLoader`.
*/
export function createTokenKeyAuthenticator<User>(
	{lowerCaseHeader, realm, maxTokenLength}: TokenKeySettings,
	loaders: {readonly apiKeyLoader: ApiKeyLoader<User> | undefined},
): Authenticator<User> {
	const read = createToken68Reader({lowerCaseHeader, scheme, maxLength: maxTokenLength});

	async function resolve(pending: PromiseLike<User | Falsy>): Promise<AuthenticatorResult<User, undefined>> {
		return {ok: true, user: checkUser(await pending, 'apiKeyLoader'), token: undefined};
	}

	return {
		securitySchemeName: 'tokenAuth',
		securityScheme: {type: 'apiKey', in: 'header', name: 'Authorization', description: 'Authorization: Token <key>'},
		authenticate(ctx: Context, options: LoaderOptions) {
			const key = read(ctx);
			if (typeof key !== 'string') {
				return key;
			}

			const {apiKeyLoader} = loaders;
			if (apiKeyLoader === undefined) {
				throw missingLoader('apiKeyLoader');
			}

			const user = apiKeyLoader(key, options);
			return isPromiseLike(user) ? resolve(user) : {ok: true, user: checkUser(user, 'apiKeyLoader'), token: undefined};
		},
		challenge: createToken68Challenges(scheme, realm),
		missing: refusals.missing,
	};
}

/**
For a required route whose authenticators found no credentials they take, while the application
has an `apiKeyLoader`: a `Token` key is a 403 that says so, rather than "Invalid token type". A
route that takes `Token` keys never gets here with one: its authenticator judged it already.
*/
export function refuseTokenKeys(lowerCaseHeader: string, loaders: {readonly apiKeyLoader: unknown}): (ctx: Context) => void {
	return function refuseTokenKey(ctx: Context): void {
		if (loaders.apiKeyLoader !== undefined) {
			const parsed = parseAuthorizationHeader(readHeaderLines(ctx.req.rawHeaders, lowerCaseHeader));
			if (parsed.kind !== 'absent' && parsed.scheme !== undefined && equalsIgnoreAsciiCase(parsed.scheme, 'token')) {
				throw refusals.apiKeyNotAllowed();
			}
		}
	};
}
