/*
Hostile requests for the fuzz tests. Header values are byte strings (every character one byte,
as it goes on the wire): non-ASCII text is put in as its UTF-8 bytes (`utf8`), so that the Kelvin
sign travels as E2 84 AA, and raw latin1 bytes as themselves.
*/
import fc from 'fast-check';
import {
	basicAccounts, bearerTokens, longBearerToken, machineHeader, machineKeys, maxTokenLength, tokenKeys, type RouteKind,
} from './world.js';
import {
	headerSize, nodeHeaderSizeMargin, nodeMaxHeaderSize, type WireLine,
} from './oracle.js';

/** The UTF-8 bytes of `text`, as a byte string. */
export const utf8 = (text: string) => Buffer.from(text, 'utf8').toString('latin1');
const base64 = (bytes: Uint8Array | string) => Buffer.from(typeof bytes === 'string' ? Buffer.from(bytes, 'utf8') : bytes).toString('base64');

const tchars = "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz".split('');
const token68Chars = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/'.split('');
/** Control characters Node refuses in a field value (never CR or LF, see oracle.ts). */
const nodeRefusedControls = [...Array.from({length: 9}, (_, code) => code), ...Array.from({length: 21}, (_, index) => index + 0x0B), 0x7F]
	.filter(code => code !== 0x0D)
	.map(code => String.fromCharCode(code));

/** `word` with each ASCII letter in a random case. */
const anyCase = (word: string) => fc.array(fc.boolean(), {minLength: word.length, maxLength: word.length})
	.map(flags => word.split('').map((character, index) => (flags[index] ? character.toUpperCase() : character.toLowerCase())).join(''));

/** Insert `insertion` at a random place in `value`. */
const insertSomewhere = (value: string, insertion: fc.Arbitrary<string>) => fc.tuple(fc.nat({max: value.length}), insertion)
	.map(([at, text]) => `${value.slice(0, at)}${text}${value.slice(at)}`);

/** Bytes outside token68 and outside tchar, Node still lets through. */
const hostileByte = fc.oneof(
	fc.constantFrom(' ', '\t', '"', ',', ';', '\\', '(', ')', '<', '>', '@', ':', '?', '[', ']', '{', '}', '=', '!', '#', '*', '%'),
	fc.integer({min: 0x80, max: 0xFF}).map(code => String.fromCharCode(code)),
	fc.constantFrom(utf8('\u212A'), utf8('\u00E9'), utf8('\u{1F511}'), utf8('\uFEFF'), utf8('\u00A0')),
);

export const scheme: fc.Arbitrary<string> = fc.oneof(
	{weight: 8, arbitrary: fc.constantFrom('Bearer', 'Basic', 'Token').chain(anyCase)},
	{weight: 2, arbitrary: fc.constantFrom('bearer', 'BEARER', 'bEaReR', 'basic', 'BASIC', 'token', 'TOKEN')},
	{
		weight: 2,
		arbitrary: fc.constantFrom(
			utf8('To\u212Aen'), utf8('\u212Aey'), utf8('Bearer\u212A'), 'Bearerabc', 'Tokens', 'Basic1', 'Bear', 'Digest', 'Snaker',
			'ApiKey', 'Negotiate', '"Bearer"', 'Bearer!', 'B\u00E9arer', utf8('B\u00E9arer'), 'Be-arer', 'Token.', 'Basic_',
		),
	},
	{weight: 1, arbitrary: fc.string({unit: fc.constantFrom(...tchars), minLength: 1, maxLength: 12})},
	{weight: 1, arbitrary: fc.constant('')},
);

const separator: fc.Arbitrary<string> = fc.oneof(
	{weight: 12, arbitrary: fc.constant(' ')},
	{weight: 2, arbitrary: fc.integer({min: 2, max: 6}).map(count => ' '.repeat(count))},
	{weight: 3, arbitrary: fc.constantFrom('\t', ' \t', '\t ', '', ':', ',', '=', '\u00A0', utf8('\u00A0'), utf8('\u3000'), '  \t  ', ': ')},
);

