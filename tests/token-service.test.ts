import test, {type ExecutionContext} from 'ava';
import {
	StatelessAuthError, TokenService, digestToken, isWellFormedToken, type FoundToken, type TokenRecord, type TokenServiceOptions, type TokenStore,
} from '../source/index.js';
import {MemoryTokenStore} from '../source/stores/memory.js';

const methods = ['create', 'find', 'touch', 'rotate', 'revokeFamily', 'revokeUser', 'epoch', 'list', 'prune'] as const;
type Method = typeof methods[number];
type Call = {readonly method: Method; readonly args: readonly unknown[]};

/**
A store that records every call and its arguments before handing it to `inner` (or to an
override of the method), so that a test can count round trips and see everything a store is told.
*/
function recordingStore(inner: TokenStore = new MemoryTokenStore(), overrides: Partial<TokenStore> = {}) {
	const calls: Call[] = [];
	const store = Object.fromEntries(methods.map(method => [method, async (...args: unknown[]): Promise<unknown> => {
		calls.push({method, args});
		const override = overrides[method]?.bind(overrides) as ((...given: unknown[]) => Promise<unknown>) | undefined;
		return (override ?? (inner[method].bind(inner) as (...given: unknown[]) => Promise<unknown>))(...args);
	}])) as unknown as TokenStore;
	const count = (method?: Method) => calls.filter(call => method === undefined || call.method === method).length;
	return {store, calls, count, inner};
}

const start = 1_700_000_000_000;
const seconds = 1000;

/** A service over a recording memory store, with a clock the test moves. */
function setup(options: Partial<TokenServiceOptions> = {}, overrides: Partial<TokenStore> = {}) {
	const recorded = recordingStore(new MemoryTokenStore(), overrides);
	const clock = {now: start};
	const service = new TokenService({store: recorded.store, prefix: 'myapp', now: () => clock.now, ...options});
	const advance = (milliseconds: number) => {
		clock.now += milliseconds;
	};

	return {...recorded, service, clock, advance};
}

async function assertValid(t: ExecutionContext, service: TokenService, token: string, type: 'access' | 'refresh' | 'api_key', message?: string) {
	const result = await service.verify(token, type);
	t.true(result.valid, `${message ?? token}: ${result.valid ? '' : result.reason}`);
}

async function assertRefused(t: ExecutionContext, service: TokenService, token: string, type: 'access' | 'refresh' | 'api_key', reason: string, message?: string) {
	const result = await service.verify(token, type);
	t.deepEqual(result.valid ? 'valid' : result.reason, reason, message ?? token);
}

// --- Issuing and verifying

test('issue gives a token of the type\'s prefix, its expiry, and the record the store keeps of it', async t => {
	const {service} = setup({accessTtl: 600});
	const issued = await service.issue('u1', 'access', {scopes: ['read'], name: 'laptop'});
	t.true(isWellFormedToken(issued.token, ['myapp_at']));
	t.is(issued.expiresAt, start + 600 * seconds);
	const {record} = issued;
	t.like(record, {
		digest: digestToken(issued.token), type: 'access', userId: 'u1', scopes: ['read'], name: 'laptop',
		createdAt: start, expiresAt: start + 600 * seconds, lastUsedAt: null, epoch: 0, retiredAt: null, graceUntil: null, graceCiphertext: null,
	});
	t.regex(record.id, /^[\da-f-]{36}$/);
	t.regex(record.familyId, /^[\da-f-]{36}$/);
	t.is(record.digest, service.digest(issued.token));
	t.true(issued.token.startsWith(record.hint.replace('…', '')));

	const verified = await service.verify(issued.token, 'access');
	t.true(verified.valid);
	t.is(verified.valid && verified.record.id, record.id);
});

test('issue takes a ttl of its own, and each type has its prefix', async t => {
	const {service} = setup();
	t.deepEqual(service.prefixes, {access: 'myapp_at', refresh: 'myapp_rt', api_key: 'myapp_key'});
	const access = await service.issue('u1', 'access', {ttl: 5});
	t.is(access.expiresAt, start + 5 * seconds);
	t.true(isWellFormedToken((await service.issue('u1', 'refresh')).token, ['myapp_rt']));
	t.true(isWellFormedToken((await service.issue('u1', 'api_key')).token, ['myapp_key']));
	t.is((await service.issue('u1', 'refresh')).expiresAt, start + 2_592_000 * seconds, 'refresh tokens live 30 days by default');
	t.is((await service.issue('u1', 'access')).expiresAt, start + 3600 * seconds, 'access tokens an hour');
});

