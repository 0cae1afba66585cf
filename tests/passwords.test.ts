import {scrypt} from 'node:crypto';
import test from 'ava';
import {defaultScryptParameters, hashPassword, verifyPassword, type ScryptParameters} from '../source/index.js';

// Low parameters, for speed; one test alone uses the defaults.
const low: ScryptParameters = {ln: 10, r: 8, p: 1};
const encoded = /^\$scrypt\$ln=(?<ln>\d+),r=(?<r>\d+),p=(?<p>\d+)\$(?<salt>[\w-]+)\$(?<hash>[\w-]+)$/;

function parts(stored: string) {
	const groups = encoded.exec(stored)?.groups;
	if (groups === undefined) {
		throw new Error(`not a hash: ${stored}`);
	}

	return {ln: groups['ln'] ?? '', r: groups['r'] ?? '', p: groups['p'] ?? '', salt: groups['salt'] ?? '', hash: groups['hash'] ?? ''};
}

async function scryptOf(password: string, salt: Buffer, {ln, r, p}: ScryptParameters): Promise<Buffer> {
	return new Promise((resolve, reject) => {
		scrypt(password, salt, 32, {N: 2 ** ln, r, p}, (error, key) => {
			if (error) {
				reject(error);
			} else {
				resolve(key);
			}
		});
	});
}

// Serial tests run first, alone in this file: the timing comparison is not disturbed by the others.
test.serial('an unknown user takes about as long as a wrong password', async t => {
	const parameters: ScryptParameters = {ln: 13, r: 8, p: 1};
	const stored = await hashPassword('the right password', parameters);
	const time = async (hash: string | undefined) => {
		const began = process.hrtime.bigint();
		const result = await verifyPassword('a wrong password', hash, parameters);
		const took = Number(process.hrtime.bigint() - began);
		t.deepEqual(result, {valid: false, needsRehash: false});
		return took;
	};

	const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;
	// Warm up both paths (the first unknown user makes the dummy hash). Then pairs, each an unknown user
	// beside a wrong password, so that a load that comes and goes (other test files) hits both alike;
	// the median of the pairs' ratios. A measurement disturbed anyway is taken again, up to three times:
	// an unknown user answered without the work is a ratio near 0 every time.
	await time(undefined);
	await time(stored);
	const ratios: number[] = [];
	for (let attempt = 0; attempt < 3; attempt++) {
		const pairs: number[] = [];
		for (let run = 0; run < 11; run++) {
			const unknown = await time(undefined);
			pairs.push(unknown / await time(stored));
		}

		ratios.push(median(pairs));
		if (median(pairs) > 0.5 && median(pairs) < 2) {
			break;
		}
	}

	t.log(`median ratios of unknown user to wrong password: ${ratios.map(ratio => ratio.toFixed(2)).join(', ')}`);
	t.true(ratios.some(ratio => ratio > 0.5 && ratio < 2), ratios.join(', '));
});

test.serial('an unknown user does scrypt work at the current parameters, not a quick refusal', async t => {
	// The dummy work must grow with the parameters: an unknown user at ln 14 is much slower than at ln 8.
	const time = async (parameters: ScryptParameters) => {
		await verifyPassword('x', undefined, parameters);
		const began = process.hrtime.bigint();
		await verifyPassword('x', undefined, parameters);
		return Number(process.hrtime.bigint() - began);
	};

	// 64 times the work in theory; the fastest of five runs each keeps a busy machine's stalls out,
	// and a factor of 3 leaves room for them still.
	const fastest = async (parameters: ScryptParameters) => {
		const times: number[] = [];
		for (let run = 0; run < 5; run++) {
			times.push(await time(parameters));
		}

		return Math.min(...times);
	};

	const cheap = await fastest({ln: 8, r: 8, p: 1});
	const dear = await fastest({ln: 14, r: 8, p: 1});
	t.true(dear > cheap * 3, `ln 8: ${cheap} ns, ln 14: ${dear} ns`);
});

test('hashPassword with the default parameters writes OWASP\'s $scrypt$ln=17,r=8,p=1$', async t => {
	t.deepEqual(defaultScryptParameters, {ln: 17, r: 8, p: 1});
	const stored = await hashPassword('correct horse battery staple');
	t.true(stored.startsWith('$scrypt$ln=17,r=8,p=1$'), stored);
	t.deepEqual(await verifyPassword('correct horse battery staple', stored), {valid: true, needsRehash: false});
});

