/**
What kind of failure a {@link StatelessAuthError} reports: `'request'` (the request carries no
usable credentials), `'token'` (credentials were read but not accepted), `'scope'` (authenticated,
but not allowed), `'server'` (an internal failure), or a string of the application's own.
*/
// `string & {}` keeps the literal suggestions in editors while allowing any string.
export type StatelessAuthErrorType = 'request' | 'token' | 'scope' | 'server' | (string & {});

/** Response headers an error carries, in the form Koa's `ctx.set()` takes. */
export type ErrorHeaders = Record<string, string | string[]>;

/** Options of the {@link StatelessAuthError} constructor. */
export type StatelessAuthErrorOptions = {
	/** The error that led to this one; reported on `app.emit('error')`, never sent to a client. */
	readonly cause?: unknown;
	/**
	Response headers to send with the error. The middleware sets `WWW-Authenticate` itself.

	@default {}
	*/
	readonly headers?: ErrorHeaders;
};

const brand = Symbol.for('koa-stateless-auth.StatelessAuthError');

function capitalise(value: string): string {
	return value.charAt(0).toUpperCase() + value.slice(1);
}

/**
The error every refusal of this library is, and the one a loader throws to refuse a request with a
message of its own.

It carries Koa's error contract (`status`, `expose`, `headers`), so Koa's default error handler
already answers with the right status, message and challenge; {@link authErrorHandler} turns it into
the application's JSON.

@example
```
auth.tokenLoader(async token => {
	const record = await db.findToken(token);
	if (record?.revoked) {
		throw new StatelessAuthError('Token revoked', 401, 'token');
	}

	return record;
});
```
*/
export class StatelessAuthError extends Error {
	/** The message without its type, such as `Invalid token`. */
	readonly msg: string;
	/** The HTTP status code the error answers with, 400 to 599. */
	readonly code: number;
	/** What kind of failure this is. */
	readonly type: StatelessAuthErrorType;
	/** The capitalised type, `" error: "` and the message, such as `Token error: Invalid token`. Also `message`. */
	readonly fullMsg: string;
	/** The HTTP status code, for Koa; the same as `code`. */
	status: number;
	/** Whether the message may be shown to a client (true below 500), for Koa. */
	readonly expose: boolean;
	/** Response headers, for Koa; holds the `WWW-Authenticate` challenge of the route once refused. */
	headers: ErrorHeaders;

	/**
	@param msg - The message, without its type.
	@param code - The HTTP status, an integer from 400 to 599.
	@param type - The kind of failure.
	*/
	constructor(msg: string, code = 401, type: StatelessAuthErrorType = 'token', options: StatelessAuthErrorOptions = {}) {
		if (!Number.isInteger(code) || code < 400 || code > 599) {
			throw new TypeError(`A StatelessAuthError's code must be an HTTP error status from 400 to 599, got ${String(code)}.`);
		}

		const fullMsg = `${capitalise(type)} error: ${msg}`;
		super(fullMsg, 'cause' in options ? {cause: options.cause} : undefined);
		this.name = 'StatelessAuthError';
		this.msg = msg;
		this.code = code;
		this.type = type;
		this.fullMsg = fullMsg;
		this.status = code;
		this.expose = code < 500;
		this.headers = {...options.headers};
	}

	/** Recognises errors of this class, also those made by another copy of this package. */
	static override [Symbol.hasInstance](value: unknown): boolean {
		if (this !== StatelessAuthError) {
			// A subclass: ordinary prototype-chain semantics.
			return Function.prototype[Symbol.hasInstance].call(this, value);
		}

		return typeof value === 'object' && value !== null && brand in value;
	}
}

Object.defineProperty(StatelessAuthError.prototype, brand, {value: true});

/**
Whether `value` is a {@link StatelessAuthError}, also one made by another copy of this package.
*/
export function isStatelessAuthError(value: unknown): value is StatelessAuthError {
	return value instanceof StatelessAuthError;
}

// The refusals of the bearer path, one factory each, so that their wording lives in one place.
export const refusals = {
	noCredentials: () => new StatelessAuthError('No token provided', 401, 'request'),
	otherScheme: () => new StatelessAuthError('Invalid token type', 401, 'request'),
	/** The bearer wording for a request with no credentials for the route: none, or another scheme. */
	missing: (reason: 'absent' | 'other-scheme') => (reason === 'absent' ? refusals.noCredentials() : refusals.otherScheme()),
	malformed: () => new StatelessAuthError('Malformed authorization header', 400, 'request'),
	invalidToken: () => new StatelessAuthError('Invalid token', 401, 'token'),
	expired: (tokenType: string) => new StatelessAuthError(`${tokenType} token expired`, 401, 'token'),
	internal: (cause: unknown) => new StatelessAuthError('Internal server error', 500, 'server', {cause}),
} as const;

/**
A mistake in how the application set the library up (a loader never registered, no manager on the
app). It is not a refusal: it passes through the guard and the error middleware to Koa's own 500,
and its message, emitted on `app.on('error')`, says how to fix it.
*/
export class ConfigurationError extends Error {
	constructor(message: string) {
		super(`koa-stateless-auth: ${message}`);
		this.name = 'ConfigurationError';
	}
}