test('issuePair gives an access and a refresh token of one new session, each verifying as its own type', async t => {
	const {service} = setup();
	const first = await service.issuePair('u1', {scopes: ['a', 'b']});
	const second = await service.issuePair('u1');
	t.is(first.access.record.familyId, first.refresh.record.familyId);
	t.not(first.access.record.id, first.refresh.record.id);
	t.not(first.access.record.familyId, second.access.record.familyId, 'each login is a session of its own');
	t.deepEqual(first.refresh.record.scopes, ['a', 'b']);
	await assertValid(t, service, first.access.token, 'access');
	await assertValid(t, service, first.refresh.token, 'refresh');
	await assertValid(t, service, second.access.token, 'access');
});

test('an API key lives until revoked by default, or for apiKeyTtl', async t => {
	const {service, advance} = setup();
	const key = await service.issue('u1', 'api_key', {name: 'billing'});
	advance(10 * 365 * 86_400 * seconds);
	await assertValid(t, service, key.token, 'api_key', 'ten years on');

	const limited = setup({apiKeyTtl: 60});
	const short = await limited.service.issue('u1', 'api_key');
	t.is(short.expiresAt, start + 60 * seconds);
	limited.advance(60 * seconds);
	await assertRefused(t, limited.service, short.token, 'api_key', 'expired');
});

// --- Refusals that ask no store

const refusedOffline = test.macro({
	async exec(t, make: (tokens: {access: string; refresh: string}) => string, type: 'access' | 'refresh' | 'api_key') {
		const {service, count, calls} = setup();
		const {access, refresh} = await service.issuePair('u1');
		calls.length = 0;
		const token = make({access: access.token, refresh: refresh.token});
		t.deepEqual(await service.verify(token, type), {valid: false, reason: 'malformed'});
		t.is(count(), 0, 'the store was not asked');
	},
	title: provided => `verify refuses ${provided ?? ''} as malformed without asking the store`,
});

const flipLast = (token: string) => token.slice(0, -1) + (token.endsWith('0') ? '1' : '0');
const flipRandom = (token: string) => token.slice(0, 12) + (token.charAt(12) === 'a' ? 'b' : 'a') + token.slice(13);

test('an empty string', refusedOffline, () => '', 'access');
test('a made-up string', refusedOffline, () => 'not-a-token', 'access');
test('a token with a mistyped checksum character', refusedOffline, ({access}) => flipLast(access), 'access');
test('a token with a mistyped random character', refusedOffline, ({access}) => flipRandom(access), 'access');
test('a truncated token', refusedOffline, ({access}) => access.slice(0, -1), 'access');
test('an extended token', refusedOffline, ({access}) => `${access}0`, 'access');
test('a lookalike of another prefix', refusedOffline, () => `other_at_${'x'.repeat(49)}`, 'access');
test('a token that is not a string', refusedOffline, () => 42 as unknown as string, 'access');
test('a token for a type the service does not issue', refusedOffline, ({access}) => access, 'session' as 'access');

test('a well-formed token of another application is refused without asking the store', async t => {
	const {service, count} = setup();
	const other = new TokenService({store: new MemoryTokenStore(), prefix: 'other'});
	const foreign = await other.issue('u1', 'access');
	t.deepEqual(await service.verify(foreign.token, 'access'), {valid: false, reason: 'malformed'});
	t.is(count('find'), 0);
});

test('an access token presented as a refresh token (and the reverse) is unknown, asking no store', async t => {
	// Verification's documentation: `unknown` covers "of another type" alike (one answer, rule 9).
	const {service, count, calls} = setup();
	const {access, refresh} = await service.issuePair('u1');
	const key = await service.issue('u1', 'api_key');
	calls.length = 0;
	await assertRefused(t, service, access.token, 'refresh', 'unknown', 'access as refresh');
	await assertRefused(t, service, refresh.token, 'access', 'unknown', 'refresh as access');
	await assertRefused(t, service, key.token, 'access', 'unknown', 'API key as access');
	await assertRefused(t, service, access.token, 'api_key', 'unknown', 'access as API key');
	t.is(count('find'), 0);
});

test('a stored record of another type than the token\'s prefix says is unknown', async t => {
	// A store that answers, for the access token's digest, a record typed 'refresh'.
	const inner = new MemoryTokenStore();
	const {service} = setup({}, {
		async find(digest) {
			const found = await inner.find(digest);
			return found === undefined ? undefined : {...found, record: {...found.record, type: 'refresh'}};
		},
		create: async (records, limit) => inner.create(records, limit),
	});
	const access = await service.issue('u1', 'access');
	await assertRefused(t, service, access.token, 'access', 'unknown');
});

