import type {FoundToken} from '../stores/types.js';

/*
The hooks a TokenService calls on a verification cache: the core defines them and depends on no
cache library; `koa-stateless-auth/cache` implements them over lru-cache (`VerificationCache`).
A cache only saves store round trips: the service checks a cached record exactly as a fresh one
(type, revocation epoch, retirement, expiry, idle expiry) on every verification.
*/

/**
A verification cache, as the token service uses it (`new TokenService({cache})`). Keys are token
digests and user ids, never tokens. `VerificationCache` from `koa-stateless-auth/cache` is one.
*/
export type TokenCache = {
	/**
	The record with this digest and its user's current epoch: from the cache when it holds both,
	else from `load` (the store's `find`), shared by every concurrent caller of the same digest.
	`fresh`: do not answer from the cache (the service asks again when a cached record looks idle
	expired, as another instance may have used the token since). A rejected `load` is passed on and
	not cached.
	*/
	find(digest: string, load: (digest: string) => Promise<FoundToken | undefined>, fresh: boolean): Promise<FoundToken | undefined>;
	/**
	Whether this verification should write the token's last use at `at` (a store round trip):
	`false` when another verification in this process wrote one, or is writing one, less than
	`interval` milliseconds before. The cached record carries `at` as its last use from then on.
	*/
	claimTouch(digest: string, at: number, interval: number): boolean;
	/** Forget the token with this digest (here, and on every instance the cache tells). */
	invalidate(digest: string): void | Promise<void>;
	/**
	Forget every token of this user and the user's epoch (here, and on every instance the cache
	tells). The service calls it after each revocation and rotation: revoking a session also
	revokes the pair's other token, whose digest it does not know.
	*/
	invalidateUser(userId: string): void | Promise<void>;
};