test('a hash is $scrypt$, its parameters, a 128-bit salt and a 256-bit key, in base64url', async t => {
	const stored = await hashPassword('hunter2', low);
	t.regex(stored, /^\$scrypt\$ln=10,r=8,p=1\$[\w-]{22}\$[\w-]{43}$/);
	const {salt, hash} = parts(stored);
	t.is(Buffer.from(salt, 'base64url').length, 16);
	t.is(Buffer.from(hash, 'base64url').length, 32);
	t.false(stored.includes('hunter2'));
});

test('the key is scrypt of the password and the salt at the written parameters', async t => {
	const stored = await hashPassword('hunter2', {ln: 11, r: 4, p: 2});
	const {ln, r, p, salt, hash} = parts(stored);
	t.deepEqual([ln, r, p], ['11', '4', '2']);
	t.is((await scryptOf('hunter2', Buffer.from(salt, 'base64url'), {ln: 11, r: 4, p: 2})).toString('base64url'), hash);
});

test('one password hashed twice gives two hashes (a fresh salt each time), both verifying', async t => {
	const first = await hashPassword('same password', low);
	const second = await hashPassword('same password', low);
	t.not(first, second);
	t.not(parts(first).salt, parts(second).salt);
	t.true((await verifyPassword('same password', first, low)).valid);
	t.true((await verifyPassword('same password', second, low)).valid);
});

const verifies = test.macro({
	async exec(t, stored: string, given: string, valid: boolean) {
		t.deepEqual(await verifyPassword(given, await hashPassword(stored, low), low), {valid, needsRehash: false});
	},
	title: (provided, stored, given, valid) => provided ?? `${JSON.stringify(given)} ${valid ? 'verifies' : 'does not verify'} against the hash of ${JSON.stringify(stored)}`,
});

test(verifies, 'correct horse battery staple', 'correct horse battery staple', true);
test(verifies, 'correct horse battery staple', 'correct horse battery stapl', false);
test(verifies, 'correct horse battery staple', 'correct horse battery staple ', false);
test(verifies, 'correct horse battery staple', 'Correct horse battery staple', false);
test(verifies, 'correct horse battery staple', '', false);
test(verifies, '', '', true);
test(verifies, 'pässwörd 🔑', 'pässwörd 🔑', true);
test('a password with a NUL inside is not its prefix', verifies, 'abc\0def', 'abc', false);
// NFKC: one password typed on two keyboards is one password.
test('the "ﬁ" ligature verifies as "fi"', verifies, 'proﬁle', 'profile', true);
test('"fi" verifies against the hash of the "ﬁ" ligature', verifies, 'profile', 'proﬁle', true);
test('full-width letters verify as ASCII', verifies, 'ｐａｓｓｗｏｒｄ１', 'password1', true);
test('a precomposed "é" verifies as "e" with a combining accent', verifies, 'caf\u00E9', 'cafe\u0301', true);
test('normalisation does not fold case', verifies, 'password', 'PASSWORD', false);
test('normalisation does not drop accents', verifies, 'café', 'cafe', false);

test('needsRehash is true for a right password whose hash has other parameters than the current ones', async t => {
	const stored = await hashPassword('hunter2', low);
	t.deepEqual(await verifyPassword('hunter2', stored, low), {valid: true, needsRehash: false});
	t.deepEqual(await verifyPassword('hunter2', stored, {ln: 11, r: 8, p: 1}), {valid: true, needsRehash: true}, 'ln changed');
	t.deepEqual(await verifyPassword('hunter2', stored, {ln: 10, r: 4, p: 1}), {valid: true, needsRehash: true}, 'r changed');
	t.deepEqual(await verifyPassword('hunter2', stored, {ln: 10, r: 8, p: 2}), {valid: true, needsRehash: true}, 'p changed');
	t.deepEqual(await verifyPassword('hunter3', stored, {ln: 11, r: 8, p: 1}), {valid: false, needsRehash: false}, 'never for a wrong password');
});

test('a hash is verified at the parameters written in it, whatever the current ones', async t => {
	const stored = await hashPassword('hunter2', {ln: 9, r: 2, p: 3});
	t.true((await verifyPassword('hunter2', stored, low)).valid);
});

