import type Koa from 'koa';
import {bodyParser} from '@koa/bodyparser';
import {StatelessAuthError, isStatelessAuthError} from 'koa-stateless-auth';

// How the example app answers and logs failures:
// - every error answer is JSON, in one of three shapes by route:
//   - the token endpoints (log in, refresh, revoke): RFC 6749 §5.2,
//     `{"error": "invalid_grant", "error_description": "..."}`;
//   - the rest of the account API (`/api/user/...`, and the sign-up, `POST /user`): the account
//     routes' own shape, `{"error": code, "error_description": "...", "field"?: name}`, for the
//     refusals of the guards and the body parser too, so that a client of that API sees one shape;
//   - the app's other routes: `{"error": {"type", "message"}}`;
// - a request body that cannot be read is a 4xx with a fixed message, never the parser's, which
//   quotes the body;
// - the log gets one summary line per failure (status, method, path, error names and codes), never
//   an error's message, a body, a header, a token or a password.

/** A request body the app could not read. It holds nothing of the body, only what went wrong. */
export class RequestBodyError extends Error {
	readonly status: number;
	/** What went wrong, as body-parser names it: `entity.parse.failed`, `entity.too.large`, … */
	readonly code: string;
	readonly expose = true;

	constructor(status: number, code: string, message: string) {
		super(message);
		this.name = 'RequestBodyError';
		this.status = status;
		this.code = code;
	}
}

/** The largest request body accepted: a login is well under 2 KB. */
export const bodyLimit = '16kb';

function readProperty(value: unknown, key: string): unknown {
	try {
		return typeof value === 'object' && value !== null ? (value as Record<string, unknown>)[key] : undefined;
	} catch {
		return undefined;
	}
}

/**
The answer to a body the parser refused, or `undefined` when the failure is not the client's (the
parser's own 5xx, which the error boundary answers as a 500). The parser's error carries the body
(`err.body`) and a message that may quote it: neither is kept.
*/
function bodyFailure(error: unknown): RequestBodyError | undefined {
	const status = readProperty(error, 'status');
	const type = readProperty(error, 'type');
	const code = readProperty(error, 'code');
	if (error instanceof SyntaxError) {
		return new RequestBodyError(400, 'entity.parse.failed', 'Request body is not valid JSON');
	}

	if (status === 413) {
		return new RequestBodyError(413, 'entity.too.large', `Request body is larger than ${bodyLimit}`);
	}

	if (status === 415) {
		return new RequestBodyError(415, 'encoding.unsupported', 'Content-Encoding is not supported');
	}

	if (typeof code === 'string' && code.startsWith('Z_')) {
		// zlib could not inflate a body sent with Content-Encoding: gzip, deflate or br.
		return new RequestBodyError(400, 'encoding.invalid', 'Request body could not be decompressed');
	}

	if (typeof status === 'number' && status >= 400 && status < 500) {
		// `request.aborted`, `request.size.invalid` (the body did not match its Content-Length), …
		return new RequestBodyError(status, typeof type === 'string' && /^[a-z]+(?:\.[a-z]+)+$/.test(type) ? type : 'body.unreadable', 'Request body could not be read');
	}

	return undefined;
}

/** The body types the app reads: JSON, and forms (`application/x-www-form-urlencoded`). */
export type BodyType = 'json' | 'form';

const mediaTypes: Readonly<Record<BodyType, string>> = {json: 'application/json', form: 'application/x-www-form-urlencoded'};

const parsers = {
	json: bodyParser({enableTypes: ['json'], jsonLimit: bodyLimit, onError: refuseBody}),
	form: bodyParser({enableTypes: ['form'], formLimit: bodyLimit, onError: refuseBody}),
};

function refuseBody(error: Error): never {
	throw bodyFailure(error) ?? error;
}

/**
Parses a body of one of `types` into `ctx.request.body`, within {@link bodyLimit}, inflating a
gzip, deflate or br `Content-Encoding`. Bodies are UTF-8 (RFC 8259 §8.1): another charset is a 415.
A body of another type is left unread, for the route to refuse (the account routes answer 415).
*/
export function parseBody(types: readonly BodyType[]): Koa.Middleware {
	return async (ctx, next) => {
		const charset = ctx.request.charset.toLowerCase();
		if (charset !== '' && charset !== 'utf-8' && charset !== 'utf8') {
			throw new RequestBodyError(415, 'charset.unsupported', 'Request body must be UTF-8');
		}

		const type = types.find(candidate => typeof ctx.request.is(mediaTypes[candidate]) === 'string');
		await (type === undefined ? next() : parsers[type](ctx, next));
	};
}

/** Which error shape a request is answered in; the app's own, `{error: {type, message}}`, when unmarked. */
const shapes = new WeakMap<Koa.Context, 'oauth' | 'accounts'>();

const oauthErrorCodes = new Set(['invalid_request', 'invalid_client', 'invalid_grant', 'unauthorized_client', 'unsupported_grant_type', 'invalid_scope']);

