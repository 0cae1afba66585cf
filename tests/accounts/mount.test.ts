// Mounting: every option is checked once, when the routes are mounted; the module uses only the
// library's public API; and the mounted routes describe themselves, in a valid OpenAPI 3.1 document
// with every route, schemas generated from the zod schemas the routes validate with, and security
// from the library's guards.
import {readdir, readFile} from 'node:fs/promises';
import {EventEmitter} from 'node:events';
import test from 'ava';
import {Validator} from '@seriousme/openapi-schema-validator';
import Router from '@koa/router';
import {StatelessAuthManager, TokenService, type TokenRecord} from '../../source/index.js';
import {MemoryTokenStore, MemoryUserStore} from '../../source/stores/memory.js';
import {
	accountRoutes, type AccountEvents, type AccountRoutesOptions, type AccountUser, type OpenApiDocument,
} from '../../source/accounts/index.js';
import {memoryFactory} from './stores.js';
import {harness} from './harness.js';

const base = (): AccountRoutesOptions => ({
	users: new MemoryUserStore(),
	tokens: new TokenService({store: new MemoryTokenStore(), prefix: 'opt', accessTtl: 86_400}),
});

test('a bad option is a TypeError naming it, when the routes are mounted', t => {
	const cases: Array<[Record<string, unknown>, RegExp]> = [
		[{users: {}}, /^The `users` option must be a UserStore/],
		[{tokens: {}}, /^The `tokens` option must be a TokenService/],
		[{auth: {}}, /^The `auth` option must be a StatelessAuthManager/],
		[{apiPrefix: 'api/user'}, /^The `apiPrefix` option/],
		[{apiPrefix: '/api/user/'}, /^The `apiPrefix` option/],
		[{apiPrefix: '/api/:id'}, /^The `apiPrefix` option/],
		[{tokenExpiration: 0}, /^The `tokenExpiration` option must be a positive number of seconds, got 0\.$/],
		[{tokenExpiration: '3600'}, /^The `tokenExpiration` option/],
		[{defaultPermissions: 'read'}, /^The `defaultPermissions` option must be a list/],
		[{defaultPermissions: ['has space']}, /^The `defaultPermissions\[0\]` option must be a permission name/],
		[{userAdminPermission: ''}, /^The `userAdminPermission` option/],
		[{noUserManagement: 'yes'}, /^The `noUserManagement` option must be true or false/],
		[{apiKeys: 1}, /^The `apiKeys` option must be true or false/],
		[{allowOwnProfileEdit: null}, /^The `allowOwnProfileEdit` option/],
		[{pageSize: 0}, /^The `pageSize` option must be an integer from 1 to 1000, got 0\.$/],
		[{pageSize: 2.5}, /^The `pageSize` option/],
		[{minPasswordLength: 7}, /^The `minPasswordLength` option must be an integer from 8 to 4096, got 7\.$/],
		[{maxPasswordLength: 63}, /^The `maxPasswordLength` option must be an integer from 64 to 4096, got 63\.$/],
		[{minPasswordLength: 100, maxPasswordLength: 80}, /^The `maxPasswordLength` option must be an integer from 100 to 4096/],
		[{passwordParameters: {ln: 10}}, /^The `passwordParameters` option must be scrypt parameters/],
		[{rateLimit: {redis: {}}}, /^The `rateLimit.redis` option must be an ioredis client/],
		[{rateLimit: {keyPrefix: 'has space'}}, /^The `rateLimit.keyPrefix` option/],
		[{rateLimit: {usernameAndIp: {points: 0, duration: 60}}}, /^The `rateLimit.usernameAndIp.points` option must be an integer from 1/],
		[{rateLimit: {ip: {points: 5}}}, /^The `rateLimit.ip.duration` option/],
		[{rateLimit: {username: {points: 5, duration: 30 * 86_400}}}, /^The `rateLimit.username.duration` option must be an integer from 1 to 2147483,/],
		[{rateLimit: {trustDuration: -1}}, /^The `rateLimit.trustDuration` option/],
		[{rateLimit: {usernameAndIP: {points: 1, duration: 1}}}, /^Unknown option `rateLimit.usernameAndIP`/],
		[{rateLimit: {ip: {points: 1, duration: 1, block: 5}}}, /^Unknown option `rateLimit.ip.block`/],
		[{events: {}}, /^The `events` option must be an EventEmitter/],
		[{clientAddress: 'ip'}, /^The `clientAddress` option must be a function/],
		[{now: 5}, /^The `now` option must be a function/],
		[{tokenExpiry: 60}, /^Unknown option `tokenExpiry`: expected one of users, tokens, auth, apiPrefix, tokenExpiration/],
		[{api_prefix: '/x'}, /^Unknown option `api_prefix`/],
	];
	for (const [options, message] of cases) {
		t.throws(() => accountRoutes(new Router(), {...base(), ...options}), {instanceOf: TypeError, message}, JSON.stringify(options));
	}

	t.throws(() => accountRoutes({} as unknown as Router, base()), {instanceOf: TypeError, message: 'The first argument of accountRoutes() must be a @koa/router Router.'});
	t.throws(() => accountRoutes(new Router(), undefined as unknown as AccountRoutesOptions), {instanceOf: TypeError, message: /^The `options` option must be an object/});
});

