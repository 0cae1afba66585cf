import {randomUUID} from 'node:crypto';
// Types only: ioredis is an optional peer dependency, and the application hands us its clients.
import type {Redis} from 'ioredis';
import {LRUCache} from 'lru-cache';
import type {FoundToken, TokenRecord} from '../stores/types.js';
import type {TokenCache} from '../tokens/cache-types.js';

/*
`koa-stateless-auth/cache`: a verification cache for the TokenService (lru-cache 11, an optional
peer dependency of this subpath only), and invalidation across instances over Redis pub/sub.

What is cached, by token digest (never a token): the record the store answered, for `ttl` and never
past the token's own `expiresAt`, or the fact that no token has this digest, for `negativeTtl`; by
user id: the user's revocation epoch, for `ttl`. A record is answered from the cache only together
with its user's epoch entry, and only when that entry is the one the record was cached under (its
stamp): forgetting a user's epoch forgets all of the user's records at once, in O(1). The service
checks whatever the cache answers exactly as a record fresh from the store.

Concurrent lookups of one digest share one store call (a "flight"); a failed one is passed to every
caller and not cached; one older than the TTL is not joined. An invalidation detaches the flights it concerns: a verification that starts
after an invalidation never joins, nor caches the answer of, a lookup that started before it.
*/

/** What an invalidation bus carries between instances. */
export type InvalidationMessage =
	| {readonly kind: 'token'; readonly digest: string}
	| {readonly kind: 'user'; readonly userId: string}
	| {readonly kind: 'all'};

/** What a bus tells a cache. */
export type InvalidationListener = {
	/** An invalidation published by another instance. */
	message(message: InvalidationMessage): void;
	/**
	Messages may have been lost (the bus lost its connection, or it just subscribed): forget
	everything. The bus calls it when it stops being live and again when it is live once more.
	*/
	reset(): void;
};

/**
Carries invalidations between the instances of a service. `RedisInvalidationBus` is one; another
(NATS, PostgreSQL LISTEN) implements this.
*/
export type InvalidationBus = {
	/**
	Whether invalidations from other instances reach this one now. While it is `false` a cache
	neither answers from nor fills its entries: every verification asks the store.
	*/
	readonly live: boolean;
	/** Tell the other instances; never rejects (a bus reports its own failures). */
	publish(message: InvalidationMessage): Promise<void>;
	/** Hear the other instances' messages (never this instance's own); answers a function that stops. */
	listen(listener: InvalidationListener): () => void;
};

/** Options of {@link VerificationCache}. Durations are in seconds. */
export type VerificationCacheOptions = {
	/**
	How long a record, and a user's epoch, are kept: the most a revocation made where the cache
	does not hear of it (another instance without a bus, a store edited by hand) can go unnoticed.
	An entry never outlives its token's `expiresAt`.

	@default 5
	*/
	readonly ttl?: number;
	/** How long "no token has this digest" is kept; `0` keeps none. @default 1 */
	readonly negativeTtl?: number;
	/** The most token digests kept, and the most users' epochs; the least recently used go first. @default 10000 */
	readonly max?: number;
	/**
	Carries invalidations to and from the service's other instances. Without one, a revocation on
	another instance is seen here within `ttl`.

	@default undefined
	*/
	readonly bus?: InvalidationBus;
	/**
	The clock, in milliseconds since the epoch: give the token service's `now` (tests). By default
	entries age on the monotonic clock and are bounded by `expiresAt` on `Date.now`.

	@default Date.now
	*/
	readonly now?: () => number;
};

/** What a cache has done since it was made. */
export type VerificationCacheStats = {
	/** Verifications answered with a cached record. */
	readonly hits: number;
	/** Verifications answered with a cached "no such token". */
	readonly negativeHits: number;
	/** Store lookups made (each shared by every verification that joined it). */
	readonly loads: number;
	/** Verifications that joined a lookup already in flight instead of making one. */
	readonly coalesced: number;
	/** Lookups that failed (passed on to every caller, never cached). */
	readonly failures: number;
	/** Lookups made while the bus was not live (the cache is then bypassed). */
	readonly bypassed: number;
	/** Invalidations made here (`invalidate`, `invalidateUser`, `invalidateAll`). */
	readonly invalidations: number;
	/** Invalidations heard from other instances. */
	readonly remoteInvalidations: number;
	/** Times everything was forgotten because the bus lost (or regained) its connection. */
	readonly resets: number;
};

