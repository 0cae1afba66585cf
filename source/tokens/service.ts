import {createCipheriv, createDecipheriv, createHash, randomBytes, randomUUID} from 'node:crypto';
import {StatelessAuthError} from '../errors.js';
import type {FoundToken, TokenRecord, TokenStore} from '../stores/types.js';
import type {TokenCache} from './cache-types.js';
import {assertTokenPrefix, digestToken, generateToken, isWellFormedToken, tokenHint} from './format.js';

/** Options of {@link TokenService}. Durations are in seconds. */
export type TokenServiceOptions = {
	/** Where the tokens are kept. */
	readonly store: TokenStore;
	/**
	The application's token prefix: access tokens are `<prefix>_at_…`, refresh tokens
	`<prefix>_rt_…`, API keys `<prefix>_key_…`. Lower-case letters and digits.
	*/
	readonly prefix: string;
	/**
	A server-side secret: tokens are then stored as HMAC-SHA-256 under it rather than SHA-256, so
	that a copy of the store alone cannot be searched for a guessed token. Changing it invalidates
	every token.

	@default undefined (SHA-256)
	*/
	readonly pepper?: string | Buffer;
	/** @default 3600 (1 hour) */
	readonly accessTtl?: number;
	/** @default 2592000 (30 days) */
	readonly refreshTtl?: number;
	/**
	How long an API key lives; `false`: until it is revoked.

	@default false
	*/
	readonly apiKeyTtl?: number | false;
	/**
	A token unused for this long expires, whatever its absolute expiry (which it never passes);
	`false`: no idle expiry. Measured from the last recorded use, so it is exact to within
	`lastUsedInterval`.

	@default false
	*/
	readonly idleTimeout?: number | false;
	/**
	A token's last use is written at most once per this interval (each write is a second store round
	trip); `0` writes on every use.

	@default 60
	*/
	readonly lastUsedInterval?: number;
	/**
	For how long a retry with a refresh token that was just used gets the same new pair again
	(a client whose first answer was lost); after it, a retired refresh token is a stolen one and
	revokes its whole session.

	@default 0
	*/
	readonly reuseGrace?: number;
	/**
	The most live sessions (logins, API keys) a user may have; `false` for no limit.

	@default false
	*/
	readonly maxSessions?: number | false;
	/**
	At `maxSessions`, `'evict-oldest'` revokes the oldest session to make room; `'refuse'` refuses
	the new one with a 403 `too_many_sessions`.

	@default 'evict-oldest'
	*/
	readonly onLimit?: 'refuse' | 'evict-oldest';
	/**
	The clock, in milliseconds since the epoch, for tests.

	@default Date.now
	*/
	readonly now?: () => number;
	/**
	A verification cache (`VerificationCache` from `koa-stateless-auth/cache`): records and user
	epochs are then kept for a short while, concurrent verifications of one token share one store
	call, and every revocation and rotation invalidates the user's entries (on every instance the
	cache tells). A cached record is checked exactly as a fresh one.

	@default undefined (every verification asks the store)
	*/
	readonly cache?: TokenCache;
};

/** A token as issued: the only time the token itself is seen. */
export type IssuedToken = {
	/** The token: show it once, never store it. */
	readonly token: string;
	/** When it expires, in milliseconds since the epoch. */
	readonly expiresAt: number;
	/** What the store keeps of it. */
	readonly record: TokenRecord;
};

/** A new session's access and refresh tokens. */
export type TokenPair = {
	readonly access: IssuedToken;
	readonly refresh: IssuedToken;
};

/** Options of `issue` and `issuePair`. */
export type IssueOptions = {
	/** Permissions (scopes) the tokens carry. @default [] */
	readonly scopes?: readonly string[];
	/** A name: the application of an API key, the device of a login. @default null */
	readonly name?: string | null;
	/** Seconds to live, instead of the type's default. */
	readonly ttl?: number;
};

