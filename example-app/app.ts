import {randomUUID} from 'node:crypto';
import Koa from 'koa';
import Router from '@koa/router';
import {
	HeaderApiKeyAuthenticator, HttpBasicAuth, StatelessAuthError, StatelessAuthManager, TokenService,
	authErrorHandler, authenticatedAppName, defaultScryptParameters, hashPassword, verifyPassword,
	type ScryptParameters, type TokenRecord, type UserRecord, type UserStore,
} from 'koa-stateless-auth';
import {accountRoutes, accountSchemas, type AccountUser} from 'koa-stateless-auth/accounts';
import {accountsEndpoint, errorBody, errorBoundary, errorSummary, parseBody, tokenEndpoint} from './errors.js';
import type {Stores} from './stores.js';

/** Seconds each token lives: the access token an hour, the refresh token 30 days. */
export const tokenLifetimes = {access: 60 * 60, refresh: 30 * 24 * 60 * 60} as const;

/**
Seconds during which a client that lost the answer to a refresh may send the same refresh token
again and get the same new pair; after that, the old refresh token coming back is taken for a stolen
one, and its whole session is revoked.
*/
export const reuseGrace = 10;

/** Where the account routes are mounted: `POST /api/user/login`, … */
export const apiPrefix = '/api/user';

/** The permission of the user management routes (`/api/user/users…`). */
export const adminPermission = 'admin';

/** Passwords: 8 to 128 characters (code points after NFKC), as the account routes count them. */
export const passwordPolicy = {minLength: 8, maxLength: 128} as const;

/** The user on `ctx.state.currentUser`: the account's record without its password hash. */
export type User = AccountUser;

const schemas = accountSchemas(passwordPolicy);
// Self sign-up takes what an admin's `POST /api/user/users` takes, less the permissions: the same
// username and password rules, so that anyone who can sign up can log in.
const signUpRequest = schemas.createUserRequest.pick({username: true, password: true});

export type ExampleOptions = {
	/**
	Where accounts and tokens are kept (see `openStores`), and the Redis client when they are in
	Redis: the brute-force counters of log-in and password change are then kept there too, shared by
	every instance. The app never closes them.
	*/
	readonly stores: Pick<Stores, 'tokens' | 'users' | 'redis'>;
	/** Milliseconds since the epoch; tests move it to expire tokens. */
	readonly now?: () => number;
	/** Keys for the machine-to-machine route, by application name. */
	readonly machineKeys?: Readonly<Record<string, readonly string[]>>;
	/**
	The scrypt cost of new password hashes; a password hashed at another cost is hashed again at
	the next successful log-in. Tests use a low cost to run quickly.

	@default the library's, OWASP's (ln=17, r=8, p=1)
	*/
	readonly scrypt?: ScryptParameters;
	/**
	The prefix of the brute-force counters' keys: instances with the same prefix (on one Redis) count
	together.

	@default 'example:login'
	*/
	readonly rateLimitPrefix?: string;
	/**
	Where the app writes a line for each failed request (a 5xx, or a body it could not read): a
	summary that never holds a request body, a header, a token or a password.

	@default console.error
	*/
	readonly log?: (line: string) => void;
};

function publicUser({passwordHash: _hash, ...user}: UserRecord): User {
	return user;
}

/** The account routes' 400: the first wrong field, named. */
function invalidRequest(ctx: Koa.Context, issues: ReadonlyArray<{readonly code: string; readonly path: readonly PropertyKey[]; readonly message: string; readonly keys?: readonly string[]}>): void {
	const [issue] = issues;
	const field = issue?.code === 'unrecognized_keys' ? (issue.keys ?? []).join(', ') : (issue?.path ?? []).map(String).join('.');
	ctx.status = 400;
	ctx.body = field === ''
		? {error: 'invalid_request', error_description: 'The request body must be a JSON object'}
		: {error: 'invalid_request', error_description: `${field}: ${issue?.code === 'unrecognized_keys' ? 'Unknown field' : issue?.message ?? 'Invalid'}`, field};
}

export type AdminAccount = {
	readonly username: string;
	readonly password: string;
	/** @default the library's, OWASP's */
	readonly scrypt?: ScryptParameters;
	readonly now?: () => number;
};