type RecordEntry = {
	readonly kind: 'record';
	/** Replaced (with a later `lastUsedAt`) when this process writes the token's last use. */
	record: TokenRecord;
	/** The stamp of the user entry it was cached under. */
	readonly stamp: number;
	readonly until: number;
};
type NegativeEntry = {readonly kind: 'negative'; readonly until: number};
type UserEntry = {
	/** Only ever raised: a lookup that started before a revoke-all may answer after one that started after it. */
	epoch: number;
	readonly stamp: number;
	readonly until: number;
};
type Flight = {readonly promise: Promise<FoundToken | undefined>; readonly started: number};

const second = 1000;

function assertSeconds(value: unknown, option: string, allowZero: boolean): asserts value is number {
	if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || (!allowZero && value === 0)) {
		throw new TypeError(`The \`${option}\` option must be a ${allowZero ? 'non-negative' : 'positive'} number of seconds, got ${JSON.stringify(value)}.`);
	}
}

function copyRecord(record: TokenRecord): TokenRecord {
	return {...record, scopes: [...record.scopes]};
}

/** A store's answer the cache can key and bound (the service still checks every field on every hit). */
function cacheable(found: FoundToken): boolean {
	const {record, epoch} = found as Partial<Record<'record' | 'epoch', unknown>>;
	const fields = record as Partial<Record<'userId' | 'expiresAt' | 'scopes', unknown>> | null | undefined;
	return typeof fields === 'object' && fields !== null && typeof fields.userId === 'string'
		&& typeof fields.expiresAt === 'number' && Number.isFinite(fields.expiresAt) && Array.isArray(fields.scopes)
		&& typeof epoch === 'number' && Number.isFinite(epoch);
}

const miss = Symbol('miss');

/**
A verification cache for a {@link TokenService}: records and user epochs for a short `ttl`,
concurrent lookups of one token coalesced into one store call, and invalidation on every
revocation and rotation, across instances with a {@link RedisInvalidationBus}. Expiry, idle expiry,
the user's epoch and retirement are decided by the service on every hit, as for a fresh record;
whether the user is still active is the user loader's business, asked on every request.

@example
```
import {TokenService} from 'koa-stateless-auth';
import {VerificationCache} from 'koa-stateless-auth/cache';

const cache = new VerificationCache({ttl: 5});
const tokens = new TokenService({store, prefix: 'myapp', cache});
```
*/
export class VerificationCache implements TokenCache {
	readonly #records: LRUCache<string, RecordEntry | NegativeEntry>;
	readonly #users: LRUCache<string, UserEntry>;
	readonly #flights = new Map<string, Flight>();
	readonly #ttl: number;
	readonly #negativeTtl: number;
	readonly #now: () => number;
	readonly #bus: InvalidationBus | undefined;
	readonly #unlisten: (() => void) | undefined;
	/** Bumped by every invalidation that concerns lookups whose digest's user is not known yet. */
	#generation = 0;
	#stamps = 0;
	#stats = {hits: 0, negativeHits: 0, loads: 0, coalesced: 0, failures: 0, bypassed: 0, invalidations: 0, remoteInvalidations: 0, resets: 0};

