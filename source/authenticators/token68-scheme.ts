import type {Context} from 'koa';
import {equalsIgnoreAsciiCase, parseAuthorizationHeader, readHeaderLines, token68Source} from '../authorization-header.js';
import type {NoCredentials} from '../authenticator.js';

/** No credentials for this scheme, as the authenticator's result; shared, since it never changes. */
export type Missing = {readonly ok: false; readonly reason: NoCredentials};
const absent: Missing = Object.freeze({ok: false, reason: 'absent'});
const otherScheme: Missing = Object.freeze({ok: false, reason: 'other-scheme'});
import {refusals} from '../errors.js';

export type Token68SchemeSettings = {
	/** The request header, lower-cased. */
	readonly lowerCaseHeader: string;
	/** The auth-scheme, as configured. */
	readonly scheme: string;
	readonly maxLength: number;
};

/**
A reader of `<scheme> <token68>` from one header (Bearer, `Token`): the credentials, or why there
are none for this scheme; a malformed value of this scheme throws the 400.
*/
export function createToken68Reader({lowerCaseHeader, scheme, maxLength}: Token68SchemeSettings): (ctx: Context) => string | Missing {
	const lowerCaseScheme = scheme.toLowerCase();
	const parseOptions = {maxLength};
	// The common case, a well-formed value of our scheme, in one regex; anything else goes to the
	// parser, which decides what it is. Plain `i`, not `iu`: no non-ASCII letter folds into ASCII.
	const escapedScheme = scheme.replaceAll(/[^A-Za-z\d]/g, String.raw`\$&`);
	const wellFormed = new RegExp(`^${escapedScheme} +(${token68Source})$`, 'i');

	return function readToken68(ctx: Context): string | Missing {
		const value = readHeaderLines(ctx.req.rawHeaders, lowerCaseHeader);
		if (typeof value === 'string') {
			const credentials = wellFormed.exec(value)?.[1];
			if (credentials !== undefined && credentials.length <= maxLength) {
				return credentials;
			}
		}

		const parsed = parseAuthorizationHeader(value, parseOptions);
		if (parsed.kind === 'absent') {
			return absent;
		}

		// Another scheme is not ours to judge, whatever its syntax; duplicate lines are always wrong.
		if (parsed.kind === 'malformed' && parsed.reason === 'duplicate') {
			throw refusals.malformed();
		}

		if (parsed.scheme === undefined || !equalsIgnoreAsciiCase(parsed.scheme, lowerCaseScheme)) {
			return otherScheme;
		}

		if (parsed.kind === 'malformed') {
			throw refusals.malformed();
		}

		return parsed.credentials;
	};
}
