import test from 'ava';
import {parseAuthorizationHeader, type ParsedAuthorization} from '../source/index.js';

// One row per rule of shared/HTTP-AUTH-RULES.md "Parsing the Authorization header".
const parses = test.macro({
	exec(t, value: string | string[] | undefined, expected: ParsedAuthorization, maxLength?: number) {
		t.deepEqual(parseAuthorizationHeader(value, maxLength === undefined ? {} : {maxLength}), expected);
	},
	title: (provided, value) => provided ?? `parses ${JSON.stringify(value)}`,
});

const credentials = (scheme: string, value: string): ParsedAuthorization => ({kind: 'credentials', scheme, credentials: value});
const malformed = (reason: string, scheme?: string): ParsedAuthorization => ({kind: 'malformed', reason, scheme} as ParsedAuthorization);

test('an absent header is absent', parses, undefined, {kind: 'absent'});
test('an empty header is absent', parses, '', {kind: 'absent'});
test('a header of only spaces and tabs is absent', parses, ' \t  ', {kind: 'absent'});
test('no header lines at all is absent', parses, [], {kind: 'absent'});

test(parses, 'Bearer abc', credentials('Bearer', 'abc'));
test('the scheme is returned as sent', parses, 'bEaReR abc', credentials('bEaReR', 'abc'));
test('several spaces may separate scheme and token', parses, 'Bearer    abc', credentials('Bearer', 'abc'));
test('leading and trailing whitespace is removed first', parses, ' \tBearer abc \t', credentials('Bearer', 'abc'));
test('padding reaches the caller unchanged', parses, 'Bearer abc==', credentials('Bearer', 'abc=='));
test('every token68 character is accepted', parses, 'Bearer AZaz09-._~+/=', credentials('Bearer', 'AZaz09-._~+/='));
test('tokens keep their case', parses, 'Bearer AbC', credentials('Bearer', 'AbC'));
test('one header line is read like a string', parses, ['Bearer abc'], credentials('Bearer', 'abc'));
test('any token is a scheme', parses, 'Snaker x', credentials('Snaker', 'x'));
test('a scheme glued to its token is another scheme', parses, 'Bearerabc', malformed('missing-credentials', 'Bearerabc'));

test('a scheme with no token is missing its credentials', parses, 'Bearer', malformed('missing-credentials', 'Bearer'));
test('a scheme and spaces only is missing its credentials', parses, 'Bearer   ', malformed('missing-credentials', 'Bearer'));
test('a tab after the scheme is refused', parses, 'Bearer\tabc', malformed('tab-separator', 'Bearer'));
test('a tab after the spaces is refused', parses, 'Bearer \tabc', malformed('invalid-characters', 'Bearer'));
test('two words are not token68', parses, 'Bearer a b', malformed('invalid-characters', 'Bearer'));
test('Basic with two words is malformed for its own scheme', parses, 'Basic a b', malformed('invalid-characters', 'Basic'));
test('padding in the middle is not token68', parses, 'Bearer ab=c', malformed('invalid-characters', 'Bearer'));
test('padding alone is not token68', parses, 'Bearer ==', malformed('invalid-characters', 'Bearer'));
test('non-ASCII is not token68', parses, 'Bearer ab\u00E9', malformed('invalid-characters', 'Bearer'));
test('quotes are not token68', parses, 'Bearer "abc"', malformed('invalid-characters', 'Bearer'));
test('auth-params are not token68', parses, 'Digest a=b, c=d', malformed('invalid-characters', 'Digest'));
test('a scheme followed by a separator is a syntax error', parses, 'Bearer:abc', malformed('invalid-syntax', 'Bearer'));
test('a value starting with no token has no scheme', parses, '"Bearer" abc', malformed('invalid-scheme'));
test('the Kelvin sign is not a k', parses, 'To\u212Aen abc', malformed('invalid-syntax', 'To'));
test('several header lines are a duplicate', parses, ['Bearer a', 'Bearer b'], malformed('duplicate'));

test('credentials at the length limit are accepted', parses, `Bearer ${'a'.repeat(16)}`, credentials('Bearer', 'a'.repeat(16)), 16);
test('credentials over the length limit are too long', parses, `Bearer ${'a'.repeat(17)}`, malformed('too-long', 'Bearer'), 16);
test('the default length limit is 4096', parses, `Bearer ${'a'.repeat(4097)}`, malformed('too-long', 'Bearer'));
test('4096 characters pass the default limit', parses, `Bearer ${'a'.repeat(4096)}`, credentials('Bearer', 'a'.repeat(4096)));

test('never throws, whatever it is given', t => {
	const samples = ['\u0000', '\r\n', 'Bearer \u0000', ' '.repeat(10_000), `Bearer ${'='.repeat(10_000)}`, '\uD800', 'Bearer \uD800'];
	for (const sample of samples) {
		t.notThrows(() => parseAuthorizationHeader(sample), JSON.stringify(sample));
	}
});