test('an unknown well-formed token of the service\'s prefix is unknown, after one lookup', async t => {
	const {service, count} = setup();
	const stranger = setup().service;
	const token = (await stranger.issue('u1', 'access')).token;
	await assertRefused(t, service, token, 'access', 'unknown');
	t.is(count('find'), 1);
});

// --- Expiry

test('a token is valid until just before expiresAt and expired at it', async t => {
	const {service, clock} = setup({accessTtl: 60});
	const {token, expiresAt} = await service.issue('u1', 'access');
	clock.now = expiresAt - 1;
	await assertValid(t, service, token, 'access');
	clock.now = expiresAt;
	await assertRefused(t, service, token, 'access', 'expired');
	clock.now = expiresAt + 86_400 * seconds;
	await assertRefused(t, service, token, 'access', 'expired');
});

test('an unused token expires after idleTimeout, whatever its absolute expiry', async t => {
	const {service, advance} = setup({idleTimeout: 100, accessTtl: 3600});
	const {token} = await service.issue('u1', 'access');
	advance((100 * seconds) - 1);
	await assertValid(t, service, token, 'access', 'just before the idle timeout');

	const other = await service.issue('u1', 'access');
	advance(100 * seconds);
	await assertRefused(t, service, other.token, 'access', 'expired', 'at the idle timeout');
});

test('each use extends the idle expiry, but never past expiresAt', async t => {
	const {service, clock, advance} = setup({idleTimeout: 100, lastUsedInterval: 0, accessTtl: 450});
	const {token, expiresAt} = await service.issue('u1', 'access');
	for (let use = 0; use < 4; use++) {
		advance(90 * seconds);
		await assertValid(t, service, token, 'access', `use ${use} at ${(clock.now - start) / seconds} s`);
	}

	// Last use at 360 s; the idle expiry would be 460 s, the absolute one is 450 s.
	clock.now = expiresAt - 1;
	await assertValid(t, service, token, 'access', 'just before the absolute expiry');
	clock.now = expiresAt;
	await assertRefused(t, service, token, 'access', 'expired', 'use does not carry it past expiresAt');
});

test('an idle expiry counts from the last recorded use', async t => {
	const {service, advance} = setup({idleTimeout: 100, lastUsedInterval: 0});
	const {token} = await service.issue('u1', 'access');
	advance(99 * seconds);
	await assertValid(t, service, token, 'access');
	advance(99 * seconds);
	await assertValid(t, service, token, 'access', '198 s after issue, 99 s after last use');
	advance(100 * seconds);
	await assertRefused(t, service, token, 'access', 'expired', '100 s unused');
});

// --- Last use

test('the last use is written once per lastUsedInterval, not on every use', async t => {
	const {service, count, advance, inner} = setup({lastUsedInterval: 60});
	const {token, record} = await service.issue('u1', 'access');
	await assertValid(t, service, token, 'access');
	t.is(count('touch'), 1, 'the first use is written');
	t.is((await inner.find(record.digest))?.record.lastUsedAt, start);

	for (let step = 0; step < 5; step++) {
		advance(11 * seconds);
		await assertValid(t, service, token, 'access');
	}

	t.is(count('touch'), 1, 'no write within the interval (55 s)');
	advance((5 * seconds) - 1);
	await assertValid(t, service, token, 'access');
	t.is(count('touch'), 1, 'none 1 ms before the interval ends');
	advance(1);
	await assertValid(t, service, token, 'access');
	t.is(count('touch'), 2, 'one when it has passed');
	t.is((await inner.find(record.digest))?.record.lastUsedAt, start + (60 * seconds));
	await assertValid(t, service, token, 'access');
	t.is(count('touch'), 2);
});

test('with lastUsedInterval 0 every use is written', async t => {
	const {service, count} = setup({lastUsedInterval: 0});
	const {token} = await service.issue('u1', 'access');
	for (let use = 0; use < 3; use++) {
		await assertValid(t, service, token, 'access');
	}

	t.is(count('touch'), 3);
});

test('a last-use write that fails does not fail the verification', async t => {
	const {service, count} = setup({}, {
		touch: async () => {
			throw new Error('replica is read-only');
		},
	});
	const {token} = await service.issue('u1', 'access');
	await assertValid(t, service, token, 'access');
	t.is(count('touch'), 1);
});

// --- Rotation

