// A table of faulty callbacks (loaders, Basic's authenticate, readPermissions), each answered over
// real HTTP with and without authErrorHandler: the status, the body, the headers, what reaches
// app.on('error'), that the route never ran, that no secret leaks, and that the server still serves.
import test, {type ExecutionContext} from 'ava';
import Koa from 'koa';
import Router from '@koa/router';
import {
	HttpBasicAuth, LoaderTimeoutError, StatelessAuthError, StatelessAuthManager, authErrorHandler, isStatelessAuthError,
	type LoaderOptions,
} from '../source/index.js';
import {listen, rawRequest, type RawResponse} from './helpers/http.js';

const secret = 'hunter2';
/** The faulty request's credential: it carries the secret too, which must never be echoed. */
const faultyCredential = `faulty.${secret}`;
const timeout = 50;

type TokenRecord = {readonly userId: number};
type User = {readonly id: number; readonly name: string; readonly permissions: readonly string[]};

const alice: User = {id: 1, name: 'alice', permissions: ['read']};
const faultyUser: User = {id: 0, name: 'faulty', permissions: ['read']};

/** What one faulty call did, for the assertions: what it threw or rejected with, and its signal. */
type Box = {
	calls: number;
	threw: boolean;
	thrown: unknown;
	signal: AbortSignal | undefined;
};

type Outcome =
	/** A generic 500; its cause is what the callback threw, or a TypeError matching `message`. */
	| {readonly kind: 'internal'; readonly cause: 'thrown' | RegExp}
	/** Refused like an unknown principal. */
	| {readonly kind: 'unknown'}
	/** An object principal or record: the route runs. */
	| {readonly kind: 'accepted'}
	/** The loaderTimeout passed: a 503 with Retry-After. */
	| {readonly kind: 'timeout'}
	/** The callback's own 4xx StatelessAuthError, answered with its status and message. */
	| {readonly kind: 'own'; readonly status: number; readonly fullMsg: string; readonly challenge: boolean; readonly headers: Readonly<Record<string, string>>}
	/** The callback's own 5xx StatelessAuthError: generic body, its headers kept. */
	| {readonly kind: 'own-5xx'; readonly status: number; readonly headers: Readonly<Record<string, string>>};

type Fault = {
	readonly description: string;
	/** Which callbacks the row applies to. */
	readonly scope: 'all' | 'loaders' | 'loaders-and-basic';
	readonly outcome: Outcome;
	/** The callback's body: answers, throws or returns a promise. */
	run(box: Box, options: LoaderOptions): unknown;
};

function thrower(value: unknown): (box: Box) => never {
	return box => {
		box.threw = true;
		box.thrown = value;
		throw value;
	};
}

function rejecter(makeValue: () => unknown): (box: Box) => Promise<never> {
	return async box => {
		const value = makeValue();
		box.threw = true;
		box.thrown = value;
		throw value;
	};
}

const internal: Outcome = {kind: 'internal', cause: 'thrown'};
const garbageCause = (type: string) => ({kind: 'internal', cause: new RegExp(`answered a ${type}; a loader answers an object`)}) as const;

function answers(value: unknown, outcome: Outcome, scope: Fault['scope']): Fault[] {
	const shown = typeof value === 'symbol' ? 'a symbol' : Array.isArray(value) ? 'an array' : typeof value === 'string' ? JSON.stringify(value) : String(value);
	const label = value !== null && typeof value === 'object' && !Array.isArray(value) ? 'an empty object' : shown;
	return [
		{description: `answers ${label}`, scope, outcome, run: () => value},
		{description: `answers ${label} through a promise`, scope, outcome, run: async () => value},
	];
}

function ownError(build: () => StatelessAuthError): (box: Box) => never {
	return box => {
		const error = build();
		box.threw = true;
		box.thrown = error;
		throw error;
	};
}

