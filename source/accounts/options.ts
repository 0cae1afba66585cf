import {EventEmitter} from 'node:events';
import type {Context} from 'koa';
import type {Redis} from 'ioredis';
import {StatelessAuthManager, TokenService, defaultScryptParameters, type ScryptParameters, type TokenRecord, type UserRecord, type UserStore} from '../index.js';
import type {AccountEvents} from './events.js';

/** The user on `ctx.state.currentUser` of the manager the accounts mount: its record, without the password hash. */
export type AccountUser = Omit<UserRecord, 'passwordHash'>;

/**
One brute-force limit: `points` failures within `duration` seconds, then refused for
`blockDuration` seconds (0: until the window ends). Durations are at most 2147483 s (24.8 days).
*/
export type BruteForceLimit = {
	/** Failures allowed in the window. */
	readonly points: number;
	/** The window, in seconds, from the first failure. */
	readonly duration: number;
	/**
	Seconds refused once `points` is reached; `0`: until the window ends.

	@default 0
	*/
	readonly blockDuration?: number;
};

/** The brute-force protection of login and password change (rate-limiter-flexible). */
export type RateLimitOptions = {
	/**
	An ioredis client: the counters are then shared by every instance of the application
	(RateLimiterRedis, with a per-process memory limiter as insurance while Redis fails). Without
	it, counters are in this process's memory (RateLimiterMemory).

	@default undefined (memory)
	*/
	readonly redis?: Redis;
	/**
	The prefix of the limiter keys (in Redis: of every key they write). Instances that must count
	together share it.

	@default 'ksa-accounts'
	*/
	readonly keyPrefix?: string;
	/**
	Consecutive failures for one account from one client address (IPv6: its /64); a success resets
	it. Only that address is refused, so it cannot lock the owner out elsewhere.

	@default {points: 5, duration: 900, blockDuration: 900}
	*/
	readonly usernameAndIp?: BruteForceLimit;
	/**
	Failures for one account from every address together. Addresses the account logged in from
	within `trustDuration` are exempt, so that an attacker spread over many addresses cannot lock
	the owner out of their usual ones.

	@default {points: 20, duration: 900}
	*/
	readonly username?: BruteForceLimit;
	/**
	Failures from one client address (IPv6: its /64), whatever the account: password spraying.

	@default {points: 100, duration: 3600}
	*/
	readonly ip?: BruteForceLimit;
	/**
	Seconds an address stays trusted for an account after a successful login from it (exempt from
	the `username` limit); `0` trusts none.

	@default 1209600 (14 days)
	*/
	readonly trustDuration?: number;
};

/** Options of {@link accountRoutes}. Durations are in seconds. */
export type AccountRoutesOptions = {
	/** Where the accounts are kept. */
	readonly users: UserStore;
	/** The token service of the sessions and API keys. Its `accessTtl` must be at least `tokenExpiration`. */
	readonly tokens: TokenService;
	/**
	The manager of the application's routes. `accountRoutes` registers on it `useTokens(tokens)`
	and its user loader (an {@link AccountUser} without the password hash, refusing access tokens
	older than `tokenExpiration`), replacing any loaders registered before. Without it, a manager
	is made; either way it is answered, for the application's own routes.

	@default a new StatelessAuthManager
	*/
	readonly auth?: StatelessAuthManager<AccountUser, TokenRecord>;
	/**
	The path prefix of every route, such as `/api/user/login`.

	@default '/api/user'
	*/
	readonly apiPrefix?: string;
	/**
	Seconds an access token lives, counted from its issue (the login or a refresh): the answer's
	`expires_in`, and enforced on every route of the manager.

	@default 86400
	*/
	readonly tokenExpiration?: number;
	/**
	The permissions of a user created without any.

	@default []
	*/
	readonly defaultPermissions?: readonly string[];
	/**
	The permission the user management routes need.

	@default 'admin'
	*/
	readonly userAdminPermission?: string;
	/**
	No user management route at all (list, create, delete, permissions, profiles, passwords of
	others): they answer 404.

	@default false
	*/
	readonly noUserManagement?: boolean;
	/**
	The API key routes, and `Authorization: Token KEY` on `GET <apiPrefix>/me`.

	@default false
	*/
	readonly apiKeys?: boolean;
	/**
	`PUT <apiPrefix>/me/profile`: every user edits their own profile.

	@default false
	*/
	readonly allowOwnProfileEdit?: boolean;
	/**
	Users a page of `GET <apiPrefix>/users`.

	@default 25
	*/
	readonly pageSize?: number;
	/**
	The shortest password accepted, in characters (code points after NFKC); at least 8.

	@default 8
	*/
	readonly minPasswordLength?: number;
	/**
	The longest password accepted; at least 64.

	@default 128
	*/
	readonly maxPasswordLength?: number;
	/**
	The scrypt cost of new hashes. A password hashed at another cost is rehashed at its next login.

	@default defaultScryptParameters (ln 17, r 8, p 1)
	*/
	readonly passwordParameters?: ScryptParameters;
	/** The brute-force protection of login and password change. */
	readonly rateLimit?: RateLimitOptions;
	/**
	Where the audit events go.

	@default a new EventEmitter, answered as `events`
	*/
	readonly events?: EventEmitter<AccountEvents>;
	/**
	The client's address, for the brute-force limits and the events.

	@default ctx => ctx.ip (set `app.proxy` behind a proxy)
	*/
	readonly clientAddress?: (ctx: Context) => string;
	/**
	The clock, in milliseconds since the epoch: give the TokenService's, for tests.

	@default Date.now
	*/
	readonly now?: () => number;
};