	/** A cache; it throws a `TypeError` naming a bad option. */
	constructor(options: VerificationCacheOptions = {}) {
		if (typeof (options as unknown) !== 'object' || (options as unknown) === null) {
			throw new TypeError('The options of VerificationCache must be an object.');
		}

		const known = new Set(['ttl', 'negativeTtl', 'max', 'bus', 'now']);
		const unknown = Object.keys(options).filter(key => !known.has(key));
		if (unknown.length > 0) {
			throw new TypeError(`Unknown VerificationCache option ${unknown.map(key => `\`${key}\``).join(', ')}; the options are ${[...known].join(', ')}.`);
		}

		const {ttl = 5, negativeTtl = 1, max = 10_000, bus, now} = options;
		assertSeconds(ttl, 'ttl', false);
		assertSeconds(negativeTtl, 'negativeTtl', true);
		if (!Number.isSafeInteger(max) || max < 1) {
			throw new TypeError(`The \`max\` option must be a positive integer, got ${JSON.stringify(max)}.`);
		}

		if (now !== undefined && typeof now !== 'function') {
			throw new TypeError('The `now` option must be a function.');
		}

		const candidate = bus as Partial<Record<keyof InvalidationBus, unknown>> | null | undefined;
		if (bus !== undefined && (typeof candidate !== 'object' || candidate === null || typeof candidate.publish !== 'function' || typeof candidate.listen !== 'function' || typeof candidate.live !== 'boolean')) {
			throw new TypeError('The `bus` option must be an InvalidationBus (live, publish, listen), such as a RedisInvalidationBus.');
		}

		this.#ttl = ttl * second;
		this.#negativeTtl = negativeTtl * second;
		this.#now = now ?? Date.now;
		// ttlResolution 0: the clock is read at each check, so that a test's clock is obeyed at once.
		const common = {max, ttlResolution: 0, ...(now === undefined ? {} : {perf: {now}})};
		this.#records = new LRUCache<string, RecordEntry | NegativeEntry>({...common, ttl: this.#ttl});
		this.#users = new LRUCache<string, UserEntry>({...common, ttl: this.#ttl});
		this.#bus = bus;
		this.#unlisten = bus?.listen({
			message: message => {
				this.#stats.remoteInvalidations++;
				this.#apply(message);
			},
			reset: () => {
				this.#stats.resets++;
				this.#reset();
			},
		});
	}

	/** Counters since the cache was made. */
	get stats(): VerificationCacheStats {
		return {...this.#stats};
	}

	/** How many digests (records and unknown digests) are kept. */
	get size(): number {
		return this.#records.size;
	}

	async find(digest: string, load: (digest: string) => Promise<FoundToken | undefined>, fresh = false): Promise<FoundToken | undefined> {
		const serving = this.#serving();
		if (serving && !fresh) {
			const cached = this.#lookup(digest);
			if (cached !== miss) {
				return cached;
			}
		}

		const joined = this.#flights.get(digest);
		// A lookup in flight for longer than the TTL is not joined (it is replaced): a store call that
		// never settles must not hold a token's verifications for longer than that.
		if (joined !== undefined && this.#now() - joined.started < this.#ttl) {
			this.#stats.coalesced++;
			const found = await joined.promise;
			return found === undefined ? undefined : {record: copyRecord(found.record), epoch: found.epoch};
		}

		this.#stats.loads++;
		if (!serving) {
			this.#stats.bypassed++;
		}

		const generation = this.#generation;
		// The load starts a microtask later, once the flight is registered: a load that throws at once
		// rejects the flight like any other failure.
		const flight: Flight = {promise: Promise.resolve().then(async () => load(digest)), started: this.#now()};
		this.#flights.set(digest, flight);
		try {
			const found = await flight.promise;
			if (this.#flights.get(digest) === flight && generation === this.#generation && this.#serving()) {
				this.#remember(digest, found);
			}

			return found;
		} catch (error) {
			this.#stats.failures++;
			throw error;
		} finally {
			if (this.#flights.get(digest) === flight) {
				this.#flights.delete(digest);
			}
		}
	}

	claimTouch(digest: string, at: number, interval: number): boolean {
		const entry = this.#records.peek(digest);
		if (entry?.kind !== 'record') {
			return true;
		}

		const {lastUsedAt} = entry.record;
		if (lastUsedAt !== null && at - lastUsedAt < interval) {
			return false;
		}

		entry.record = {...entry.record, lastUsedAt: at};
		return true;
	}

	/**
	Forget the token with this digest, here and (with a bus) on every other instance; resolves once
	the bus has been told. With the token itself: `cache.invalidate(tokens.digest(token))`.
	*/
	async invalidate(digest: string): Promise<void> {
		this.#stats.invalidations++;
		this.#apply({kind: 'token', digest});
		await this.#publish({kind: 'token', digest});
	}

	/** Forget every token and the epoch of this user, here and on every other instance. */
	async invalidateUser(userId: string): Promise<void> {
		this.#stats.invalidations++;
		this.#apply({kind: 'user', userId});
		await this.#publish({kind: 'user', userId});
	}

	/** Forget everything, here and on every other instance. */
	async invalidateAll(): Promise<void> {
		this.#stats.invalidations++;
		this.#apply({kind: 'all'});
		await this.#publish({kind: 'all'});
	}

	/** Stop hearing the bus (the bus itself stays open: close it apart). */
	close(): void {
		this.#unlisten?.();
		this.#reset();
	}

	#serving(): boolean {
		return this.#bus === undefined || this.#bus.live;
	}

	#lookup(digest: string): FoundToken | undefined | typeof miss {
		const entry = this.#records.get(digest);
		if (entry === undefined) {
			return miss;
		}

		const now = this.#now();
		if (now >= entry.until) {
			this.#records.delete(digest);
			return miss;
		}

		if (entry.kind === 'negative') {
			this.#stats.negativeHits++;
			return undefined;
		}

		const user = this.#users.get(entry.record.userId);
		if (user?.stamp !== entry.stamp || now >= user.until) {
			return miss;
		}

		this.#stats.hits++;
		return {record: copyRecord(entry.record), epoch: user.epoch};
	}

	#remember(digest: string, found: FoundToken | undefined): void {
		const now = this.#now();
		if (found === undefined) {
			if (this.#negativeTtl > 0) {
				this.#records.set(digest, {kind: 'negative', until: now + this.#negativeTtl}, {ttl: this.#negativeTtl});
			}

			return;
		}

		if (!cacheable(found)) {
			return;
		}

		const {record, epoch} = found;
		const life = Math.min(this.#ttl, record.expiresAt - now);
		if (life <= 0) {
			this.#records.delete(digest);
			return;
		}

		let user = this.#users.get(record.userId);
		if (user === undefined || now >= user.until) {
			user = {epoch, stamp: ++this.#stamps, until: now + this.#ttl};
			this.#users.set(record.userId, user, {ttl: this.#ttl});
		} else if (epoch > user.epoch) {
			user.epoch = epoch;
		}

		this.#records.set(digest, {kind: 'record', record: copyRecord(record), stamp: user.stamp, until: now + life}, {ttl: life});
	}

	#apply(message: InvalidationMessage): void {
		switch (message.kind) {
			case 'token': {
				this.#records.delete(message.digest);
				// A lookup in flight may have read the store before the revocation: later verifications make their own.
				this.#flights.delete(message.digest);
				break;
			}

			case 'user': {
				// Without its user's entry (a new one gets a new stamp) no record of the user is answered again.
				this.#users.delete(message.userId);
				// A flight's user is not known before it lands: none that started before is cached, or joined.
				this.#generation++;
				this.#flights.clear();
				break;
			}

			default: {
				this.#reset();
			}
		}
	}

	#reset(): void {
		this.#records.clear();
		this.#users.clear();
		this.#flights.clear();
		this.#generation++;
	}

	async #publish(message: InvalidationMessage): Promise<void> {
		if (this.#bus === undefined) {
			return;
		}

		try {
			await this.#bus.publish(message);
		} catch (error) {
			// A bus reports its own failures; one that throws is reported here, and the revocation stands.
			process.emitWarning(new Error('koa-stateless-auth: the invalidation bus failed to publish', {cause: error}));
		}
	}
}

