// Brute-force protection of login and password change: 429 with Retry-After (never 401), per
// account and address, per account, per address; a soft lockout the owner survives; the same answer
// and comparable time for an unknown user as for a wrong password.
import {setTimeout as delay} from 'node:timers/promises';
import test from 'ava';
import {hashPassword} from '../../source/index.js';
import {addressKey} from '../../source/accounts/throttle.js';
import {accountStoreFactories, memoryFactory} from './stores.js';
import {harness, type Answer, type Harness} from './harness.js';

const P = '/api/user';

const attempt = async (h: Harness, username: string, password: string, ip: string): Promise<Answer> =>
	h.call('POST', `${P}/login`, {body: {username, password}, ip});

test('client addresses are counted as IPv4, and IPv6 by its /64', t => {
	t.is(addressKey('192.0.2.7'), '192.0.2.7');
	t.is(addressKey('::ffff:192.0.2.7'), '192.0.2.7');
	t.is(addressKey('2001:db8::1'), '2001:db8:0:0::/64');
	t.is(addressKey('2001:0DB8:0000:0000:abcd::1'), addressKey('2001:db8::ffff'));
	t.not(addressKey('2001:db8:0:1::1'), addressKey('2001:db8::1'));
	t.is(addressKey('fe80::1%eth0'), 'fe80:0:0:0::/64');
	t.is(addressKey('::1'), '0:0:0:0::/64');
	t.is(addressKey('not an address'), 'not an address');
});

for (const factory of accountStoreFactories) {
	const title = (text: string) => `${factory.name}: ${text}`;

	test(title('five wrong passwords from one address: that address waits 15 minutes (429, Retry-After), the owner elsewhere does not'), async t => {
		const h = await harness(t, factory);
		await h.user('alice', 'alice password');
		for (let index = 0; index < 5; index++) {
			t.is((await attempt(h, 'alice', `guess ${index}`, '198.51.100.1')).status, 400);
		}

		const refused = await attempt(h, 'alice', 'alice password', '198.51.100.1');
		t.is(refused.status, 429, 'even the right password: no password is checked while refused');
		t.deepEqual(refused.body, {error: 'too_many_requests', error_description: 'Too many failed attempts; try again later'});
		const retryAfter = Number(refused.header('retry-after'));
		t.true(retryAfter > 890 && retryAfter <= 900, String(retryAfter));
		t.is(refused.header('www-authenticate'), null);
		t.like(h.of('throttled'), [{action: 'login', username: 'alice', ip: '198.51.100.1', limit: 'usernameAndIp'}]);
		t.is(h.of('loginFailed').length, 5, 'the refused attempt was not checked');
		t.is((await attempt(h, 'alice', 'alice password', '203.0.113.9')).status, 200, 'from another address, the owner logs in');
		t.is((await attempt(h, 'bob', 'whatever', '198.51.100.1')).status, 400, 'another account from that address is not refused');
	});

	test(title('a burst of parallel guesses gets no more than the allowed five checked'), async t => {
		const h = await harness(t, factory);
		await h.user('alice', 'alice password');
		const answers = await Promise.all(Array.from({length: 20}, async (_, index) => attempt(h, 'alice', `parallel guess ${index}`, '198.51.100.20')));
		const statuses = answers.map(answer => answer.status).sort();
		t.deepEqual(statuses, [...Array.from({length: 5}, () => 400), ...Array.from({length: 15}, () => 429)]);
		t.is(h.of('loginFailed').length, 5, 'five passwords were checked');
		t.is(h.of('throttled').length, 15);
	});

	test(title('an unknown username is throttled exactly like a known one'), async t => {
		const h = await harness(t, factory);
		await h.user('alice', 'alice password');
		const known: Answer[] = [];
		const unknown: Answer[] = [];
		for (let index = 0; index < 6; index++) {
			known.push(await attempt(h, 'alice', `guess ${index}`, '198.51.100.2'));
			unknown.push(await attempt(h, 'nobody', `guess ${index}`, '198.51.100.2'));
		}

		t.deepEqual(known.map(answer => answer.status), [400, 400, 400, 400, 400, 429]);
		t.deepEqual(unknown.map(answer => [answer.status, answer.text]), known.map(answer => [answer.status, answer.text]));
	});

	test(title('a success resets the consecutive failures of that account and address'), async t => {
		const h = await harness(t, factory);
		await h.user('alice', 'alice password');
		const statuses: number[] = [];
		for (const password of ['a1', 'a2', 'a3', 'a4', 'alice password', 'b1', 'b2', 'b3', 'b4', 'b5', 'alice password']) {
			statuses.push((await attempt(h, 'alice', password, '198.51.100.3')).status);
		}

		t.deepEqual(statuses, [400, 400, 400, 400, 200, 400, 400, 400, 400, 400, 429]);
	});

	test(title('an account attacked from many addresses is refused there, but not at the addresses it logged in from'), async t => {
		const h = await harness(t, factory, {rateLimit: {username: {points: 6, duration: 600}}});
		await h.user('alice', 'alice password');
		t.is((await attempt(h, 'alice', 'alice password', '192.0.2.10')).status, 200, 'the owner\'s usual address');
		for (let index = 0; index < 6; index++) {
			t.is((await attempt(h, 'alice', `guess ${index}`, `203.0.113.${index + 1}`)).status, 400);
		}

		const fresh = await attempt(h, 'alice', 'alice password', '203.0.113.200');
		t.is(fresh.status, 429, 'a new address is refused: the account-wide limit');
		t.true(Number(fresh.header('retry-after')) <= 600);
		t.like(h.of('throttled'), [{limit: 'username', username: 'alice'}]);
		t.is((await attempt(h, 'alice', 'alice password', '192.0.2.10')).status, 200, 'the owner is not locked out');
	});

	test(title('one address trying many accounts is refused (password spraying), IPv6 by its /64'), async t => {
		const h = await harness(t, factory, {rateLimit: {ip: {points: 4, duration: 600}}});
		await h.user('alice', 'alice password');
		for (const [index, ip] of ['2001:db8::1', '2001:db8::2', '2001:db8::3', '2001:db8::4'].entries()) {
			t.is((await attempt(h, `user${index}`, 'password1', ip)).status, 400);
		}

		const refused = await attempt(h, 'alice', 'alice password', '2001:db8::99');
		t.is(refused.status, 429, 'the same /64');
		t.like(h.of('throttled'), [{limit: 'ip'}]);
		t.is((await attempt(h, 'alice', 'alice password', '2001:db8:0:1::1')).status, 200, 'another /64');
	});

	test(title('a short block ends by itself'), async t => {
		const h = await harness(t, factory, {rateLimit: {usernameAndIp: {points: 2, duration: 60, blockDuration: 1}}});
		await h.user('alice', 'alice password');
		await attempt(h, 'alice', 'one', '198.51.100.4');
		await attempt(h, 'alice', 'two', '198.51.100.4');
		const refused = await attempt(h, 'alice', 'alice password', '198.51.100.4');
		t.is(refused.status, 429);
		t.is(refused.header('retry-after'), '1');
		await delay(1100);
		t.is((await attempt(h, 'alice', 'alice password', '198.51.100.4')).status, 200);
	});

	test(title('password change: wrong current passwords are counted and refused 429, never 401'), async t => {
		const h = await harness(t, factory);
		const alice = await h.user('alice', 'alice password');
		const pair = await h.login('alice', 'alice password', {ip: '198.51.100.5'});
		const statuses: number[] = [];
		for (let index = 0; index < 6; index++) {
			const answer = await h.call('PUT', `${P}/password`, {token: pair.access_token, ip: '198.51.100.5', body: {oldPassword: `guess ${index}`, newPassword: 'a new password'}});
			statuses.push(answer.status);
			if (answer.status === 429) {
				t.true(Number(answer.header('retry-after')) > 0);
			}
		}

		t.deepEqual(statuses, [400, 400, 400, 400, 400, 429]);
		t.like(h.of('throttled'), [{action: 'password_change', userId: alice.id, username: 'alice', limit: 'usernameAndIp'}]);
		const right = await h.call('PUT', `${P}/password`, {token: pair.access_token, ip: '198.51.100.5', body: {oldPassword: 'alice password', newPassword: 'a new password'}});
		t.is(right.status, 429, 'refused before the password is checked');
		t.is((await attempt(h, 'alice', 'alice password', '198.51.100.5')).status, 429, 'login and password change count together');
		t.is((await h.call('PUT', `${P}/password`, {token: pair.access_token, ip: '198.51.100.6', body: {oldPassword: 'alice password', newPassword: 'a new password'}})).status, 204);
	});
}