const faults: readonly Fault[] = [
	{description: 'throws an Error carrying a secret', scope: 'all', outcome: internal, run: thrower(new Error(`database is down: password=${secret}`))},
	{description: 'throws a string carrying a secret', scope: 'all', outcome: internal, run: thrower(`password=${secret}`)},
	{description: 'throws undefined', scope: 'all', outcome: internal, run: thrower(undefined)},
	{description: 'rejects with an Error carrying a secret', scope: 'all', outcome: internal, run: rejecter(() => new Error(`pool: password=${secret}`))},
	{
		description: 'returns a thenable that rejects',
		scope: 'all',
		outcome: internal,
		run(box) {
			const reason = new Error(`thenable: password=${secret}`);
			box.threw = true;
			box.thrown = reason;
			return {
				then(_resolve: (value: unknown) => void, reject: (reason: unknown) => void) {
					reject(reason);
				},
			};
		},
	},
	{
		description: 'returns a thenable whose then throws',
		scope: 'all',
		outcome: internal,
		run(box) {
			const reason = new Error(`then: password=${secret}`);
			box.threw = true;
			box.thrown = reason;
			return {
				then() {
					throw reason;
				},
			};
		},
	},
	...answers(42, garbageCause('number'), 'loaders'),
	...answers(`user=${secret}`, garbageCause('string'), 'loaders'),
	...answers(true, garbageCause('boolean'), 'loaders'),
	...answers(Symbol(secret), garbageCause('symbol'), 'loaders'),
	...answers([], {kind: 'accepted'}, 'loaders'),
	...answers({}, {kind: 'accepted'}, 'loaders'),
	...[false, 0, '', Number.NaN, null, undefined].flatMap(value => answers(value, {kind: 'unknown'}, 'loaders-and-basic')),
	{
		description: 'never settles',
		scope: 'all',
		outcome: {kind: 'timeout'},
		run(box, options) {
			box.signal = options.signal;
			return new Promise(() => undefined);
		},
	},
	{
		description: 'throws its own 401 StatelessAuthError',
		scope: 'all',
		outcome: {kind: 'own', status: 401, fullMsg: 'Token error: Token revoked', challenge: true, headers: {'x-reason': 'revoked'}},
		run: ownError(() => new StatelessAuthError('Token revoked', 401, 'token', {headers: {'X-Reason': 'revoked'}})),
	},
	{
		description: 'throws its own 429 StatelessAuthError',
		scope: 'all',
		outcome: {kind: 'own', status: 429, fullMsg: 'Request error: Slow down', challenge: false, headers: {'retry-after': '30'}},
		run: ownError(() => new StatelessAuthError('Slow down', 429, 'request', {headers: {'Retry-After': '30'}})),
	},
	{
		description: 'throws its own 503 StatelessAuthError with Retry-After and a secret',
		scope: 'all',
		outcome: {kind: 'own-5xx', status: 503, headers: {'retry-after': '7'}},
		run: ownError(() => new StatelessAuthError(`Replica lag, password=${secret}`, 503, 'server', {headers: {'Retry-After': '7'}})),
	},
	{
		description: 'rejects with its own 503 StatelessAuthError',
		scope: 'all',
		outcome: {kind: 'own-5xx', status: 503, headers: {}},
		run: rejecter(() => new StatelessAuthError(`down: password=${secret}`, 503, 'server')),
	},
	{
		description: 'builds a StatelessAuthError with CR and LF in a header value',
		scope: 'all',
		outcome: {kind: 'internal', cause: /header "X-Debug" must be a string/},
		run: ownError(() => new StatelessAuthError('Nope', 401, 'token', {headers: {'X-Debug': `a\r\nSet-Cookie: session=${secret}`}})),
	},
	{
		description: 'builds a StatelessAuthError with U+2028 in a header value',
		scope: 'all',
		outcome: {kind: 'internal', cause: /header "X-Debug" must be a string/},
		run: ownError(() => new StatelessAuthError('Nope', 401, 'token', {headers: {'X-Debug': 'line\u2028separator'}})),
	},
	{
		description: 'builds a StatelessAuthError with an emoji in a header value',
		scope: 'all',
		outcome: {kind: 'internal', cause: /header "X-Debug" must be a string/},
		run: ownError(() => new StatelessAuthError('Nope', 401, 'token', {headers: {'X-Debug': ['fine', 'not \u{1F511} fine']}})),
	},
	{
		description: 'builds a StatelessAuthError with the header name "X Y"',
		scope: 'all',
		outcome: {kind: 'internal', cause: /header name "X Y" is not an HTTP token/},
		run: ownError(() => new StatelessAuthError('Nope', 401, 'token', {headers: {'X Y': 'z'}})),
	},
];