test('nothing is mounted when an option is bad, and the caller\'s objects are not changed', t => {
	const router = new Router();
	const options = {...base(), pageSize: 0};
	const before = JSON.stringify(Object.keys(options));
	t.throws(() => accountRoutes(router, options));
	t.is(router.stack.length, 0);
	t.is(JSON.stringify(Object.keys(options)), before);
	const defaults = ['read'];
	accountRoutes(router, {...base(), defaultPermissions: defaults});
	t.deepEqual(defaults, ['read']);
});

test('the manager and the emitter given are the ones answered; without them, new ones', t => {
	const auth = new StatelessAuthManager<AccountUser, TokenRecord>();
	const events = new EventEmitter<AccountEvents>();
	const given = accountRoutes(new Router(), {...base(), auth, events});
	t.is(given.auth, auth);
	t.is(given.events, events);
	const made = accountRoutes(new Router(), base());
	t.true(made.auth instanceof StatelessAuthManager);
	t.true(made.events instanceof EventEmitter);
});

test('a throwing audit listener does not fail the request: the error goes to app.on(\'error\')', async t => {
	const h = await harness(t, memoryFactory);
	h.mounted.events.on('login', () => {
		throw new Error('audit log down');
	});
	await h.user('alice', 'alice password');
	t.is((await h.call('POST', '/api/user/login', {body: {username: 'alice', password: 'alice password'}})).status, 200);
	t.is(String(h.errors[0]), 'Error: audit log down');
});

test('the clientAddress option decides the address of the limits and events', async t => {
	const h = await harness(t, memoryFactory, {clientAddress: ctx => ctx.get('x-client') || 'none', rateLimit: {usernameAndIp: {points: 1, duration: 60}}});
	await h.user('alice', 'alice password');
	await h.call('POST', '/api/user/login', {body: {username: 'alice', password: 'wrong password'}, headers: {'x-client': 'one'}});
	t.is((await h.call('POST', '/api/user/login', {body: {username: 'alice', password: 'alice password'}, headers: {'x-client': 'one'}})).status, 429);
	t.is((await h.call('POST', '/api/user/login', {body: {username: 'alice', password: 'alice password'}, headers: {'x-client': 'two'}})).status, 200);
	t.deepEqual(h.of('loginFailed').map(event => event.ip), ['one']);
	t.deepEqual(h.of('login').map(event => event.ip), ['two']);
});

test('a body parser that ran before is used as it is', async t => {
	const h = await harness(t, memoryFactory, {parseBodies: true});
	await h.user('alice', 'alice password');
	t.is((await h.call('POST', '/api/user/login', {body: {username: 'alice', password: 'alice password'}})).status, 200);
	t.is((await h.call('POST', '/api/user/login', {form: {username: 'alice', password: 'alice password'}})).status, 200);
	t.like(await h.call('POST', '/api/user/login', {body: {username: 'alice'}}), {status: 400, body: {field: 'password'}});
});