test('an unknown user costs the same scrypt as a wrong password, and gets a byte-identical answer', async t => {
	// Real scrypt work (N = 2^14), so that skipping it would show: about 1 ms without, tens of ms with.
	const h = await harness(t, memoryFactory, {passwordParameters: {ln: 14, r: 8, p: 1}, rateLimit: {usernameAndIp: {points: 1000, duration: 60}, username: {points: 1000, duration: 60}, ip: {points: 1000, duration: 60}}});
	await h.user('alice', 'alice password', {passwordHash: await hashPassword('alice password', {ln: 14, r: 8, p: 1})});
	const time = async (username: string): Promise<[number, Answer]> => {
		const started = performance.now();
		const answer = await attempt(h, username, 'wrong password', '198.51.100.7');
		return [performance.now() - started, answer];
	};

	// Warm up: the dummy hash is made at the first unknown user.
	await time('nobody');
	await time('alice');
	const known: number[] = [];
	const unknown: number[] = [];
	for (let index = 0; index < 7; index++) {
		const [wrongTime, wrong] = await time('alice');
		const [unknownTime, missing] = await time(`nobody${index}`);
		known.push(wrongTime);
		unknown.push(unknownTime);
		t.is(missing.status, wrong.status);
		t.is(missing.text, wrong.text);
		t.deepEqual([...new Headers(Object.fromEntries(['content-type', 'cache-control', 'www-authenticate'].map(name => [name, missing.header(name) ?? ''])))],
			[...new Headers(Object.fromEntries(['content-type', 'cache-control', 'www-authenticate'].map(name => [name, wrong.header(name) ?? ''])))]);
	}

	const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
	const ratio = median(unknown) / median(known);
	t.log(`median ms: wrong password ${median(known).toFixed(1)}, unknown user ${median(unknown).toFixed(1)}`);
	t.true(median(known) > 5, 'the hash does cost something measurable');
	t.true(ratio > 0.5 && ratio < 2, `unknown/wrong = ${ratio.toFixed(2)}`);
});
