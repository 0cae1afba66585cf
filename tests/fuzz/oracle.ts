/*
An oracle for the fuzz tests, written from the README (its "Answers" table, "Modes" and "Security
notes") and from RFC 9110 / RFC 6750 / RFC 7617, not from the implementation: given the header
lines of a request as they go on the wire and the kind of route, it predicts the status, the
`WWW-Authenticate` lines and the body.

Where the README leaves a point open, the choice made here (and checked) is:
- "Whitespace" around a header value is RFC 9110's OWS (space and horizontal tab), nothing else.
- A header of another scheme is one whose value does not start with the route's scheme as a whole
  token (RFC 9110 §5.6.2 tchars), compared in ASCII case only; a value that starts with no token at
  all (`"Bearer" x`) is another scheme too. The route's scheme followed by anything but one or more
  spaces and a token68 (RFC 9110 §11.2) of at most `maxTokenLength` characters is malformed.
- "A `Token` key" on a required bearer route without `allowApiKey` (the manager has an
  `apiKeyLoader`) is any single `Authorization` line whose scheme is `Token`, whatever follows (like
  "another scheme, whatever its syntax"): a 403 with no challenge, decided after the route's own
  authenticators found nothing for themselves. On a Basic or header-API-key route (no bearer path)
  it is just another scheme: Basic's one 401, or "No API key provided".
- Basic decodes "strictly": standard Base64 (RFC 4648 §4) with canonical padding and zero padding
  bits, valid UTF-8 (a BOM is kept, not dropped), a colon, and no control characters (Unicode Cc)
  in the user-id or the password (RFC 7617 §2). Duplicate lines are a Basic failure (401).

What reaches the app is what Node's HTTP parser (llhttp, strict by default) hands it, modelled by
`nodeView` (checked byte by byte against Node 20.20): a field value containing a control character
other than HTAB (0x00-0x08, 0x0B-0x1F, 0x7F) is refused by Node with its own `400 Bad Request`
(empty body, no challenge) before Koa runs, and a header section over 16 KiB with its own 431. The
oracle predicts exactly that answer and the fuzzers check it (not dropping these cases; a control
character goes over a raw socket, since Node's client refuses to send it). CR and LF are never
generated over HTTP: they are framing, and a CR LF inside a value would only make another header
line (the parser properties get them). Otherwise Node removes leading and trailing spaces and tabs
from each value, keeps obs-text bytes (0x80-0xFF) and decodes them as latin1, and keeps every line
in `rawHeaders`.
*/
import {
	basicAccounts, basicRealm, bearerRealm, bearerTokens, machineHeader, machineKeys, machineRealm, maxTokenLength,
	tokenKeys, users, type RouteKind,
} from './world.js';

/** A header line as sent: the name and the value as a byte string (every character is one byte, ≤ 0xFF). */
export type WireLine = readonly [name: string, value: string];

/** What the oracle predicts. */
export type Expected =
	/** Node answers itself, with one of `statuses`, an empty body and no challenge; the app never runs. */
	| {readonly kind: 'node-rejects'; readonly statuses: readonly number[]}
	| {
		readonly kind: 'app';
		readonly status: number;
		readonly challenges: readonly string[];
		readonly body: {readonly error: string} | {readonly who: string | null};
		/** A short name of the outcome, for statistics and for the Basic byte-identity check. */
		readonly label: string;
	};

