/**
Why a value of an `Authorization` header could not be read as `<scheme> <token68>`.

- `duplicate`: the request carried the header on more than one line (RFC 9110 §5.3).
- `invalid-scheme`: the value does not start with an auth-scheme token.
- `missing-credentials`: a scheme with nothing after it (`Bearer`).
- `tab-separator`: the scheme is followed by a tab; only spaces may separate it (RFC 9110 §11.4).
- `invalid-syntax`: the scheme is followed by a character that is neither a space nor part of a token.
- `too-long`: the credentials are longer than the `maxLength` option.
- `invalid-characters`: the credentials are not token68 (`a b`, non-ASCII, quotes, ...).
*/
export type MalformedReason =
	| 'duplicate'
	| 'invalid-scheme'
	| 'missing-credentials'
	| 'tab-separator'
	| 'invalid-syntax'
	| 'too-long'
	| 'invalid-characters';

/**
What {@link parseAuthorizationHeader} makes of a header value.

- `{kind: 'absent'}`: no header, an empty one, or only whitespace.
- `{kind: 'malformed', reason, scheme}`: the value breaks the grammar. `scheme` is the
  auth-scheme as sent when one could be read, so that a caller can tell a broken credential of
  its own scheme (a 400) from one of another scheme (not its business); it is `undefined` for
  `duplicate` and `invalid-scheme`.
- `{kind: 'credentials', scheme, credentials}`: a well-formed `<scheme> <token68>`. `scheme` is as
  sent (compare it case-insensitively); `credentials` is unchanged, `=` padding included.
*/
export type ParsedAuthorization =
	| {readonly kind: 'absent'}
	| {readonly kind: 'malformed'; readonly reason: MalformedReason; readonly scheme: string | undefined}
	| {readonly kind: 'credentials'; readonly scheme: string; readonly credentials: string};

/** Options of {@link parseAuthorizationHeader}. */
export type ParseAuthorizationOptions = {
	/**
	Longest credentials accepted, in characters. Longer ones are `too-long` before anything else
	looks at them.

	@default 4096
	*/
	readonly maxLength?: number;
};

export const defaultMaxTokenLength = 4096;

const absent: ParsedAuthorization = Object.freeze({kind: 'absent'});
const duplicate: ParsedAuthorization = Object.freeze({kind: 'malformed', reason: 'duplicate', scheme: undefined});

/*
RFC 9110 §5.6.2 and §11.4:
	credentials = auth-scheme [ 1*SP ( token68 / #auth-param ) ]
	auth-scheme = token
	token       = 1*tchar
	tchar       = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA
A table rather than a regex: the scheme is read on every request, and a scan allocates nothing.
*/
const tchars = new Uint8Array(128);
for (const character of "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") {
	tchars[character.charCodeAt(0)] = 1;
}

/** The length of the run of tchars at the start of `value`. */
function tokenLength(value: string): number {
	let index = 0;
	while (index < value.length) {
		const code = value.charCodeAt(index);
		if (code >= 128 || tchars[code] === 0) {
			break;
		}

		index++;
	}

	return index;
}

/**
Whether `value` is `lowerCaseExpected` in any ASCII case. Only ASCII letters fold, so the Kelvin sign
is no `k` (RFC 9110 §11.1 compares schemes case-insensitively, in ASCII).
*/
export function equalsIgnoreAsciiCase(value: string, lowerCaseExpected: string): boolean {
	if (value.length !== lowerCaseExpected.length) {
		return false;
	}

	for (let index = 0; index < value.length; index++) {
		let code = value.charCodeAt(index);
		if (code >= 0x41 && code <= 0x5A) {
			code += 0x20;
		}

		if (code !== lowerCaseExpected.charCodeAt(index)) {
			return false;
		}
	}

	return true;
}

/*
RFC 9110 §11.2 (and RFC 6750 §2.1, where it is called b64token):
	token68 = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
*/
export const token68Source = String.raw`[A-Za-z\d\-._~+/]+=*`;
const token68Pattern = new RegExp(`^${token68Source}$`);

/** Whether `value` is token68 (RFC 9110 §11.2): what a Bearer token or `access_token` must be. */
export function isToken68(value: string): boolean {
	return token68Pattern.test(value);
}

