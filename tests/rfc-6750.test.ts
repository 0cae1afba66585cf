import test from 'ava';
import {createTestApp} from './helpers/app.js';
import {listen, rawRequest} from './helpers/http.js';

// The answers table of the README (RFC 6750 §3 and §3.1, RFC 9110 §11), over real HTTP.
type Expected = {
	status: number;
	error: string;
	challenge: string;
};

const noToken: Expected = {status: 401, error: 'Request error: No token provided', challenge: 'Bearer realm="api"'};
const otherScheme: Expected = {status: 401, error: 'Request error: Invalid token type', challenge: 'Bearer realm="api"'};
const malformed: Expected = {status: 400, error: 'Request error: Malformed authorization header', challenge: 'Bearer realm="api", error="invalid_request"'};
const invalid: Expected = {status: 401, error: 'Token error: Invalid token', challenge: 'Bearer realm="api", error="invalid_token"'};

const answers = test.macro({
	async exec(t, lines: Array<[string, string]>, expected: Expected, loaderRuns?: boolean) {
		const {app, calls, handled} = createTestApp();
		const url = await listen(t, app);
		const response = await rawRequest(url, '/secret', lines);
		t.is(response.status, expected.status);
		t.deepEqual(JSON.parse(response.body), {error: expected.error});
		t.deepEqual(response.headerLines('www-authenticate'), [expected.challenge]);
		t.is(response.header('content-type'), 'application/json; charset=utf-8');
		t.deepEqual(handled, [], 'the route handler must not run');
		t.is(calls.length > 0, loaderRuns === true, loaderRuns ? 'the token loader runs' : 'no loader may run');
	},
	title: (provided = "", lines) => `${provided} ${JSON.stringify(lines).slice(0, 80)}`.trim(),
});

test('no header', answers, [], noToken);
test('an empty header', answers, [['Authorization', '']], noToken);
test('a header of spaces', answers, [['Authorization', '   ']], noToken);
test('a token in another header is no token', answers, [['Authorisation', 'Bearer first-access']], noToken);
test('another scheme', answers, [['Authorization', 'Snaker first-access']], otherScheme);
test('another scheme, malformed for itself', answers, [['Authorization', 'Basic a b']], otherScheme);
test('a scheme glued to the token', answers, [['Authorization', 'Bearerfirst-access']], otherScheme);
test('a value that starts with no token', answers, [['Authorization', '"Bearer" first-access']], otherScheme);
test('the scheme alone', answers, [['Authorization', 'Bearer']], malformed);
test('two words', answers, [['Authorization', 'Bearer first access']], malformed);
test('a tab separator', answers, [['Authorization', 'Bearer\tfirst-access']], malformed);
test('a non-token68 character', answers, [['Authorization', 'Bearer first-access!']], malformed);
test('a non-ASCII byte', answers, [['Authorization', 'Bearer first-acc\u00E9ss']], malformed);
test('a separator after the scheme', answers, [['Authorization', 'Bearer:first-access']], malformed);
test('duplicate header lines', answers, [['Authorization', 'Bearer first-access'], ['authorization', 'Bearer first-access']], malformed);
test('a duplicate whose first line is another scheme', answers, [['Authorization', 'Basic eA=='], ['Authorization', 'Bearer first-access']], malformed);
test('a token one character over the limit', answers, [['Authorization', `Bearer ${'a'.repeat(4097)}`]], malformed);
test('an unknown token', answers, [['Authorization', 'Bearer nope']], invalid, true);
test('a token of another type', answers, [['Authorization', 'Bearer first-refresh']], invalid, true);
test('a token whose user is gone', answers, [['Authorization', 'Bearer orphan-access']], invalid, true);
test('a token whose user is inactive', answers, [['Authorization', 'Bearer disabled-access']], invalid, true);
test('tokens that read like words are still tokens', answers, [['Authorization', 'Bearer absent']], invalid, true);
test('tokens are case-sensitive', answers, [['Authorization', 'Bearer FIRST-ACCESS']], invalid, true);