test('the accounts module imports the library only through its public API', async t => {
	const directory = new URL('../../source/accounts/', import.meta.url);
	const files = (await readdir(directory)).filter(file => file.endsWith('.ts'));
	t.true(files.length >= 6);
	for (const file of files) {
		const source = await readFile(new URL(file, directory), 'utf8');
		for (const [, specifier] of source.matchAll(/^(?:import|export)\b[^;]*?from\s+'([^']+)'/gms)) {
			const allowed = specifier === '../index.js' || /^\.\/[\w-]+\.js$/.test(specifier!) || /^\.\.\/stores\/(?:memory|sqlite|postgres|redis)\.js$/.test(specifier!)
				|| ['zod', 'rate-limiter-flexible', 'koa', '@koa/router', 'ioredis'].includes(specifier!) || specifier!.startsWith('node:');
			t.true(allowed, `${file} imports ${specifier}`);
		}
	}
});

function mount(options: Partial<AccountRoutesOptions> = {}) {
	const router = new Router();
	const mounted = accountRoutes(router, {
		users: new MemoryUserStore(),
		tokens: new TokenService({store: new MemoryTokenStore(), prefix: 'doc', accessTtl: 86_400}),
		auth: new StatelessAuthManager<AccountUser, TokenRecord>({realm: 'api'}),
		...options,
	});
	return {router, mounted};
}

type Operation = {
	operationId: string;
	security: Array<Record<string, string[]>>;
	requestBody?: {content: Record<string, {schema: {$ref: string}}>};
	parameters?: Array<{name: string; in: string; required: boolean; schema: Record<string, unknown>}>;
	responses: Record<string, {content?: Record<string, {schema: {$ref: string}}>; headers?: Record<string, unknown>}>;
};
const operation = (document: OpenApiDocument, path: string, method: string) => document.paths[path]?.[method] as Operation;
const schema = (document: OpenApiDocument, name: string) => document.components.schemas[name] as {properties: Record<string, Record<string, unknown>>; required?: string[]; additionalProperties?: boolean};

test('the document of every option on is valid OpenAPI 3.1 and lists every mounted route', async t => {
	const {mounted} = mount({apiKeys: true, allowOwnProfileEdit: true});
	const document = mounted.openapi({title: 'My accounts', version: '2.0.0'});
	const result = await new Validator().validate(document);
	t.true(result.valid, JSON.stringify(result.errors));
	t.deepEqual(document.info, {title: 'My accounts', version: '2.0.0'});
	const listed = Object.entries(document.paths).flatMap(([path, methods]) => Object.keys(methods).map(method => `${method.toUpperCase()} ${path}`)).sort();
	t.deepEqual(listed, [
		'DELETE /api/user/api-keys/{id}', 'DELETE /api/user/sessions/{id}', 'DELETE /api/user/users/{id}',
		'GET /api/user/api-keys', 'GET /api/user/me', 'GET /api/user/sessions', 'GET /api/user/users', 'GET /api/user/users/{id}',
		'POST /api/user/api-keys', 'POST /api/user/login', 'POST /api/user/logout', 'POST /api/user/logout-all', 'POST /api/user/refresh', 'POST /api/user/users',
		'PUT /api/user/me/profile', 'PUT /api/user/password', 'PUT /api/user/users/{id}/password', 'PUT /api/user/users/{id}/permissions', 'PUT /api/user/users/{id}/profile',
	]);
	t.is(mounted.routes.length, listed.length, 'one operation per mounted route');
	const ids = mounted.routes.map(route => route.operationId);
	t.is(new Set(ids).size, ids.length);
});

