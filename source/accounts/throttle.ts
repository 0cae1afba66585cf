import {createHash} from 'node:crypto';
import {isIPv4, isIPv6} from 'node:net';
import {RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract} from 'rate-limiter-flexible';
import type {NormalisedLimit, NormalisedRateLimit} from './options.js';

/*
Brute-force protection of password checks (OWASP's "login endpoint protection", with
rate-limiter-flexible): three counters of failures; an attempt is refused before any password is
verified when one of them is used up:

- one account from one address: the consecutive failures, reset by a success; it refuses only that
  address, so an attacker cannot use it to lock the owner out;
- one account from every address: looser, and not applied to the addresses the account logged in
  from lately (trusted), so that an attacker spread over many addresses cannot lock the owner out of
  their usual ones either; it still caps the guesses at one account;
- one address whatever the account: password spraying.

Windows are fixed, from each key's first failure (rate-limiter-flexible's model), not sliding.
Account keys are a SHA-256 of the lower-cased username: no username is written as a Redis key.
*/

export type LimitName = 'usernameAndIp' | 'username' | 'ip';

/** Why an attempt is refused: the limit, and the seconds to wait. */
export type Refusal = {readonly limit: LimitName; readonly retryAfter: number};

/** The counting key of a client address: IPv4 as is (IPv4-mapped IPv6 too), IPv6 by its /64, which one host usually has whole. */
export function addressKey(address: string): string {
	const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address);
	if (mapped?.[1] !== undefined && isIPv4(mapped[1])) {
		return mapped[1];
	}

	const plain = address.replace(/%.*$/, '');
	if (!isIPv6(plain)) {
		return address;
	}

	const [head = '', tail = ''] = plain.split('::');
	const headGroups = head === '' ? [] : head.split(':');
	const tailGroups = tail === '' ? [] : tail.split(':');
	// An embedded IPv4 tail counts as two groups; the /64 is in the first four, so it never matters.
	const missing = 8 - headGroups.length - tailGroups.length;
	const groups = plain.includes('::') ? [...headGroups, ...Array.from({length: Math.max(0, missing)}, () => '0'), ...tailGroups] : headGroups;
	return `${groups.slice(0, 4).map(group => Number.parseInt(group, 16).toString(16)).join(':')}::/64`;
}

function accountKey(username: string): string {
	return createHash('sha256').update(username.normalize('NFKC').toLowerCase()).digest('hex').slice(0, 32);
}

type Limiter = {readonly limiter: RateLimiterAbstract; readonly limit: NormalisedLimit};

/** An attempt that may check a password: the points it holds, given back if the password is right (a wrong one keeps them). */
export type Attempt = {readonly keys: Readonly<Record<LimitName, string>>; readonly held: readonly LimitName[]};

/**
The brute-force counters of one mount: in memory, or in Redis across instances. An attempt takes a
point from each counter before its password is checked (one atomic increment each, so that a burst
of parallel guesses cannot all slip past a check made before any of them failed), and gives it back
when the password was right: only failures stay counted.
*/
export class BruteForceGuard {
	readonly #limiters: Readonly<Record<LimitName, Limiter>>;
	readonly #trusted: RateLimiterAbstract | undefined;
	readonly #trustDuration: number;

	constructor(options: NormalisedRateLimit) {
		const make = (name: string, limit: NormalisedLimit): RateLimiterAbstract => {
			const settings = {keyPrefix: `${options.keyPrefix}:${name}`, points: limit.points, duration: limit.duration, blockDuration: limit.blockDuration};
			if (options.redis === undefined) {
				return new RateLimiterMemory(settings);
			}

			// While Redis fails, each process counts on its own rather than refusing every login.
			return new RateLimiterRedis({...settings, storeClient: options.redis, insuranceLimiter: new RateLimiterMemory(settings)});
		};

		this.#limiters = {
			usernameAndIp: {limiter: make('uip', options.usernameAndIp), limit: options.usernameAndIp},
			username: {limiter: make('user', options.username), limit: options.username},
			ip: {limiter: make('ip', options.ip), limit: options.ip},
		};
		this.#trustDuration = options.trustDuration;
		this.#trusted = options.trustDuration > 0 ? make('trusted', {points: 1, duration: options.trustDuration, blockDuration: 0}) : undefined;
	}

	/**
	Take a point from each counter for an attempt on `username` from `address`: the attempt, or the
	refusal (the longest wait) when a counter has none left, and then no point is kept.
	*/
	async attempt(username: string, address: string): Promise<Attempt | Refusal> {
		const keys = this.#keys(username, address);
		// The addresses the account logged in from lately are exempt from the account-wide counter.
		const trusted = this.#trusted !== undefined && (await this.#trusted.get(keys.usernameAndIp)) !== null;
		const names: LimitName[] = trusted ? ['usernameAndIp', 'ip'] : ['usernameAndIp', 'username', 'ip'];
		const outcomes = await Promise.allSettled(names.map(async name => this.#limiters[name].limiter.consume(keys[name], 1)));
		const held = names.filter((_name, index) => outcomes[index]?.status === 'fulfilled');
		let refusal: Refusal | undefined;
		for (const [index, name] of names.entries()) {
			const outcome = outcomes[index];
			if (outcome?.status === 'rejected') {
				if (!(outcome.reason instanceof RateLimiterRes)) {
					await this.#giveBack(keys, held);
					throw outcome.reason;
				}

				const retryAfter = Math.max(1, Math.ceil(outcome.reason.msBeforeNext / 1000));
				if (refusal === undefined || retryAfter > refusal.retryAfter) {
					refusal = {limit: name, retryAfter};
				}
			}
		}

		if (refusal !== undefined) {
			// A refused attempt checks no password: it is no failure, and holds no point.
			await this.#giveBack(keys, held);
			return refusal;
		}

		return {keys, held};
	}

	/** The password was right: the points go back, the consecutive failures of this account and address start again, and the address is trusted. */
	async succeed({keys, held}: Attempt): Promise<void> {
		await Promise.all([
			this.#giveBack(keys, held.filter(name => name !== 'usernameAndIp')),
			this.#limiters.usernameAndIp.limiter.delete(keys.usernameAndIp),
			this.#trusted?.set(keys.usernameAndIp, 1, this.#trustDuration),
		]);
	}

	async #giveBack(keys: Readonly<Record<LimitName, string>>, names: readonly LimitName[]): Promise<void> {
		await Promise.all(names.map(async name => this.#limiters[name].limiter.reward(keys[name], 1)));
	}

	#keys(username: string, address: string): Record<LimitName, string> {
		const account = accountKey(username);
		const client = addressKey(address);
		return {usernameAndIp: `${account}|${client}`, username: account, ip: client};
	}
}