type TargetName = 'tokenLoader' | 'userLoader' | 'apiKeyLoader' | 'HttpBasicAuth authenticate' | 'readPermissions';

type Target = {
	readonly name: TargetName;
	readonly path: string;
	readonly faulty: Array<[string, string]>;
	readonly good: Array<[string, string]>;
	/** The answer to an unknown principal: its message and challenge. */
	readonly unknownMessage: string;
	readonly unknownChallenge: string;
	/** The challenge a callback's own 401 of type `token` gets. */
	readonly tokenChallenge: string;
};

const basicHeader = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
const bearerChallenge = 'Bearer realm="api", error="invalid_token"';
const bearerTarget = (name: TargetName, path: string): Target => ({
	name,
	path,
	faulty: [['Authorization', `Bearer ${faultyCredential}`]],
	good: [['Authorization', 'Bearer good-token']],
	unknownMessage: 'Token error: Invalid token',
	unknownChallenge: bearerChallenge,
	tokenChallenge: bearerChallenge,
});

const targets: readonly Target[] = [
	bearerTarget('tokenLoader', '/bearer'),
	bearerTarget('userLoader', '/bearer'),
	{
		name: 'apiKeyLoader',
		path: '/key',
		faulty: [['Authorization', `Token ${faultyCredential}`]],
		good: [['Authorization', 'Token good-key']],
		unknownMessage: 'Token error: Invalid token',
		unknownChallenge: 'Token realm="api", error="invalid_token"',
		tokenChallenge: 'Token realm="api", error="invalid_token"',
	},
	{
		name: 'HttpBasicAuth authenticate',
		path: '/basic',
		faulty: [['Authorization', basicHeader('faulty', secret)]],
		good: [['Authorization', basicHeader('alice', 'alice-password')]],
		unknownMessage: 'Request error: Authentication required',
		unknownChallenge: 'Basic realm="basic area", charset="UTF-8"',
		tokenChallenge: 'Basic realm="basic area", charset="UTF-8"',
	},
	bearerTarget('readPermissions', '/perm'),
];

function applies(fault: Fault, target: Target): boolean {
	switch (fault.scope) {
		case 'all': {
			return true;
		}

		case 'loaders': {
			return target.name === 'tokenLoader' || target.name === 'userLoader' || target.name === 'apiKeyLoader';
		}

		case 'loaders-and-basic': {
			return target.name !== 'readPermissions';
		}
	}
}