const accepts = test.macro({
	async exec(t, header: string, expectedUser: string) {
		const {app, calls, handled} = createTestApp();
		const url = await listen(t, app);
		const response = await fetch(`${url}/secret`, {headers: {authorization: header}});
		t.is(response.status, 200);
		t.deepEqual(await response.json(), {secret: 'Stateless auth is awesome', user: expectedUser});
		t.is(response.headers.get('www-authenticate'), null);
		t.deepEqual(handled, ['/secret']);
		t.is(calls[0]?.authType, 'Bearer', 'the loader gets the scheme as configured, not as sent');
	},
	title: (provided, header) => provided ?? `accepts ${JSON.stringify(header)}`,
});

for (const scheme of ['Bearer', 'bearer', 'BEARER', 'BeArEr']) {
	test(`the scheme is case-insensitive: ${scheme}`, accepts, `${scheme} first-access`, 'first_user');
}

test('a token with padding and slashes reaches the loader unchanged', accepts, 'Bearer padded+/==', 'second_user');
test('several spaces before the token', accepts, 'Bearer    first-access', 'first_user');

test('the token loader gets the token, the token type and the configured scheme', async t => {
	const {app, calls} = createTestApp();
	const url = await listen(t, app);
	await fetch(`${url}/secret`, {headers: {authorization: 'bearer padded+/=='}});
	t.deepEqual(calls, [{token: 'padded+/==', tokenType: 'access', authType: 'Bearer'}]);
});

test('a token at the length limit is handed to the loader', async t => {
	const {app, calls} = createTestApp();
	const url = await listen(t, app);
	const token = 'a'.repeat(4096);
	const response = await fetch(`${url}/secret`, {headers: {authorization: `Bearer ${token}`}});
	t.is(response.status, 401);
	t.deepEqual(calls.map(call => call.token), [token]);
});

test('an expired token names its token type', async t => {
	const {app, auth} = createTestApp();
	auth.tokenLoader(token => ({token, userId: 1, type: 'access', tokenExpired: () => true}));
	const url = await listen(t, app);
	const response = await fetch(`${url}/secret`, {headers: {authorization: 'Bearer first-access'}});
	t.is(response.status, 401);
	t.deepEqual(await response.json(), {error: 'Token error: access token expired'});
	t.is(response.headers.get('www-authenticate'), 'Bearer realm="api", error="invalid_token"');
});

test('a route\'s own scheme is the scheme of its challenge', async t => {
	const {app, calls} = createTestApp();
	const url = await listen(t, app);
	const missing = await fetch(`${url}/token-scheme`);
	t.is(missing.headers.get('www-authenticate'), 'Token realm="api"');
	const bearer = await fetch(`${url}/token-scheme`, {headers: {authorization: 'Bearer first-access'}});
	t.is(bearer.status, 401);
	t.deepEqual(await bearer.json(), {error: 'Request error: Invalid token type'});
	const accepted = await fetch(`${url}/token-scheme`, {headers: {authorization: 'TOKEN first-access'}});
	t.deepEqual(await accepted.json(), {user: 'first_user'});
	t.is(calls.at(-1)?.authType, 'Token');
});

test('without a realm, challenges carry none', async t => {
	const {app} = createTestApp({});
	const url = await listen(t, app);
	t.is((await fetch(`${url}/secret`)).headers.get('www-authenticate'), 'Bearer');
	const invalidToken = await fetch(`${url}/secret`, {headers: {authorization: 'Bearer nope'}});
	t.is(invalidToken.headers.get('www-authenticate'), 'Bearer error="invalid_token"');
});

test('a realm with quotes and backslashes is escaped as a quoted-string', async t => {
	const {app} = createTestApp({realm: 'my "quoted" \\ realm'});
	const url = await listen(t, app);
	t.is((await fetch(`${url}/secret`)).headers.get('www-authenticate'), String.raw`Bearer realm="my \"quoted\" \\ realm"`);
});

test('the unknown-token answer is byte-identical to the inactive-user and missing-user answers', async t => {
	const {app} = createTestApp();
	const url = await listen(t, app);
	const answers = await Promise.all(['nope', 'disabled-access', 'orphan-access'].map(async token => {
		const response = await rawRequest(url, '/secret', [['Authorization', `Bearer ${token}`]]);
		return [response.status, response.body, response.headers.filter(([name]) => name !== 'date')];
	}));
	t.deepEqual(answers[1], answers[0]);
	t.deepEqual(answers[2], answers[0]);
});
