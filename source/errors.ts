import {isToken} from './authorization-header.js';

/**
What kind of failure a {@link StatelessAuthError} reports: `'request'` (the request carries no
usable credentials), `'token'` (credentials were read but not accepted), `'scope'` (authenticated,
but not allowed), `'server'` (an internal failure), or a string of the application's own.
*/
// `string & {}` keeps the literal suggestions in editors while allowing any string.
export type StatelessAuthErrorType = 'request' | 'token' | 'scope' | 'server' | (string & {});

/**
Why a request was refused, stable and machine-readable, so that an application can reword or
reshape any answer without matching message strings:

| reason | status | when |
|---|---|---|
| `missing_credentials` | 401 | no credentials for the route (a header API key's missing too) |
| `unsupported_scheme` | 401 | only credentials of another scheme |
| `malformed_credentials` | 400 | credentials that break their grammar, duplicate lines, too long, sent twice |
| `invalid_token` | 401 | unknown, revoked, of another type, or its user missing or inactive (one reason: rule 9) |
| `expired_token` | 401 | the record says it expired |
| `invalid_api_key` | 401 | an API key (header or `Token`) that is unknown or whose user is inactive |
| `authentication_failed` | 401 | every refusal of Basic and `HttpAuth` schemes (one reason, one answer: rule 18) |
| `insufficient_scope` | 403 | authenticated, but a permission is missing |
| `api_key_not_allowed` | 403 | a `Token` key on a route that does not take them |
| `request_refused` | other 4xx | a loader's own refusal with another status (429, say) |
| `internal_error` | 500 (and other 5xx) | a callback failed; the details are only on `app.emit('error')` |
| `service_unavailable` | 503 | a loader's own 503 |
| `loader_timeout` | 503 | the loaders did not settle within `loaderTimeout` |

An application's own `StatelessAuthError` may carry a reason of its own.
*/
export type RefusalReason =
	| 'missing_credentials'
	| 'unsupported_scheme'
	| 'malformed_credentials'
	| 'invalid_token'
	| 'expired_token'
	| 'invalid_api_key'
	| 'authentication_failed'
	| 'insufficient_scope'
	| 'api_key_not_allowed'
	| 'request_refused'
	| 'internal_error'
	| 'service_unavailable'
	| 'loader_timeout'
	// `string & {}` keeps the literal suggestions in editors while allowing any string.
	| (string & {});

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
	/**
	Why the request was refused (see {@link RefusalReason}).

	@default derived from the status and type: 400 `malformed_credentials`; 401 of type `request`
	`missing_credentials`, other 401 `invalid_token`; 403 `insufficient_scope`; 503
	`service_unavailable`, other 5xx `internal_error`; other 4xx `request_refused`
	*/
	readonly reason?: RefusalReason;
};

const brand = Symbol.for('koa-stateless-auth.StatelessAuthError');

function capitalise(value: string): string {
	return value.charAt(0).toUpperCase() + value.slice(1);
}

function assertStatus(code: unknown): asserts code is number {
	if (!Number.isInteger(code) || (code as number) < 400 || (code as number) > 599) {
		throw new TypeError(`A StatelessAuthError's code must be an HTTP error status from 400 to 599, got ${String(code)}.`);
	}
}

// What Node's `setHeader` accepts (its checkInvalidHeaderChar): tab, printable ASCII and obs-text.
// Anything else (CR, LF, NUL, a character above U+00FF) makes Node throw ERR_INVALID_CHAR, which
// inside Koa's own error handler would take the process down.
const headerValuePattern = /^[\t\x20-\x7E\x80-\xFF]*$/;

/** A frozen copy of `headers`, or a `TypeError` naming the first header Node would refuse. */
function copyHeaders(headers: unknown): Readonly<ErrorHeaders> {
	if (headers === undefined) {
		return emptyHeaders;
	}

	if (typeof headers !== 'object' || headers === null || Array.isArray(headers)) {
		throw new TypeError(`A StatelessAuthError's headers must be an object of header names and values, got ${typeof headers}.`);
	}

	const copy: ErrorHeaders = {};
	for (const [name, value] of Object.entries(headers)) {
		if (!isToken(name)) {
			throw new TypeError(`A StatelessAuthError's header name ${JSON.stringify(name)} is not an HTTP token.`);
		}

		const values: unknown[] = Array.isArray(value) ? value : [value];
		if (!values.every(item => typeof item === 'string' && headerValuePattern.test(item))) {
			throw new TypeError(`A StatelessAuthError's header "${name}" must be a string (or a list of strings) of printable Latin-1 without CR, LF or other control characters.`);
		}

		copy[name] = Array.isArray(value) ? Object.freeze([...value as string[]]) as string[] : value as string;
	}

	return Object.freeze(copy);
}

const emptyHeaders: Readonly<ErrorHeaders> = Object.freeze({});