/** Options of {@link RedisInvalidationBus}. */
export type RedisInvalidationBusOptions = {
	/**
	The client that subscribes (a subscribed client can do nothing else). By default the bus makes
	one with `client.duplicate()`, listens to its errors, and closes it in `close()`.
	*/
	readonly subscriber?: Redis;
	/** The pub/sub channel; every instance of one service uses the same. @default 'ksa:cache-invalidation' */
	readonly channel?: string;
	/** Milliseconds a publish may take before it is given up and reported. @default 1000 */
	readonly publishTimeout?: number;
	/**
	Where the bus reports what went wrong: a publish that failed or timed out (the other instances
	see that revocation only within their `ttl`), a subscription that failed, a malformed message,
	and the errors of the subscriber it made.

	@default error => process.emitWarning(error)
	*/
	readonly onError?: (error: Error) => void;
};

type Wire = {v: 1; i: string; k: 't'; d: string} | {v: 1; i: string; k: 'u'; u: string} | {v: 1; i: string; k: 'a'};

function encode(id: string, message: InvalidationMessage): string {
	const wire: Wire = message.kind === 'token' ? {v: 1, i: id, k: 't', d: message.digest}
		: message.kind === 'user' ? {v: 1, i: id, k: 'u', u: message.userId}
			: {v: 1, i: id, k: 'a'};
	return JSON.stringify(wire);
}

