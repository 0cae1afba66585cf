import type {Context, DefaultContext, DefaultState, Middleware, Next} from 'koa';
import {answerFor, isStatelessAuthError, type StatelessAuthError} from './errors.js';

/** Options of {@link authErrorHandler}. */
export type AuthErrorHandlerOptions = {
	/**
	Makes the response body of a refusal; an object or array is sent as JSON. For a 5xx it is handed
	the generic error (`Internal server error`, or `Service unavailable` for a 503), never the
	message of what went wrong, which is only its `cause`.

	@default (error) => ({error: error.fullMsg})
	*/
	readonly format?: (error: StatelessAuthError, ctx: Context) => unknown;
};

function isAuthError(value: unknown): boolean {
	try {
		return isStatelessAuthError(value);
	} catch {
		// A Proxy whose `has` trap throws: not ours to answer.
		return false;
	}
}

function defaultFormat(error: StatelessAuthError): {error: string} {
	return {error: error.fullMsg};
}

/**
Middleware that turns every `StatelessAuthError` thrown below it into the application's own
response: the error's status, its headers (the `WWW-Authenticate` challenge) and `format(error, ctx)`
as the body. A 5xx is answered with a generic message and emitted on `app.on('error')`, with what
went wrong as its cause; an error that cannot be answered as it stands (a foreign object carrying
the brand with a success status or a header Node refuses) is a generic 500. Other errors pass
through untouched, to the application's own handling or Koa's.

@example
```
app.use(authErrorHandler({format: (error, ctx) => ({error: error.fullMsg, path: ctx.path})}));
```
*/
export function authErrorHandler(options: AuthErrorHandlerOptions = {}): Middleware<DefaultState, DefaultContext, unknown> {
	const {format = defaultFormat} = options;
	if (typeof format !== 'function') {
		throw new TypeError(`The \`format\` option must be a function, got ${typeof format}.`);
	}

	return async function authErrorHandler(ctx: Context, next: Next) {
		try {
			await next();
		} catch (thrown) {
			if (ctx.headerSent || !isAuthError(thrown)) {
				throw thrown;
			}

			const error = answerFor(thrown);
			ctx.status = error.status;
			ctx.set(error.headers);
			ctx.body = format(error, ctx);
			if (error.status >= 500) {
				ctx.app.emit('error', error, ctx);
			}
		}
	};
}
