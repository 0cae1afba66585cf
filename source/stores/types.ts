/*
The interfaces every store implements: memory and SQLite here, PostgreSQL and Redis beside them,
each behind a subpath export with its driver as an optional peer dependency. A store keeps
records and answers questions about them; it decides nothing (the token service decides), but it
makes the operations that must be atomic across processes atomic: rotation, revoke-all and the
cap of live sessions per user are single store operations.

Times are milliseconds since the epoch. Digests are lower-case hex SHA-256 (or HMAC) of a token:
no store ever sees a token.
*/

/** A token as a store keeps it: never the token itself, only its digest. */
export type TokenRecord = {
	/** A random id, unique across all tokens. */
	readonly id: string;
	/** The digest of the token: the key it is looked up by. */
	readonly digest: string;
	/** `'access'`, `'refresh'`, `'api_key'`, or a type of the application's own. */
	readonly type: string;
	/** The user the token belongs to (for an API key, its owner). */
	readonly userId: string;
	/** The session: the tokens issued together and their successors by rotation. */
	readonly familyId: string;
	/** The permissions (scopes) the token carries, besides its user's. */
	readonly scopes: readonly string[];
	/** A name given at issue: an API key's application, a device. */
	readonly name: string | null;
	/** A short, non-secret display hint: the prefix and a few characters. */
	readonly hint: string;
	readonly createdAt: number;
	/** The absolute expiry: no use, refresh or idle extension goes past it. */
	readonly expiresAt: number;
	/** The last use, written at most once per `lastUsedInterval`; null before the first. */
	readonly lastUsedAt: number | null;
	/** The user's revocation epoch when the token was issued: a later `revokeAll` bumps it. */
	readonly epoch: number;
	/** When a refresh token was used for a new pair (rotation): null while it is current. */
	readonly retiredAt: number | null;
	/** Until when a retry with the retired token gets the same new pair again. */
	readonly graceUntil: number | null;
	/** The new pair, encrypted with a key only the retired token yields; null when no grace. */
	readonly graceCiphertext: string | null;
};

/** A token record with what the lookup joined: its user's current revocation epoch. */
export type FoundToken = {
	readonly record: TokenRecord;
	/** The user's current epoch; the token was revoked by `revokeAll` when it differs from `record.epoch`. */
	readonly epoch: number;
};

/** What to do when a user has as many live sessions as allowed and a new one is issued. */
export type SessionLimit = {
	readonly max: number;
	/** `'refuse'` the new session, or `'evict-oldest'`: revoke the oldest session(s) to make room. */
	readonly onLimit: 'refuse' | 'evict-oldest';
	/** The time to tell live sessions from expired ones. */
	readonly now: number;
};

/** What `rotate` did. */
export type RotateOutcome =
	/** The refresh token was current: it is retired, its family's other tokens revoked, the new records stored. */
	| {readonly kind: 'rotated'}
	/** The token was retired within its grace window: the same new pair, encrypted. */
	| {readonly kind: 'grace'; readonly ciphertext: string}
	/** The token was retired before, past any grace: reuse of a stolen token. Its whole family is revoked. */
	| {readonly kind: 'reused'}
	/** No such token (unknown, revoked, or pruned). */
	| {readonly kind: 'unknown'};

/**
Where a token service keeps its tokens. Every method may reject (a driver error, a lost
connection): the service answers 503 then, never a refusal that would log users out.
*/
export type TokenStore = {
	/**
	Store the tokens of one new session (a pair, or one API key), all of one user and one family.
	With `limit`, atomically: count the user's live sessions (a family with a token not expired at
	`limit.now`), and refuse (answer `false`) or revoke the oldest to make room.
	*/
	create(records: readonly TokenRecord[], limit?: SessionLimit): Promise<boolean>;
	/** The token with this digest and its user's current epoch, in one round trip; `undefined` when none. */
	find(digest: string): Promise<FoundToken | undefined>;
	/** Write a token's last use. */
	touch(id: string, at: number): Promise<void>;
	/**
	Rotate a refresh token atomically, so that two processes racing on it cannot both win:
	if the token with `digest` is current, retire it (`retiredAt = now`, with the grace window and its
	ciphertext), revoke the family's other current tokens (keeping its retired ones, so that a
	refresh token retired several rotations ago is still recognised when it comes back), and store
	`records` (the new pair, same family); if it was retired and `now <= graceUntil`, answer the
	ciphertext; if it was retired before that, revoke its whole family (`reused`). Retired tokens go
	when they expire (`prune`) or with their family.
	*/
	rotate(digest: string, now: number, grace: {readonly until: number; readonly ciphertext: string} | undefined, records: readonly TokenRecord[]): Promise<RotateOutcome>;
	/** Revoke (delete) every token of a family: one session. Answers how many tokens went. */
	revokeFamily(familyId: string): Promise<number>;
	/** Revoke every token of a user at once, however many: bump the user's epoch. O(1). */
	revokeUser(userId: string): Promise<void>;
	/** The user's current epoch, for tokens being issued. */
	epoch(userId: string): Promise<number>;
	/** The user's tokens that are not expired at `now` nor retired, oldest first. */
	list(userId: string, now: number): Promise<readonly TokenRecord[]>;
	/** Delete tokens expired at `now`, and those of old epochs. Answers how many went. */
	prune(now: number): Promise<number>;
};

/** A user as the user store keeps it. */
export type UserRecord = {
	readonly id: string;
	/** Unique, compared as stored (normalise before storing). */
	readonly username: string;
	/** A `hashPassword` string. */
	readonly passwordHash: string;
	readonly permissions: readonly string[];
	/** Free-form profile fields of the application's own. */
	readonly profile: Readonly<Record<string, unknown>>;
	readonly isActive: boolean;
	readonly createdAt: number;
};

/** One page of users. */
export type UserPage = {
	readonly users: readonly UserRecord[];
	/** How many users there are in all. */
	readonly total: number;
};

/** Where accounts are kept. `create` answers `false` when the username is taken. */
export type UserStore = {
	create(user: UserRecord): Promise<boolean>;
	getById(id: string): Promise<UserRecord | undefined>;
	getByUsername(username: string): Promise<UserRecord | undefined>;
	/** Users ordered by username, `limit` from `offset`, and the total. */
	list(offset: number, limit: number): Promise<UserPage>;
	/** Change fields of a user; answers `false` when there is none. */
	update(id: string, changes: Partial<Pick<UserRecord, 'permissions' | 'profile' | 'passwordHash' | 'isActive'>>): Promise<boolean>;
	/** Delete a user; answers `false` when there was none. The caller revokes the tokens. */
	delete(id: string): Promise<boolean>;
};