/** An app with every route, whose callback `target` runs `fault` for the faulty credential. */
function start(target: TargetName, fault: Fault, withHandler: boolean) {
	const box: Box = {calls: 0, threw: false, thrown: undefined, signal: undefined};
	const faulty = (options: LoaderOptions): never => {
		box.calls++;
		return fault.run(box, options) as never;
	};

	const auth = new StatelessAuthManager<User, TokenRecord>({realm: 'api', loaderTimeout: timeout});
	auth.tokenLoader((token, _tokenType, _authType, options) => {
		if (token === faultyCredential) {
			return target === 'tokenLoader' ? faulty(options) : {userId: 0};
		}

		return token === 'good-token' ? {userId: 1} : undefined;
	});
	// Any record the token loader accepted (also `{}` or `[]`) has a user.
	auth.userLoader((record, options) => {
		if (record.userId === 0 && target === 'userLoader') {
			return faulty(options);
		}

		return record.userId === 1 ? alice : faultyUser;
	});
	auth.apiKeyLoader((key, options) => {
		if (key === faultyCredential && target === 'apiKeyLoader') {
			return faulty(options);
		}

		return key === 'good-key' ? alice : undefined;
	});
	const basic = new HttpBasicAuth<User>({
		realm: 'basic area',
		authenticate({username, password}, _ctx, options) {
			if (username === 'faulty' && target === 'HttpBasicAuth authenticate') {
				return faulty(options);
			}

			return username === 'alice' && password === 'alice-password' ? alice : undefined;
		},
	});

	const app = new Koa();
	const errors: unknown[] = [];
	app.on('error', (error: unknown) => errors.push(error));
	if (withHandler) {
		app.use(authErrorHandler());
	}

	const handled: string[] = [];
	const router = new Router<object>();
	const handler = (ctx: Koa.Context) => {
		handled.push(ctx.path);
		ctx.body = {route: ctx.path};
	};

	router.get('/bearer', auth.tokenRequired(), handler);
	router.get('/key', auth.tokenRequired({allowApiKey: true}), handler);
	router.get('/basic', auth.protect({authenticators: [basic]}), handler);
	router.get('/perm', auth.tokenRequired({
		permissions: ['read'],
		readPermissions: (user, _record, options) => (user === faultyUser && target === 'readPermissions' ? faulty(options) : user.permissions),
	}), handler);
	app.use(router.routes());
	return {app, box, errors, handled};
}

type Expected = {
	status: number;
	body: string;
	headers: Record<string, string | undefined>;
	/** Events on app.on('error') after the faulty request. */
	events: number;
	handled: number;
};

function expectedFor(target: Target, outcome: Outcome, withHandler: boolean): Expected {
	const json = (message: string) => JSON.stringify({error: message});
	switch (outcome.kind) {
		case 'internal': {
			return {
				status: 500,
				body: withHandler ? json('Server error: Internal server error') : 'Internal Server Error',
				headers: {'www-authenticate': undefined, 'retry-after': undefined},
				events: 1,
				handled: 0,
			};
		}

		case 'unknown': {
			return {
				status: 401,
				body: withHandler ? json(target.unknownMessage) : target.unknownMessage,
				headers: {'www-authenticate': target.unknownChallenge},
				// Koa's own handler emits every error, 4xx included; authErrorHandler only 5xx.
				events: withHandler ? 0 : 1,
				handled: 0,
			};
		}

		case 'accepted': {
			return {status: 200, body: JSON.stringify({route: target.path}), headers: {'www-authenticate': undefined}, events: 0, handled: 1};
		}

		case 'timeout': {
			return {
				status: 503,
				body: withHandler ? json('Server error: Service unavailable') : 'Service Unavailable',
				headers: {'www-authenticate': undefined, 'retry-after': '1'},
				events: 1,
				handled: 0,
			};
		}

		case 'own': {
			return {
				status: outcome.status,
				body: withHandler ? json(outcome.fullMsg) : outcome.fullMsg,
				headers: {'www-authenticate': outcome.challenge ? target.tokenChallenge : undefined, ...outcome.headers},
				events: withHandler ? 0 : 1,
				handled: 0,
			};
		}

		case 'own-5xx': {
			return {
				status: outcome.status,
				body: withHandler ? json('Server error: Service unavailable') : 'Service Unavailable',
				headers: {'www-authenticate': undefined, ...outcome.headers},
				events: 1,
				handled: 0,
			};
		}
	}
}

function rawText(response: RawResponse): string {
	return `${response.headers.map(([name, value]) => `${name}: ${value}`).join('\n')}\n\n${response.body}`;
}

const titles: Record<TargetName, string> = {
	tokenLoader: 'a tokenLoader',
	userLoader: 'a userLoader',
	apiKeyLoader: 'an apiKeyLoader',
	'HttpBasicAuth authenticate': 'an HttpBasicAuth authenticate callback',
	readPermissions: 'a readPermissions callback',
};

