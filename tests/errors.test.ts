import test from 'ava';
import {StatelessAuthError, isStatelessAuthError} from '../source/index.js';
import {createTestApp} from './helpers/app.js';
import {listen} from './helpers/http.js';

test('a StatelessAuthError carries msg, code, type, fullMsg and Koa\'s error contract', t => {
	const error = new StatelessAuthError('Invalid token', 401, 'token');
	t.is(error.msg, 'Invalid token');
	t.is(error.code, 401);
	t.is(error.type, 'token');
	t.is(error.fullMsg, 'Token error: Invalid token');
	t.is(error.message, 'Token error: Invalid token');
	t.is(error.name, 'StatelessAuthError');
	t.is(error.status, 401);
	t.true(error.expose);
	t.deepEqual(error.headers, {});
	t.true(error instanceof Error);
});

test('code defaults to 401 and type to token', t => {
	const error = new StatelessAuthError('Nope');
	t.is(error.code, 401);
	t.is(error.fullMsg, 'Token error: Nope');
});

test('a 5xx is not exposed, and keeps its cause', t => {
	const cause = new Error('secret detail');
	const error = new StatelessAuthError('Internal server error', 500, 'server', {cause});
	t.false(error.expose);
	t.is(error.cause, cause);
	t.is(error.fullMsg, 'Server error: Internal server error');
	t.false('cause' in new StatelessAuthError('x'), 'no cause property unless given');
});

test('any string is a type, capitalised in fullMsg', t => {
	t.is(new StatelessAuthError('Too many requests', 429, 'rate').fullMsg, 'Rate error: Too many requests');
});

test('headers given in options are copied, not shared', t => {
	const headers = {'Retry-After': '3'};
	const error = new StatelessAuthError('Slow down', 429, 'request', {headers});
	t.deepEqual(error.headers, {'Retry-After': '3'});
	t.not(error.headers, headers);
});

for (const code of [200, 399, 600, 401.5, Number.NaN]) {
	test(`code ${code} is refused`, t => {
		t.throws(() => new StatelessAuthError('x', code), {instanceOf: TypeError, message: /400 to 599/});
	});
}

test('isStatelessAuthError and instanceof recognise the error, subclasses and nothing else', t => {
	class RevokedError extends StatelessAuthError {}
	const revoked = new RevokedError('Revoked');
	t.true(isStatelessAuthError(new StatelessAuthError('x')));
	t.true(isStatelessAuthError(revoked));
	t.true(revoked instanceof StatelessAuthError);
	t.true(revoked instanceof RevokedError);
	t.false(new StatelessAuthError('x') instanceof RevokedError);
	t.false(isStatelessAuthError(new Error('x')));
	t.false(isStatelessAuthError({status: 401, msg: 'x'}));
	t.false(isStatelessAuthError(null));
});

test('Koa\'s own error handler already answers a refusal correctly', async t => {
	const {app, handled} = createTestApp({realm: 'api'}, {errorHandler: false});
	const url = await listen(t, app);
	const response = await fetch(`${url}/secret`, {headers: {authorization: 'Bearer nope'}});
	t.is(response.status, 401);
	t.is(await response.text(), 'Token error: Invalid token');
	t.is(response.headers.get('www-authenticate'), 'Bearer realm="api", error="invalid_token"');
	t.deepEqual(handled, []);
});

test('Koa\'s own error handler answers a loader failure with its generic 500', async t => {
	const {app} = createTestApp({realm: 'api'}, {errorHandler: false});
	const errors: unknown[] = [];
	app.on('error', (error: unknown) => errors.push(error));
	const url = await listen(t, app);
	const response = await fetch(`${url}/secret`, {headers: {authorization: 'Bearer explode'}});
	t.is(response.status, 500);
	t.is(await response.text(), 'Internal Server Error');
	t.is(errors.length, 1);
});
