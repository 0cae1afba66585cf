// Every account route and option over real HTTP, on every store of the factory list; and a full
// scenario scanned for secrets.
import test from 'ava';
import {accountStoreFactories} from './stores.js';
import {adminPassword, harness, type Answer, type Pair} from './harness.js';

const P = '/api/user';

type UserView = {id: string; username: string; permissions: string[]; profile: Record<string, unknown>; isActive: boolean; createdAt: string};
type Session = {id: string; hint: string; name: string | null; createdAt: string; lastUsedAt: string | null; expiresAt: string; current: boolean};
type ApiKey = {id: string; key?: string; name: string | null; hint: string; createdAt: string; lastUsedAt?: string | null; expiresAt: string};

const sessionsOf = (answer: Answer) => (answer.body as {sessions: Session[]}).sessions;

for (const factory of accountStoreFactories) {
	const title = (text: string) => `${factory.name}: ${text}`;

	test(title('login answers RFC 6749 §5.1 with no-store, and the access token works'), async t => {
		const h = await harness(t, factory);
		await h.user('alice', 'alice password');
		const answer = await h.call('POST', `${P}/login`, {body: {username: 'alice', password: 'alice password'}});
		t.is(answer.status, 200);
		t.is(answer.header('cache-control'), 'no-store');
		t.regex(answer.header('content-type') ?? '', /^application\/json/);
		const pair = answer.body as Pair;
		t.deepEqual(Object.keys(pair).sort(), ['access_token', 'expires_in', 'refresh_token', 'token_type']);
		t.is(pair.token_type, 'Bearer');
		t.is(pair.expires_in, 86_400);
		t.regex(pair.access_token, /^acct_at_/);
		t.regex(pair.refresh_token, /^acct_rt_/);
		const me = await h.call('GET', `${P}/me`, {token: pair.access_token});
		t.is(me.status, 200);
		t.like(me.body, {username: 'alice', permissions: [], profile: {}, isActive: true});
		t.false('passwordHash' in (me.body as object));
		t.is((await h.call('GET', `${P}/me`, {token: pair.refresh_token})).status, 401, 'a refresh token is no access token');
		t.like(h.of('login')[0], {username: 'alice', ip: '127.0.0.1'});
	});

	test(title('login takes the form-encoded password grant too, and a session name'), async t => {
		const h = await harness(t, factory);
		await h.user('alice', 'alice password');
		const answer = await h.call('POST', `${P}/login`, {form: {grant_type: 'password', username: 'alice', password: 'alice password', name: 'phone'}});
		t.is(answer.status, 200);
		const sessions = sessionsOf(await h.call('GET', `${P}/sessions`, {token: (answer.body as Pair).access_token}));
		t.is(sessions[0]?.name, 'phone');
		const wrongGrant = await h.call('POST', `${P}/login`, {form: {grant_type: 'client_credentials', username: 'alice', password: 'alice password'}});
		t.like(wrongGrant, {status: 400, body: {error: 'invalid_request', field: 'grant_type'}});
		const twice = await h.call('POST', `${P}/login`, {body: 'username=alice&username=bob&password=alice+password', headers: {'content-type': 'application/x-www-form-urlencoded'}});
		t.like(twice, {status: 400, body: {error: 'invalid_request', field: 'username'}});
	});

	test(title('an unknown user, a wrong password and an inactive account get one answer'), async t => {
		const h = await harness(t, factory);
		await h.user('alice', 'alice password');
		await h.user('ghost', 'ghost password', {isActive: false});
		const unknown = await h.call('POST', `${P}/login`, {body: {username: 'nobody', password: 'alice password'}});
		const wrong = await h.call('POST', `${P}/login`, {body: {username: 'alice', password: 'not the password'}});
		const inactive = await h.call('POST', `${P}/login`, {body: {username: 'ghost', password: 'ghost password'}});
		for (const answer of [unknown, wrong, inactive]) {
			t.is(answer.status, 400);
			t.deepEqual(answer.body, {error: 'invalid_grant', error_description: 'Invalid username or password'});
			t.is(answer.header('www-authenticate'), null);
		}

		t.deepEqual(h.of('loginFailed').map(event => event.reason), ['unknown_user', 'wrong_password', 'inactive']);
		t.is(h.of('loginFailed')[0]?.userId, undefined);
		t.is(h.of('login').length, 0);
	});

	test(title('bad bodies are 400 naming the field'), async t => {
		const h = await harness(t, factory);
		const cases: Array<[unknown, string | undefined]> = [
			[{username: 'alice'}, 'password'],
			[{password: 'x'}, 'username'],
			[{username: 'alice', password: 'alice password', admin: true}, 'admin'],
			[{username: 5, password: 'alice password'}, 'username'],
			[[1, 2], undefined],
			['not json', undefined],
		];
		for (const [body, field] of cases) {
			const answer = await h.call('POST', `${P}/login`, {body});
			t.is(answer.status, 400, JSON.stringify(body));
			t.like(answer.body, {error: 'invalid_request'});
			t.is((answer.body as {field?: string}).field, field, JSON.stringify(body));
		}

		t.like(await h.call('POST', `${P}/login`), {status: 400, body: {error: 'invalid_request', error_description: 'The request body must be a JSON object'}});
		t.like(await h.call('POST', `${P}/login`, {body: 'x', headers: {'content-type': 'text/plain'}}), {status: 415});
		t.like(await h.call('POST', `${P}/login`, {body: JSON.stringify({username: 'a', password: 'x'.repeat(20_000)})}), {status: 413});
	});

	test(title('refresh rotates; the old pair stops working; a reused refresh token revokes the session and is reported'), async t => {
		const h = await harness(t, factory);
		await h.user('alice', 'alice password');
		const first = await h.login('alice', 'alice password');
		const answer = await h.call('POST', `${P}/refresh`, {body: {refresh_token: first.refresh_token}});
		t.is(answer.status, 200);
		t.is(answer.header('cache-control'), 'no-store');
		const second = answer.body as Pair;
		t.is(second.expires_in, 86_400);
		t.not(second.access_token, first.access_token);
		t.is((await h.call('GET', `${P}/me`, {token: second.access_token})).status, 200);
		t.is((await h.call('GET', `${P}/me`, {token: first.access_token})).status, 401, 'the old access token went with the rotation');
		const reused = await h.call('POST', `${P}/refresh`, {form: {grant_type: 'refresh_token', refresh_token: first.refresh_token}});
		t.deepEqual(reused.body, {error: 'invalid_grant', error_description: 'Invalid refresh token'});
		t.is(reused.status, 400);
		t.is(h.of('tokenReused').length, 1);
		t.is((await h.call('GET', `${P}/me`, {token: second.access_token})).status, 401, 'reuse revoked the whole session');
		t.like(await h.call('POST', `${P}/refresh`, {body: {refresh_token: second.refresh_token}}), {status: 400, body: {error: 'invalid_grant'}});
		for (const bad of ['', 'acct_rt_nonsense', second.access_token]) {
			t.is((await h.call('POST', `${P}/refresh`, {body: {refresh_token: bad}})).status, 400, bad);
		}

		t.like(await h.call('POST', `${P}/refresh`, {body: {}}), {status: 400, body: {error: 'invalid_request', field: 'refresh_token'}});
	});

	test(title('a refresh token of a deactivated or deleted user is refused, and its session ends'), async t => {
		const h = await harness(t, factory);
		const alice = await h.user('alice', 'alice password');
		const pair = await h.login('alice', 'alice password');
		await h.users.update(alice.id, {isActive: false});
		t.is((await h.call('GET', `${P}/me`, {token: pair.access_token})).status, 401, 'an inactive user\'s token is refused');
		t.like(await h.call('POST', `${P}/refresh`, {body: {refresh_token: pair.refresh_token}}), {status: 400, body: {error: 'invalid_grant'}});
		await h.users.update(alice.id, {isActive: true});
		t.is((await h.call('GET', `${P}/me`, {token: pair.access_token})).status, 401, 'the session ended with the refused refresh');
	});

	test(title('logout ends this session only; logout-all ends every session and API key'), async t => {
		const h = await harness(t, factory, {apiKeys: true});
		await h.user('alice', 'alice password');
		const one = await h.login('alice', 'alice password');
		const two = await h.login('alice', 'alice password');
		const logout = await h.call('POST', `${P}/logout`, {token: one.access_token});
		t.is(logout.status, 204);
		t.is((await h.call('GET', `${P}/me`, {token: one.access_token})).status, 401);
		t.is((await h.call('POST', `${P}/refresh`, {body: {refresh_token: one.refresh_token}})).status, 400, 'both tokens of the session');
		t.is((await h.call('GET', `${P}/me`, {token: two.access_token})).status, 200, 'the other session is untouched');
		t.like(h.of('logout')[0], {username: 'alice', scope: 'session'});

		const three = await h.login('alice', 'alice password');
		const key = (await h.call('POST', `${P}/api-keys`, {token: two.access_token, body: {name: 'ci'}})).body as ApiKey;
		t.is((await h.call('GET', `${P}/me`, {apiKey: key.key!})).status, 200);
		t.is((await h.call('POST', `${P}/logout-all`, {token: two.access_token})).status, 204);
		for (const token of [two.access_token, three.access_token]) {
			t.is((await h.call('GET', `${P}/me`, {token})).status, 401);
		}

		t.is((await h.call('GET', `${P}/me`, {apiKey: key.key!})).status, 401, 'API keys too');
		t.is((await h.call('POST', `${P}/refresh`, {body: {refresh_token: three.refresh_token}})).status, 400);
		t.like(h.of('logout')[1], {scope: 'everywhere', sessionId: undefined});
		t.is((await h.call('POST', `${P}/logout`)).status, 401);
		t.is((await h.call('POST', `${P}/logout-all`)).status, 401);
	});

	test(title('the current user needs a token: 401 with the challenge'), async t => {
		const h = await harness(t, factory);
		const answer = await h.call('GET', `${P}/me`);
		t.is(answer.status, 401);
		t.is(answer.header('www-authenticate'), 'Bearer realm="accounts"');
		t.is(answer.header('cache-control'), 'no-store', 'the guard\'s refusals too');
		t.like(answer.body, {error: 'missing_credentials'});
		t.is((await h.call('GET', `${P}/me`, {token: 'acct_at_garbage'})).status, 401);
	});

	test(title('my sessions: hints, names, times and the current one; revoking one logs it out; nobody else\'s'), async t => {
		const h = await harness(t, factory);
		await h.user('alice', 'alice password');
		await h.user('bob', 'bob password');
		const laptop = await h.login('alice', 'alice password', {name: 'laptop'});
		h.clock += 1000;
		const phone = await h.login('alice', 'alice password', {name: 'phone'});
		const bob = await h.login('bob', 'bob password');
		const list = await h.call('GET', `${P}/sessions`, {token: phone.access_token});
		t.is(list.status, 200);
		t.is(list.header('cache-control'), 'no-store');
		const sessions = sessionsOf(list);
		t.deepEqual(sessions.map(session => [session.name, session.current]), [['laptop', false], ['phone', true]]);
		t.true(laptop.refresh_token.startsWith(sessions[0]!.hint.replace(/…$/, '')), 'the hint is the start of the refresh token');
		t.true(sessions[0]!.hint.length < 20);
		t.false(list.text.includes(laptop.refresh_token) || list.text.includes(laptop.access_token), 'never a token');
		t.is(sessions[1]!.createdAt, new Date(h.clock).toISOString());
		t.is(sessions[0]!.expiresAt, new Date(h.clock - 1000 + 2_592_000_000).toISOString());
		t.not(sessions[1]!.lastUsedAt, null, 'the request that listed them used the phone session');

		const [mine] = sessionsOf(await h.call('GET', `${P}/sessions`, {token: bob.access_token}));
		t.is((await h.call('DELETE', `${P}/sessions/${mine!.id}`, {token: phone.access_token})).status, 404, 'someone else\'s session is unknown');
		t.is((await h.call('DELETE', `${P}/sessions/no-such-session`, {token: phone.access_token})).status, 404);
		t.is((await h.call('DELETE', `${P}/sessions/${sessions[0]!.id}`, {token: phone.access_token})).status, 204);
		t.is((await h.call('GET', `${P}/me`, {token: laptop.access_token})).status, 401);
		t.is((await h.call('GET', `${P}/me`, {token: phone.access_token})).status, 200);
		t.is((await h.call('GET', `${P}/me`, {token: bob.access_token})).status, 200);
		t.like(h.of('logout')[0], {scope: 'session', sessionId: sessions[0]!.id});
		t.deepEqual(sessionsOf(await h.call('GET', `${P}/sessions`, {token: phone.access_token})).map(session => session.name), ['phone']);
	});

	test(title('change my password: the current one is checked; other sessions end only when asked'), async t => {
		const h = await harness(t, factory);
		await h.user('alice', 'alice password');
		const here = await h.login('alice', 'alice password');
		const there = await h.login('alice', 'alice password');
		const wrong = await h.call('PUT', `${P}/password`, {token: here.access_token, body: {oldPassword: 'wrong password', newPassword: 'a new password'}});
		t.like(wrong, {status: 400, body: {error: 'invalid_password', field: 'oldPassword'}});
		t.like(h.of('passwordChangeFailed')[0], {username: 'alice'});
		t.like(await h.call('PUT', `${P}/password`, {token: here.access_token, body: {oldPassword: 'alice password', newPassword: 'short'}}), {status: 400, body: {field: 'newPassword'}});
		t.is((await h.call('PUT', `${P}/password`, {token: here.access_token, body: {oldPassword: 'alice password', newPassword: 'second password'}})).status, 204);
		t.is((await h.call('GET', `${P}/me`, {token: there.access_token})).status, 200, 'by default the other sessions stay');
		t.is((await h.call('POST', `${P}/login`, {body: {username: 'alice', password: 'alice password'}})).status, 400, 'the old password is gone');
		await h.login('alice', 'second password');
		const changed = await h.call('PUT', `${P}/password`, {token: here.access_token, body: {oldPassword: 'second password', newPassword: 'third password', endOtherSessions: true}});
		t.is(changed.status, 204);
		t.is((await h.call('GET', `${P}/me`, {token: there.access_token})).status, 401, 'the other sessions ended');
		t.is((await h.call('GET', `${P}/me`, {token: here.access_token})).status, 200, 'this one stays');
		t.deepEqual(h.of('passwordChanged').map(event => event.endedSessions), [0, 2]);
		t.is((await h.call('PUT', `${P}/password`, {body: {oldPassword: 'third password', newPassword: 'fourth password'}})).status, 401);
	});

	test(title('the password policy: 8 to 128 characters counted after NFKC, no composition rules'), async t => {
		const h = await harness(t, factory);
		const admin = await h.admin();
		const create = async (username: string, password: string) => h.call('POST', `${P}/users`, {token: admin.access_token, body: {username, password}});
		t.like(await create('seven', 'x'.repeat(7)), {status: 400, body: {field: 'password', error_description: 'password: At least 8 characters'}});
		t.is((await create('eight', 'aaaaaaaa')).status, 201, 'no composition rules');
		t.is((await create('long', 'y'.repeat(128))).status, 201);
		t.like(await create('toolong', 'y'.repeat(129)), {status: 400, body: {field: 'password', error_description: 'password: At most 128 characters'}});
		t.is((await create('emoji', '😀😀😀😀😀😀😀😀')).status, 201, '8 characters, 16 UTF-16 units');
		t.is((await create('fewemoji', '😀😀😀😀')).status, 400, '4 characters, 8 UTF-16 units');
		t.is((await create('spaces', 'correct horse battery staple')).status, 201);
		// U+FB01 (ﬁ) and fullwidth letters normalise (NFKC) to ASCII: one password, however typed.
		t.is((await create('unicode', 'ﬁｎｅ password')).status, 201);
		await h.login('unicode', 'fine password');
		await h.login('unicode', 'ﬁｎｅ password');
		await h.login('emoji', '😀😀😀😀😀😀😀😀');
	});

	test(title('user management needs the admin permission: 403 with the scope for others'), async t => {
		const h = await harness(t, factory);
		const alice = await h.user('alice', 'alice password');
		const pair = await h.login('alice', 'alice password');
		const routes: Array<[string, string, unknown]> = [
			['GET', '/users', undefined],
			['POST', '/users', {username: 'eve', password: 'eve password'}],
			['GET', `/users/${alice.id}`, undefined],
			['DELETE', `/users/${alice.id}`, undefined],
			['PUT', `/users/${alice.id}/permissions`, {permissions: ['admin']}],
			['PUT', `/users/${alice.id}/profile`, {profile: {}}],
			['PUT', `/users/${alice.id}/password`, {password: 'new password'}],
		];
		for (const [method, path, body] of routes) {
			const answer = await h.call(method, `${P}${path}`, {token: pair.access_token, ...(body === undefined ? {} : {body})});
			t.is(answer.status, 403, `${method} ${path}`);
			t.is(answer.header('www-authenticate'), 'Bearer realm="accounts", error="insufficient_scope", scope="admin"');
			t.is((await h.call(method, `${P}${path}`, body === undefined ? {} : {body})).status, 401);
		}

		t.truthy(await h.users.getById(alice.id), 'nothing was done');
		t.deepEqual((await h.users.getById(alice.id))?.permissions, []);
	});

	test(title('the user list is paged, ordered by username, with the total'), async t => {
		const h = await harness(t, factory, {pageSize: 2});
		for (const name of ['dave', 'bob', 'carol', 'erin']) {
			await h.user(name, `${name} password`);
		}

		const admin = await h.admin();
		const page = async (query: string) => h.call('GET', `${P}/users${query}`, {token: admin.access_token});
		const first = await page('');
		t.is(first.status, 200);
		const names = (answer: Answer) => (answer.body as {users: UserView[]}).users.map(user => user.username);
		t.deepEqual(names(first), ['admin', 'bob']);
		t.like(first.body, {total: 5, page: 1, pageSize: 2});
		t.deepEqual(names(await page('?page=2')), ['carol', 'dave']);
		t.deepEqual(names(await page('?page=3')), ['erin']);
		t.deepEqual(names(await page('?page=4')), []);
		t.false(first.text.includes('passwordHash') || first.text.includes('$scrypt$'));
		for (const bad of ['0', '-1', 'x', '1.5']) {
			t.like(await page(`?page=${bad}`), {status: 400, body: {error: 'invalid_request', field: 'page'}}, bad);
		}
	});

	test(title('the default page size is 25'), async t => {
		const h = await harness(t, factory);
		for (let index = 0; index < 26; index++) {
			await h.user(`user${String(index).padStart(2, '0')}`, 'some password');
		}

		const admin = await h.admin();
		const answer = await h.call('GET', `${P}/users`, {token: admin.access_token});
		t.like(answer.body, {total: 27, pageSize: 25});
		t.is((answer.body as {users: UserView[]}).users.length, 25);
	});

	test(title('create a user: 201 with its location, default permissions; a taken username is 409'), async t => {
		const h = await harness(t, factory, {defaultPermissions: ['read', 'comment']});
		const admin = await h.admin();
		const created = await h.call('POST', `${P}/users`, {token: admin.access_token, body: {username: 'alice', password: 'alice password', profile: {team: 'red'}}});
		t.is(created.status, 201);
		const user = created.body as UserView;
		t.like(user, {username: 'alice', permissions: ['read', 'comment'], profile: {team: 'red'}, isActive: true});
		t.is(created.header('location'), `${P}/users/${user.id}`);
		t.false('passwordHash' in user);
		t.like(await h.call('GET', created.header('location')!, {token: admin.access_token}), {status: 200, body: {id: user.id, username: 'alice'}});
		await h.login('alice', 'alice password');
		const explicit = await h.call('POST', `${P}/users`, {token: admin.access_token, body: {username: 'bob', password: 'bob password', permissions: []}});
		t.like(explicit.body, {permissions: []});
		t.like(await h.call('POST', `${P}/users`, {token: admin.access_token, body: {username: 'alice', password: 'other password'}}), {status: 409, body: {error: 'username_taken', field: 'username'}});
		t.like(await h.call('POST', `${P}/users`, {token: admin.access_token, body: {username: ' ａｌｉｃｅ ', password: 'other password'}}), {status: 409}, 'NFKC and trimmed: the same name');
		t.like(await h.call('POST', `${P}/users`, {token: admin.access_token, body: {username: 'has space', password: 'other password'}}), {status: 400, body: {field: 'username'}});
		t.like(await h.call('POST', `${P}/users`, {token: admin.access_token, body: {username: 'carol', password: 'carol password', permissions: ['with space']}}), {status: 400, body: {field: 'permissions.0'}});
		t.like(await h.call('POST', `${P}/users`, {token: admin.access_token, body: {username: 'dave', password: 'dave password', passwordHash: 'x'}}), {status: 400, body: {field: 'passwordHash'}});
		const inactive = await h.call('POST', `${P}/users`, {token: admin.access_token, body: {username: 'erin', password: 'erin password', isActive: false}});
		t.like(inactive.body, {isActive: false});
		t.is((await h.call('POST', `${P}/login`, {body: {username: 'erin', password: 'erin password'}})).status, 400);
		t.deepEqual(h.of('userCreated').map(event => event.username), ['alice', 'bob', 'erin']);
		t.like(h.of('userCreated')[0], {by: (await h.users.getByUsername('admin'))?.id});
		t.like(await h.call('GET', `${P}/users/no-such-user`, {token: admin.access_token}), {status: 404, body: {error: 'not_found'}});
	});

	test(title('delete a user: 204, and every token and API key of theirs is revoked'), async t => {
		const h = await harness(t, factory, {apiKeys: true});
		const alice = await h.user('alice', 'alice password');
		const pair = await h.login('alice', 'alice password');
		const key = (await h.call('POST', `${P}/api-keys`, {token: pair.access_token, body: {name: 'ci'}})).body as ApiKey;
		const admin = await h.admin();
		t.is((await h.call('DELETE', `${P}/users/${alice.id}`, {token: admin.access_token})).status, 204);
		t.is(await h.users.getById(alice.id), undefined);
		t.is((await h.call('GET', `${P}/me`, {token: pair.access_token})).status, 401);
		t.is((await h.call('GET', `${P}/me`, {apiKey: key.key!})).status, 401);
		t.is((await h.call('POST', `${P}/refresh`, {body: {refresh_token: pair.refresh_token}})).status, 400);
		t.deepEqual(await h.tokens.sessions(alice.id), [], 'revoked in the token store, not only refused for a missing user');
		t.like(await h.call('DELETE', `${P}/users/${alice.id}`, {token: admin.access_token}), {status: 404, body: {error: 'not_found'}});
		t.like(h.of('userDeleted'), [{userId: alice.id, username: 'alice'}]);
		// The name is free again; the new account does not inherit anything.
		await h.user('alice', 'new alice password');
		t.is((await h.call('GET', `${P}/me`, {token: pair.access_token})).status, 401);
	});

	test(title('set permissions: the user\'s next request has them; reported with the previous ones'), async t => {
		const h = await harness(t, factory);
		const alice = await h.user('alice', 'alice password', {permissions: ['read']});
		const pair = await h.login('alice', 'alice password');
		const admin = await h.admin();
		t.is((await h.call('GET', `${P}/users`, {token: pair.access_token})).status, 403);
		const answer = await h.call('PUT', `${P}/users/${alice.id}/permissions`, {token: admin.access_token, body: {permissions: ['read', 'admin']}});
		t.like(answer, {status: 200, body: {permissions: ['read', 'admin']}});
		t.is((await h.call('GET', `${P}/users`, {token: pair.access_token})).status, 200, 'the same token, now an admin\'s');
		t.like(h.of('permissionsChanged'), [{userId: alice.id, previous: ['read'], permissions: ['read', 'admin']}]);
		t.like(await h.call('PUT', `${P}/users/nobody/permissions`, {token: admin.access_token, body: {permissions: []}}), {status: 404});
		t.like(await h.call('PUT', `${P}/users/${alice.id}/permissions`, {token: admin.access_token, body: {permissions: 'admin'}}), {status: 400, body: {field: 'permissions'}});
		t.like(await h.call('PUT', `${P}/users/${alice.id}/permissions`, {token: admin.access_token, body: {permissions: ['a"b']}}), {status: 400, body: {field: 'permissions.0'}});
	});

	test(title('profiles: the admin edits anyone\'s; my own only with allowOwnProfileEdit'), async t => {
		const h = await harness(t, factory);
		const alice = await h.user('alice', 'alice password');
		const pair = await h.login('alice', 'alice password');
		const admin = await h.admin();
		t.like(await h.call('PUT', `${P}/users/${alice.id}/profile`, {token: admin.access_token, body: {profile: {team: 'blue', age: 30}}}), {status: 200, body: {profile: {team: 'blue', age: 30}}});
		t.like(await h.call('GET', `${P}/me`, {token: pair.access_token}), {body: {profile: {team: 'blue', age: 30}}});
		t.like(await h.call('PUT', `${P}/users/${alice.id}/profile`, {token: admin.access_token, body: {profile: 'x'}}), {status: 400, body: {field: 'profile'}});
		t.like(await h.call('PUT', `${P}/users/nobody/profile`, {token: admin.access_token, body: {profile: {}}}), {status: 404});
		t.is((await h.call('PUT', `${P}/users/${alice.id}/profile`, {token: pair.access_token, body: {profile: {}}})).status, 403, 'not my own through the admin route');
		t.is((await h.call('PUT', `${P}/me/profile`, {token: pair.access_token, body: {profile: {}}})).status, 404, 'no own-profile route by default');
		t.like(h.of('profileChanged'), [{userId: alice.id}]);

		const own = await harness(t, factory, {allowOwnProfileEdit: true});
		await own.user('bob', 'bob password');
		const bob = await own.login('bob', 'bob password');
		t.like(await own.call('PUT', `${P}/me/profile`, {token: bob.access_token, body: {profile: {nickname: 'bobby'}}}), {status: 200, body: {username: 'bob', profile: {nickname: 'bobby'}}});
		t.like(await own.call('PUT', `${P}/me/profile`, {token: bob.access_token, body: {profile: {nickname: 'x'}, permissions: ['admin']}}), {status: 400, body: {field: 'permissions'}});
		t.deepEqual((await own.users.getByUsername('bob'))?.permissions, [], 'no permission through the profile');
		t.is((await own.call('PUT', `${P}/me/profile`, {body: {profile: {}}})).status, 401);
	});

	test(title('set another\'s password: their sessions end unless told otherwise'), async t => {
		const h = await harness(t, factory);
		const alice = await h.user('alice', 'alice password');
		const pair = await h.login('alice', 'alice password');
		const admin = await h.admin();
		t.is((await h.call('PUT', `${P}/users/${alice.id}/password`, {token: admin.access_token, body: {password: 'reset password'}})).status, 204);
		t.is((await h.call('GET', `${P}/me`, {token: pair.access_token})).status, 401);
		t.is((await h.call('POST', `${P}/login`, {body: {username: 'alice', password: 'alice password'}})).status, 400);
		const again = await h.login('alice', 'reset password');
		t.is((await h.call('PUT', `${P}/users/${alice.id}/password`, {token: admin.access_token, body: {password: 'second reset', endSessions: false}})).status, 204);
		t.is((await h.call('GET', `${P}/me`, {token: again.access_token})).status, 200);
		await h.login('alice', 'second reset');
		t.like(await h.call('PUT', `${P}/users/${alice.id}/password`, {token: admin.access_token, body: {password: 'short'}}), {status: 400, body: {field: 'password'}});
		t.like(await h.call('PUT', `${P}/users/nobody/password`, {token: admin.access_token, body: {password: 'long enough'}}), {status: 404});
		const adminId = (await h.users.getByUsername('admin'))?.id;
		t.like(h.of('passwordChanged'), [{userId: alice.id, by: adminId, endedSessions: 1}, {userId: alice.id, by: adminId, endedSessions: 0}]);
	});

	test(title('API keys: shown once, listed by hint, `Token KEY` works on /me only, revocable'), async t => {
		const h = await harness(t, factory, {apiKeys: true});
		await h.user('alice', 'alice password');
		await h.user('bob', 'bob password');
		const pair = await h.login('alice', 'alice password');
		const created = await h.call('POST', `${P}/api-keys`, {token: pair.access_token, body: {name: 'backup script'}});
		t.is(created.status, 201);
		t.is(created.header('cache-control'), 'no-store');
		const key = created.body as ApiKey;
		t.regex(key.key!, /^acct_key_/);
		t.like(key, {name: 'backup script'});
		t.true(key.key!.startsWith(key.hint.replace(/…$/, '')));
		const list = await h.call('GET', `${P}/api-keys`, {token: pair.access_token});
		t.deepEqual((list.body as {apiKeys: ApiKey[]}).apiKeys.map(({id, name, hint}) => ({id, name, hint})), [{id: key.id, name: 'backup script', hint: key.hint}]);
		t.false(list.text.includes(key.key!), 'the key is never shown again');
		t.deepEqual(sessionsOf(await h.call('GET', `${P}/sessions`, {token: pair.access_token})).length, 1, 'keys are not sessions');

		t.like(await h.call('GET', `${P}/me`, {apiKey: key.key!}), {status: 200, body: {username: 'alice'}});
		for (const [method, path] of [['GET', '/sessions'], ['POST', '/logout'], ['POST', '/logout-all'], ['PUT', '/password'], ['POST', '/api-keys'], ['GET', '/api-keys'], ['GET', '/users']] as const) {
			const answer = await h.call(method, `${P}${path}`, {apiKey: key.key!, ...(method === 'GET' ? {} : {body: {name: 'another'}})});
			t.is(answer.status, 403, `${method} ${path}`);
			t.like(answer.body, {error: 'api_key_not_allowed'});
		}

		const bob = await h.login('bob', 'bob password');
		t.is((await h.call('DELETE', `${P}/api-keys/${key.id}`, {token: bob.access_token})).status, 404, 'not bob\'s key');
		t.deepEqual((await h.call('GET', `${P}/api-keys`, {token: bob.access_token})).body, {apiKeys: []});
		const [session] = sessionsOf(await h.call('GET', `${P}/sessions`, {token: pair.access_token}));
		t.is((await h.call('DELETE', `${P}/api-keys/${session!.id}`, {token: pair.access_token})).status, 404, 'a session is not a key');
		t.is((await h.call('DELETE', `${P}/sessions/${key.id}`, {token: pair.access_token})).status, 404, 'a key is not a session');
		t.is((await h.call('DELETE', `${P}/api-keys/${key.id}`, {token: pair.access_token})).status, 204);
		t.is((await h.call('GET', `${P}/me`, {apiKey: key.key!})).status, 401);
		t.like(await h.call('POST', `${P}/api-keys`, {token: pair.access_token, body: {}}), {status: 400, body: {field: 'name'}});
		t.like(h.of('apiKeyCreated'), [{userId: (await h.users.getByUsername('alice'))?.id, keyId: key.id, name: 'backup script'}]);
		t.like(h.of('apiKeyRevoked'), [{keyId: key.id, name: 'backup script'}]);
	});

	test(title('without apiKeys there are no key routes, and a `Token` key is refused on /me'), async t => {
		const h = await harness(t, factory);
		await h.user('alice', 'alice password');
		const pair = await h.login('alice', 'alice password');
		t.is((await h.call('POST', `${P}/api-keys`, {token: pair.access_token, body: {name: 'x'}})).status, 404);
		t.is((await h.call('GET', `${P}/api-keys`, {token: pair.access_token})).status, 404);
		t.is((await h.call('DELETE', `${P}/api-keys/x`, {token: pair.access_token})).status, 404);
		// A key issued by the service some other way still cannot reach /me here.
		const alice = await h.users.getByUsername('alice');
		const {token} = await h.tokens.issue(alice!.id, 'api_key');
		t.like(await h.call('GET', `${P}/me`, {apiKey: token}), {status: 403, body: {error: 'api_key_not_allowed'}});
	});

	test(title('apiPrefix and userAdminPermission move the routes and the permission'), async t => {
		const h = await harness(t, factory, {apiPrefix: '/auth/v2', userAdminPermission: 'superuser'});
		const admin = await h.login('admin', adminPassword);
		t.is((await h.call('POST', `${P}/login`, {body: {username: 'admin', password: adminPassword}})).status, 404);
		const list = await h.call('GET', '/auth/v2/users', {token: admin.access_token});
		t.is(list.status, 200);
		await h.user('alice', 'alice password', {permissions: ['admin']});
		const alice = await h.login('alice', 'alice password');
		const refused = await h.call('GET', '/auth/v2/users', {token: alice.access_token});
		t.is(refused.status, 403, 'admin is no longer the admin permission');
		t.regex(refused.header('www-authenticate') ?? '', /scope="superuser"/);
		t.true(h.mounted.routes.every(route => route.path.startsWith('/auth/v2/')));
	});

	test(title('the manager answered guards the application\'s own routes, with tokenExpiration there too'), async t => {
		const h = await harness(t, factory, {
			tokenExpiration: 600,
			ownRoutes(router, {auth}) {
				router.get('/reports', auth.tokenRequired({permissions: ['reports']}), ctx => {
					ctx.body = {reader: ctx.state.currentUser.username};
				});
			},
		});
		await h.user('alice', 'alice password', {permissions: ['reports']});
		await h.user('bob', 'bob password');
		const alice = await h.login('alice', 'alice password');
		const bob = await h.login('bob', 'bob password');
		t.like(await h.call('GET', '/reports', {token: alice.access_token}), {status: 200, body: {reader: 'alice'}});
		t.is((await h.call('GET', '/reports', {token: bob.access_token})).status, 403);
		h.clock += 600_000;
		t.like(await h.call('GET', '/reports', {token: alice.access_token}), {status: 401, body: {error: 'expired_token'}});
	});
}