/**
What `verify` found: the record, or why there is none. `unknown` covers unknown, revoked (one
session or all of a user's), retired by rotation and of another type alike: rule 9 keeps them one
answer. `corrupt`: the store answered a record that is not one (a reason to look at the store).
*/
export type Verification =
	| {readonly valid: true; readonly record: TokenRecord}
	| {readonly valid: false; readonly reason: 'malformed' | 'unknown' | 'expired'}
	| {readonly valid: false; readonly reason: 'corrupt'; readonly error: Error};

/** The token types a service issues. */
export type TokenType = 'access' | 'refresh' | 'api_key';

/** A store that failed: a 503 with `Retry-After`, never a refusal that would log the user out. */
function unavailable(cause: unknown): StatelessAuthError {
	return new StatelessAuthError('Service unavailable', 503, 'server', {cause, headers: {'Retry-After': '1'}, reason: 'store_unavailable'});
}

/** The one refusal of a refresh that cannot be done (RFC 6749 §5.2 `invalid_grant`). */
function invalidGrant(reason: 'invalid_grant' | 'token_reused' = 'invalid_grant'): StatelessAuthError {
	return new StatelessAuthError('Invalid refresh token', 400, 'token', {reason});
}

function assertSeconds(value: unknown, option: string, allowFalse: boolean, allowZero = false): void {
	if (allowFalse && value === false) {
		return;
	}

	if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || (!allowZero && value === 0)) {
		throw new TypeError(`The \`${option}\` option must be a ${allowZero ? 'non-negative' : 'positive'} number of seconds${allowFalse ? ', or false' : ''}, got ${JSON.stringify(value)}.`);
	}
}

const isString = (value: unknown): value is string => typeof value === 'string';
const isTime = (value: unknown): value is number => typeof value === 'number' && Number.isFinite(value);
const isTimeOrNull = (value: unknown): boolean => value === null || isTime(value);

/** Whether a store's answer is a token record at all: a corrupt row is refused, never trusted. */
function checkRecord(found: FoundToken): Error | undefined {
	// A store is the application's: its answer is checked like any other untrusted value.
	const record = found.record as Partial<Record<keyof TokenRecord, unknown>> | null | undefined;
	const valid = record !== undefined && record !== null
		&& isString(record.id) && isString(record.digest) && isString(record.type) && isString(record.userId) && isString(record.familyId)
		&& Array.isArray(record.scopes) && record.scopes.every(scope => isString(scope))
		&& (record.name === null || isString(record.name)) && isString(record.hint)
		&& isTime(record.createdAt) && isTime(record.expiresAt) && isTimeOrNull(record.lastUsedAt) && isTime(record.epoch)
		&& isTimeOrNull(record.retiredAt) && isTimeOrNull(record.graceUntil) && (record.graceCiphertext === null || isString(record.graceCiphertext))
		&& isTime(found.epoch);
	return valid ? undefined : new TypeError('koa-stateless-auth: the token store answered a record that is not a token record (missing fields or wrong types); it was refused as an unknown token.');
}

// The new pair of a rotation, kept for the grace window encrypted under a key that only the retired
// refresh token yields: nothing at rest can be turned into the new tokens without the old one.
function graceKey(refreshToken: string): Buffer {
	return createHash('sha256').update('koa-stateless-auth grace\0').update(refreshToken).digest();
}

function sealPair(pair: TokenPair, refreshToken: string): string {
	const iv = randomBytes(12);
	const cipher = createCipheriv('aes-256-gcm', graceKey(refreshToken), iv);
	const plain = JSON.stringify({access: [pair.access.token, pair.access.expiresAt], refresh: [pair.refresh.token, pair.refresh.expiresAt]});
	const body = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
	return [iv, cipher.getAuthTag(), body].map(part => part.toString('base64url')).join('.');
}