/**
Makes the first admin, the user with the `admin` permission who can then manage every other user
through `/api/user/users`: created when no user has the name, left as it is when one has (its
password is not reset, and a user of that name without the permission does not get it: answered
`'exists-without-permission'`). Nobody can sign up into the permission.
*/
export async function ensureAdmin(users: UserStore, {username, password, scrypt = defaultScryptParameters, now = Date.now}: AdminAccount): Promise<'created' | 'exists' | 'exists-without-permission'> {
	const parsed = signUpRequest.safeParse({username, password});
	if (!parsed.success) {
		// Never the password itself: only which of the two is wrong, and why.
		const [issue] = parsed.error.issues;
		throw new TypeError(`The admin account's ${issue?.path.map(String).join('.') ?? 'credentials'} is not valid: ${issue?.message ?? 'invalid'}.`);
	}

	const existing = await users.getByUsername(parsed.data.username);
	if (existing === undefined) {
		const created = await users.create({
			id: randomUUID(),
			username: parsed.data.username,
			passwordHash: await hashPassword(parsed.data.password, scrypt),
			permissions: [adminPermission],
			profile: {},
			isActive: true,
			createdAt: now(),
		});
		if (created) {
			return 'created';
		}
	}

	// Made meanwhile by another instance, or there from before.
	const current = existing ?? await users.getByUsername(parsed.data.username);
	return current?.permissions.includes(adminPermission) === true ? 'exists' : 'exists-without-permission';
}