function defaultReason(status: number, type: string): RefusalReason {
	switch (status) {
		case 400: {
			return 'malformed_credentials';
		}

		case 401: {
			return type === 'request' ? 'missing_credentials' : 'invalid_token';
		}

		case 403: {
			return 'insufficient_scope';
		}

		case 503: {
			return 'service_unavailable';
		}

		default: {
			return status >= 500 ? 'internal_error' : 'request_refused';
		}
	}
}

/**
The error every refusal of this library is, and the one a loader throws to refuse a request with a
message of its own.

It carries Koa's error contract (`status`, `expose`, `headers`), so Koa's default error handler
already answers with the right status, message and challenge; {@link authErrorHandler} turns it into
the application's JSON. Everything is checked when it is made: the status is an error status (and
stays one: assigning another throws), and each header is one Node can send.

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
	/** What kind of failure this is. */
	readonly type: StatelessAuthErrorType;
	/** Why the request was refused, stable and machine-readable: see {@link RefusalReason}. */
	readonly reason: RefusalReason;
	/** The capitalised type, `" error: "` and the message, such as `Token error: Invalid token`. Also `message`. */
	readonly fullMsg: string;
	/** Response headers, for Koa: a frozen object, checked when the error was made. */
	readonly headers: Readonly<ErrorHeaders>;
	#status: number;

	/**
	@param msg - The message, without its type.
	@param code - The HTTP status, an integer from 400 to 599.
	@param type - The kind of failure.
	*/
	constructor(msg: string, code = 401, type: StatelessAuthErrorType = 'token', options: StatelessAuthErrorOptions = {}) {
		assertStatus(code);
		if (typeof msg !== 'string' || typeof type !== 'string') {
			throw new TypeError(`A StatelessAuthError's msg and type must be strings, got ${typeof msg} and ${typeof type}.`);
		}

		const headers = copyHeaders((options as StatelessAuthErrorOptions | undefined)?.headers);
		const {reason = defaultReason(code, type)} = options;
		if (typeof reason !== 'string' || reason === '') {
			throw new TypeError(`A StatelessAuthError's reason must be a non-empty string, got ${JSON.stringify(reason)}.`);
		}

		const fullMsg = `${capitalise(type)} error: ${msg}`;
		super(fullMsg, 'cause' in options ? {cause: options.cause} : undefined);
		this.name = 'StatelessAuthError';
		this.msg = msg;
		this.type = type;
		this.reason = reason;
		this.fullMsg = fullMsg;
		this.#status = code;
		this.headers = headers;
	}

	/** The HTTP status code the error answers with, 400 to 599. */
	get code(): number {
		return this.#status;
	}

	/**
	The HTTP status code, for Koa; the same as `code`. Koa's error handler assigns it again; assigning
	anything but an HTTP error status (400 to 599) throws a `TypeError`, so a refusal can never leave
	with a success status.
	*/
	get status(): number {
		return this.#status;
	}

	set status(value: number) {
		assertStatus(value);
		this.#status = value;
	}

	/** Whether the message may be shown to a client (true below 500), for Koa. */
	get expose(): boolean {
		return this.#status < 500;
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
	noCredentials: () => new StatelessAuthError('No token provided', 401, 'request', {reason: 'missing_credentials'}),
	otherScheme: () => new StatelessAuthError('Invalid token type', 401, 'request', {reason: 'unsupported_scheme'}),
	/** The bearer wording for a request with no credentials for the route: none, or another scheme. */
	missing: (reason: 'absent' | 'other-scheme') => (reason === 'absent' ? refusals.noCredentials() : refusals.otherScheme()),
	malformed: (message = 'Malformed authorization header') => new StatelessAuthError(message, 400, 'request', {reason: 'malformed_credentials'}),
	invalidToken: () => new StatelessAuthError('Invalid token', 401, 'token', {reason: 'invalid_token'}),
	invalidApiKey: () => new StatelessAuthError('Invalid API key', 401, 'token', {reason: 'invalid_api_key'}),
	expired: (tokenType: string) => new StatelessAuthError(`${tokenType} token expired`, 401, 'token', {reason: 'expired_token'}),
	insufficientScope: () => new StatelessAuthError('Insufficient permissions', 403, 'scope', {reason: 'insufficient_scope'}),
	apiKeyNotAllowed: () => new StatelessAuthError('API keys are not accepted on this route', 403, 'scope', {reason: 'api_key_not_allowed'}),
	internal: (cause: unknown) => new StatelessAuthError('Internal server error', 500, 'server', {cause, reason: 'internal_error'}),
} as const;

/** The generic message of a 5xx: nothing of what went wrong reaches the client. */
function genericMessage(status: number): string {
	return status === 503 ? 'Service unavailable' : 'Internal server error';
}

