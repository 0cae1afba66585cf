import {createHash, createHmac} from 'node:crypto';
import test from 'ava';
import {digestToken, generateToken, isWellFormedToken, tokenPattern} from '../source/index.js';
import {tokenHint} from '../source/tokens/format.js';

const alphabet = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const prefixOf = (token: string) => tokenPattern.exec(token)?.groups?.['prefix'];
const randomOf = (token: string) => tokenPattern.exec(token)?.groups?.['random'] ?? '';

// One place that swaps a character for another of the same class, so that the token keeps the
// pattern and only the checksum can tell.
function substitute(token: string, index: number, replacement: string): string {
	return token.slice(0, index) + replacement + token.slice(index + 1);
}

test('a generated token matches the exported tokenPattern, with its prefix, 43 random and 6 checksum characters', t => {
	for (const prefix of ['myapp_at', 'a', 'x1_y2_z3', 'a'.repeat(32)]) {
		const token = generateToken({prefix});
		const groups = tokenPattern.exec(token)?.groups;
		t.truthy(groups, token);
		t.is(groups?.['prefix'], prefix);
		t.is(groups?.['random']?.length, 43);
		t.is(groups?.['checksum']?.length, 6);
		t.is(token.length, prefix.length + 1 + 43 + 6);
		t.true(isWellFormedToken(token));
	}
});

test('the exported tokenPattern is anchored at both ends', t => {
	const token = generateToken({prefix: 'myapp_at'});
	t.false(tokenPattern.test(` ${token}`));
	t.false(tokenPattern.test(`${token}\n`));
	t.false(tokenPattern.test(`${token}x`));
});

test('a thousand generated tokens are all distinct, in their random parts too', t => {
	const tokens = Array.from({length: 1000}, () => generateToken({prefix: 'myapp_at'}));
	t.is(new Set(tokens).size, 1000);
	t.is(new Set(tokens.map(token => randomOf(token))).size, 1000);
	t.true(new Set(tokens.map(token => token.slice(-6))).size > 990, 'checksums of distinct tokens rarely collide');
});

test('every one of the 43 random characters varies over the whole base62 alphabet, evenly', t => {
	// 2000 tokens: each position sees every character about 32 times. A token with fewer random bits
	// (128 bits padded to 43 characters, say) has positions stuck at '0'; a biased encoding skews
	// the overall counts. Both bounds are many standard deviations wide.
	const samples = 2000;
	const positions = Array.from({length: 43}, () => new Set<string>());
	const counts = new Map<string, number>();
	for (let index = 0; index < samples; index++) {
		const random = randomOf(generateToken({prefix: 'myapp_at'}));
		t.is(random.length, 43);
		for (const [position, character] of random.split('').entries()) {
			positions[position]?.add(character);
			counts.set(character, (counts.get(character) ?? 0) + 1);
		}
	}

	for (const [position, seen] of positions.entries()) {
		t.true(seen.size >= 55, `position ${position} saw only ${seen.size} distinct characters`);
	}

	const expected = (samples * 43) / 62;
	t.deepEqual([...counts.keys()].sort(), alphabet.split('').sort(), 'only base62 characters, and all of them');
	for (const [character, count] of counts) {
		t.true(count > expected * 0.8 && count < expected * 1.2, `${character} appeared ${count} times, expected about ${Math.round(expected)}`);
	}
});

test('the checksum catches every single-character substitution in a sample of tokens', t => {
	const lower = 'abcdefghijklmnopqrstuvwxyz0123456789';
	let tried = 0;
	for (let sample = 0; sample < 20; sample++) {
		const token = generateToken({prefix: 'myapp_at'});
		const prefixLength = 'myapp_at'.length;
		for (let index = 0; index < token.length; index++) {
			const original = token.charAt(index);
			if (original === '_') {
				continue;
			}

			// In the prefix, stay a valid prefix (the first character a letter); after it, stay base62.
			const pool = index < prefixLength ? (index === 0 ? lower.slice(0, 26) : lower) : alphabet;
			for (const replacement of [pool.charAt((pool.indexOf(original) + 1) % pool.length), pool.charAt((pool.indexOf(original) + 31) % pool.length)]) {
				const mutated = substitute(token, index, replacement);
				t.not(mutated, token);
				t.true(tokenPattern.test(mutated), 'the substitution keeps the pattern: only the checksum can catch it');
				t.false(isWellFormedToken(mutated), `${index}: ${original} -> ${replacement}`);
				tried++;
			}
		}
	}

	t.true(tried > 2000);
});

test('the checksum covers the prefix: an access token relabelled as a refresh token, and back, is refused', t => {
	for (let sample = 0; sample < 50; sample++) {
		const access = generateToken({prefix: 'myapp_at'});
		const refresh = generateToken({prefix: 'myapp_rt'});
		t.true(isWellFormedToken(access));
		t.false(isWellFormedToken(access.replace(/^myapp_at_/, 'myapp_rt_')));
		t.false(isWellFormedToken(refresh.replace(/^myapp_rt_/, 'myapp_at_')));
	}
});

const refused = test.macro({
	exec(t, change: (token: string) => string) {
		for (let sample = 0; sample < 20; sample++) {
			const token = generateToken({prefix: 'myapp_at'});
			const changed = change(token);
			t.not(changed, token);
			t.false(isWellFormedToken(changed), changed);
		}
	},
	title: provided => `a token is not well-formed when ${provided ?? ''}`,
});