/** Long credentials around `maxTokenLength`, some with one bad byte. */
const long: fc.Arbitrary<string> = fc.oneof(
	fc.tuple(fc.integer({min: maxTokenLength - 4, max: maxTokenLength + 4}), fc.constantFrom('a', 'Ab9-._~+/', 'zz')).map(([length, unit]) => unit.repeat(length).slice(0, length)),
	fc.tuple(fc.integer({min: maxTokenLength - 2, max: maxTokenLength}), fc.nat({max: 2})).map(([length, padding]) => `${'Q'.repeat(length - padding)}${'='.repeat(padding)}`),
	fc.constantFrom(longBearerToken, `${longBearerToken}a`, longBearerToken.slice(1), `${longBearerToken.slice(0, -2)}=`, `a${longBearerToken}`),
	fc.integer({min: maxTokenLength - 4, max: maxTokenLength + 4}).chain(length => insertSomewhere('x'.repeat(length - 1), hostileByte)),
);

/** Valid Basic credentials of each account, and what a client could get wrong about them. */
const accounts = [...basicAccounts];
const basicText = fc.constantFrom(...accounts).map(([username, password]) => `${username}:${password}`);
const base64Alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/**
Each account's credentials encoded as a lenient decoder would still accept them (URL-safe alphabet,
missing or extra padding, non-zero padding bits, latin1 instead of UTF-8, a BOM that a decoder
may drop), and with one character off (a newline, a NUL, a space, upper case, no colon).
*/
export const basicLenientEncodings: readonly string[] = [...new Set(accounts.flatMap(([username, password]) => {
	const text = `${username}:${password}`;
	const valid = base64(text);
	const data = valid.replace(/=+$/, '');
	const padding = valid.slice(data.length);
	const last = base64Alphabet.indexOf(data.at(-1)!);
	return [
		valid.replaceAll('+', '-').replaceAll('/', '_'),
		data,
		`${valid}=`,
		// Non-zero padding bits: the same bytes to a lenient decoder.
		...(padding === '' ? [] : [`${data.slice(0, -1)}${base64Alphabet[last ^ 1]!}${padding}`]),
		Buffer.from(text, 'latin1').toString('base64'),
		base64(`\uFEFF${text}`),
		base64(`${text}\n`),
		base64(`${text}\u0000`),
		base64(` ${text}`),
		base64(text.toUpperCase()),
		base64(text.replace(':', '')),
	].filter(encoded => encoded !== valid);
}))];

const basicNearMisses: fc.Arbitrary<string> = fc.oneof(
	{weight: 4, arbitrary: fc.constantFrom(...basicLenientEncodings)},
	{weight: 2, arbitrary: basicText.map(text => base64(text))},
	{weight: 1, arbitrary: basicText.chain(text => insertSomewhere(text, fc.constantFrom('\u0000', '\u001B', '\u007F', '\u0085', '\u200B', 'x'))).map(text => base64(text))},
	{weight: 1, arbitrary: basicText.chain(text => insertSomewhere(base64(text), fc.constantFrom(' ', '=', '*', '-', '_', '.')))},
	{weight: 1, arbitrary: fc.uint8Array({maxLength: 24}).map(bytes => base64(bytes))},
	// Invalid UTF-8 around a colon, a surrogate encoded as UTF-8 would be (CESU), an overlong "/".
	{weight: 1, arbitrary: fc.constantFrom([0x61, 0x3A, 0xC3, 0x28], [0x61, 0x3A, 0xED, 0xA0, 0x80], [0xC0, 0xAF, 0x3A, 0x61], [0x61, 0x6C, 0x69, 0x63, 0x65, 0x3A, 0xFF]).map(bytes => base64(Uint8Array.from(bytes)))},
	{weight: 1, arbitrary: fc.string({unit: fc.constantFrom(...`${base64Alphabet}=`.split('')), maxLength: 24})},
);