test('a refresh buys a new pair in the same session that works, and retires the old pair', async t => {
	const {service} = setup();
	const old = await service.issuePair('u1', {scopes: ['read'], name: 'phone'});
	const fresh = await service.refresh(old.refresh.token);
	t.not(fresh.access.token, old.access.token);
	t.not(fresh.refresh.token, old.refresh.token);
	t.is(fresh.access.record.familyId, old.access.record.familyId);
	t.deepEqual(fresh.access.record.scopes, ['read']);
	t.is(fresh.refresh.record.name, 'phone');
	await assertValid(t, service, fresh.access.token, 'access');
	await assertValid(t, service, fresh.refresh.token, 'refresh');
	await assertRefused(t, service, old.access.token, 'access', 'unknown', 'the old access token');
	await assertRefused(t, service, old.refresh.token, 'refresh', 'unknown', 'the old refresh token');
	const again = await service.refresh(fresh.refresh.token);
	await assertValid(t, service, again.access.token, 'access', 'the new refresh token rotates in turn');
});

test('using a refresh token again after its rotation is invalid_grant token_reused, and revokes the whole session', async t => {
	const {service} = setup();
	const other = await service.issuePair('u1');
	const old = await service.issuePair('u1');
	const fresh = await service.refresh(old.refresh.token);
	const error = await t.throwsAsync(service.refresh(old.refresh.token), {instanceOf: StatelessAuthError});
	t.is(error?.status, 400);
	t.is(error?.reason, 'token_reused');
	await assertRefused(t, service, fresh.access.token, 'access', 'unknown', 'the new access token is revoked with its family');
	await assertRefused(t, service, fresh.refresh.token, 'refresh', 'unknown', 'the new refresh token too');
	const after = await t.throwsAsync(service.refresh(fresh.refresh.token), {instanceOf: StatelessAuthError});
	t.is(after?.status, 400);
	t.is(after?.reason, 'invalid_grant');
	await assertValid(t, service, other.access.token, 'access', 'another session of the user is untouched');
});

test('a retry within reuseGrace gets the same new pair; after it, the retry is reuse', async t => {
	const {service, advance} = setup({reuseGrace: 10});
	const old = await service.issuePair('u1');
	const fresh = await service.refresh(old.refresh.token);
	advance(5 * seconds);
	const retry = await service.refresh(old.refresh.token);
	t.is(retry.access.token, fresh.access.token);
	t.is(retry.refresh.token, fresh.refresh.token);
	t.is(retry.access.expiresAt, fresh.access.expiresAt);
	t.is(retry.refresh.expiresAt, fresh.refresh.expiresAt);
	await assertValid(t, service, fresh.access.token, 'access', 'the pair still works after a retry');
	await assertValid(t, service, fresh.refresh.token, 'refresh');

	advance(6 * seconds);
	const error = await t.throwsAsync(service.refresh(old.refresh.token), {instanceOf: StatelessAuthError});
	t.is(error?.reason, 'token_reused');
	await assertRefused(t, service, fresh.access.token, 'access', 'unknown');
});

test('without reuseGrace, even an immediate retry is reuse', async t => {
	const {service} = setup();
	const old = await service.issuePair('u1');
	const fresh = await service.refresh(old.refresh.token);
	const error = await t.throwsAsync(service.refresh(old.refresh.token), {instanceOf: StatelessAuthError});
	t.is(error?.reason, 'token_reused');
	await assertRefused(t, service, fresh.access.token, 'access', 'unknown');
});

const refreshRefused = test.macro({
	async exec(t, make: (service: TokenService, advance: (milliseconds: number) => void) => Promise<string>, storeAsked: boolean) {
		const {service, advance, count, calls} = setup({refreshTtl: 100});
		const token = await make(service, advance);
		calls.length = 0;
		const error = await t.throwsAsync(service.refresh(token), {instanceOf: StatelessAuthError});
		t.is(error?.status, 400);
		t.is(error?.reason, 'invalid_grant');
		t.is(count('rotate'), 0, 'nothing was rotated');
		if (!storeAsked) {
			t.is(count(), 0, 'the store was not asked');
		}
	},
	title: provided => `a refresh with ${provided ?? ''} is invalid_grant`,
});

test('a malformed token', refreshRefused, async () => 'nope', false);
test('an access token', refreshRefused, async service => (await service.issuePair('u1')).access.token, false);
test('a refresh token with a bad checksum', refreshRefused, async service => flipLast((await service.issuePair('u1')).refresh.token), false);
test('an unknown refresh token', refreshRefused, async () => (await setup().service.issuePair('u1')).refresh.token, true);
test('an expired refresh token', refreshRefused, async (service, advance) => {
	const {refresh} = await service.issuePair('u1');
	advance(100 * seconds);
	return refresh.token;
}, true);
test('a refresh token of a user revoked since', refreshRefused, async service => {
	const {refresh} = await service.issuePair('u1');
	await service.revokeAll('u1');
	return refresh.token;
}, true);

// --- Revocation