const faultyCallback = test.macro({
	async exec(t, target: Target, fault: Fault, withHandler: boolean) {
		const {app, box, errors, handled} = start(target.name, fault, withHandler);
		const url = await listen(t, app);
		const expected = expectedFor(target, fault.outcome, withHandler);

		const response = await rawRequest(url, target.path, target.faulty);
		t.is(box.calls, 1, 'the faulty callback ran once');
		t.is(response.status, expected.status);
		t.is(response.body, expected.body);
		for (const [name, value] of Object.entries(expected.headers)) {
			t.deepEqual(response.headerLines(name), value === undefined ? [] : [value], name);
		}

		t.deepEqual(response.headerLines('set-cookie'), [], 'nothing was injected');
		t.false(rawText(response).includes(secret), 'no secret of the callback, or of the request, in the answer');
		t.false(response.body.includes('HTTP/1.1'), 'one answer only');
		t.is(handled.length, expected.handled, expected.handled === 0 ? 'the route never ran' : 'the route ran');
		t.is(errors.length, expected.events, 'events on app.on(\'error\')');

		const emitted = errors[0];
		if (expected.events === 1) {
			t.true(isStatelessAuthError(emitted), 'the emitted error is a StatelessAuthError');
			const error = emitted as StatelessAuthError;
			t.is(error.status, expected.status);
			t.false(error.message.includes(secret), 'the emitted error\'s own message is generic');
			t.not(emitted, box.thrown, 'the callback\'s own error is never the answer');
			checkCause(t, fault.outcome, error, box);
		}

		if (fault.outcome.kind === 'own' || fault.outcome.kind === 'own-5xx') {
			// The instance the callback threw was never written to (no challenge, status unchanged).
			const thrown = box.thrown as StatelessAuthError;
			t.false('WWW-Authenticate' in thrown.headers);
			t.true(Object.isFrozen(thrown.headers));
			t.is(thrown.status, fault.outcome.status);
		}

		// The server still serves a good request, on the same route.
		const good = await rawRequest(url, target.path, target.good);
		t.is(good.status, 200);
		t.is(good.body, JSON.stringify({route: target.path}));
		t.is(handled.length, expected.handled + 1);
		t.is(errors.length, expected.events, 'the good request emitted nothing');
	},
	title(_provided, target: Target, fault: Fault, withHandler: boolean) {
		const answer = {
			internal: 'is answered with a generic 500',
			unknown: 'is refused like an unknown principal',
			accepted: 'is accepted as a principal',
			timeout: 'is answered 503 when the loaderTimeout passes',
			own: 'is answered with its own status and message',
			'own-5xx': 'is answered with its status and a generic message',
		}[fault.outcome.kind];
		return `${titles[target.name]} that ${fault.description} ${answer} ${withHandler ? 'with authErrorHandler' : 'under Koa\'s default error handler'}`;
	},
});

function checkCause(t: ExecutionContext, outcome: Outcome, error: StatelessAuthError, box: Box): void {
	switch (outcome.kind) {
		case 'internal': {
			t.is(error.type, 'server');
			if (outcome.cause === 'thrown') {
				t.true(box.threw);
				t.true('cause' in error);
				t.is(error.cause, box.thrown, 'the cause is what the callback threw');
			} else {
				t.true(error.cause instanceof TypeError, 'the cause is a TypeError');
				t.regex((error.cause as Error).message, outcome.cause);
			}

			break;
		}

		case 'timeout': {
			t.true(error.cause instanceof LoaderTimeoutError);
			t.is((error.cause as LoaderTimeoutError).timeout, timeout);
			t.true(box.signal?.aborted, 'the callback\'s signal was aborted');
			t.is(box.signal?.reason, error.cause, 'with the timeout as its reason');
			break;
		}

		case 'own-5xx': {
			t.is(error.cause, box.thrown, 'the cause is the callback\'s own error');
			break;
		}

		case 'unknown':
		case 'own': {
			// Koa's own handler emits the refusal: the route's copy.
			t.true(error.status < 500);
			break;
		}

		case 'accepted': {
			t.fail('an accepted request emits nothing');
			break;
		}
	}
}

for (const target of targets) {
	for (const fault of faults) {
		if (applies(fault, target)) {
			for (const withHandler of [true, false]) {
				test(faultyCallback, target, fault, withHandler);
			}
		}
	}
}
