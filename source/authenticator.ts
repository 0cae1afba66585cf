import type {Context} from 'koa';
import type {BearerErrorCode} from './challenge.js';

/**
What an authenticator found: a principal (with the record that proved it), or no credentials meant
for it. `'absent'` means the request carries none at all; `'other-scheme'` that it carries
credentials of another scheme.
*/
export type AuthenticatorResult<User, Token> =
	| {readonly ok: true; readonly user: User; readonly token: Token}
	| {readonly ok: false; readonly reason: 'absent' | 'other-scheme'};

/**
The contract every way of authenticating satisfies, so that a route can run one or several.

`authenticate` resolves the request's principal, or says that it carries no credentials for this
authenticator, or throws (or rejects with) a `StatelessAuthError` when credentials meant for it are
malformed or not accepted. It may answer synchronously (a scheme that needs no lookup). Anything else it throws is an internal failure: the guard answers a
generic 500 and keeps the error as the cause. `challenge` gives the `WWW-Authenticate` value to
send with a refusal.
*/
export type Authenticator<User, Token> = {
	readonly scheme: string;
	authenticate(ctx: Context): AuthenticatorResult<User, Token> | PromiseLike<AuthenticatorResult<User, Token>>;
	challenge(error?: BearerErrorCode): string;
};
