import {hash, timingSafeEqual} from 'node:crypto';

/** The SHA-256 digest of a secret: what is kept and compared, so that no length or content leaks. */
export function digestSecret(secret: string): Buffer {
	// One-shot hash(): a third cheaper than createHash().update().digest() for a short input.
	return hash('sha256', secret, 'buffer');
}

/**
The index of the first digest in `candidates` equal to `digest`, or -1, comparing every candidate
in constant time with no early exit (RFC rules 22: the time says nothing about which key matched,
or whether one did).
*/
export function findDigest(digest: Buffer, candidates: readonly Buffer[]): number {
	let found = -1;
	for (const [index, candidate] of candidates.entries()) {
		// Both sides are 32-byte digests, so timingSafeEqual never throws on a length mismatch.
		const equal = timingSafeEqual(digest, candidate);
		found = equal && found === -1 ? index : found;
	}

	return found;
}
