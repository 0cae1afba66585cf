import {createHash, randomBytes, scrypt, timingSafeEqual, type BinaryLike, type ScryptOptions} from 'node:crypto';

// scrypt parameters (OWASP's minimum for scrypt is N=2^17 with r=8; 2^15 keeps the example
// and its tests quick while staying a slow, memory-hard hash). Stored with each hash, so they
// can be raised later without breaking existing passwords.
const cost = {N: 2 ** 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024};
const keyLength = 32;

function scryptAsync(password: BinaryLike, salt: BinaryLike, length: number, options: ScryptOptions): Promise<Buffer> {
	return new Promise((resolve, reject) => {
		scrypt(password, salt, length, options, (error, key) => {
			if (error) {
				reject(error);
			} else {
				resolve(key);
			}
		});
	});
}

/** Hash a password as `scrypt$N$r$p$salt$hash` (base64url parts). */
export async function hashPassword(password: string): Promise<string> {
	const salt = randomBytes(16);
	const key = await scryptAsync(password.normalize('NFC'), salt, keyLength, cost);
	return ['scrypt', cost.N, cost.r, cost.p, salt.toString('base64url'), key.toString('base64url')].join('$');
}

/** Check a password against a stored hash, in constant time. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
	const [algorithm, n, r, p, salt, hash] = stored.split('$');
	if (algorithm !== 'scrypt' || salt === undefined || hash === undefined) {
		return false;
	}

	const expected = Buffer.from(hash, 'base64url');
	const key = await scryptAsync(password.normalize('NFC'), Buffer.from(salt, 'base64url'), expected.length, {
		N: Number(n), r: Number(r), p: Number(p), maxmem: cost.maxmem,
	});
	return timingSafeEqual(key, expected);
}

/**
A hash of no one's password, checked when the username is unknown, so that an unknown user and a
wrong password take the same time.
*/
export const dummyPasswordHash = await hashPassword(randomBytes(16).toString('hex'));

/** A new opaque token: 256 random bits, base64url (valid token68). */
export function generateToken(): string {
	return randomBytes(32).toString('base64url');
}

/** What the database keeps of a token: its SHA-256, never the token. */
export function hashToken(token: string): string {
	return createHash('sha256').update(token).digest('base64url');
}