export type NormalisedLimit = {readonly points: number; readonly duration: number; readonly blockDuration: number};

export type NormalisedRateLimit = {
	readonly redis: Redis | undefined;
	readonly keyPrefix: string;
	readonly usernameAndIp: NormalisedLimit;
	readonly username: NormalisedLimit;
	readonly ip: NormalisedLimit;
	readonly trustDuration: number;
};

export type NormalisedOptions = {
	readonly users: UserStore;
	readonly tokens: TokenService;
	readonly auth: StatelessAuthManager<AccountUser, TokenRecord>;
	readonly apiPrefix: string;
	readonly tokenExpiration: number;
	readonly defaultPermissions: readonly string[];
	readonly userAdminPermission: string;
	readonly noUserManagement: boolean;
	readonly apiKeys: boolean;
	readonly allowOwnProfileEdit: boolean;
	readonly pageSize: number;
	readonly minPasswordLength: number;
	readonly maxPasswordLength: number;
	readonly passwordParameters: ScryptParameters;
	readonly rateLimit: NormalisedRateLimit;
	readonly events: EventEmitter<AccountEvents>;
	readonly clientAddress: (ctx: Context) => string;
	readonly now: () => number;
};

const optionNames = new Set([
	'users', 'tokens', 'auth', 'apiPrefix', 'tokenExpiration', 'defaultPermissions', 'userAdminPermission', 'noUserManagement', 'apiKeys',
	'allowOwnProfileEdit', 'pageSize', 'minPasswordLength', 'maxPasswordLength', 'passwordParameters', 'rateLimit', 'events', 'clientAddress', 'now',
]);
const rateLimitNames = new Set(['redis', 'keyPrefix', 'usernameAndIp', 'username', 'ip', 'trustDuration']);
const userStoreMethods = ['create', 'getById', 'getByUsername', 'list', 'update', 'delete'] as const;
const permissionPattern = /^[\x21\x23-\x5B\x5D-\x7E]+$/;
// A path of plain segments: no parameters, wildcards, spaces or trailing slash.
const prefixPattern = /^(?:\/[\w.~-]+)*$/;

// RateLimiterMemory expires keys with setTimeout, which fires at once past 2^31 - 1 ms (24.8 days).
const maxDuration = Math.floor((2 ** 31 - 1) / 1000);

export const defaultLimits = {
	usernameAndIp: {points: 5, duration: 900, blockDuration: 900},
	username: {points: 20, duration: 900, blockDuration: 0},
	ip: {points: 100, duration: 3600, blockDuration: 0},
} as const satisfies Record<string, NormalisedLimit>;

function fail(option: string, expected: string, value: unknown): never {
	let shown: string | undefined;
	try {
		shown = typeof value === 'function' ? 'a function' : JSON.stringify(value);
	} catch {}

	throw new TypeError(`The \`${option}\` option must be ${expected}, got ${shown ?? typeof value}.`);
}

function assertKeys(value: object, known: ReadonlySet<string>, where: string): void {
	for (const key of Object.keys(value)) {
		if (!known.has(key)) {
			throw new TypeError(`Unknown option \`${where}${key}\`: expected one of ${[...known].join(', ')}.`);
		}
	}
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

function seconds(value: unknown, option: string, allowZero: boolean): number {
	if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || (!allowZero && value === 0)) {
		fail(option, `a ${allowZero ? 'non-negative' : 'positive'} number of seconds`, value);
	}

	return value;
}

function integer(value: unknown, option: string, min: number, max: number): number {
	if (!Number.isSafeInteger(value) || (value as number) < min || (value as number) > max) {
		fail(option, `an integer from ${min} to ${max}`, value);
	}

	return value as number;
}

function boolean(value: unknown, option: string): boolean {
	if (typeof value !== 'boolean') {
		fail(option, 'true or false', value);
	}

	return value;
}

function limit(value: unknown, option: string, fallback: NormalisedLimit): NormalisedLimit {
	if (value === undefined) {
		return fallback;
	}

	if (!isObject(value)) {
		fail(option, 'an object {points, duration, blockDuration?}', value);
	}

	assertKeys(value, new Set(['points', 'duration', 'blockDuration']), `${option}.`);
	return {
		points: integer(value['points'], `${option}.points`, 1, 1_000_000),
		duration: integer(value['duration'], `${option}.duration`, 1, maxDuration),
		blockDuration: integer(value['blockDuration'] ?? 0, `${option}.blockDuration`, 0, maxDuration),
	};
}

