import {randomBytes, scrypt, timingSafeEqual, type ScryptOptions} from 'node:crypto';

/*
Passwords, hashed with scrypt from node:crypto at OWASP's parameters (N = 2^17, r = 8, p = 1), and
stored as one self-describing string that carries its parameters:

	$scrypt$ln=17,r=8,p=1$<salt, base64url>$<hash, base64url>

so that a change of parameters applies to new hashes while old ones still verify (and are rehashed
at the next successful login: `needsRehash`).
*/

/** scrypt's cost parameters: `ln` is log2 of N. */
export type ScryptParameters = {
	readonly ln: number;
	readonly r: number;
	readonly p: number;
};

/** OWASP's parameters for scrypt (Password Storage Cheat Sheet): N = 2^17, r = 8, p = 1. */
export const defaultScryptParameters: ScryptParameters = Object.freeze({ln: 17, r: 8, p: 1});

const saltBytes = 16;
const keyBytes = 32;
const encodedPattern = /^\$scrypt\$ln=(\d{1,2}),r=(\d{1,2}),p=(\d{1,2})\$([\w-]{16,})\$([\w-]{32,})$/;

function derive(password: string, salt: Buffer, {ln, r, p}: ScryptParameters, length: number): Promise<Buffer> {
	const options: ScryptOptions = {N: 2 ** ln, r, p, maxmem: 128 * (2 ** ln) * r * 2 + 1024 * 1024};
	return new Promise((resolve, reject) => {
		scrypt(password.normalize('NFKC'), salt, length, options, (error, key) => {
			if (error) {
				reject(error);
			} else {
				resolve(key);
			}
		});
	});
}

// Bounds that keep one verification within 1 GiB of memory (128 * N * r bytes) and reasonable time.
function validParameters(parameters: unknown): parameters is ScryptParameters {
	const {ln, r, p} = (parameters ?? {}) as Partial<ScryptParameters>;
	return Number.isInteger(ln) && Number.isInteger(r) && Number.isInteger(p)
		&& (ln as number) >= 1 && (ln as number) <= 20 && (r as number) >= 1 && (r as number) <= 32 && (p as number) >= 1 && (p as number) <= 16
		&& 128 * (2 ** (ln as number)) * (r as number) <= 2 ** 30;
}

function assertParameters(parameters: unknown): asserts parameters is ScryptParameters {
	if (!validParameters(parameters)) {
		throw new TypeError(`scrypt parameters must be integers ln 1–20, r 1–32, p 1–16, using at most 1 GiB (128 · 2^ln · r bytes), got ${JSON.stringify(parameters)}.`);
	}
}

/**
Hash a password with scrypt and a fresh 128-bit salt. The password is normalised to Unicode NFKC
first, so that one password typed on two keyboards is one password.

@example
```
const stored = await hashPassword('correct horse battery staple');
//=> '$scrypt$ln=17,r=8,p=1$…$…'
```
*/
export async function hashPassword(password: string, parameters: ScryptParameters = defaultScryptParameters): Promise<string> {
	if (typeof password !== 'string') {
		throw new TypeError('hashPassword() takes the password as a string.');
	}

	assertParameters(parameters);
	const salt = randomBytes(saltBytes);
	const key = await derive(password, salt, parameters, keyBytes);
	return `$scrypt$ln=${parameters.ln},r=${parameters.r},p=${parameters.p}$${salt.toString('base64url')}$${key.toString('base64url')}`;
}

/** What {@link verifyPassword} found. */
export type PasswordCheck = {
	/** Whether the password matches. */
	readonly valid: boolean;
	/**
	Whether the stored hash was made with other parameters than the current ones: hash the
	password again and store it, now that it is known to be right. Always false when not valid.
	*/
	readonly needsRehash: boolean;
};

let dummy: Promise<string> | undefined;

/**
Check a password against a stored hash, in constant time. Pass `undefined` as the hash for an
unknown user: a dummy hash with the current parameters is verified instead, so that an unknown
user takes as long as a wrong password (ASVS 5.0, 6.3.8) and both answer `{valid: false}`. A hash
that cannot be read is `{valid: false}` too, never a throw with its content.

@example
```
const {valid, needsRehash} = await verifyPassword(given, user?.passwordHash);
if (valid && needsRehash) await users.setPassword(user.id, await hashPassword(given));
```
*/
export async function verifyPassword(
	password: string,
	stored: string | undefined,
	parameters: ScryptParameters = defaultScryptParameters,
): Promise<PasswordCheck> {
	assertParameters(parameters);
	const match = stored === undefined ? undefined : encodedPattern.exec(stored);
	if (match === undefined || match === null || typeof password !== 'string') {
		// Equal work for an unknown user; the dummy is made once, with the current parameters.
		dummy ??= hashPassword('dummy password', parameters);
		const dummyMatch = encodedPattern.exec(await dummy);
		if (dummyMatch !== null) {
			await derive(typeof password === 'string' ? password : '', Buffer.from(dummyMatch[4] ?? '', 'base64url'), parameters, keyBytes);
		}

		return {valid: false, needsRehash: false};
	}

	const used: ScryptParameters = {ln: Number(match[1]), r: Number(match[2]), p: Number(match[3])};
	if (!validParameters(used)) {
		return {valid: false, needsRehash: false};
	}

	const expected = Buffer.from(match[5] ?? '', 'base64url');
	let actual: Buffer;
	try {
		actual = await derive(password, Buffer.from(match[4] ?? '', 'base64url'), used, expected.length);
	} catch {
		// A hash that cannot be computed (parameters beyond the memory limit) matches nothing.
		return {valid: false, needsRehash: false};
	}

	const valid = timingSafeEqual(actual, expected);
	const needsRehash = valid && (used.ln !== parameters.ln || used.r !== parameters.r || used.p !== parameters.p);
	return {valid, needsRehash};
}