function oauthErrorCode(status: number, type: string): string {
	if (oauthErrorCodes.has(type)) {
		return type;
	}

	if (status >= 500) {
		return status === 503 ? 'temporarily_unavailable' : 'server_error';
	}

	// The library's `token` refusals (unknown, expired, revoked, inactive user) are an invalid
	// grant at a token endpoint; everything else is a request the endpoint could not use.
	return type === 'token' ? 'invalid_grant' : 'invalid_request';
}

/** What went wrong, for the error body: the library's refusals carry their `reason`. */
export type ErrorInfo = {
	readonly status: number;
	readonly type: string;
	readonly message: string;
	/** A stable code: a `StatelessAuthError`'s reason (`invalid_token`, `insufficient_scope`, …). */
	readonly reason?: string;
};

function accountsErrorCode({status, reason}: ErrorInfo): string {
	if (reason !== undefined) {
		return reason;
	}

	if (status >= 500) {
		return status === 503 ? 'service_unavailable' : 'internal_error';
	}

	return 'invalid_request';
}

/** The body of an error answer, in the shape of the request's route. */
export function errorBody(ctx: Koa.Context, error: ErrorInfo): unknown {
	switch (shapes.get(ctx)) {
		case 'oauth': {
			return {error: oauthErrorCode(error.status, error.type), error_description: error.message};
		}

		case 'accounts': {
			return {error: accountsErrorCode(error), error_description: error.message};
		}

		default: {
			return {error: {type: error.type, message: error.message}};
		}
	}
}

/**
Marks a route as part of the account API: the errors that its own code does not answer (the guards'
401 and 403, an unreadable body, a 5xx) are answered in the account routes' shape,
`{"error": code, "error_description": message}`, the code being the refusal's reason.
*/
export const accountsEndpoint: Koa.Middleware = async (ctx, next) => {
	shapes.set(ctx, 'accounts');
	await next();
};

/**
Marks a route as an OAuth 2.0 token endpoint (RFC 6749 §5): nothing it answers is cached
(`Cache-Control: no-store`, `Pragma: no-cache`), and its refusals are 400s in OAuth's error shape,
`invalid_grant` or `invalid_request`, without a `WWW-Authenticate` challenge (a refresh token is a
grant here, not a credential for a resource).
*/
export const tokenEndpoint: Koa.Middleware = async (ctx, next) => {
	shapes.set(ctx, 'oauth');
	ctx.set({'Cache-Control': 'no-store', Pragma: 'no-cache'});
	try {
		await next();
	} catch (error) {
		if (isStatelessAuthError(error) && (error.status === 400 || error.status === 401 || error.status === 403)) {
			throw new StatelessAuthError(error.msg, 400, oauthErrorCode(error.status, error.type));
		}

		throw error;
	}
};

/**
The outermost middleware: answers what no one else did. An unreadable body is its 4xx; anything
else is a generic 500 (the error goes to `app.on('error')`, never to the client).
*/
export const errorBoundary: Koa.Middleware = async (ctx, next) => {
	try {
		await next();
	} catch (error) {
		if (ctx.headerSent) {
			throw error;
		}

		const known = error instanceof RequestBodyError ? error : undefined;
		const status = known?.status ?? 500;
		ctx.status = status;
		ctx.body = errorBody(ctx, known ? {status, type: 'request', message: known.message} : {status, type: 'server', message: 'Internal server error'});
		ctx.app.emit('error', error, ctx);
	}
};

function errorName(value: unknown): string {
	if (typeof value !== 'object' || value === null) {
		// A thrown string or number could be anything the code had at hand: only its type is logged.
		return `thrown ${typeof value}`;
	}

	const name = readProperty(value, 'name');
	const code = readProperty(value, 'code');
	// Only shapes that cannot hold a token or a password: `SqliteError`, `SQLITE_BUSY`, `entity.too.large`.
	const safeName = typeof name === 'string' && /^[A-Z][A-Za-z\d]{0,60}Error$/.test(name) ? name : 'Error';
	const safeCode = typeof code === 'string' && /^(?:[A-Z][A-Z\d_]{0,63}|[a-z]+(?:\.[a-z]+)+)$/.test(code) ? code : undefined;
	return safeCode === undefined ? safeName : `${safeName}(${safeCode})`;
}

/**
One line about a failed request, safe to log: its status, method and path (no query string), and
the names and codes of the error and its causes. Never a message, a body, a header, a token or a
password: messages of parsers and drivers quote their input, and a loader's error may hold anything.
*/
export function errorSummary(error: unknown, ctx: Koa.Context | undefined): string {
	const chain: string[] = [];
	let current: unknown = error;
	for (let depth = 0; depth < 5 && current !== undefined && current !== null; depth++) {
		chain.push(errorName(current));
		current = readProperty(current, 'cause');
	}

	const status = readProperty(error, 'status');
	return `request failed ${JSON.stringify({
		status: typeof status === 'number' && Number.isInteger(status) ? status : 500,
		method: ctx?.method,
		path: ctx?.path.slice(0, 200),
		error: chain.join(' <- '),
	})}`;
}