/** What follows the scheme and its separator. */
export const credentials: fc.Arbitrary<string> = fc.oneof(
	{weight: 3, arbitrary: fc.constantFrom(...bearerTokens.keys(), ...tokenKeys.keys())},
	{weight: 3, arbitrary: basicNearMisses},
	{weight: 3, arbitrary: fc.string({unit: fc.constantFrom(...token68Chars), minLength: 1, maxLength: 32}).chain(body => fc.nat({max: 3}).map(padding => `${body}${'='.repeat(padding)}`))},
	{weight: 2, arbitrary: fc.string({unit: fc.oneof({weight: 4, arbitrary: fc.constantFrom(...token68Chars)}, hostileByte), minLength: 1, maxLength: 24})},
	{weight: 1, arbitrary: fc.constantFrom(...bearerTokens.keys(), ...tokenKeys.keys()).chain(token => insertSomewhere(token, hostileByte))},
	{weight: 1, arbitrary: long},
	{weight: 1, arbitrary: fc.constantFrom('', '=', '==', 'a b', '"alice-token"', 'alice-token,', 'realm="api"', utf8('alice-t\u212Aen'), '\u00E9', '-', '~')},
);

const suffix = fc.oneof(
	{weight: 15, arbitrary: fc.constant('')},
	{weight: 2, arbitrary: fc.constantFrom(' ', '\t', '  \t ', '=', '==', ' extra', ',x', '\u00E9', ' \t a', utf8('\u00A0'))},
);
const prefix = fc.oneof({weight: 15, arbitrary: fc.constant('')}, {weight: 2, arbitrary: fc.constantFrom(' ', '\t', '  \t ', '\u00A0')});

/** A value that is right for one of the schemes, in any case and spacing: the served requests. */
const validValue: fc.Arbitrary<string> = fc.oneof(
	fc.tuple(anyCase('Bearer'), fc.constantFrom(...bearerTokens.keys())),
	fc.tuple(anyCase('Token'), fc.constantFrom(...tokenKeys.keys())),
	fc.tuple(anyCase('Basic'), basicText.map(text => base64(text))),
).chain(([name, secret]) => fc.tuple(prefix, fc.integer({min: 1, max: 3}), suffix.filter(end => /^[ \t]*$/.test(end)))
	.map(([before, spaces, after]) => `${before}${name}${' '.repeat(spaces)}${secret}${after}`));

/** A byte Node lets through in a field value: HTAB, or 0x20 to 0xFF but DEL. */
const passingByte = fc.oneof(fc.constant('\t'), fc.integer({min: 0x20, max: 0xFF}).filter(code => code !== 0x7F).map(code => String.fromCharCode(code)));

/** A valid value with one byte inserted or replaced anywhere: every byte in every place, evenly. */
const oneByteOff: fc.Arbitrary<string> = fc.tuple(validValue, fc.nat(), passingByte, fc.boolean()).map(([value, at, byte, replace]) => {
	const index = at % (value.length + 1);
	return `${value.slice(0, index)}${byte}${value.slice(replace ? index + 1 : index)}`;
});

/** Any bytes Node lets through, with whitespace and token68 characters favoured. */
const anyBytes = fc.string({
	unit: fc.oneof(fc.constantFrom(' ', '\t', '=', ...token68Chars), hostileByte, fc.integer({min: 0x20, max: 0xFF}).filter(code => code !== 0x7F).map(code => String.fromCharCode(code))),
	maxLength: 40,
});

/**
One `Authorization` value, now and then with a control character Node refuses. A share of them is
focused on what `route` reads: Basic credentials and their near misses on the Basic route, Bearer
and Token values elsewhere.
*/
export function authorizationValue(route: RouteKind): fc.Arbitrary<string> {
	const focused = route === 'basic'
		? fc.tuple(prefix, anyCase('Basic'), separator, basicNearMisses, suffix)
		: fc.tuple(prefix, fc.constantFrom('Bearer', 'Token').chain(anyCase), separator, credentials, suffix);
	return fc.oneof(
		{weight: 12, arbitrary: fc.tuple(prefix, scheme, separator, credentials, suffix).map(parts => parts.join(''))},
		{weight: 6, arbitrary: focused.map(parts => parts.join(''))},
		{weight: 4, arbitrary: validValue},
		{weight: 4, arbitrary: oneByteOff},
		{weight: 2, arbitrary: anyBytes},
		{weight: 1, arbitrary: fc.constantFrom('', ' ', '\t', '  \t ', 'Bearer', 'Basic', 'Token', 'Bearer ', 'Token\t', 'bearer  ')},
	).chain(value => fc.oneof(
		{weight: 40, arbitrary: fc.constant(value)},
		{weight: 1, arbitrary: insertSomewhere(value, fc.constantFrom(...nodeRefusedControls))},
	));
}