/** The sender and the message, or `undefined` when it is not one of ours. */
function decode(payload: string): {sender: string; message: InvalidationMessage} | undefined {
	let parsed: unknown;
	try {
		parsed = JSON.parse(payload);
	} catch {
		return undefined;
	}

	if (typeof parsed !== 'object' || parsed === null) {
		return undefined;
	}

	const wire = parsed as Partial<Record<'v' | 'i' | 'k' | 'd' | 'u', unknown>>;
	if (wire.v !== 1 || typeof wire.i !== 'string') {
		return undefined;
	}

	if (wire.k === 't' && typeof wire.d === 'string') {
		return {sender: wire.i, message: {kind: 'token', digest: wire.d}};
	}

	if (wire.k === 'u' && typeof wire.u === 'string') {
		return {sender: wire.i, message: {kind: 'user', userId: wire.u}};
	}

	return wire.k === 'a' ? {sender: wire.i, message: {kind: 'all'}} : undefined;
}

function assertRedis(client: unknown, role: string, methods: readonly string[]): void {
	const candidate = client as Record<string, unknown> | null;
	if (typeof candidate !== 'object' || candidate === null || methods.some(method => typeof candidate[method] !== 'function')) {
		throw new TypeError(`${role} must be an ioredis client (new Redis(...)).`);
	}
}

/**
Invalidations across the instances of a service, over Redis pub/sub. Each instance publishes its
revocations and hears the others' (never its own). While its subscription is down the bus is not
`live` and caches on it answer nothing from their entries; once it is subscribed again they forget
everything, since messages may have been lost meanwhile.

Give it the application's client (it publishes with it) and, optionally, a second client to
subscribe with; by default it subscribes on `client.duplicate()`. Make the clients fail fast, as for
the Redis store: `enableOfflineQueue: false`, `maxRetriesPerRequest: 0`, a `commandTimeout` and a
short `retryStrategy`.

@example
```
import {Redis} from 'ioredis';
import {RedisInvalidationBus, VerificationCache} from 'koa-stateless-auth/cache';

const redis = new Redis(process.env.REDIS_URL, {enableOfflineQueue: false, maxRetriesPerRequest: 0, commandTimeout: 1000});
const bus = new RedisInvalidationBus(redis, {onError: error => log.warn(error)});
const cache = new VerificationCache({ttl: 30, bus});
```
*/
export class RedisInvalidationBus implements InvalidationBus {
	/** This instance's id: messages carrying it are its own, and ignored. */
	readonly id: string = randomUUID();
	readonly #publisher: Redis;
	readonly #subscriber: Redis;
	readonly #ownSubscriber: boolean;
	readonly #channel: string;
	readonly #publishTimeout: number;
	readonly #onError: (error: Error) => void;
	readonly #listeners = new Set<InvalidationListener>();
	#live = false;
	#closed = false;
	/** Bumped when the connection drops: a subscription confirmed for an older connection is stale. */
	#connection = 0;

	readonly #onMessage = (channel: string, payload: string): void => {
		if (channel !== this.#channel || !this.#live) {
			return;
		}