function openPair(sealed: string, refreshToken: string): {access: [string, number]; refresh: [string, number]} | undefined {
	try {
		const [iv = '', tag = '', body = ''] = sealed.split('.');
		const decipher = createDecipheriv('aes-256-gcm', graceKey(refreshToken), Buffer.from(iv, 'base64url'));
		decipher.setAuthTag(Buffer.from(tag, 'base64url'));
		const plain = Buffer.concat([decipher.update(Buffer.from(body, 'base64url')), decipher.final()]).toString('utf8');
		return JSON.parse(plain) as {access: [string, number]; refresh: [string, number]};
	} catch {
		return undefined;
	}
}

/**
Issues, verifies, rotates and revokes tokens over a {@link TokenStore}: the token lifecycle that
every application would otherwise write by hand. Tokens have an offline-checkable format
({@link generateToken}), are stored only as digests, and are checked for format and checksum before
any store is asked.

@example
```
const tokens = new TokenService({store: new MemoryTokenStore(), prefix: 'myapp'});
const {access, refresh} = await tokens.issuePair(user.id);
auth.useTokens(tokens);
```
*/
export class TokenService {
	readonly #store: TokenStore;
	readonly #prefixes: Readonly<Record<TokenType, string>>;
	readonly #pepper: string | Buffer | undefined;
	readonly #ttl: Readonly<Record<TokenType, number>>;
	readonly #idle: number | undefined;
	readonly #lastUsedInterval: number;
	readonly #reuseGrace: number;
	readonly #limit: {readonly max: number; readonly onLimit: 'refuse' | 'evict-oldest'} | undefined;
	readonly #now: () => number;
	readonly #cache: TokenCache | undefined;

	constructor(options: TokenServiceOptions) {
		const {
			store, prefix, pepper, accessTtl = 3600, refreshTtl = 2_592_000, apiKeyTtl = false, idleTimeout = false,
			lastUsedInterval = 60, reuseGrace = 0, maxSessions = false, onLimit = 'evict-oldest', now = Date.now, cache,
		} = options;
		const methods = ['create', 'find', 'touch', 'rotate', 'revokeFamily', 'revokeUser', 'epoch', 'list', 'prune'] as const;
		if (typeof (store as unknown) !== 'object' || (store as unknown) === null || methods.some(method => typeof (store as Partial<TokenStore>)[method] !== 'function')) {
			throw new TypeError(`The \`store\` option must be a TokenStore (with ${methods.join(', ')}).`);
		}

		assertTokenPrefix(prefix);
		if (pepper !== undefined && !(typeof pepper === 'string' && pepper.length >= 16) && !(Buffer.isBuffer(pepper) && pepper.length >= 16)) {
			throw new TypeError('The `pepper` option must be a string or Buffer of at least 16 characters (bytes).');
		}

		assertSeconds(accessTtl, 'accessTtl', false);
		assertSeconds(refreshTtl, 'refreshTtl', false);
		assertSeconds(apiKeyTtl, 'apiKeyTtl', true);
		assertSeconds(idleTimeout, 'idleTimeout', true);
		assertSeconds(lastUsedInterval, 'lastUsedInterval', false, true);
		assertSeconds(reuseGrace, 'reuseGrace', false, true);
		if (maxSessions !== false && !(Number.isSafeInteger(maxSessions) && maxSessions > 0)) {
			throw new TypeError(`The \`maxSessions\` option must be a positive integer or false, got ${JSON.stringify(maxSessions)}.`);
		}

		if ((onLimit as unknown) !== 'refuse' && (onLimit as unknown) !== 'evict-oldest') {
			throw new TypeError(`The \`onLimit\` option must be 'refuse' or 'evict-oldest', got ${JSON.stringify(onLimit)}.`);
		}

		if (typeof now !== 'function') {
			throw new TypeError('The `now` option must be a function.');
		}

		const hooks = ['find', 'claimTouch', 'invalidate', 'invalidateUser'] as const;
		if (cache !== undefined && (typeof (cache as unknown) !== 'object' || (cache as unknown) === null || hooks.some(hook => typeof (cache as Partial<TokenCache>)[hook] !== 'function'))) {
			throw new TypeError(`The \`cache\` option must be a TokenCache (with ${hooks.join(', ')}), such as a VerificationCache from koa-stateless-auth/cache.`);
		}

		this.#store = store;
		this.#prefixes = {access: `${prefix}_at`, refresh: `${prefix}_rt`, api_key: `${prefix}_key`};
		this.#pepper = pepper;
		// A key without expiry lives until revoked: 100 years, so every record has a number.
		// Whole milliseconds: stores keep times as integers.
		this.#ttl = {access: Math.round(accessTtl * 1000), refresh: Math.round(refreshTtl * 1000), api_key: apiKeyTtl === false ? 100 * 365 * 86_400_000 : Math.round(apiKeyTtl * 1000)};
		this.#idle = idleTimeout === false ? undefined : Math.round(idleTimeout * 1000);
		this.#lastUsedInterval = Math.round(lastUsedInterval * 1000);
		this.#reuseGrace = Math.round(reuseGrace * 1000);
		this.#limit = maxSessions === false ? undefined : {max: maxSessions, onLimit};
		this.#now = now;
		this.#cache = cache;
	}