test('revoking either token of a pair revokes both', async t => {
	for (const which of ['access', 'refresh'] as const) {
		const {service} = setup();
		const pair = await service.issuePair('u1');
		const other = await service.issuePair('u1');
		t.true(await service.revoke(pair[which].token));
		await assertRefused(t, service, pair.access.token, 'access', 'unknown', `access, after revoking the ${which} token`);
		await assertRefused(t, service, pair.refresh.token, 'refresh', 'unknown', `refresh, after revoking the ${which} token`);
		await t.throwsAsync(service.refresh(pair.refresh.token), {instanceOf: StatelessAuthError});
		t.false(await service.revoke(pair[which].token), 'a second revoke finds nothing');
		await assertValid(t, service, other.access.token, 'access', 'the other session lives');
	}
});

test('revoke of a malformed token answers false without asking the store', async t => {
	const {service, count} = setup();
	t.false(await service.revoke('nope'));
	t.false(await service.revoke(flipLast((await service.issuePair('u1')).access.token)));
	t.is(count('find'), 0);
	t.is(count('revokeFamily'), 0);
});

test('revokeAll refuses every token of the user, however many sessions, and new tokens work', async t => {
	const {service, count} = setup();
	const pairs = await Promise.all(Array.from({length: 20}, async () => service.issuePair('u1')));
	const key = await service.issue('u1', 'api_key', {name: 'billing'});
	const bob = await service.issuePair('u2');
	const before = count();
	await service.revokeAll('u1');
	t.is(count() - before, 1, 'one store operation, whatever the number');
	for (const pair of pairs) {
		await assertRefused(t, service, pair.access.token, 'access', 'unknown');
		await assertRefused(t, service, pair.refresh.token, 'refresh', 'unknown');
	}

	await assertRefused(t, service, key.token, 'api_key', 'unknown');
	await assertValid(t, service, bob.access.token, 'access', 'another user is untouched');
	t.deepEqual(await service.sessions('u1'), []);

	const fresh = await service.issuePair('u1');
	await assertValid(t, service, fresh.access.token, 'access', 'a login after revokeAll works');
	await assertValid(t, service, (await service.refresh(fresh.refresh.token)).access.token, 'access', 'and rotates');
	t.is((await service.sessions('u1')).length, 2);
});

test('revokeSession revokes one session of the user by its id, and no one else\'s', async t => {
	const {service} = setup();
	const first = await service.issuePair('u1');
	const second = await service.issuePair('u1');
	const bobs = await service.issuePair('u2');
	t.false(await service.revokeSession('u1', bobs.access.record.familyId), 'another user\'s session is not theirs');
	await assertValid(t, service, bobs.access.token, 'access');
	t.false(await service.revokeSession('u1', 'no-such-session'));
	t.true(await service.revokeSession('u1', first.access.record.familyId));
	await assertRefused(t, service, first.access.token, 'access', 'unknown');
	await assertRefused(t, service, first.refresh.token, 'refresh', 'unknown');
	await assertValid(t, service, second.access.token, 'access');
});

// --- Sessions

test('sessions lists the user\'s live records, oldest first, and nothing of the tokens themselves', async t => {
	const {service, advance} = setup({accessTtl: 100});
	const first = await service.issuePair('u1');
	advance(seconds);
	const key = await service.issue('u1', 'api_key', {name: 'billing'});
	advance(seconds);
	const old = await service.issuePair('u1');
	const rotated = await service.refresh(old.refresh.token);
	await service.issuePair('u2');
	const issued = [first.access, first.refresh, key, old.access, old.refresh, rotated.access, rotated.refresh].map(({token}) => token);

	const sessions = await service.sessions('u1');
	t.deepEqual(sessions.map(record => record.id), [first.access.record.id, first.refresh.record.id, key.record.id, rotated.access.record.id, rotated.refresh.record.id]);
	t.true(sessions.every(record => record.userId === 'u1'));
	const text = JSON.stringify(sessions);
	for (const token of issued) {
		t.false(text.includes(token));
		t.false(text.includes(token.slice(-49, -6)), 'not even the random part');
		t.false(text.includes(token.slice(-20)), 'nor its end');
	}

	for (const record of sessions) {
		for (const value of Object.values(record)) {
			t.false(issued.some(token => value === token || (typeof value === 'string' && value.length > 12 && token.includes(value))), `the field ${String(value)}`);
		}
	}

	advance(100 * seconds);
	t.deepEqual((await service.sessions('u1')).map(record => record.type).sort(), ['api_key', 'refresh', 'refresh'], 'expired access tokens leave the list');
});