test('its last character is cut off', refused, token => token.slice(0, -1));
test('its checksum is cut off', refused, token => token.slice(0, -6));
test('its first random character is cut out', refused, token => token.slice(0, 9) + token.slice(10));
test('a character is appended', refused, token => `${token}0`);
test('a character is inserted before the checksum', refused, token => `${token.slice(0, -6)}A${token.slice(-6)}`);
test('it is doubled', refused, token => token + token);
test('its prefix is dropped', refused, token => token.slice('myapp_at_'.length));
test('its prefix is upper-cased', refused, token => token.replace('myapp_at', 'MYAPP_AT'));
test('it is wrapped in whitespace', refused, token => ` ${token} `);
test('two characters of its random part are swapped', refused, token => {
	// Find two different neighbours to swap, so that the token does change.
	for (let index = 9; index < 9 + 42; index++) {
		if (token.charAt(index) !== token.charAt(index + 1)) {
			return token.slice(0, index) + token.charAt(index + 1) + token.charAt(index) + token.slice(index + 2);
		}
	}

	return `${token}!`;
});

test('made-up strings are not well-formed tokens', t => {
	for (const value of ['', 'myapp_at_', 'myapp_at', `myapp_at_${'0'.repeat(49)}`, `myapp_at_${'A'.repeat(49)}`, 'Bearer abc', '_'.repeat(60)]) {
		t.false(isWellFormedToken(value), JSON.stringify(value));
	}
});

const badPrefix = test.macro({
	exec(t, prefix: unknown) {
		t.throws(() => generateToken({prefix: prefix as string}), {instanceOf: TypeError, message: /`prefix`/});
	},
	title: (provided, prefix) => provided ?? `the prefix ${JSON.stringify(prefix)} is refused with a TypeError`,
});

test(badPrefix, 'MyApp');
test(badPrefix, '');
test(badPrefix, 'a-b');
test(badPrefix, '_x');
test(badPrefix, 'x_');
test(badPrefix, 'a__b');
test(badPrefix, '1app');
test(badPrefix, 'my app');
test(badPrefix, 'a'.repeat(33));
test('a prefix that is not a string is refused with a TypeError', badPrefix, 42);

test('prefixes of up to 32 characters in words joined by "_" are taken', t => {
	for (const prefix of ['a', 'myapp', 'myapp_at', 'a1_2b_c3', 'a'.repeat(32)]) {
		t.true(isWellFormedToken(generateToken({prefix})), prefix);
	}
});

test('digestToken is the SHA-256 of the token in 64 lower-case hex characters', t => {
	const token = generateToken({prefix: 'myapp_at'});
	const digest = digestToken(token);
	t.regex(digest, /^[\da-f]{64}$/);
	t.is(digest, createHash('sha256').update(token).digest('hex'));
	t.is(digestToken(token), digest, 'it is deterministic');
	t.not(digestToken(generateToken({prefix: 'myapp_at'})), digest);
});

test('with a pepper, digestToken is the HMAC-SHA-256 of the token under it', t => {
	const token = generateToken({prefix: 'myapp_at'});
	const pepper = 'a server-side secret of some length';
	const digest = digestToken(token, pepper);
	t.regex(digest, /^[\da-f]{64}$/);
	t.is(digest, createHmac('sha256', pepper).update(token).digest('hex'));
	t.not(digest, digestToken(token), 'a peppered digest is not the plain one');
	t.is(digestToken(token, Buffer.from(pepper)), digest, 'a Buffer pepper of the same bytes gives the same digest');
});

test('different peppers give different digests of one token', t => {
	const token = generateToken({prefix: 'myapp_at'});
	const digests = ['pepper-number-one-0001', 'pepper-number-two-0002', 'pepper-number-one-0002'].map(pepper => digestToken(token, pepper));
	t.is(new Set(digests).size, 3);
});

test('a token\'s hint is its prefix and at most four random characters, never more', t => {
	for (const prefix of ['myapp_at', 'k', 'a'.repeat(32)]) {
		for (let sample = 0; sample < 100; sample++) {
			const token = generateToken({prefix});
			const hint = tokenHint(token);
			const random = randomOf(token);
			t.true(hint.startsWith(`${prefix}_`), hint);
			const shown = hint.slice(prefix.length + 1).replace('…', '');
			t.true(shown.length <= 4, hint);
			t.true(random.startsWith(shown), 'what is shown is the start of the random part');
			t.false(hint.includes(random.slice(0, 5)), 'no fifth random character');
			t.false(hint.includes(token.slice(-6)), 'no checksum');
			t.true(hint.replace('…', '').length <= prefix.length + 1 + 4);
		}
	}
});

test('a string that is not a token has an empty hint, so that nothing of it is shown', t => {
	for (const value of ['', 'hunter2', 'myapp_at_secretsecret', `myapp_at_${'a'.repeat(48)}`]) {
		t.is(tokenHint(value), '', value);
	}
});

test('isWellFormedToken with a list of prefixes takes only tokens of those prefixes', t => {
	const access = generateToken({prefix: 'myapp_at'});
	const refresh = generateToken({prefix: 'myapp_rt'});
	t.is(prefixOf(access), 'myapp_at');
	t.true(isWellFormedToken(access, ['myapp_at']));
	t.true(isWellFormedToken(access, ['myapp_rt', 'myapp_at']));
	t.false(isWellFormedToken(access, ['myapp_rt']));
	t.false(isWellFormedToken(access, []));
	t.false(isWellFormedToken(access, ['myapp']), 'a prefix of the prefix is another prefix');
	t.false(isWellFormedToken(access, ['myapp_a']));
	t.false(isWellFormedToken(access, ['myapp_at_x']));
	t.true(isWellFormedToken(refresh, ['myapp_at', 'myapp_rt']));
	t.true(isWellFormedToken(access), 'without a list, any prefix');
	t.false(isWellFormedToken(substitute(access, access.length - 1, access.endsWith('0') ? '1' : '0'), ['myapp_at']), 'the list does not excuse a bad checksum');
});
