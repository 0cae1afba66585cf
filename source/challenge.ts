import {isToken} from './authorization-header.js';

/*
RFC 9110 §11.3 and §5.6.4:
	challenge     = auth-scheme [ 1*SP ( token68 / #auth-param ) ]
	auth-param    = token BWS "=" BWS ( token / quoted-string )
	quoted-string = DQUOTE *( qdtext / quoted-pair ) DQUOTE
	qdtext        = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text
	quoted-pair   = "\" ( HTAB / SP / VCHAR / obs-text )
We write every parameter as a quoted-string, escaping `"` and `\`, and accept only printable
ASCII and spaces so that a header value can never be split or smuggled.
*/
const printableAsciiPattern = /^[\x20-\x7E]*$/;

/** The `error` codes of RFC 6750 §3.1. */
export type BearerErrorCode = 'invalid_request' | 'invalid_token' | 'insufficient_scope';

/**
Throw a `TypeError` naming the option unless `value` is an HTTP token (a scheme or header name).
*/
export function assertToken(value: unknown, option: string): asserts value is string {
	if (typeof value !== 'string' || !isToken(value)) {
		throw new TypeError(`The \`${option}\` option must be an HTTP token such as "Bearer", got ${JSON.stringify(value)}.`);
	}
}

/**
Throw a `TypeError` naming the option unless `value` can stand in a quoted-string of a challenge:
printable ASCII and spaces only, no control characters.
*/
export function assertChallengeText(value: unknown, option: string): asserts value is string {
	if (typeof value !== 'string' || !printableAsciiPattern.test(value)) {
		throw new TypeError(`The \`${option}\` option must be printable ASCII without control characters, got ${JSON.stringify(value)}.`);
	}
}

function quote(value: string): string {
	return `"${value.replaceAll(/["\\]/g, String.raw`\$&`)}"`;
}

/**
Build one `WWW-Authenticate` challenge: the scheme, then each defined parameter as a quoted-string,
in the order given.

@example
```
formatChallenge('Bearer', {realm: 'api', error: 'invalid_token'});
//=> 'Bearer realm="api", error="invalid_token"'
```
*/
export function formatChallenge(scheme: string, parameters: Readonly<Record<string, string | undefined>> = {}): string {
	const pairs: string[] = [];
	for (const [name, value] of Object.entries(parameters)) {
		if (value !== undefined) {
			pairs.push(`${name}=${quote(value)}`);
		}
	}

	return pairs.length === 0 ? scheme : `${scheme} ${pairs.join(', ')}`;
}
