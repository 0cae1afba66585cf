import {randomUUID} from 'node:crypto';
import Koa from 'koa';
import Router from '@koa/router';
import {
	HeaderApiKeyAuthenticator, HttpBasicAuth, StatelessAuthError, StatelessAuthManager, TokenService,
	authErrorHandler, authenticatedAppName, defaultScryptParameters, hashPassword, parseAuthorizationHeader, verifyPassword,
	type ScryptParameters, type TokenPair, type TokenRecord, type UserRecord,
} from 'koa-stateless-auth';
import {errorBody, errorBoundary, errorSummary, parseBody, tokenEndpoint} from './errors.js';
import type {Stores} from './stores.js';

/** Seconds each token lives: the access token an hour, the refresh token 30 days. */
export const tokenLifetimes = {access: 60 * 60, refresh: 30 * 24 * 60 * 60} as const;

/**
Seconds during which a client that lost the answer to a refresh may send the same refresh token
again and get the same new pair; after that, the old refresh token coming back is taken for a stolen
one, and its whole session is revoked.
*/
export const reuseGrace = 10;

/** The user on `ctx.state.currentUser`: what the routes need, never the password hash. */
export type User = {
	readonly id: string;
	readonly username: string;
	readonly permissions: readonly string[];
	readonly isActive: boolean;
};

function toUser({id, username, permissions, isActive}: UserRecord): User {
	return {id, username, permissions, isActive};
}

export type ExampleOptions = {
	/** Where accounts and tokens are kept (see `openStores`). The app never closes them. */
	readonly stores: Pick<Stores, 'tokens' | 'users'>;
	/** Milliseconds since the epoch; tests move it to expire tokens. */
	readonly now?: () => number;
	/** Usernames that get the `admin` permission when they sign up. */
	readonly admins?: readonly string[];
	/** Keys for the machine-to-machine route, by application name. */
	readonly machineKeys?: Readonly<Record<string, readonly string[]>>;
	/**
	The scrypt cost of new password hashes; a password hashed at another cost is hashed again at
	the next successful log-in. Tests use a low cost to run quickly.

	@default the library's, OWASP's (ln=17, r=8, p=1)
	*/
	readonly scrypt?: ScryptParameters;
	/**
	Where the app writes a line for each failed request (a 5xx, or a body it could not read): a
	summary that never holds a request body, a header, a token or a password.

	@default console.error
	*/
	readonly log?: (line: string) => void;
};

type Credentials = {username: string; password: string};

function readCredentials(body: unknown): Credentials {
	const {username, password} = (body ?? {}) as Partial<Record<string, unknown>>;
	if (typeof username !== 'string' || !/^[\w.-]{1,64}$/.test(username)) {
		throw new StatelessAuthError('username must be 1 to 64 letters, digits, underscores, dots or hyphens', 400, 'request');
	}

	if (typeof password !== 'string' || password.length < 8 || password.length > 1024) {
		throw new StatelessAuthError('password must be 8 to 1024 characters', 400, 'request');
	}

	return {username, password};
}

function field(body: unknown, name: string): unknown {
	return typeof body === 'object' && body !== null && !Array.isArray(body) ? (body as Record<string, unknown>)[name] : undefined;
}

/**
The bearer token of the request's `Authorization` header, parsed by the library's rules (one line,
token68, at most 4096 characters), whatever state the token is in. Refusals are the library's
wording, as 400s (the token endpoints answer OAuth's `invalid_request`).
*/
function bearerToken(ctx: Koa.Context): string {
	const lines: string[] = [];
	const raw = ctx.req.rawHeaders;
	for (let index = 0; index + 1 < raw.length; index += 2) {
		if (raw[index]?.toLowerCase() === 'authorization') {
			lines.push(raw[index + 1] ?? '');
		}
	}

	const parsed = parseAuthorizationHeader(lines);
	if (parsed.kind === 'absent') {
		throw new StatelessAuthError('No token provided', 400, 'invalid_request');
	}

	if (parsed.kind === 'malformed') {
		throw new StatelessAuthError('Malformed authorization header', 400, 'invalid_request');
	}

	if (parsed.scheme.toLowerCase() !== 'bearer') {
		throw new StatelessAuthError('Invalid token type', 400, 'invalid_request');
	}

	return parsed.credentials;
}

/** A non-negative integer query parameter, or its default when absent. */
function integerParameter(value: unknown, name: string, fallback: number, max: number): number {
	if (value === undefined) {
		return fallback;
	}

	if (typeof value !== 'string' || !/^\d{1,9}$/.test(value) || Number(value) > max) {
		throw new StatelessAuthError(`${name} must be an integer from 0 to ${max}`, 400, 'request');
	}

	return Number(value);
}