function rateLimitOptions(value: unknown): NormalisedRateLimit {
	if (value !== undefined && !isObject(value)) {
		fail('rateLimit', 'an object', value);
	}

	const given = value ?? {};
	assertKeys(given, rateLimitNames, 'rateLimit.');
	const {redis, keyPrefix = 'ksa-accounts', trustDuration = 1_209_600} = given;
	if (redis !== undefined && (!isObject(redis) || typeof redis['evalsha'] !== 'function' || typeof redis['defineCommand'] !== 'function')) {
		fail('rateLimit.redis', 'an ioredis client', redis);
	}

	if (typeof keyPrefix !== 'string' || !/^[\w.:-]{1,64}$/.test(keyPrefix)) {
		fail('rateLimit.keyPrefix', '1 to 64 ASCII letters, digits and `_ . : -`', keyPrefix);
	}

	return {
		redis: redis as Redis | undefined,
		keyPrefix,
		usernameAndIp: limit(given['usernameAndIp'], 'rateLimit.usernameAndIp', defaultLimits.usernameAndIp),
		username: limit(given['username'], 'rateLimit.username', defaultLimits.username),
		ip: limit(given['ip'], 'rateLimit.ip', defaultLimits.ip),
		trustDuration: integer(trustDuration, 'rateLimit.trustDuration', 0, maxDuration),
	};
}

function permission(value: unknown, option: string): string {
	if (typeof value !== 'string' || !permissionPattern.test(value)) {
		fail(option, 'a permission name (printable ASCII, no spaces, quotes or backslashes)', value);
	}

	return value;
}

function scryptParameters(value: unknown): ScryptParameters {
	if (!isObject(value) || !['ln', 'r', 'p'].every(key => Number.isSafeInteger(value[key]))) {
		fail('passwordParameters', 'scrypt parameters {ln, r, p}', value);
	}

	const {ln, r, p} = value as ScryptParameters;
	return Object.freeze({ln, r, p});
}

/** Check every option once, when the routes are mounted: a mistake is a TypeError naming it. */
export function normaliseOptions(options: AccountRoutesOptions): NormalisedOptions {
	if (!isObject(options)) {
		fail('options', 'an object {users, tokens, ...}', options);
	}

	assertKeys(options, optionNames, '');
	const {
		users, tokens, auth = new StatelessAuthManager<AccountUser, TokenRecord>(), apiPrefix = '/api/user', tokenExpiration = 86_400,
		defaultPermissions = [], userAdminPermission = 'admin', noUserManagement = false, apiKeys = false, allowOwnProfileEdit = false,
		pageSize = 25, minPasswordLength = 8, maxPasswordLength = 128, passwordParameters = defaultScryptParameters, rateLimit,
		events = new EventEmitter<AccountEvents>(), clientAddress = (ctx: Context) => ctx.ip, now = Date.now,
	} = options;
	if (!isObject(users) || userStoreMethods.some(method => typeof users[method] !== 'function')) {
		fail('users', `a UserStore (with ${userStoreMethods.join(', ')})`, typeof users);
	}

	if (!(tokens instanceof TokenService)) {
		fail('tokens', 'a TokenService', typeof tokens);
	}

	if (!(auth instanceof StatelessAuthManager)) {
		fail('auth', 'a StatelessAuthManager', typeof auth);
	}

	if (typeof apiPrefix !== 'string' || !prefixPattern.test(apiPrefix)) {
		fail('apiPrefix', 'a path such as "/api/user" (segments of letters, digits and `_ . ~ -`, no trailing slash), or ""', apiPrefix);
	}

	if (!Array.isArray(defaultPermissions)) {
		fail('defaultPermissions', 'a list of permission names', defaultPermissions);
	}

	const min = integer(minPasswordLength, 'minPasswordLength', 8, 4096);
	const max = integer(maxPasswordLength, 'maxPasswordLength', Math.max(64, min), 4096);
	if (!(events instanceof EventEmitter)) {
		fail('events', 'an EventEmitter', typeof events);
	}

	if (typeof clientAddress !== 'function') {
		fail('clientAddress', 'a function', clientAddress);
	}

	if (typeof now !== 'function') {
		fail('now', 'a function', now);
	}

	return {
		users,
		tokens,
		auth,
		apiPrefix,
		tokenExpiration: seconds(tokenExpiration, 'tokenExpiration', false),
		defaultPermissions: Object.freeze(defaultPermissions.map((name, index) => permission(name, `defaultPermissions[${index}]`))),
		userAdminPermission: permission(userAdminPermission, 'userAdminPermission'),
		noUserManagement: boolean(noUserManagement, 'noUserManagement'),
		apiKeys: boolean(apiKeys, 'apiKeys'),
		allowOwnProfileEdit: boolean(allowOwnProfileEdit, 'allowOwnProfileEdit'),
		pageSize: integer(pageSize, 'pageSize', 1, 1000),
		minPasswordLength: min,
		maxPasswordLength: max,
		passwordParameters: scryptParameters(passwordParameters),
		rateLimit: rateLimitOptions(rateLimit),
		events,
		clientAddress,
		now,
	};
}