/** One value of the `X-MyApp-ApiKey` header. */
export const machineKeyValue: fc.Arbitrary<string> = fc.oneof(
	{weight: 6, arbitrary: fc.tuple(prefix, fc.constantFrom(...machineKeys.keys()), suffix.filter(end => /^[ \t]*$/.test(end))).map(parts => parts.join(''))},
	{weight: 1, arbitrary: fc.constantFrom(utf8('cl\u00E9-key'), 'BILLING-KEY-1', 'billing-key-3', 'billing-key-1x', 'reports  key', 'reports\tkey', 'alice-key', '')},
	{weight: 2, arbitrary: fc.constantFrom(...machineKeys.keys()).chain(key => insertSomewhere(key, hostileByte))},
	{weight: 1, arbitrary: long},
	{weight: 2, arbitrary: anyBytes},
).chain(value => fc.oneof(
	{weight: 40, arbitrary: fc.constant(value)},
	{weight: 1, arbitrary: insertSomewhere(value, fc.constantFrom(...nodeRefusedControls))},
));

const authorizationName = fc.constantFrom('Authorization', 'authorization', 'AUTHORIZATION', 'aUtHoRiZaTiOn');
const machineHeaderName = fc.constantFrom(machineHeader, machineHeader.toLowerCase(), machineHeader.toUpperCase());

/** 0 to 3 lines of a header, mostly one. */
function lines(name: fc.Arbitrary<string>, value: fc.Arbitrary<string>, absentWeight: number): fc.Arbitrary<WireLine[]> {
	const line = fc.tuple(name, value).map((pair): WireLine => pair);
	return fc.oneof(
		{weight: absentWeight, arbitrary: fc.constant<WireLine[]>([])},
		{weight: 8, arbitrary: line.map(one => [one])},
		{weight: 1, arbitrary: fc.array(line, {minLength: 2, maxLength: 3})},
	);
}

/** Headers that look like credentials but are not the ones any route reads. */
const noise: fc.Arbitrary<WireLine[]> = fc.array(
	fc.tuple(
		fc.constantFrom('Authorisation', 'Proxy-Authorization', 'X-Authorization', 'X-API-Key', `${machineHeader}s`, 'Cookie'),
		fc.constantFrom('Bearer alice-token', 'Token alice-key', 'billing-key-1', `Basic ${base64('alice:alice-password')}`, 'x'),
	).map((pair): WireLine => pair),
	{maxLength: 2},
);

/**
The header lines of one request (without Host), in a random order: `Authorization` lines, key
header lines (frequent on the header-API-key route, rare elsewhere), and noise. Never within a
kilobyte of Node's 16 KiB limit, where the request line decides whether Node answers 431.
*/
export function requestLines(route: RouteKind): fc.Arbitrary<WireLine[]> {
	const forHeaderKeyRoute = route === 'headerKey';
	return fc.tuple(
		lines(authorizationName, authorizationValue(route), forHeaderKeyRoute ? 6 : 1),
		lines(machineHeaderName, machineKeyValue, forHeaderKeyRoute ? 2 : 40),
		fc.oneof({weight: 6, arbitrary: fc.constant<WireLine[]>([])}, {weight: 1, arbitrary: noise}),
	).chain(([authorization, keys, others]) => {
		const all = [...authorization, ...keys, ...others];
		return all.length < 2 ? fc.constant(all) : fc.shuffledSubarray(all, {minLength: all.length, maxLength: all.length});
	}).filter(all => Math.abs(headerSize(all) - nodeMaxHeaderSize) > nodeHeaderSizeMargin);
}

