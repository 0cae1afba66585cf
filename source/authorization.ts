import type {Context} from 'koa';
import {parseAuthorizationHeader, readHeaderLines} from './authorization-header.js';

/**
What a request's credentials say, as Flask-APScheduler's `Authorization` record: the scheme
(`authType`, lower-cased) and the fields of that scheme, such as `username` and `password`.
*/
export type Authorization = {
	readonly authType: string;
	readonly [field: string]: unknown;
};

/**
The request's `Authorization` header as its lower-cased scheme and its credentials, or `undefined`
when the header is absent, malformed, or on several lines.

@example
```
getAuthorizationHeader(ctx);
//=> {scheme: 'basic', credentials: 'dXNlcjpwYXNz'}
```
*/
export function getAuthorizationHeader(ctx: Context, header = 'authorization'): {readonly scheme: string; readonly credentials: string} | undefined {
	const parsed = parseAuthorizationHeader(readHeaderLines(ctx.req.rawHeaders, header.toLowerCase()));
	return parsed.kind === 'credentials' ? {scheme: parsed.scheme.toLowerCase(), credentials: parsed.credentials} : undefined;
}