const invalidGrant = (message: string) => new StatelessAuthError(message, 400, 'invalid_grant');

/**
The Flask-Stateless-Auth example, in Koa: create a user, trade a username and password for an
access and a refresh token, refresh, revoke, and read protected routes. The tokens (making them,
storing their digests, expiring, rotating, spotting a reused refresh token, revoking) are the
library's `TokenService`; the app keeps its own concerns: accounts, passwords, routes and answers.
*/
export function createExampleApp({
	stores: {tokens: tokenStore, users}, now = Date.now, admins = [], machineKeys = {}, scrypt = defaultScryptParameters, log = line => {
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
	const auth = new StatelessAuthManager<User, TokenRecord>({realm: 'example'}).useTokens(tokens);
	auth.userLoader(async record => {
		const user = await users.getById(record.userId);
		return user && toUser(user);
	});

	/**
	The user these credentials are the password of, or `undefined`. An unknown username costs the
	same scrypt as a wrong password; a hash made at another cost is replaced now that the password is
	known to be right.
	*/
	async function checkPassword(username: string, password: string): Promise<User | undefined> {
		const record = await users.getByUsername(username);
		const {valid, needsRehash} = await verifyPassword(password, record?.passwordHash, scrypt);
		if (!valid || record === undefined) {
			return undefined;
		}

		if (needsRehash) {
			await users.update(record.id, {passwordHash: await hashPassword(password, scrypt)});
		}

		return toUser(record);
	}

	/** RFC 6749 §5.1: the pair, its type, and the seconds the access token has left. */
	function tokenResponse({access, refresh}: TokenPair) {
		return {
			access_token: access.token,
			token_type: 'Bearer',
			expires_in: Math.max(0, Math.round((access.expiresAt - now()) / 1000)),
			refresh_token: refresh.token,
		};
	}

	// Machines call with a key in a header of their own; several keys per app allow rotation.
	const machines = new HeaderApiKeyAuthenticator({header: 'X-Example-ApiKey', realm: 'example'});
	for (const [appName, keys] of Object.entries(machineKeys)) {
		for (const key of keys) {
			machines.registerKey(key, appName);
		}
	}

	// The same users, with HTTP Basic.
	const basic = new HttpBasicAuth<User>({
		realm: 'example',
		async authenticate({username, password}) {
			const user = await checkPassword(username, password);
			return user?.isActive ? user : undefined;
		},
	});

	const app = new Koa();
	// Koa's own listener would print whole errors, and a body parser's error carries the body.
	app.on('error', (error: unknown, ctx?: Koa.Context) => {
		log(errorSummary(error, ctx));
	});
	// The application's own error JSON for everything: what the error boundary catches (an
	// unreadable body, a 500), and every refusal of the library.
	app.use(errorBoundary);
	app.use(authErrorHandler({format: (error, ctx) => errorBody(ctx, error.status, error.type, error.msg)}));
	auth.initApp(app);

	const router = new Router<object>();

	router.post('/user', parseBody, async ctx => {
		const {username, password} = readCredentials(ctx.request.body);
		const user: UserRecord = {
			id: randomUUID(),
			username,
			passwordHash: await hashPassword(password, scrypt),
			permissions: admins.includes(username) ? ['admin'] : [],
			profile: {},
			isActive: true,
			createdAt: now(),
		};
		if (!await users.create(user)) {
			ctx.status = 409;
			ctx.body = {error: {type: 'request', message: 'username is taken'}};
			return;
		}

		ctx.status = 201;
		ctx.body = {id: user.id, username: user.username};
	});

	// The token endpoints (RFC 6749 §5): a pair is a 200 with `Cache-Control: no-store`; a refusal
	// is a 400 {"error": "invalid_grant" or "invalid_request", "error_description": ...}.

	// Log in (the password grant, RFC 6749 §4.3), with JSON or a form: a new session. An unknown
	// user and a wrong password get the same answer after the same work.
	router.post('/token', tokenEndpoint, parseBody, async ctx => {
		const grantType = field(ctx.request.body, 'grant_type');
		if (grantType !== undefined && grantType !== 'password') {
			throw typeof grantType === 'string'
				? new StatelessAuthError('Only the password grant is accepted here; refresh with PUT /token', 400, 'unsupported_grant_type')
				: new StatelessAuthError('grant_type must be a string', 400, 'invalid_request');
		}

		const {username, password} = readCredentials(ctx.request.body);
		const user = await checkPassword(username, password);
		if (!user?.isActive) {
			throw invalidGrant('Invalid username or password');
		}

		ctx.body = tokenResponse(await tokens.issuePair(user.id));
	});

	// Refresh, with the refresh token in the Authorization header: rotation. The refresh token buys
	// a new pair of the same session, and the old pair stops working. Within `reuseGrace` a retry
	// with the same refresh token gets the same new pair; after it, that old refresh token is a
	// stolen one, refused, and its whole session revoked (the newer pair too). Not a protected
	// route: the guard refuses a retired token before the service could see that it came back.
	router.put('/token', tokenEndpoint, async ctx => {
		const pair = await tokens.refresh(bearerToken(ctx));
		const user = await users.getById(pair.refresh.record.userId);
		if (!user?.isActive) {
			// The account was closed or deactivated since the log-in: the session ends here.
			await tokens.revoke(pair.refresh.token);
			throw invalidGrant('Invalid refresh token');
		}

		ctx.body = tokenResponse(pair);
	});

	// Log out: either token of a pair revokes its session, expired or not, so that an expired
	// access token never makes logging out impossible. As in RFC 7009, a token that is already
	// unknown is not an error; a malformed one asks no store.
	router.delete('/token', tokenEndpoint, async ctx => {
		await tokens.revoke(bearerToken(ctx));
		ctx.status = 204;
	});

	// RFC 7009 token revocation: `token` (and an optional `token_type_hint`, which a session found by
	// either of its tokens does not need) in a form or JSON body; 200 whether or not it was known.
	router.post('/token/revoke', tokenEndpoint, parseBody, async ctx => {
		const token = field(ctx.request.body, 'token');
		if (typeof token !== 'string' || token === '') {
			throw new StatelessAuthError('token is required', 400, 'invalid_request');
		}

		await tokens.revoke(token);
		ctx.body = {};
	});

	// My live sessions (one per log-in), to spot one that is not mine: a hint of the token, never
	// the token. `created_at` is when the session's current pair was issued (its last refresh).
	router.get('/sessions', auth.tokenRequired(), async ctx => {
		const {currentUser, currentToken} = ctx.state;
		const families = new Map<string, TokenRecord[]>();
		for (const record of await tokens.sessions(currentUser.id)) {
			families.set(record.familyId, [...(families.get(record.familyId) ?? []), record]);
		}

		const iso = (time: number) => time > 0 ? new Date(time).toISOString() : null;
		ctx.set('Cache-Control', 'no-store');
		ctx.body = {
			sessions: [...families].map(([id, records]) => ({
				id,
				// The refresh token's hint: the token a client keeps.
				hint: (records.find(record => record.type === 'refresh') ?? records[0])?.hint,
				created_at: iso(Math.min(...records.map(record => record.createdAt))),
				last_used_at: iso(Math.max(0, ...records.map(record => record.lastUsedAt ?? 0))),
				expires_at: iso(Math.max(...records.map(record => record.expiresAt))),
				current: id === currentToken.familyId,
			})),
		};
	});

	// Revoke one of my sessions (a lost phone); someone else's is as unknown as one that never was.
	router.delete('/sessions/:id', auth.tokenRequired(), async ctx => {
		if (!await tokens.revokeSession(ctx.state.currentUser.id, ctx.params['id'] ?? '')) {
			ctx.status = 404;
			ctx.body = {error: {type: 'request', message: 'no such session'}};
			return;
		}

		ctx.status = 204;
	});

	router.get('/secret', auth.tokenRequired('access', 'Bearer'), ctx => {
		ctx.body = {secret: 'Stateless auth is awesome :O'};
	});

	router.get('/whoami', auth.tokenRequired(), ctx => {
		ctx.body = {my_username: ctx.state.currentUser.username};
	});

	// Only users with the admin permission; others get a 403 insufficient_scope. A page at a time,
	// ordered by username: `?offset=0&limit=50`.
	router.get('/admin/users', auth.tokenRequired({permissions: ['admin']}), async ctx => {
		const offset = integerParameter(ctx.query['offset'], 'offset', 0, 1_000_000_000);
		const limit = integerParameter(ctx.query['limit'], 'limit', 50, 100);
		const page = await users.list(offset, limit);
		ctx.body = {users: page.users.map(({id, username, permissions}) => ({id, username, permissions})), total: page.total};
	});

	// Machine to machine: a header API key, and the calling application's name.
	router.post('/m2m/ping', auth.protect({authenticators: [machines]}), ctx => {
		ctx.body = {pong: true, app: authenticatedAppName(ctx)};
	});

	// The same accounts over HTTP Basic, for tools that only speak Basic.
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
	return {app, auth, tokens, users};
}
