import test from 'ava';
import Koa from 'koa';
import Router from '@koa/router';
import {HttpBasicAuth, StatelessAuthManager, authErrorHandler, type BasicCredentials} from '../source/index.js';
import {listen, rawRequest} from './helpers/http.js';

// RFC 7617 and rules 16 to 18 of shared/HTTP-AUTH-RULES.md, over HTTP.
type Admin = {name: string; permissions: string[]};
const accounts = new Map([
	['admin', {password: 'open sesame', user: {name: 'admin', permissions: ['admin']}}],
	['colon', {password: 'pass:with:colons', user: {name: 'colon', permissions: []}}],
	['j\u00F6rg', {password: 'p\u00E4ssw\u00F6rd \u{1F511}', user: {name: 'j\u00F6rg', permissions: []}}],
]);

const basic64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');

async function start(t: Parameters<typeof listen>[0]) {
	const seen: BasicCredentials[] = [];
	const basic = new HttpBasicAuth<Admin>({
		realm: 'admin area',
		authenticate(credentials) {
			seen.push(credentials);
			const account = accounts.get(credentials.username);
			return account?.password === credentials.password ? account.user : undefined;
		},
	});
	const auth = new StatelessAuthManager();
	const app = new Koa();
	app.use(authErrorHandler());
	const handled: string[] = [];
	const router = new Router<object>();
	router.get('/admin', auth.protect({authenticators: [basic]}), ctx => {
		handled.push(ctx.state.currentUser.name);
		ctx.body = {user: ctx.state.currentUser.name, token: ctx.state.currentToken ?? null};
	});
	app.use(router.routes());
	const url = await listen(t, app);
	return {url, seen, handled};
}

const challenge = 'Basic realm="admin area", charset="UTF-8"';

test('valid credentials are accepted', async t => {
	const {url, handled} = await start(t);
	const response = await fetch(`${url}/admin`, {headers: {authorization: `Basic ${basic64('admin:open sesame')}`}});
	t.is(response.status, 200);
	t.deepEqual(await response.json(), {user: 'admin', token: null});
	t.deepEqual(handled, ['admin']);
});

test('the scheme is case-insensitive', async t => {
	const {url} = await start(t);
	const response = await fetch(`${url}/admin`, {headers: {authorization: `bAsIc ${basic64('admin:open sesame')}`}});
	t.is(response.status, 200);
});

test('a password may contain colons: the value splits at the first', async t => {
	const {url, seen} = await start(t);
	const response = await fetch(`${url}/admin`, {headers: {authorization: `Basic ${basic64('colon:pass:with:colons')}`}});
	t.is(response.status, 200);
	t.deepEqual(seen, [{authType: 'basic', username: 'colon', password: 'pass:with:colons'}]);
});

test('user-id and password may be non-ASCII UTF-8', async t => {
	const {url, seen} = await start(t);
	const response = await fetch(`${url}/admin`, {headers: {authorization: `Basic ${basic64('j\u00F6rg:p\u00E4ssw\u00F6rd \u{1F511}')}`}});
	t.is(response.status, 200);
	t.is(seen[0]?.password, 'p\u00E4ssw\u00F6rd \u{1F511}');
});

// Every failure: the same status, body and headers (but Date), and the handler never runs.
const failures: Array<[string, Array<[string, string]>, boolean]> = [
	['no header', [], false],
	['an unknown user', [['Authorization', `Basic ${basic64('mallory:open sesame')}`]], true],
	['a wrong password', [['Authorization', `Basic ${basic64('admin:open sesam')}`]], true],
	['an empty password', [['Authorization', `Basic ${basic64('admin:')}`]], true],
	['no colon', [['Authorization', `Basic ${basic64('admin')}`]], false],
	['the scheme alone', [['Authorization', 'Basic']], false],
	['the URL-safe alphabet', [['Authorization', `Basic ${basic64('admin:??>>').replaceAll('/', '_').replaceAll('+', '-')}`]], false],
	['a stray character', [['Authorization', `Basic ${basic64('admin:open sesame').slice(0, -2)}*=`]], false],
	['an impossible length', [['Authorization', `Basic ${basic64('admin:open sesame').slice(0, -1)}`]], false],
	['non-canonical padding bits', [['Authorization', 'Basic YR==']], false],
	['invalid UTF-8', [['Authorization', `Basic ${Buffer.from([0x61, 0x3A, 0xC3, 0x28]).toString('base64')}`]], false],
	['a control character in the password', [['Authorization', `Basic ${basic64('admin:open\u0000sesame')}`]], false],
	['a control character in the user-id', [['Authorization', `Basic ${basic64('ad\u001Bmin:open sesame')}`]], false],
	['two words', [['Authorization', 'Basic YWRt aW4=']], false],
	['duplicate header lines', [['Authorization', `Basic ${basic64('admin:open sesame')}`], ['Authorization', `Basic ${basic64('admin:open sesame')}`]], false],
	['another scheme', [['Authorization', 'Bearer abc']], false],
];

test('every failure is one byte-identical 401 with the challenge', async t => {
	const {url, seen, handled} = await start(t);
	const answers = [];
	for (const [name, lines, callbackRuns] of failures) {
		const before = seen.length;
		const response = await rawRequest(url, '/admin', lines);
		t.is(response.status, 401, name);
		t.deepEqual(response.headerLines('www-authenticate'), [challenge], name);
		t.is(seen.length > before, callbackRuns, `${name}: the callback ${callbackRuns ? 'runs' : 'must not run'}`);
		answers.push([name, response.body, response.headers.filter(([header]) => header !== 'date')]);
	}

	for (const [name, body, headers] of answers.slice(1)) {
		t.deepEqual([body, headers], [answers[0]![1], answers[0]![2]], String(name));
	}

	t.is(answers[0]![1], '{"error":"Request error: Authentication required"}');
	t.deepEqual(handled, []);
});

test('the realm defaults to "Authentication Required"', async t => {
	const auth = new StatelessAuthManager();
	const app = new Koa();
	app.use(auth.protect({authenticators: [new HttpBasicAuth({authenticate: () => undefined})]}));
	const url = await listen(t, app);
	const response = await fetch(url);
	t.is(response.headers.get('www-authenticate'), 'Basic realm="Authentication Required", charset="UTF-8"');
});

test('options are validated at start-up', t => {
	t.throws(() => new HttpBasicAuth({authenticate: 'yes' as never}), {instanceOf: TypeError, message: /`authenticate`/});
	t.throws(() => new HttpBasicAuth({authenticate: () => undefined, realm: 'r\u00E9alm'}), {instanceOf: TypeError, message: /`realm`/});
});