// A full scenario through every route, failures included; then no response (status line, headers,
// body), event payload, app error or console line may hold a password, a hash or any '$scrypt$'.
// Events may not hold tokens or API keys either.
// Every password of the scenario: distinctive strings that nothing else contains.
const passwords = {
	admin: adminPassword,
	alice: 'Alice-Secret-Pw-0001',
	aliceNext: 'Alice-Secret-Pw-0002',
	aliceReset: 'Alice-Secret-Pw-0003',
	bob: 'Bob-Secret-Pw-0001',
	wrong: 'Wrong-Secret-Pw-9999',
	short: 'Sh0rt!',
} as const;

// Console lines written while the scenarios run (this file's worker only).
const consoleLines: string[] = [];
for (const method of ['log', 'info', 'warn', 'error', 'debug'] as const) {
	const original = console[method].bind(console);
	console[method] = (...args: unknown[]) => {
		consoleLines.push(args.map(String).join(' '));
		original(...args);
	};
}

for (const factory of accountStoreFactories) {
	test(`${factory.name}: no password, hash or '$scrypt$' in any response, event, error or log line of a full scenario`, async t => {
		const h = await harness(t, factory, {apiKeys: true, allowOwnProfileEdit: true, rateLimit: {usernameAndIp: {points: 3, duration: 60}}});
		const admin = await h.admin();
		const as = (pair: Pair) => ({token: pair.access_token});
		const issued: string[] = [admin.access_token, admin.refresh_token];

		// Admin: users.
		const created = await h.call('POST', `${P}/users`, {...as(admin), body: {username: 'alice', password: passwords.alice, profile: {team: 'red'}}});
		const aliceId = (created.body as {id: string}).id;
		await h.call('POST', `${P}/users`, {...as(admin), body: {username: 'bob', password: passwords.bob}});
		await h.call('POST', `${P}/users`, {...as(admin), body: {username: 'alice', password: passwords.alice}});
		await h.call('POST', `${P}/users`, {...as(admin), body: {username: 'shorty', password: passwords.short}});
		await h.call('GET', `${P}/users`, as(admin));
		await h.call('GET', `${P}/users/${aliceId}`, as(admin));
		await h.call('PUT', `${P}/users/${aliceId}/permissions`, {...as(admin), body: {permissions: ['reports']}});
		await h.call('PUT', `${P}/users/${aliceId}/profile`, {...as(admin), body: {profile: {team: 'blue'}}});

		// Alice: logins, failures, throttling, refresh, reuse.
		await h.call('POST', `${P}/login`, {body: {username: 'alice', password: passwords.wrong}});
		await h.call('POST', `${P}/login`, {body: {username: 'nobody', password: passwords.alice}});
		await h.call('POST', `${P}/login`, {form: {username: 'alice', password: passwords.wrong, grant_type: 'password'}});
		await h.call('POST', `${P}/login`, {body: {username: 'alice', password: passwords.alice}});
		const alice = await h.login('alice', passwords.alice, {ip: '192.0.2.1'});
		const other = await h.login('alice', passwords.alice, {ip: '192.0.2.2', name: 'phone'});
		const refreshed = (await h.call('POST', `${P}/refresh`, {body: {refresh_token: alice.refresh_token}})).body as Pair;
		await h.call('POST', `${P}/refresh`, {body: {refresh_token: alice.refresh_token}});
		const session = await h.login('alice', passwords.alice, {ip: '192.0.2.1'});
		issued.push(alice.access_token, alice.refresh_token, other.access_token, other.refresh_token, refreshed.access_token, refreshed.refresh_token, session.access_token, session.refresh_token);
		await h.call('GET', `${P}/me`, as(session));
		await h.call('PUT', `${P}/me/profile`, {...as(session), body: {profile: {nickname: 'al'}}});
		const sessions = (await h.call('GET', `${P}/sessions`, as(session))).body as {sessions: Array<{id: string; current: boolean}>};
		await h.call('DELETE', `${P}/sessions/${sessions.sessions.find(entry => !entry.current)?.id ?? 'none'}`, as(session));

		// API keys.
		const key = (await h.call('POST', `${P}/api-keys`, {...as(session), body: {name: 'ci'}})).body as {id: string; key: string};
		issued.push(key.key);
		await h.call('GET', `${P}/api-keys`, as(session));
		await h.call('GET', `${P}/me`, {apiKey: key.key});
		await h.call('GET', `${P}/sessions`, {apiKey: key.key});

		// Passwords: mine (wrong, short, right), another's.
		await h.call('PUT', `${P}/password`, {...as(session), body: {oldPassword: passwords.wrong, newPassword: passwords.aliceNext}});
		await h.call('PUT', `${P}/password`, {...as(session), body: {oldPassword: passwords.alice, newPassword: passwords.short}});
		await h.call('PUT', `${P}/password`, {...as(session), body: {oldPassword: passwords.alice, newPassword: passwords.aliceNext, endOtherSessions: true}});
		await h.call('PUT', `${P}/users/${aliceId}/password`, {...as(admin), body: {password: passwords.aliceReset}});
		await h.call('PUT', `${P}/users/${aliceId}/password`, {...as(admin), body: {password: passwords.short}});
		const reset = await h.login('alice', passwords.aliceReset, {ip: '192.0.2.3'});
		issued.push(reset.access_token, reset.refresh_token);

		// Throttled, with the right password.
		for (let index = 0; index < 4; index++) {
			await h.call('POST', `${P}/login`, {body: {username: 'bob', password: passwords.wrong}, ip: '192.0.2.9'});
		}

		await h.call('POST', `${P}/login`, {body: {username: 'bob', password: passwords.bob}, ip: '192.0.2.9'});

		// The end: keys, logouts, deletion.
		await h.call('DELETE', `${P}/api-keys/${key.id}`, as(reset));
		await h.call('POST', `${P}/logout`, as(reset));
		const last = await h.login('alice', passwords.aliceReset, {ip: '192.0.2.3'});
		issued.push(last.access_token, last.refresh_token);
		await h.call('POST', `${P}/logout-all`, as(last));
		await h.call('DELETE', `${P}/users/${aliceId}`, as(admin));

		// What was recorded covers the whole scenario.
		const names = new Set(h.events.map(event => event.name));
		for (const name of ['login', 'loginFailed', 'throttled', 'logout', 'passwordChanged', 'passwordChangeFailed', 'tokenReused', 'userCreated', 'userDeleted', 'permissionsChanged', 'profileChanged', 'apiKeyCreated', 'apiKeyRevoked']) {
			t.true(names.has(name as never), `the scenario emitted ${name}`);
		}

		t.true(h.transcript.length > 40);
		const hashes = (await h.users.list(0, 100)).users.map(user => user.passwordHash);
		t.true(hashes.every(hash => hash.startsWith('$scrypt$')));
		const responses = h.transcript.join('\n');
		const events = h.events.map(event => JSON.stringify(event)).join('\n');
		const errors = h.errors.map(error => `${String(error)} ${JSON.stringify(error)}`).join('\n');
		const logged = consoleLines.join('\n');
		for (const [where, text] of Object.entries({responses, events, errors, logged})) {
			for (const [name, password] of Object.entries(passwords)) {
				t.false(text.includes(password), `${where} hold the ${name} password`);
			}

			t.false(text.includes('$scrypt$'), `${where} hold a hash`);
			for (const hash of hashes) {
				t.false(text.includes(hash.split('$').at(-1)!), `${where} hold a hash's digest`);
			}
		}

		for (const token of issued) {
			t.false(events.includes(token) || errors.includes(token) || logged.includes(token), 'no token or key in an event, error or log line');
		}

		t.true(responses.includes(key.key), 'the scan does see what is in the responses: the key, shown once');
	});
}