/** Whether `value` is an HTTP token (RFC 9110 §5.6.2): what a scheme or a header name must be. */
export function isToken(value: string): boolean {
	return value.length > 0 && tokenLength(value) === value.length;
}

/** Optional whitespace (RFC 9110 §5.6.3) is only space and horizontal tab. */
function isOws(code: number): boolean {
	return code === 0x20 || code === 0x09;
}

function trimOws(value: string): string {
	let start = 0;
	let end = value.length;
	while (start < end && isOws(value.charCodeAt(start))) {
		start++;
	}

	while (end > start && isOws(value.charCodeAt(end - 1))) {
		end--;
	}

	return start === 0 && end === value.length ? value : value.slice(start, end);
}

/**
Parse the value of an `Authorization` header as `<auth-scheme> <token68>`.

A pure function that never throws: it gives the scheme and credentials, or says why the value is
absent or malformed. Leading and trailing spaces and tabs are removed first; the scheme and the
credentials must be separated by one or more spaces. Pass an array to say the request carried the
header on several lines (Node keeps only the first in `req.headers`); more than one is `duplicate`.

@example
```
parseAuthorizationHeader('Bearer abc=');
//=> {kind: 'credentials', scheme: 'Bearer', credentials: 'abc='}

parseAuthorizationHeader('Bearer a b');
//=> {kind: 'malformed', reason: 'invalid-characters', scheme: 'Bearer'}
```
*/
export function parseAuthorizationHeader(
	value: string | readonly string[] | undefined,
	options: ParseAuthorizationOptions = {},
): ParsedAuthorization {
	if (value === undefined) {
		return absent;
	}

	let line: string;
	if (typeof value === 'string') {
		line = value;
	} else if (value.length > 1) {
		return duplicate;
	} else if (value[0] === undefined) {
		return absent;
	} else {
		line = value[0];
	}

	const trimmed = trimOws(line);
	if (trimmed === '') {
		return absent;
	}

	const schemeLength = tokenLength(trimmed);
	if (schemeLength === 0) {
		return {kind: 'malformed', reason: 'invalid-scheme', scheme: undefined};
	}

	const scheme = schemeLength === trimmed.length ? trimmed : trimmed.slice(0, schemeLength);

	if (scheme.length === trimmed.length) {
		return {kind: 'malformed', reason: 'missing-credentials', scheme};
	}

	const separator = trimmed.charCodeAt(scheme.length);
	if (separator === 0x09) {
		return {kind: 'malformed', reason: 'tab-separator', scheme};
	}

	if (separator !== 0x20) {
		return {kind: 'malformed', reason: 'invalid-syntax', scheme};
	}

	let start = scheme.length + 1;
	while (trimmed.charCodeAt(start) === 0x20) {
		start++;
	}

	// Trimming guarantees something other than whitespace follows the spaces.
	const credentials = trimmed.slice(start);
	if (credentials.length > (options.maxLength ?? defaultMaxTokenLength)) {
		return {kind: 'malformed', reason: 'too-long', scheme};
	}

	if (!isToken68(credentials)) {
		return {kind: 'malformed', reason: 'invalid-characters', scheme};
	}

	return {kind: 'credentials', scheme, credentials};
}

/**
The lines of one request header, read from Node's `rawHeaders` so that repeated lines are seen
(Node keeps only the first `Authorization` in `req.headers`, and joins others with commas).

@param rawHeaders - `req.rawHeaders`: names and values, alternating.
@param lowerCaseName - the header name, lower-cased.
@returns `undefined` when absent, the value when on one line, every value when on several.
*/
export function readHeaderLines(
	rawHeaders: readonly string[],
	lowerCaseName: string,
): string | string[] | undefined {
	let first: string | undefined;
	let all: string[] | undefined;
	for (let index = 0; index < rawHeaders.length - 1; index += 2) {
		const name = rawHeaders[index];
		const value = rawHeaders[index + 1];
		if (name === undefined || value === undefined || !equalsIgnoreAsciiCase(name, lowerCaseName)) {
			continue;
		}

		if (first === undefined) {
			first = value;
		} else {
			all ??= [first];
			all.push(value);
		}
	}

	return all ?? first;
}