// Answers this library made itself: already checked, never handed out before they were thrown.
const answers = new WeakSet<StatelessAuthError>();

function remember(error: StatelessAuthError): StatelessAuthError {
	answers.add(error);
	return error;
}

/**
The error to answer with for `thrown`, which may be anything an application threw, or an error of
ours that an application kept, shared or changed. Never the thrown object itself: a new
`StatelessAuthError` with its status, msg and type and the headers given (the route's challenge
added), so that an instance a loader shares between requests is never written to. A 5xx keeps only
its status and headers, with a generic message, and has the thrown error as its cause. Anything
that cannot be answered as it stands (not one of our errors, a status or header Koa or Node would
refuse, a property that throws when read) becomes a generic 500 whose cause it is.
*/
// Refusals whose cause the application must hear of (a corrupt store row): the guard emits the
// cause on app.emit('error'), while the client gets the plain refusal.
const reportable = new WeakSet<object>();

/**
A refusal as for an unknown credential (`refusal`, the same answer a client would get for one),
whose `cause`, what was wrong in the store, is emitted on the app.
*/
export function unknownAndReported(cause: Error, refusal: () => StatelessAuthError = refusals.invalidToken): StatelessAuthError {
	const {msg, code, type, reason, headers} = refusal();
	const error = new StatelessAuthError(msg, code, type, {reason, headers, cause});
	reportable.add(error);
	return error;
}

/** The cause to emit on the app for a refusal made by {@link unknownAndReported}, if it is one. */
export function reportedCause(thrown: unknown): unknown {
	return typeof thrown === 'object' && thrown !== null && reportable.has(thrown) ? (thrown as Error).cause : undefined;
}

/** Messages per reason, replacing the library's wording (the manager's `messages` option). */
export type Messages = Readonly<Partial<Record<RefusalReason, string>>>;

export function answerFor(
	thrown: unknown,
	challenge?: (status: number, type: string) => string | readonly string[] | undefined,
	messages?: Messages,
): StatelessAuthError {
	try {
		if (!isStatelessAuthError(thrown)) {
			return remember(refusals.internal(thrown));
		}

		const {status, msg, type, headers, reason} = thrown;
		assertStatus(status);
		const own = challenge?.(status, type);
		const reworded = messages?.[reason];
		if (own === undefined && reworded === undefined && answers.has(thrown)) {
			return thrown;
		}

		const withChallenge = own === undefined ? headers : {...headers, 'WWW-Authenticate': own as string | string[]};
		if (status >= 500) {
			const generic = answers.has(thrown) ? msg : genericMessage(status);
			const cause: unknown = answers.has(thrown) ? thrown.cause : thrown;
			return remember(new StatelessAuthError(reworded ?? generic, status, 'server', {cause, headers: withChallenge, reason}));
		}

		const cause: unknown = thrown.cause;
		return remember(new StatelessAuthError(reworded ?? msg, status, type, {headers: withChallenge, reason, ...(cause === undefined ? {} : {cause})}));
	} catch (problem) {
		// The thrown error could not be read or answered: a generic 500 that says why, on app.emit('error').
		const detail = problem instanceof Error ? problem.message : 'a property threw when read';
		return remember(refusals.internal(new TypeError(`A thrown StatelessAuthError could not be answered as it stands: ${detail}`, {cause: thrown})));
	}
}

/**
A 5xx this library answers with as it stands: the generic message of its status, `cause` what went
wrong (emitted on the app, never sent), and `headers` such as `Retry-After`. Passed through by the
middleware without another wrapping, so that `error.cause` on `app.on('error')` is what went wrong.
*/
export function serverFailure(status: number, reason: RefusalReason, cause: unknown, headers?: ErrorHeaders): StatelessAuthError {
	return remember(new StatelessAuthError(genericMessage(status), status, 'server', {reason, cause, ...(headers === undefined ? {} : {headers})}));
}

/**
The cause of the 503 a route answers when its loaders or callbacks have not settled within the
`loaderTimeout`; emitted on `app.on('error')`.
*/
export class LoaderTimeoutError extends Error {
	/** The timeout that passed, in milliseconds. */
	readonly timeout: number;

	constructor(timeout: number) {
		super(`koa-stateless-auth: a loader or authenticate callback did not settle within ${timeout} ms; the request was answered 503 and its late result will be discarded.`);
		this.name = 'LoaderTimeoutError';
		this.timeout = timeout;
	}
}

/** The 503 of a loader that did not settle in time, with `Retry-After` (whole seconds, at least 1). */
export function loaderTimedOut(timeout: number): StatelessAuthError {
	return remember(new StatelessAuthError(genericMessage(503), 503, 'server', {
		reason: 'loader_timeout',
		cause: new LoaderTimeoutError(timeout),
		headers: {'Retry-After': String(Math.max(1, Math.ceil(timeout / 1000)))},
	}));
}

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