/**
The Flask-Stateless-Auth example, in Koa, on the library's account routes: sign up, then everything
else of an account (log in, refresh, log out, sessions, password, API keys, user management) is
`accountRoutes()` under `/api/user`, on the app's own `TokenService` and stores; the app keeps its
own routes beside them, guarded by the same manager: `/secret`, `/whoami`, `/public`, a
machine-to-machine route, HTTP Basic, and RFC 7009 revocation.
*/
export function createExampleApp({
	stores: {tokens: tokenStore, users, redis}, now = Date.now, machineKeys = {}, scrypt = defaultScryptParameters, rateLimitPrefix = 'example:login', log = line => {
		console.error(line);
	},
}: ExampleOptions) {
	const tokens = new TokenService({
		store: tokenStore,
		prefix: 'example',
		accessTtl: tokenLifetimes.access,
		refreshTtl: tokenLifetimes.refresh,
		reuseGrace,
		now,
	});

	const app = new Koa();
	// Koa's own listener would print whole errors, and a body parser's error carries the body.
	app.on('error', (error: unknown, ctx?: Koa.Context) => {
		log(errorSummary(error, ctx));
	});
	// The application's own error JSON for everything: what the error boundary catches (an
	// unreadable body, a 500), and every refusal of the library.
	app.use(errorBoundary);
	app.use(authErrorHandler({format: (error, ctx) => errorBody(ctx, {status: error.status, type: error.type, message: error.msg, reason: error.reason})}));

	const router = new Router<object>();
	const login = `${apiPrefix}/login`;
	const refresh = `${apiPrefix}/refresh`;
	// Before the account routes: their errors in one shape (login and refresh: RFC 6749's), and
	// their bodies read by the app's parser (UTF-8, at most 16 KB, compressed or not; an unreadable
	// one is logged like anywhere else in the app). A body of another type is theirs to refuse.
	router.use(apiPrefix, accountsEndpoint);
	router.use([login, refresh], tokenEndpoint, parseBody(['json', 'form']));
	router.use(apiPrefix, parseBody(['json']));

	// Log in, refresh, log out, sessions, password, API keys, user management: the library's.
	const accounts = accountRoutes(router, {
		users,
		tokens,
		auth: new StatelessAuthManager<User, TokenRecord>({realm: 'example'}),
		apiPrefix,
		tokenExpiration: tokenLifetimes.access,
		userAdminPermission: adminPermission,
		apiKeys: true,
		allowOwnProfileEdit: true,
		minPasswordLength: passwordPolicy.minLength,
		maxPasswordLength: passwordPolicy.maxLength,
		passwordParameters: scrypt,
		rateLimit: {keyPrefix: rateLimitPrefix, ...(redis === undefined ? {} : {redis})},
		now,
	});
	const {auth} = accounts;
	auth.initApp(app);
	const openapi = accounts.openapi({
		title: 'koa-stateless-auth example: account API',
		version: '1.0.0',
		description: `The account routes under ${apiPrefix}. The example's own routes (POST /user, /secret, /whoami, ...) are not in this document.`,
	});

	// Sign up: the account routes have none (an admin creates users there). The same rules as an
	// admin's POST /api/user/users, and its answers: 201, 400 naming the field, 409 username_taken.
	router.post('/user', accountsEndpoint, parseBody(['json']), async ctx => {
		const parsed = signUpRequest.safeParse(ctx.request.body);
		if (!parsed.success) {
			invalidRequest(ctx, parsed.error.issues);
			return;
		}

		const user: UserRecord = {
			id: randomUUID(),
			username: parsed.data.username,
			passwordHash: await hashPassword(parsed.data.password, scrypt),
			permissions: [],
			profile: {},
			isActive: true,
			createdAt: now(),
		};
		if (!await users.create(user)) {
			ctx.status = 409;
			ctx.body = {error: 'username_taken', error_description: 'That username is taken', field: 'username'};
			return;
		}

		ctx.status = 201;
		ctx.body = {id: user.id, username: user.username};
	});

	// RFC 7009 token revocation, which the account routes do not have: `token` (either of a pair; an
	// optional `token_type_hint` is not needed) in a form or JSON body logs its session out, with no
	// access token needed, so that a client whose access token has expired can still log out. 200
	// whether or not the token was known; a malformed one asks no store.
	router.post('/token/revoke', tokenEndpoint, parseBody(['form', 'json']), async ctx => {
		const {token} = (typeof ctx.request.body === 'object' && ctx.request.body !== null ? ctx.request.body : {}) as Record<string, unknown>;
		if (typeof token !== 'string' || token === '') {
			throw new StatelessAuthError('token is required', 400, 'invalid_request');
		}

		await tokens.revoke(token);
		ctx.body = {};
	});

	// The OpenAPI 3.1 document of the account routes.
	router.get('/openapi.json', ctx => {
		ctx.body = openapi;
	});

	// Machines call with a key in a header of their own; several keys per app allow rotation.
	const machines = new HeaderApiKeyAuthenticator({header: 'X-Example-ApiKey', realm: 'example'});
	for (const [appName, keys] of Object.entries(machineKeys)) {
		for (const key of keys) {
			machines.registerKey(key, appName);
		}
	}

	// The same users, with HTTP Basic, for tools that only speak Basic. An unknown user costs the
	// same scrypt as a wrong password; a hash made at another cost is replaced once the password is
	// known to be right.
	const basic = new HttpBasicAuth<User>({
		realm: 'example',
		async authenticate({username, password}) {
			const record = await users.getByUsername(username.normalize('NFKC').trim());
			const {valid, needsRehash} = await verifyPassword(password, record?.passwordHash, scrypt);
			if (!valid || record?.isActive !== true) {
				return undefined;
			}

			if (needsRehash) {
				await users.update(record.id, {passwordHash: await hashPassword(password, scrypt)});
			}

			return publicUser(record);
		},
	});

	// The app's own routes, on the accounts' manager: the same tokens, users and expiry.
	router.get('/secret', auth.tokenRequired('access', 'Bearer'), ctx => {
		ctx.body = {secret: 'Stateless auth is awesome :O'};
	});

	// A bearer token, or an API key made at POST /api/user/api-keys (`Authorization: Token KEY`).
	router.get('/whoami', auth.tokenRequired({allowApiKey: true}), ctx => {
		ctx.body = {my_username: ctx.state.currentUser.username};
	});

	// Machine to machine: a header API key, and the calling application's name.
	router.post('/m2m/ping', auth.protect({authenticators: [machines]}), ctx => {
		ctx.body = {pong: true, app: authenticatedAppName(ctx)};
	});

	router.get('/basic/whoami', auth.protect({authenticators: [basic]}), ctx => {
		ctx.body = {my_username: ctx.state.currentUser.username};
	});

	// Unprotected: nothing put a user on this request's state.
	router.get('/public', ctx => {
		const {currentUser} = ctx.state as {currentUser?: User};
		ctx.body = {message: 'anyone may read this', current_user: currentUser?.username ?? null};
	});

	app.use(router.routes());
	app.use(router.allowedMethods());
	return {app, auth, accounts, router, tokens, users};
}
