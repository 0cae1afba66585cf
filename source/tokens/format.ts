import {createHash, createHmac, randomBytes} from 'node:crypto';
import {crc32} from 'node:zlib';

/*
The token format, checkable offline (GitHub's and npm's token formats):

	token    = prefix "_" random checksum
	prefix   = lower-case letters and digits, in "_"-separated words: "myapp_at", "myapp_rt"
	random   = 43 base62 characters: 256 bits from the CSPRNG (62^43 > 2^256)
	checksum = 6 base62 characters: the CRC32 of prefix "_" random, zero-padded

The checksum covers the prefix too (as npm's does; GitHub's covers only the random part), so a
token whose prefix was changed (an access token passed off as a refresh token) fails the check as
surely as a mistyped one. It is no secret and proves nothing: it lets a token be refused before any
store is asked, and lets secret scanners tell a real token from a lookalike.
*/

const alphabet = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const randomLength = 43;
const checksumLength = 6;

/** A token prefix: lower-case ASCII letters and digits, in words joined by `_`, starting with a letter. */
export const tokenPrefixPattern = /^[a-z][a-z\d]*(?:_[a-z\d]+)*$/;

/**
The regular expression every token of this format matches: the prefix, `_`, then 49 base62
characters (43 random, 6 checksum). Anchored; groups `prefix`, `random` and `checksum`.
*/
export const tokenPattern = /^(?<prefix>[a-z][a-z\d]*(?:_[a-z\d]+)*)_(?<random>[\dA-Za-z]{43})(?<checksum>[\dA-Za-z]{6})$/;

function toBase62(value: bigint, length: number): string {
	let text = '';
	let rest = value;
	for (let index = 0; index < length; index++) {
		text = alphabet.charAt(Number(rest % 62n)) + text;
		rest /= 62n;
	}

	return text;
}

function checksumOf(body: string): string {
	return toBase62(BigInt(crc32(body)), checksumLength);
}

/** Throw a `TypeError` naming the option unless `prefix` is a valid token prefix. */
export function assertTokenPrefix(prefix: unknown, option = 'prefix'): asserts prefix is string {
	if (typeof prefix !== 'string' || prefix.length > 32 || !tokenPrefixPattern.test(prefix)) {
		throw new TypeError(`The \`${option}\` option must be lower-case letters and digits in words joined by "_", such as "myapp_at", at most 32 characters, got ${JSON.stringify(prefix)}.`);
	}
}

/** Options of {@link generateToken}. */
export type GenerateTokenOptions = {
	/** The token's prefix, such as `'myapp_at'`: lower-case letters and digits in words joined by `_`. */
	readonly prefix: string;
};

/**
A new token: `<prefix>_<43 base62 characters of 256 random bits><6 base62 characters of CRC32>`.

@example
```
generateToken({prefix: 'myapp_at'});
//=> 'myapp_at_3kTMd2q...Xb0aZ1q4'
```
*/
export function generateToken(options: GenerateTokenOptions): string {
	const {prefix} = options;
	assertTokenPrefix(prefix);
	// 320 random bits reduced to 43 base62 digits: the modulus leaves a bias below 2^-64.
	const random = toBase62(BigInt(`0x${randomBytes(40).toString('hex')}`), randomLength);
	const body = `${prefix}_${random}`;
	return body + checksumOf(body);
}

/**
Whether `token` is of this format with a correct checksum, and (when given) one of `prefixes`. A pure
check that asks no store: a mistyped, truncated or made-up token fails it.
*/
export function isWellFormedToken(token: string, prefixes?: readonly string[]): boolean {
	const match = tokenPattern.exec(token);
	if (match?.groups === undefined) {
		return false;
	}

	const {prefix = '', random = '', checksum} = match.groups;
	if (prefixes !== undefined && !prefixes.includes(prefix)) {
		return false;
	}

	return checksumOf(`${prefix}_${random}`) === checksum;
}

/** The prefix of a token of this format, or `undefined`. */
export function tokenPrefix(token: string): string | undefined {
	return tokenPattern.exec(token)?.groups?.['prefix'];
}

/**
What is stored of a token: its SHA-256 digest, in hex, or its HMAC-SHA-256 under `pepper` when one
is given (a server-side secret, so that a stolen table alone cannot be searched for a guessed
token). A fast hash is enough for a secret of 256 random bits (ASVS 5.0, 6.5.2).
*/
export function digestToken(token: string, pepper?: string | Buffer): string {
	return pepper === undefined
		? createHash('sha256').update(token).digest('hex')
		: createHmac('sha256', pepper).update(token).digest('hex');
}

/** A short, non-secret hint to show in a list of tokens: the prefix and the first four random characters. */
export function tokenHint(token: string): string {
	const match = tokenPattern.exec(token);
	return match?.groups === undefined ? '' : `${match.groups['prefix'] ?? ''}_${(match.groups['random'] ?? '').slice(0, 4)}…`;
}