test('security comes from the library\'s guards: none on login, bearer, bearer or Token key on /me, the admin scope', t => {
	const {mounted} = mount({apiKeys: true, userAdminPermission: 'staff'});
	const document = mounted.openapi();
	t.deepEqual(operation(document, '/api/user/login', 'post').security, []);
	t.deepEqual(operation(document, '/api/user/refresh', 'post').security, []);
	t.deepEqual(operation(document, '/api/user/logout', 'post').security, [{bearerAuth: []}]);
	t.deepEqual(operation(document, '/api/user/me', 'get').security, [{bearerAuth: []}, {tokenAuth: []}]);
	t.deepEqual(operation(document, '/api/user/users', 'get').security, [{bearerAuth: ['staff']}]);
	t.deepEqual(document.components.securitySchemes, {
		bearerAuth: {type: 'http', scheme: 'bearer'},
		tokenAuth: {type: 'apiKey', in: 'header', name: 'Authorization', description: 'Authorization: Token <key>'},
	});
	t.deepEqual(operation(mount().mounted.openapi(), '/api/user/me', 'get').security, [{bearerAuth: []}], 'no Token key without apiKeys');
});

test('request and response schemas are generated from the zod schemas, with the password policy', t => {
	const {mounted} = mount({minPasswordLength: 10, maxPasswordLength: 200});
	const document = mounted.openapi();
	const login = operation(document, '/api/user/login', 'post');
	t.deepEqual(Object.keys(login.requestBody!.content), ['application/json', 'application/x-www-form-urlencoded']);
	t.is(login.requestBody!.content['application/json']!.schema.$ref, '#/components/schemas/LoginRequest');
	t.is(login.responses['200']!.content!['application/json']!.schema.$ref, '#/components/schemas/TokenResponse');
	t.truthy(login.responses['429']!.headers!['Retry-After']);
	t.deepEqual(schema(document, 'LoginRequest').required, ['username', 'password']);
	t.false(schema(document, 'LoginRequest').additionalProperties);
	t.deepEqual(schema(document, 'TokenResponse').properties['token_type'], {type: 'string', const: 'Bearer'});
	const create = schema(document, 'CreateUserRequest');
	t.like(create.properties['password'], {type: 'string', minLength: 10, maxLength: 200});
	t.like(create.properties['username'], {type: 'string', minLength: 1, maxLength: 64});
	t.deepEqual(create.required, ['username', 'password'], 'the request side: defaults are not required');
	t.false('passwordHash' in schema(document, 'User').properties, 'no hash in the user the routes answer');
	t.like(schema(document, 'ChangePasswordRequest').properties['newPassword'], {minLength: 10, maxLength: 200});
	const list = operation(document, '/api/user/users', 'get');
	t.like(list.parameters?.find(parameter => parameter.name === 'page'), {in: 'query', required: false, schema: {type: 'integer', minimum: 1, default: 1}});
	t.like(operation(document, '/api/user/users/{id}', 'delete').parameters, [{name: 'id', in: 'path', required: true}]);
	for (const ref of JSON.stringify(document).match(/#\/components\/schemas\/\w+/g) ?? []) {
		t.truthy(document.components.schemas[ref.split('/').at(-1)!], ref);
	}
});

test('the validator does catch a broken document', async t => {
	const document = structuredClone(mount().mounted.openapi()) as {paths: Record<string, Record<string, {responses: unknown}>>};
	document.paths['/api/user/login']!['post']!.responses = 'none';
	const result = await new Validator().validate(document);
	t.false(result.valid);
});

test('what the document says is what the routes do: a password one short of the minimum is refused', async t => {
	const h = await harness(t, memoryFactory, {minPasswordLength: 12});
	const min = schema(h.mounted.openapi(), 'CreateUserRequest').properties['password']!['minLength'] as number;
	const admin = await h.admin();
	const create = async (password: string) => h.call('POST', '/api/user/users', {token: admin.access_token, body: {username: `u${password.length}`, password}});
	t.is((await create('x'.repeat(min - 1))).status, 400);
	t.is((await create('x'.repeat(min))).status, 201);
});
