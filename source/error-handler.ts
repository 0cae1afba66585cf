import type {Context, DefaultContext, DefaultState, Middleware, Next} from 'koa';
import {isStatelessAuthError, type StatelessAuthError} from './errors.js';

/** Options of {@link authErrorHandler}. */
export type AuthErrorHandlerOptions = {
	/**
	Makes the response body of a refusal; an object or array is sent as JSON. For a 5xx the error's
	message is the generic `Internal server error`, never the cause's.

	@default (error) => ({error: error.fullMsg})
	*/
	readonly format?: (error: StatelessAuthError, ctx: Context) => unknown;
};

function defaultFormat(error: StatelessAuthError): {error: string} {
	return {error: error.fullMsg};
}

/**
Middleware that turns every `StatelessAuthError` thrown below it into the application's own
response: the error's status, its headers (the `WWW-Authenticate` challenge) and `format(error, ctx)`
as the body. A 5xx is also emitted on `app.on('error')`, with its cause. Other errors pass through
untouched, to the application's own handling or Koa's.

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
		} catch (error) {
			if (!isStatelessAuthError(error) || ctx.headerSent) {
				throw error;
			}

			ctx.status = error.status;
			ctx.set(error.headers);
			ctx.body = format(error, ctx);
			if (error.status >= 500) {
				ctx.app.emit('error', error, ctx);
			}
		}
	};
}