test('sessions leaves out tokens past their idle expiry', async t => {
	const {service, advance} = setup({idleTimeout: 100});
	await service.issuePair('u1');
	t.is((await service.sessions('u1')).length, 2);
	advance(100 * seconds);
	t.deepEqual(await service.sessions('u1'), []);
});

// --- Session limit

test('maxSessions with onLimit refuse: the session past the limit is a 403 too_many_sessions', async t => {
	const {service, advance} = setup({maxSessions: 2, onLimit: 'refuse', accessTtl: 10, refreshTtl: 20});
	const first = await service.issuePair('u1');
	advance(seconds);
	const second = await service.issuePair('u1');
	const error = await t.throwsAsync(service.issuePair('u1'), {instanceOf: StatelessAuthError});
	t.is(error?.status, 403);
	t.is(error?.reason, 'too_many_sessions');
	await t.throwsAsync(service.issue('u1', 'api_key'), {instanceOf: StatelessAuthError, message: /Too many sessions/});
	await assertValid(t, service, first.access.token, 'access', 'the sessions there are still work');
	await assertValid(t, service, second.access.token, 'access');
	await service.issuePair('u2');
	t.pass('another user has limits of their own');

	t.true(await service.revoke(first.access.token));
	await t.notThrowsAsync(service.issuePair('u1'), 'a revoked session makes room');
	advance(20 * seconds);
	await t.notThrowsAsync(service.issuePair('u1'), 'so do expired ones');
});

test('maxSessions with onLimit evict-oldest revokes the oldest session to make room', async t => {
	const {service, advance} = setup({maxSessions: 2, onLimit: 'evict-oldest'});
	const first = await service.issuePair('u1');
	advance(seconds);
	const second = await service.issuePair('u1');
	advance(seconds);
	const third = await service.issuePair('u1');
	await assertRefused(t, service, first.access.token, 'access', 'unknown', 'the oldest went');
	await assertRefused(t, service, first.refresh.token, 'refresh', 'unknown');
	await assertValid(t, service, second.access.token, 'access');
	await assertValid(t, service, third.access.token, 'access');
	t.is(new Set((await service.sessions('u1')).map(record => record.familyId)).size, 2);
});

test('a rotation is not a new session and does not count against maxSessions', async t => {
	const {service} = setup({maxSessions: 1, onLimit: 'refuse'});
	const pair = await service.issuePair('u1');
	const fresh = await service.refresh(pair.refresh.token);
	await assertValid(t, service, fresh.access.token, 'access');
});

// --- Pruning

test('prune deletes expired tokens and those of revoked epochs, and keeps the rest', async t => {
	const {service, advance, inner} = setup({accessTtl: 60, refreshTtl: 120});
	const pair = await service.issuePair('u1');
	const revoked = await service.issuePair('u2');
	await service.revokeAll('u2');
	const kept = await service.issue('u3', 'api_key');
	advance(60 * seconds);
	t.is(await service.prune(), 3, 'u1\'s access token and both of u2\'s');
	t.is(await inner.find(pair.access.record.digest), undefined);
	t.is(await inner.find(revoked.refresh.record.digest), undefined);
	t.truthy(await inner.find(pair.refresh.record.digest));
	advance(60 * seconds);
	t.is(await service.prune(), 1);
	t.is(await inner.find(pair.refresh.record.digest), undefined);
	t.truthy(await inner.find(kept.record.digest));
	t.is(await service.prune(), 0);
});

// --- A failing store

const storeFailure = new Error('connection refused: password=hunter2');
const failing = async (): Promise<never> => {
	throw storeFailure;
};

const failsWith503 = test.macro({
	async exec(t, method: Method, operation: (service: TokenService, tokens: {access: string; refresh: string}) => Promise<unknown>) {
		const inner = new MemoryTokenStore();
		const {access, refresh} = await new TokenService({store: inner, prefix: 'myapp', now: () => start}).issuePair('u1');
		const {service} = setup({}, {[method]: failing, find: method === 'find' ? failing : async (digest: string) => inner.find(digest)});
		const error = await t.throwsAsync(operation(service, {access: access.token, refresh: refresh.token}), {instanceOf: StatelessAuthError});
		t.is(error?.status, 503);
		t.is(error?.reason, 'store_unavailable');
		t.is(error?.type, 'server');
		t.is(error?.headers['Retry-After'], '1');
		t.is(error?.cause, storeFailure);
		t.false(error?.message.includes('hunter2'), 'the store\'s message is only the cause');
	},
	title: provided => `a store that fails makes ${provided ?? ''} a 503 store_unavailable with Retry-After, the store's error its cause`,
});