/** Any string at all, and strings of the characters that matter to the parser, for the pure parser. */
export const parserInput: fc.Arbitrary<string> = fc.oneof(
	// One character of any kind, as JavaScript text, in a valid value.
	fc.tuple(validValue, fc.nat(), fc.oneof(fc.integer({min: 0, max: 0x7F}).map(code => String.fromCharCode(code)), fc.string({unit: 'binary', minLength: 1, maxLength: 1})), fc.boolean())
		.map(([value, at, character, replace]) => {
			const index = at % (value.length + 1);
			return `${value.slice(0, index)}${character}${value.slice(replace ? index + 1 : index)}`;
		}),
	fc.string({unit: 'binary', maxLength: 40}),
	fc.string({
		unit: fc.constantFrom(' ', '\t', '\n', '\r', '\u0000', '\u000B', '\u000C', '=', '"', ',', ':', '\u212A', '\u00A0', '\uFEFF', '\u3000', '\uD800', '\uDC00', 'a', 'B', 'K', 'k', '-', '~', '+', '/', '!'),
		maxLength: 40,
	}),
	fc.tuple(prefix, scheme, separator, credentials, suffix).map(parts => parts.join('')),
	// The same as JavaScript text: the Kelvin sign as one UTF-16 unit, which toLowerCase() would fold to "k".
	fc.tuple(fc.constantFrom('To\u212Aen', 'Bearer', 'Basic', '\u212Aey', 'BEARER', 'token'), separator, credentials).map(parts => parts.join('')),
	authorizationValue('bearer'),
);

/**
Requests every run starts with (fast-check's `examples`), so that even a short run meets each row
of the README's table and each way of getting Basic almost right.
*/
export function exampleRequests(route: RouteKind): WireLine[][] {
	const authorization = (...values: string[]) => values.map((value): WireLine => ['Authorization', value]);
	const basicValid = accounts.map(([username, password]) => `Basic ${base64(`${username}:${password}`)}`);
	const common: WireLine[][] = [
		[],
		authorization(''),
		authorization(' \t '),
		authorization('Bearer alice-token'),
		authorization('bEaReR   padded+/=='),
		authorization(`Bearer ${longBearerToken}`),
		authorization(`Bearer ${longBearerToken}a`),
		authorization('Bearer dora-token'),
		authorization('Bearer orphan-token'),
		authorization('Bearer'),
		authorization('Bearer a b'),
		authorization('Bearer\talice-token'),
		authorization('Bearer:alice-token'),
		authorization('Bearerabc'),
		authorization('"Bearer" alice-token'),
		authorization(`Bearer ${utf8('alice-t\u212Aen')}`),
		authorization('Bearer alice-token', 'Bearer alice-token'),
		authorization('Basic eA==', 'Bearer alice-token'),
		authorization('Token alice-key'),
		authorization('token   bob-key~'),
		authorization('Token dora-key'),
		authorization('Token'),
		authorization('Token a b'),
		authorization(utf8('To\u212Aen alice-key')),
		authorization('Snaker x'),
		authorization('Bearer alice-token\u0000'),
		[['Authorization', 'Bearer alice-token'], ['X-MyApp-ApiKey', 'billing-key-1']],
		// Node's own 431, over 16 KiB of headers.
		[['Authorization', 'Bearer alice-token'], ['Cookie', 'x'.repeat(nodeMaxHeaderSize + nodeHeaderSizeMargin)]],
		...basicValid.map(value => authorization(value)),
	];
	const byRoute: Partial<Record<RouteKind, WireLine[][]>> = {
		basic: [
			...basicLenientEncodings.map(encoded => authorization(`Basic ${encoded}`)),
			authorization('Basic'),
			authorization(`Basic ${base64('alice:wrong')}`),
			authorization(basicValid[0]!, basicValid[0]!),
		],
		headerKey: [
			[['X-MyApp-ApiKey', 'billing-key-1']],
			[['x-myapp-apikey', ' \treports key\t ']],
			[['X-MyApp-ApiKey', 'cl\u00E9-key']],
			[['X-MyApp-ApiKey', utf8('cl\u00E9-key')]],
			[['X-MyApp-ApiKey', 'billing-key-1'], ['X-MyApp-ApiKey', 'billing-key-1']],
			[['X-MyApp-ApiKey', ''], ['Authorization', 'Token alice-key']],
			[['X-MyApp-ApiKey', 'x'.repeat(maxTokenLength + 1)]],
		],
	};
	return [...common, ...(byRoute[route] ?? [])];
}