		const decoded = decode(payload);
		if (decoded === undefined) {
			// Not a message of ours on our channel: whatever it meant, forgetting everything is safe.
			this.#report(new Error(`koa-stateless-auth: a malformed message on the invalidation channel ${JSON.stringify(this.#channel)}; every cache entry was dropped.`));
			this.#each(listener => {
				listener.reset();
			});
			return;
		}

		if (decoded.sender !== this.id) {
			this.#each(listener => {
				listener.message(decoded.message);
			});
		}
	};

	readonly #onReady = (): void => {
		void this.#subscribe();
	};

	readonly #onDown = (): void => {
		this.#connection++;
		if (this.#live) {
			this.#live = false;
			this.#each(listener => {
				listener.reset();
			});
		}
	};

	readonly #onClientError = (error: Error): void => {
		this.#report(error);
	};

	/**
	@param client - The application's ioredis client, to publish with; the bus never closes it.
	@param options - The subscriber, the channel, the publish timeout, where errors go.
	*/
	constructor(client: Redis, options: RedisInvalidationBusOptions = {}) {
		assertRedis(client, 'The first argument of RedisInvalidationBus', ['publish', 'duplicate']);
		const {subscriber, channel = 'ksa:cache-invalidation', publishTimeout = 1000, onError} = options;
		if (subscriber !== undefined) {
			assertRedis(subscriber, 'The `subscriber` option', ['subscribe', 'unsubscribe', 'on', 'off']);
		}

		if (typeof channel !== 'string' || channel === '') {
			throw new TypeError(`The \`channel\` option must be a non-empty string, got ${JSON.stringify(channel)}.`);
		}

		if (typeof publishTimeout !== 'number' || !Number.isFinite(publishTimeout) || publishTimeout <= 0) {
			throw new TypeError(`The \`publishTimeout\` option must be a positive number of milliseconds, got ${JSON.stringify(publishTimeout)}.`);
		}

		if (onError !== undefined && typeof onError !== 'function') {
			throw new TypeError('The `onError` option must be a function.');
		}

		this.#publisher = client;
		this.#channel = channel;
		this.#publishTimeout = publishTimeout;
		this.#onError = onError ?? (error => {
			process.emitWarning(error);
		});
		this.#ownSubscriber = subscriber === undefined;
		this.#subscriber = subscriber ?? client.duplicate();
		if (this.#ownSubscriber) {
			this.#subscriber.on('error', this.#onClientError);
			// A duplicate of a lazyConnect client waits to be told.
			if (this.#subscriber.status === 'wait') {
				this.#subscriber.connect().catch((error: unknown) => {
					this.#report(new Error('koa-stateless-auth: the invalidation bus could not connect its subscriber', {cause: error}));
				});
			}
		}

		this.#subscriber.on('message', this.#onMessage);
		this.#subscriber.on('ready', this.#onReady);
		this.#subscriber.on('close', this.#onDown);
		this.#subscriber.on('end', this.#onDown);
		if (this.#subscriber.status === 'ready') {
			void this.#subscribe();
		}
	}

	get live(): boolean {
		return this.#live;
	}

	/** The channel it publishes and listens on. */
	get channel(): string {
		return this.#channel;
	}

	listen(listener: InvalidationListener): () => void {
		this.#listeners.add(listener);
		return () => {
			this.#listeners.delete(listener);
		};
	}

	async publish(message: InvalidationMessage): Promise<void> {
		if (this.#closed) {
			return;
		}

		let timer: NodeJS.Timeout | undefined;
		const published = this.#publisher.publish(this.#channel, encode(this.id, message));
		const timeout = new Promise<never>((_resolve, reject) => {
			timer = setTimeout(() => {
				reject(new Error(`timed out after ${this.#publishTimeout} ms`));
			}, this.#publishTimeout);
		});
		try {
			await Promise.race([published, timeout]);
		} catch (error) {
			// A publish given up on may still fail later: that is already reported.
			published.catch(() => undefined);
			this.#report(new Error('koa-stateless-auth: an invalidation could not be published; other instances see it only once their cache entries expire', {cause: error}));
		} finally {
			clearTimeout(timer);
		}
	}

	/** Unsubscribe, and close the subscriber the bus made. Caches on it stop serving from their entries. */
	async close(): Promise<void> {
		if (this.#closed) {
			return;
		}

		this.#closed = true;
		this.#onDown();
		this.#subscriber.off('message', this.#onMessage);
		this.#subscriber.off('ready', this.#onReady);
		this.#subscriber.off('close', this.#onDown);
		this.#subscriber.off('end', this.#onDown);
		if (this.#ownSubscriber) {
			// Its error listener stays: a late error of a closed client goes where the others went.
			this.#subscriber.disconnect();
		} else {
			try {
				await this.#subscriber.unsubscribe(this.#channel);
			} catch {
				// Its connection is gone: so is the subscription.
			}
		}
	}

	async #subscribe(): Promise<void> {
		const connection = this.#connection;
		try {
			await this.#subscriber.subscribe(this.#channel);
		} catch (error) {
			// Not live: caches ask the store. The next 'ready' tries again.
			this.#report(new Error(`koa-stateless-auth: could not subscribe to the invalidation channel ${JSON.stringify(this.#channel)}`, {cause: error}));
			return;
		}

		if (this.#closed || connection !== this.#connection || this.#live) {
			return;
		}

		// Whatever was published before this point is lost to us: start from nothing.
		this.#live = true;
		this.#each(listener => {
			listener.reset();
		});
	}

	#each(call: (listener: InvalidationListener) => void): void {
		for (const listener of this.#listeners) {
			call(listener);
		}
	}

	#report(error: Error): void {
		try {
			this.#onError(error);
		} catch {
			// A reporter that throws must not take the subscription down with it.
		}
	}
}