test('verify (find)', failsWith503, 'find', async (service, {access}) => service.verify(access, 'access'));
test('issue (epoch)', failsWith503, 'epoch', async service => service.issue('u1', 'access'));
test('issue (create)', failsWith503, 'create', async service => service.issue('u1', 'access'));
test('issuePair (create)', failsWith503, 'create', async service => service.issuePair('u1'));
test('refresh (find)', failsWith503, 'find', async (service, {refresh}) => service.refresh(refresh));
test('refresh (rotate)', failsWith503, 'rotate', async (service, {refresh}) => service.refresh(refresh));
test('revoke (revokeFamily)', failsWith503, 'revokeFamily', async (service, {access}) => service.revoke(access));
test('revokeAll (revokeUser)', failsWith503, 'revokeUser', async service => service.revokeAll('u1'));
test('sessions (list)', failsWith503, 'list', async service => service.sessions('u1'));
test('prune', failsWith503, 'prune', async service => service.prune());

test('a store that fails is never answered as an unknown or expired token', async t => {
	const {service} = setup({}, {find: failing});
	const token = (await setup().service.issue('u1', 'access')).token;
	await t.throwsAsync(service.verify(token, 'access'), {instanceOf: StatelessAuthError, message: /Service unavailable/});
});

// --- A corrupt store

const corrupt = test.macro({
	async exec(t, mangle: (found: FoundToken) => unknown) {
		const inner = new MemoryTokenStore();
		const {service, count} = setup({}, {
			find: async digest => {
				const found = await inner.find(digest);
				return (found === undefined ? undefined : mangle(found)) as FoundToken | undefined;
			},
			create: async (records, limit) => inner.create(records, limit),
		});
		const {token} = await service.issue('u1', 'access');
		const result = await service.verify(token, 'access');
		t.false(result.valid);
		t.is(!result.valid && result.reason, 'corrupt');
		t.true(!result.valid && result.reason === 'corrupt' && result.error instanceof TypeError);
		t.is(count('touch'), 0, 'a corrupt record is not written to');
	},
	title: provided => `a store answering ${provided ?? ''} is a corrupt record, refused`,
});

const without = (key: keyof TokenRecord) => (found: FoundToken) => ({...found, record: Object.fromEntries(Object.entries(found.record).filter(([name]) => name !== key))});
const withField = (key: keyof TokenRecord, value: unknown) => (found: FoundToken) => ({...found, record: {...found.record, [key]: value}});

test('a record of null', corrupt, found => ({...found, record: null}));
test('a string for a record', corrupt, () => 'garbage');
test('a record without its userId', corrupt, without('userId'));
test('a record without its expiry', corrupt, without('expiresAt'));
test('a record whose expiry is a string', corrupt, withField('expiresAt', '2099-01-01'));
test('a record whose expiry is NaN', corrupt, withField('expiresAt', Number.NaN));
test('a record whose scopes are a string', corrupt, withField('scopes', 'admin'));
test('a record whose scopes hold a number', corrupt, withField('scopes', ['read', 1]));
test('a record whose userId is a number', corrupt, withField('userId', 1));
test('a record whose epoch is missing', corrupt, without('epoch'));
test('an answer without the user\'s epoch', corrupt, found => ({record: found.record}));

// --- Options

const badOption = test.macro({
	exec(t, options: Record<string, unknown>, pattern: RegExp) {
		t.throws(() => new TokenService({store: new MemoryTokenStore(), prefix: 'myapp', ...options}), {instanceOf: TypeError, message: pattern});
	},
	title: (provided, options) => provided ?? `the options ${JSON.stringify(options)} are refused with a TypeError`,
});

test('a missing store is refused with a TypeError', badOption, {store: undefined}, /`store`/);
test('a store without every method is refused with a TypeError', badOption, {store: {find: async () => undefined}}, /`store`/);
test('a store of null is refused with a TypeError', badOption, {store: null}, /`store`/);
test(badOption, {prefix: 'MyApp'}, /`prefix`/);
test(badOption, {prefix: ''}, /`prefix`/);
test(badOption, {pepper: 'short'}, /`pepper`/);
test(badOption, {pepper: ''}, /`pepper`/);
test('a pepper Buffer of 15 bytes is refused with a TypeError', badOption, {pepper: Buffer.alloc(15)}, /`pepper`/);
test(badOption, {pepper: 1_234_567_890_123_456}, /`pepper`/);
test(badOption, {accessTtl: 0}, /`accessTtl`/);
test(badOption, {accessTtl: -1}, /`accessTtl`/);
test(badOption, {accessTtl: '60'}, /`accessTtl`/);
test(badOption, {accessTtl: false}, /`accessTtl`/);
test('an accessTtl of NaN is refused with a TypeError', badOption, {accessTtl: Number.NaN}, /`accessTtl`/);
test('an accessTtl of Infinity is refused with a TypeError', badOption, {accessTtl: Number.POSITIVE_INFINITY}, /`accessTtl`/);
test(badOption, {refreshTtl: 0}, /`refreshTtl`/);
test(badOption, {apiKeyTtl: 0}, /`apiKeyTtl`/);
test(badOption, {apiKeyTtl: true}, /`apiKeyTtl`/);
test(badOption, {idleTimeout: 0}, /`idleTimeout`/);
test(badOption, {idleTimeout: -5}, /`idleTimeout`/);
test(badOption, {lastUsedInterval: -1}, /`lastUsedInterval`/);
test(badOption, {lastUsedInterval: false}, /`lastUsedInterval`/);
test(badOption, {reuseGrace: -1}, /`reuseGrace`/);
test(badOption, {maxSessions: 0}, /`maxSessions`/);
test(badOption, {maxSessions: 1.5}, /`maxSessions`/);
test(badOption, {maxSessions: true}, /`maxSessions`/);
test(badOption, {onLimit: 'drop'}, /`onLimit`/);
test(badOption, {now: 0}, /`now`/);