test('an unknown user (no stored hash) is {valid: false}, for any password', async t => {
	t.deepEqual(await verifyPassword('anything', undefined, low), {valid: false, needsRehash: false});
	t.deepEqual(await verifyPassword('dummy password', undefined, low), {valid: false, needsRehash: false}, 'not even the dummy\'s own password');
	t.deepEqual(await verifyPassword('', undefined, low), {valid: false, needsRehash: false});
});

const unreadable = test.macro({
	async exec(t, mangle: (stored: string) => string) {
		const stored = mangle(await hashPassword('hunter2', low));
		const result = await verifyPassword('hunter2', stored, low);
		t.deepEqual(result, {valid: false, needsRehash: false});
	},
	title: provided => `a stored hash that ${provided ?? ''} is {valid: false}, not a throw`,
});

test('is empty', unreadable, () => '');
test('is the password itself', unreadable, () => 'hunter2');
test('is of another algorithm', unreadable, stored => stored.replace('$scrypt$', '$argon2id$'));
test('lacks its key', unreadable, stored => stored.slice(0, stored.lastIndexOf('$')));
test('has a short key', unreadable, stored => stored.slice(0, -20));
test('has a short salt', unreadable, stored => stored.replace(/\$[\w-]{22}\$/, '$abc$'));
test('has a key of other characters', unreadable, stored => `${stored.slice(0, -5)}!!!!!`);
test('has parameters in another order', unreadable, stored => stored.replace('ln=10,r=8,p=1', 'r=8,ln=10,p=1'));
test('has a non-numeric parameter', unreadable, stored => stored.replace('ln=10', 'ln=x'));
test('has trailing garbage', unreadable, stored => `${stored}$extra`);
test('has a line break after it', unreadable, stored => `${stored}\n`);
test('has ln=0', unreadable, stored => stored.replace('ln=10', 'ln=0'));
test('has ln=99', unreadable, stored => stored.replace('ln=10', 'ln=99'));
test('has r=0', unreadable, stored => stored.replace('r=8', 'r=0'));
test('has p=99', unreadable, stored => stored.replace('p=1', 'p=99'));

test('a password that is not a string is {valid: false}, not a throw', async t => {
	const stored = await hashPassword('hunter2', low);
	t.deepEqual(await verifyPassword(42 as unknown as string, stored, low), {valid: false, needsRehash: false});
	t.deepEqual(await verifyPassword(undefined as unknown as string, stored, low), {valid: false, needsRehash: false});
});

test('a key that differs in its first byte or its last, or is longer, does not verify', async t => {
	// Behaviour of the comparison: every byte counts, wherever it is, and the length too.
	const stored = await hashPassword('hunter2', low);
	const {hash} = parts(stored);
	const key = Buffer.from(hash, 'base64url');
	const rewrite = (bytes: Buffer) => `${stored.slice(0, stored.lastIndexOf('$') + 1)}${bytes.toString('base64url')}`;
	const first = Buffer.from(key);
	first[0] = (first[0] ?? 0) ^ 1;
	const last = Buffer.from(key);
	last[31] = (last[31] ?? 0) ^ 0x80;
	t.false((await verifyPassword('hunter2', rewrite(first), low)).valid);
	t.false((await verifyPassword('hunter2', rewrite(last), low)).valid);
	t.false((await verifyPassword('hunter2', rewrite(Buffer.concat([key, Buffer.alloc(8)])), low)).valid, 'extra zero bytes');
	t.true((await verifyPassword('hunter2', rewrite(key), low)).valid, 'the untouched key still verifies');
});

test('hashPassword refuses a password that is not a string, and parameters out of range', async t => {
	await t.throwsAsync(hashPassword(42 as unknown as string, low), {instanceOf: TypeError});
	for (const parameters of [{ln: 0, r: 8, p: 1}, {ln: 25, r: 8, p: 1}, {ln: 10, r: 0, p: 1}, {ln: 10, r: 33, p: 1}, {ln: 10, r: 8, p: 0}, {ln: 10, r: 8, p: 17}, {ln: 10.5, r: 8, p: 1}]) {
		await t.throwsAsync(hashPassword('x', parameters), {instanceOf: TypeError, message: /scrypt parameters/}, JSON.stringify(parameters));
	}

	await t.throwsAsync(verifyPassword('x', undefined, {ln: 0, r: 8, p: 1}), {instanceOf: TypeError}, 'verifyPassword checks the current parameters too');
});
