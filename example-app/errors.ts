import type Koa from 'koa';
import {bodyParser} from '@koa/bodyparser';
import {StatelessAuthError, isStatelessAuthError} from 'koa-stateless-auth';

// How the example app answers and logs failures:
// - every error answer is JSON: `{"error": {"type", "message"}}`, or on the token endpoints
//   `{"error": "invalid_grant", "error_description": "..."}` (RFC 6749 §5.2);
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

const parser = bodyParser({
	enableTypes: ['json', 'form'],
	jsonLimit: bodyLimit,
	formLimit: bodyLimit,
	onError(error) {
		throw bodyFailure(error) ?? error;
	},
});

/**
Parses a JSON or form (`application/x-www-form-urlencoded`) body into `ctx.request.body`, on the
routes that read one. Bodies are UTF-8 (RFC 8259 §8.1): another charset is a 415.
*/
export const parseBody: Koa.Middleware = async (ctx, next) => {
	const charset = ctx.request.charset.toLowerCase();
	if (charset !== '' && charset !== 'utf-8' && charset !== 'utf8') {
		throw new RequestBodyError(415, 'charset.unsupported', 'Request body must be UTF-8');
	}

	await parser(ctx, next);
};

// Requests to an OAuth 2.0 token endpoint, answered in OAuth's error shape.
const tokenEndpointRequests = new WeakSet<Koa.Context>();

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

/** The body of an error answer: the app's own shape, or OAuth's on the token endpoints. */
export function errorBody(ctx: Koa.Context, status: number, type: string, message: string): unknown {
	return tokenEndpointRequests.has(ctx)
		? {error: oauthErrorCode(status, type), error_description: message}
		: {error: {type, message}};
}

/**
Marks a route as an OAuth 2.0 token endpoint (RFC 6749 §5): nothing it answers is cached
(`Cache-Control: no-store`, `Pragma: no-cache`), and its refusals are 400s in OAuth's error shape,
`invalid_grant` or `invalid_request`, without a `WWW-Authenticate` challenge (a refresh token is a
grant here, not a credential for a resource).
*/
export const tokenEndpoint: Koa.Middleware = async (ctx, next) => {
	tokenEndpointRequests.add(ctx);
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
		ctx.body = errorBody(ctx, status, known ? 'request' : 'server', known?.message ?? 'Internal server error');
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