test('the documented boundary values are taken', t => {
	for (const options of [{apiKeyTtl: false}, {idleTimeout: false}, {lastUsedInterval: 0}, {reuseGrace: 0}, {maxSessions: false}, {maxSessions: 1}, {pepper: 'x'.repeat(16)}, {pepper: Buffer.alloc(16)}, {accessTtl: 0.5}] as const) {
		t.notThrows(() => new TokenService({store: new MemoryTokenStore(), prefix: 'myapp', ...options}), JSON.stringify(options));
	}
});

// --- The pepper

test('a token issued under one pepper does not verify under another, nor without one', async t => {
	const store = new MemoryTokenStore();
	const make = (pepper?: string) => new TokenService({store, prefix: 'myapp', ...(pepper === undefined ? {} : {pepper})});
	const first = make('first pepper, 16+ chars');
	const second = make('second pepper, 16+ chars');
	const plain = make();
	const issued = await first.issue('u1', 'access');
	t.is(issued.record.digest, digestToken(issued.token, 'first pepper, 16+ chars'));
	t.not(issued.record.digest, digestToken(issued.token));
	await assertValid(t, first, issued.token, 'access');
	await assertRefused(t, second, issued.token, 'access', 'unknown');
	await assertRefused(t, plain, issued.token, 'access', 'unknown');
	await assertRefused(t, first, (await plain.issue('u1', 'access')).token, 'access', 'unknown', 'nor the reverse');
});

// --- What the store sees

test('no token, nor any part of one past its hint, ever reaches the store', async t => {
	const {service, calls, advance} = setup({reuseGrace: 30, maxSessions: 3, lastUsedInterval: 0, idleTimeout: 600});
	const issued: string[] = [];
	const keep = (...tokens: Array<{token: string}>) => {
		issued.push(...tokens.map(({token}) => token));
	};

	const pair = await service.issuePair('u1', {scopes: ['read']});
	keep(pair.access, pair.refresh);
	const key = await service.issue('u1', 'api_key', {name: 'billing'});
	keep(key);
	const lone = await service.issue('u2', 'access');
	keep(lone);
	await service.verify(pair.access.token, 'access');
	await service.verify(key.token, 'api_key');
	const rotated = await service.refresh(pair.refresh.token);
	keep(rotated.access, rotated.refresh);
	advance(seconds);
	const retried = await service.refresh(pair.refresh.token);
	keep(retried.access, retried.refresh);
	await service.verify(rotated.refresh.token, 'refresh');
	for (let login = 0; login < 3; login++) {
		const extra = await service.issuePair('u1');
		keep(extra.access, extra.refresh);
	}

	await service.sessions('u1');
	await service.revoke(lone.token);
	await service.revokeSession('u1', key.record.familyId);
	advance(40 * seconds);
	await t.throwsAsync(service.refresh(pair.refresh.token));
	await service.revokeAll('u1');
	await service.prune();

	t.true(issued.length >= 12);
	t.true(calls.length > 20);
	const seen = JSON.stringify(calls);
	for (const token of issued) {
		const random = token.slice(-49, -6);
		t.false(seen.includes(token), 'a whole token');
		for (let offset = 4; offset + 8 <= random.length; offset += 4) {
			t.false(seen.includes(random.slice(offset, offset + 8)), 'eight characters of a random part past the hint');
		}
	}

	for (const call of calls) {
		for (const argument of call.args) {
			t.false(typeof argument === 'string' && issued.includes(argument), `${call.method} was handed a token`);
		}
	}
});