	/** The prefix of each token type, such as `{access: 'myapp_at', refresh: 'myapp_rt', api_key: 'myapp_key'}`. */
	get prefixes(): Readonly<Record<TokenType, string>> {
		return this.#prefixes;
	}

	/** The digest a store keeps of `token`. */
	digest(token: string): string {
		return digestToken(token, this.#pepper);
	}

	/**
	Issue one token of `type` in a session of its own (an API key; a lone access token). The token
	is answered once; only its digest is stored.
	*/
	async issue(userId: string, type: TokenType, options: IssueOptions = {}): Promise<IssuedToken> {
		const familyId = randomUUID();
		const epoch = await this.#call(async () => this.#store.epoch(userId));
		const issued = this.#make(userId, type, familyId, epoch, options);
		await this.#create([issued.record]);
		return issued;
	}

	/** Issue an access token and a refresh token: one new session (a login). */
	async issuePair(userId: string, options: Omit<IssueOptions, 'ttl'> = {}): Promise<TokenPair> {
		const familyId = randomUUID();
		const epoch = await this.#call(async () => this.#store.epoch(userId));
		// One instant for both tokens of a session.
		const now = this.#now();
		const pair = {access: this.#make(userId, 'access', familyId, epoch, options, now), refresh: this.#make(userId, 'refresh', familyId, epoch, options, now)};
		await this.#create([pair.access.record, pair.refresh.record]);
		return pair;
	}

	/**
	Check a token of `type`: its format and checksum (no store is asked for a token that fails
	them), then its record, expiry, idle expiry, revocation and rotation. A due last-use write is a
	second round trip; its failure does not fail the verification.
	*/
	async verify(token: string, type: TokenType): Promise<Verification> {
		const prefix = this.#prefixes[type] as string | undefined;
		if (typeof token !== 'string' || prefix === undefined || !isWellFormedToken(token, Object.values(this.#prefixes))) {
			return {valid: false, reason: 'malformed'};
		}

		// A well-formed token of another type (an access token sent as a refresh token): unknown, no store asked.
		if (!token.startsWith(`${prefix}_`) || !isWellFormedToken(token, [prefix])) {
			return {valid: false, reason: 'unknown'};
		}

		const digest = this.digest(token);
		// Without a cache every record is the store's own; with one, an idle expiry judged on a cached
		// record is judged again on the store's (another instance may have used the token since).
		return await this.#check(digest, type, this.#cache === undefined) ?? await this.#check(digest, type, true) ?? {valid: false, reason: 'expired'};
	}

	/** Verify by digest; `undefined` when a cached record looks idle expired (ask the store). */
	async #check(digest: string, type: TokenType, fresh: boolean): Promise<Verification | undefined> {
		const cache = this.#cache;
		const found = await this.#call(async () => (cache === undefined ? this.#store.find(digest) : cache.find(digest, async key => this.#store.find(key), fresh)));
		if (found === undefined) {
			return {valid: false, reason: 'unknown'};
		}

		const error = checkRecord(found);
		if (error !== undefined) {
			return {valid: false, reason: 'corrupt', error};
		}

		const {record} = found;
		if (record.type !== type || record.epoch !== found.epoch || record.retiredAt !== null) {
			return {valid: false, reason: 'unknown'};
		}

		const now = this.#now();
		if (now >= record.expiresAt) {
			return {valid: false, reason: 'expired'};
		}

		if (this.#idle !== undefined && now >= (record.lastUsedAt ?? record.createdAt) + this.#idle) {
			return fresh ? {valid: false, reason: 'expired'} : undefined;
		}

		// With a cache, one verification of the process writes the last use; the others see it written.
		if ((record.lastUsedAt === null || now - record.lastUsedAt >= this.#lastUsedInterval)
			&& (cache === undefined || cache.claimTouch(digest, now, this.#lastUsedInterval))) {
			try {
				await this.#store.touch(record.id, now);
			} catch {
				// The token is valid; a lost last-use write only makes the idle expiry a little early.
			}
		}

		return {valid: true, record};
	}

	/**
	Rotate a session (RFC 9700 §4.14.2): the refresh token buys a new pair and is retired. Using a
	retired refresh token again revokes the whole session, the sign of a stolen token; within
	`reuseGrace` of its use, a retry gets the same new pair instead. Every failure is one 400
	`invalid_grant` (reason `token_reused` when a reuse revoked the session).
	*/
	async refresh(refreshToken: string): Promise<TokenPair> {
		if (typeof refreshToken !== 'string' || !isWellFormedToken(refreshToken, [this.#prefixes.refresh])) {
			throw invalidGrant();
		}

		const digest = this.digest(refreshToken);
		const found = await this.#call(async () => this.#store.find(digest));
		if (found === undefined || checkRecord(found) !== undefined) {
			throw invalidGrant();
		}

		const {record} = found;
		const now = this.#now();
		const current = record.retiredAt === null;
		if (record.type !== 'refresh' || record.epoch !== found.epoch
			|| (current && (now >= record.expiresAt || (this.#idle !== undefined && now >= (record.lastUsedAt ?? record.createdAt) + this.#idle)))) {
			throw invalidGrant();
		}

		const options = {scopes: record.scopes, name: record.name};
		const pair = {
			access: this.#make(record.userId, 'access', record.familyId, found.epoch, options, now),
			refresh: this.#make(record.userId, 'refresh', record.familyId, found.epoch, options, now),
		};
		const grace = this.#reuseGrace > 0 ? {until: now + this.#reuseGrace, ciphertext: sealPair(pair, refreshToken)} : undefined;
		const outcome = await this.#revoking(record.userId, async () => this.#store.rotate(digest, now, grace, [pair.access.record, pair.refresh.record]));
		switch (outcome.kind) {
			case 'rotated': {
				return pair;
			}

			case 'grace': {
				const opened = openPair(outcome.ciphertext, refreshToken);
				if (opened === undefined) {
					throw invalidGrant();
				}

				// The pair the first rotation stored: its tokens from the sealed copy, its records from the store.
				const [access, refresh] = await Promise.all([opened.access[0], opened.refresh[0]].map(async token => this.#call(async () => this.#store.find(this.digest(token)))));
				if (access === undefined || refresh === undefined) {
					throw invalidGrant();
				}

				return {
					access: {token: opened.access[0], expiresAt: access.record.expiresAt, record: access.record},
					refresh: {token: opened.refresh[0], expiresAt: refresh.record.expiresAt, record: refresh.record},
				};
			}

			case 'reused': {
				throw invalidGrant('token_reused');
			}

			default: {
				throw invalidGrant();
			}
		}
	}

	/**
	Revoke the session `token` belongs to (a logout: both tokens of the pair, and any retired
	ones). Answers whether there was one. A malformed token asks no store.
	*/
	async revoke(token: string): Promise<boolean> {
		const prefixes = Object.values(this.#prefixes);
		if (typeof token !== 'string' || !isWellFormedToken(token, prefixes)) {
			return false;
		}

		const found = await this.#call(async () => this.#store.find(this.digest(token)));
		if (found === undefined || checkRecord(found) !== undefined) {
			return false;
		}

		return (await this.#revoking(found.record.userId, async () => this.#store.revokeFamily(found.record.familyId))) > 0;
	}

	/** Revoke one session of a user by its id (from `sessions`); answers whether it was theirs. */
	async revokeSession(userId: string, familyId: string): Promise<boolean> {
		const sessions = await this.sessions(userId);
		if (!sessions.some(record => record.familyId === familyId)) {
			return false;
		}

		return (await this.#revoking(userId, async () => this.#store.revokeFamily(familyId))) > 0;
	}

	/** Revoke every token of a user at once, in one store operation whatever their number. */
	async revokeAll(userId: string): Promise<void> {
		await this.#revoking(userId, async () => this.#store.revokeUser(userId));
	}

	/** A user's live tokens (never the tokens: digests, hints, times), oldest first. */
	async sessions(userId: string): Promise<readonly TokenRecord[]> {
		const epoch = await this.#call(async () => this.#store.epoch(userId));
		const now = this.#now();
		const records = await this.#call(async () => this.#store.list(userId, now));
		return records.filter(record => record.epoch === epoch
			&& (this.#idle === undefined || now < (record.lastUsedAt ?? record.createdAt) + this.#idle));
	}

	/** Delete expired and revoked tokens from the store; answers how many went. */
	async prune(): Promise<number> {
		return this.#call(async () => this.#store.prune(this.#now()));
	}

	#make(userId: string, type: TokenType, familyId: string, epoch: number, {scopes = [], name = null, ttl}: IssueOptions, now = this.#now()): IssuedToken {
		const token = generateToken({prefix: this.#prefixes[type]});
		if (ttl !== undefined) {
			assertSeconds(ttl, 'ttl', false);
		}

		const expiresAt = now + (ttl === undefined ? this.#ttl[type] : Math.round(ttl * 1000));
		const record: TokenRecord = {
			id: randomUUID(),
			digest: this.digest(token),
			type,
			userId,
			familyId,
			scopes: [...scopes],
			name,
			hint: tokenHint(token),
			createdAt: now,
			expiresAt,
			lastUsedAt: null,
			epoch,
			retiredAt: null,
			graceUntil: null,
			graceCiphertext: null,
		};
		return {token, expiresAt, record};
	}

	async #create(records: readonly TokenRecord[]): Promise<void> {
		const limit = this.#limit === undefined ? undefined : {...this.#limit, now: this.#now()};
		const created = await this.#call(async () => this.#store.create(records, limit));
		if (!created) {
			throw new StatelessAuthError('Too many sessions', 403, 'scope', {reason: 'too_many_sessions'});
		}
	}

	// A store call that revokes or retires tokens of `userId`: then the cache forgets the user's entries,
	// also when the call failed (the change may have been made, its answer lost).
	async #revoking<T>(userId: string, operation: () => Promise<T>): Promise<T> {
		const cache = this.#cache;
		try {
			return await this.#call(operation);
		} finally {
			if (cache !== undefined) {
				await this.#call(async () => {
					await cache.invalidateUser(userId);
				});
			}
		}
	}

	// Every store call: a failure is the store's, answered 503 with Retry-After.
	async #call<T>(operation: () => Promise<T>): Promise<T> {
		try {
			return await operation();
		} catch (error) {
			throw unavailable(error);
		}
	}
}