// RFC 9110 §5.6.2, §11.2.
const tcharPattern = /^[!#$%&'*+\-.^_`|~\dA-Za-z]$/;
const tokenPattern = /^[!#$%&'*+\-.^_`|~\dA-Za-z]+$/;
const token68Pattern = /^[A-Za-z\d\-._~+/]+=*$/;
// What Node's parser refuses inside a field value (checked against Node 20's llhttp).
const nodeRejectedPattern = /[\u0000-\u0008\u000A-\u001F\u007F]/;

export function isToken(value: string): boolean {
	return tokenPattern.test(value);
}

export function isToken68(value: string): boolean {
	return token68Pattern.test(value);
}

/**
Node's default limit on a request's header section (`--max-http-header-size`, 16 KiB): beyond it,
Node answers 431 itself. `headerSize` counts the lines given; the request line, Host and Connection
add under a hundred bytes, so the arbitraries keep away from the limit by `nodeHeaderSizeMargin`.
*/
export const nodeMaxHeaderSize = 16_384;
export const nodeHeaderSizeMargin = 1024;

export function headerSize(lines: readonly WireLine[]): number {
	return lines.reduce((sum, [name, value]) => sum + name.length + value.length + 4, 0);
}

/** Whether Node's HTTP server answers 400 itself for this field value. */
export function nodeRejects(value: string): boolean {
	return nodeRejectedPattern.test(value);
}

/** RFC 9110 §5.6.3: OWS is spaces and horizontal tabs. */
export function trimOws(value: string): string {
	return value.replace(/^[ \t]+/, '').replace(/[ \t]+$/, '');
}

/** ASCII case-insensitive equality (RFC 9110 §11.1): only A-Z and a-z fold. */
export function equalsAsciiCaseInsensitive(a: string, b: string): boolean {
	const fold = (value: string) => value.replaceAll(/[A-Z]/g, letter => String.fromCharCode(letter.charCodeAt(0) + 32));
	return fold(a) === fold(b);
}

/** One `Authorization` value read as `credentials = auth-scheme [ 1*SP token68 ]`. */
export type LineReading =
	| {readonly kind: 'empty'}
	/** `scheme` is the leading token, or undefined when the value starts with no token. */
	| {readonly kind: 'malformed'; readonly scheme: string | undefined; readonly schemeAlone: boolean; readonly tooLong: boolean}
	| {readonly kind: 'credentials'; readonly scheme: string; readonly credentials: string};

/** Read one header value (OWS around it removed first), with `maxLength` the longest token68 accepted. */
export function readLine(value: string, maxLength = maxTokenLength): LineReading {
	const line = trimOws(value);
	if (line === '') {
		return {kind: 'empty'};
	}

	let end = 0;
	while (end < line.length && tcharPattern.test(line.charAt(end))) {
		end++;
	}

	if (end === 0) {
		return {kind: 'malformed', scheme: undefined, schemeAlone: false, tooLong: false};
	}

	const scheme = line.slice(0, end);
	const match = /^ +(.*)$/s.exec(line.slice(end));
	const credentials = match?.[1];
	if (credentials === undefined || !isToken68(credentials)) {
		return {kind: 'malformed', scheme, schemeAlone: end === line.length, tooLong: false};
	}

	if (credentials.length > maxLength) {
		return {kind: 'malformed', scheme, schemeAlone: false, tooLong: true};
	}

	return {kind: 'credentials', scheme, credentials};
}

/** The `Authorization` header of a request: none, several lines, or one line read. */
export type AuthorizationReading =
	| {readonly kind: 'none'}
	| {readonly kind: 'several'}
	| {readonly kind: 'one'; readonly reading: LineReading};

export function readAuthorization(values: readonly string[]): AuthorizationReading {
	const [only] = values;
	if (only === undefined) {
		return {kind: 'none'};
	}

	return values.length > 1 ? {kind: 'several'} : {kind: 'one', reading: readLine(only)};
}

function schemeOf(reading: AuthorizationReading): string | undefined {
	return reading.kind === 'one' && reading.reading.kind !== 'empty' ? reading.reading.scheme : undefined;
}

function hasScheme(reading: AuthorizationReading, scheme: string): boolean {
	const sent = schemeOf(reading);
	return sent !== undefined && equalsAsciiCaseInsensitive(sent, scheme);
}

function isEmpty(reading: AuthorizationReading): boolean {
	return reading.kind === 'none' || (reading.kind === 'one' && reading.reading.kind === 'empty');
}

// RFC 4648 §4, decoded by hand: the canonical encoding only.
const base64Alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

export function decodeBase64Strictly(text: string): Uint8Array | undefined {
	if (text.length % 4 !== 0) {
		return undefined;
	}

	const padding = text.endsWith('==') ? 2 : (text.endsWith('=') ? 1 : 0);
	const data = text.slice(0, text.length - padding);
	const bytes: number[] = [];
	let buffer = 0;
	let bits = 0;
	for (const character of data) {
		const index = base64Alphabet.indexOf(character);
		if (index === -1) {
			return undefined;
		}

		buffer = (buffer << 6) | index;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			bytes.push((buffer >> bits) & 0xFF);
			buffer &= (1 << bits) - 1;
		}
	}

	// Leftover bits (2 with one `=`, 4 with two) must be zero; 6 leftover bits cannot happen with length % 4 === 0.
	return buffer === 0 ? Uint8Array.from(bytes) : undefined;
}

const strictUtf8 = new TextDecoder('utf-8', {fatal: true, ignoreBOM: true});
const controlPattern = /\p{Cc}/u;

/** RFC 7617 credentials decoded strictly, or undefined. */
export function decodeBasic(token68: string): {username: string; password: string} | undefined {
	const bytes = decodeBase64Strictly(token68);
	if (bytes === undefined) {
		return undefined;
	}

	let text: string;
	try {
		text = strictUtf8.decode(bytes);
	} catch {
		return undefined;
	}

	const colon = text.indexOf(':');
	if (colon === -1) {
		return undefined;
	}

	const username = text.slice(0, colon);
	const password = text.slice(colon + 1);
	return controlPattern.test(username) || controlPattern.test(password) ? undefined : {username, password};
}

// The answers of the README's table; a body is `{error: fullMsg}` (authErrorHandler's default).
const bearerChallenge = (scheme: string, error?: string) => `${scheme} realm="${bearerRealm}"${error === undefined ? '' : `, error="${error}"`}`;
export const basicChallenge = `Basic realm="${basicRealm}", charset="UTF-8"`;
export const machineChallenge = `ApiKey realm="${machineRealm}", header="${machineHeader}"`;

const refusal = (label: string, status: number, error: string, challenges: readonly string[]): Expected =>
	({kind: 'app', status, challenges, body: {error}, label});
const served = (label: string, who: string | null): Expected => ({kind: 'app', status: 200, challenges: [], body: {who}, label});

const noToken = (challenges: readonly string[]) => refusal('401 no token', 401, 'Request error: No token provided', challenges);
const otherScheme = (challenges: readonly string[]) => refusal('401 other scheme', 401, 'Request error: Invalid token type', challenges);
const malformed = (scheme: string) => refusal('400 malformed', 400, 'Request error: Malformed authorization header', [bearerChallenge(scheme, 'invalid_request')]);
const invalid = (scheme: string) => refusal('401 invalid token', 401, 'Token error: Invalid token', [bearerChallenge(scheme, 'invalid_token')]);
const keysRefused = refusal('403 keys not accepted', 403, 'Scope error: API keys are not accepted on this route', []);
const basicRefusal = refusal('401 basic', 401, 'Request error: Authentication required', [basicChallenge]);

/** Every fixed text an answer may carry, for the echo check: a credential found in it proves nothing. */
export const fixedTexts: readonly string[] = [
	bearerChallenge('Bearer', 'invalid_request'), bearerChallenge('Bearer', 'invalid_token'), bearerChallenge('Token', 'invalid_request'),
	bearerChallenge('Token', 'invalid_token'), basicChallenge, machineChallenge,
	'Request error: No token provided', 'Request error: Invalid token type', 'Request error: Malformed authorization header',
	'Token error: Invalid token', 'Scope error: API keys are not accepted on this route', 'Request error: Authentication required',
	'Request error: No API key provided', 'Token error: Invalid API key', 'Request error: Malformed API key header',
	'{"error":""}', '{"who":null}', 'application/json; charset=utf-8', 'keep-alive', 'timeout=5', 'close', 'Bad Request',
	...[...users.values()].map(user => `{"who":"${user.name}"}`), ...[...basicAccounts.keys()].map(name => `{"who":"${name}"}`),
	...[...new Set(machineKeys.values())].map(name => `{"who":"${name}"}`),
];

/** The user a bearer token or `Token` key resolves to, if active. */
function userOf(userId: number | undefined): string | undefined {
	const user = userId === undefined ? undefined : users.get(userId);
	// README: a missing user, or an inactive one, is refused like an unknown token.
	return user === undefined || user.isActive === false ? undefined : user.name;
}

/** The bearer path of a route, for a line whose scheme is the route's token68 scheme (`Bearer` or `Token`). */
function token68Answer(reading: LineReading, scheme: 'Bearer' | 'Token'): Expected {
	if (reading.kind !== 'credentials') {
		return malformed(scheme);
	}

	const name = userOf((scheme === 'Bearer' ? bearerTokens : tokenKeys).get(reading.credentials));
	return name === undefined ? invalid(scheme) : served(`200 ${scheme.toLowerCase()}`, name);
}

/** What the app receives: the values of each header after Node's parser, or the statuses Node refuses the request with. */
export function nodeView(lines: readonly WireLine[]): {values(name: string): string[]} | {refused: readonly number[]} {
	// Whichever Node meets first answers, when both apply.
	const refused = [...(lines.some(([, value]) => nodeRejects(value)) ? [400] : []), ...(headerSize(lines) > nodeMaxHeaderSize ? [431] : [])];
	if (refused.length > 0) {
		return {refused};
	}

	const received = lines.map(([name, value]) => [name, trimOws(value)] as const);
	return {
		values: name => received.filter(([sent]) => equalsAsciiCaseInsensitive(sent, name)).map(([, value]) => value),
	};
}

/** Predict the answer of `route` to a request carrying `lines` (besides Host). */
export function predict(route: RouteKind, lines: readonly WireLine[]): Expected {
	const view = nodeView(lines);
	if ('refused' in view) {
		return {kind: 'node-rejects', statuses: view.refused};
	}

	const authorization = readAuthorization(view.values('authorization'));
	const tokenKeyOnOtherRoute = hasScheme(authorization, 'Token') ? keysRefused : undefined;
	switch (route) {
		case 'bearer':
		case 'optional': {
			if (authorization.kind === 'several') {
				return malformed('Bearer');
			}

			if (authorization.kind === 'one' && hasScheme(authorization, 'Bearer')) {
				return token68Answer(authorization.reading, 'Bearer');
			}

			// No credentials, or another scheme: anonymous on an optional route (README, Modes).
			if (route === 'optional') {
				return served('200 anonymous', null);
			}

			return isEmpty(authorization) ? noToken([bearerChallenge('Bearer')]) : (tokenKeyOnOtherRoute ?? otherScheme([bearerChallenge('Bearer')]));
		}

		case 'keys': {
			const both = [bearerChallenge('Bearer'), bearerChallenge('Token')];
			if (authorization.kind === 'several') {
				return malformed('Bearer');
			}

			if (authorization.kind === 'one' && hasScheme(authorization, 'Bearer')) {
				return token68Answer(authorization.reading, 'Bearer');
			}

			if (authorization.kind === 'one' && hasScheme(authorization, 'Token')) {
				return token68Answer(authorization.reading, 'Token');
			}

			return isEmpty(authorization) ? noToken(both) : otherScheme(both);
		}

		case 'basic': {
			if (authorization.kind === 'one' && hasScheme(authorization, 'Basic')) {
				const {reading} = authorization;
				const decoded = reading.kind === 'credentials' ? decodeBasic(reading.credentials) : undefined;
				return decoded !== undefined && basicAccounts.get(decoded.username) === decoded.password ? served('200 basic', decoded.username) : basicRefusal;
			}

			return basicRefusal;
		}

		case 'headerKey': {
			const keys = view.values(machineHeader);
			const [key] = keys;
			if (keys.length > 1) {
				return refusal('400 malformed api key', 400, 'Request error: Malformed API key header', [machineChallenge]);
			}

			if (key === undefined || key === '') {
				return refusal('401 no api key', 401, 'Request error: No API key provided', [machineChallenge]);
			}

			const appName = machineKeys.get(key);
			return appName === undefined ? refusal('401 invalid api key', 401, 'Token error: Invalid API key', [machineChallenge]) : served('200 api key', appName);
		}
	}
}

/*
RFC 9110 §11.3 and §5.6, for one challenge per field line:
	challenge     = auth-scheme [ 1*SP ( token68 / #auth-param ) ]
	auth-param    = token BWS "=" BWS ( token / quoted-string )
	quoted-string = DQUOTE *( qdtext / quoted-pair ) DQUOTE
	qdtext        = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text
	quoted-pair   = "\" ( HTAB / SP / VCHAR / obs-text )
A sender's list (#) has at least one element and no empty ones.
*/
const tokenSource = String.raw`[!#$%&'*+\-.^_\x60|~\dA-Za-z]+`;
const quotedStringSource = String.raw`"(?:[\t \x21\x23-\x5B\x5D-\x7E\x80-\xFF]|\\[\t\x20-\x7E\x80-\xFF])*"`;
const authParamSource = String.raw`${tokenSource}[ \t]*=[ \t]*(?:${tokenSource}|${quotedStringSource})`;
const challengePattern = new RegExp(String.raw`^${tokenSource}(?: +(?:[A-Za-z\d\-._~+/]+=*|${authParamSource}(?:[ \t]*,[ \t]*${authParamSource})*))?$`);

export function isChallenge(value: string): boolean {
	return challengePattern.test(value);
}

/**
The secrets a request carries as the app receives them: each `Authorization` value and what
follows its scheme, the key header's values, and Basic's decoded user-id and password (decoded
leniently, so that a near-valid one counts too). Only those of at least 6 characters that are not
part of a fixed text are worth looking for in an answer.
*/
export function secretsOf(lines: readonly WireLine[]): string[] {
	const secrets = new Set<string>();
	for (const [name, sent] of lines) {
		const value = trimOws(sent);
		secrets.add(value);
		if (equalsAsciiCaseInsensitive(name, 'authorization')) {
			const rest = trimOws(value.replace(/^[!#$%&'*+\-.^_`|~\dA-Za-z]*/, ''));
			secrets.add(rest);
			if (/^[A-Za-z\d+/\-_]+=*$/.test(rest)) {
				const text = Buffer.from(rest, 'base64').toString('utf8');
				const colon = text.indexOf(':');
				secrets.add(colon === -1 ? text : text.slice(0, colon)).add(text.slice(colon + 1));
			}
		}
	}

	const fixed = fixedTexts.join('\n');
	return [...secrets].filter(secret => secret.length >= 6 && !fixed.includes(secret));
}
