import Koa from 'koa';
import Router from '@koa/router';
import {
	HeaderApiKeyAuthenticator, HttpBasicAuth, StatelessAuthError, StatelessAuthManager, TokenMixin, UserMixin,
	authErrorHandler, authenticatedAppName, parseAuthorizationHeader,
} from 'koa-stateless-auth';
import {openStore, type Store, type TokenRow, type UserRow} from './database.js';
import {errorBody, errorBoundary, errorSummary, parseBody, tokenEndpoint} from './errors.js';
import {dummyPasswordHash, generateToken, hashPassword, hashToken, verifyPassword} from './secrets.js';

export const accessTokenLifetime = 60 * 60 * 1000;
export const refreshTokenLifetime = 30 * 24 * 60 * 60 * 1000;

export class User extends UserMixin {
	readonly id: number;
	readonly username: string;
	readonly permissions: readonly string[];
	readonly #active: boolean;

	constructor(row: UserRow) {
		super();
		this.id = row.id;
		this.username = row.username;
		this.permissions = row.permissions === '' ? [] : row.permissions.split(' ');
		this.#active = row.is_active === 1;
	}

	override get isActive(): boolean {
		return this.#active;
	}
}

export class TokenRecord extends TokenMixin {
	readonly id: number;
	readonly userId: number;
	readonly #expiresAt: Record<string, number>;
	readonly #now: () => number;

	constructor(row: TokenRow, now: () => number) {
		super();
		this.id = row.id;
		this.userId = row.user_id;
		this.#expiresAt = {access: row.access_expires_at, refresh: row.refresh_expires_at};
		this.#now = now;
	}

	override tokenExpired(tokenType: string): boolean {
		return this.#now() >= (this.#expiresAt[tokenType] ?? 0);
	}
}

export type ExampleOptions = {
	/** SQLite database file, or `:memory:`. */
	readonly databasePath: string;
	/** Milliseconds since the epoch; tests move it to expire tokens. */
	readonly now?: () => number;
	/** Usernames that get the `admin` permission when they sign up. */
	readonly admins?: readonly string[];
	/** Keys for the machine-to-machine route, by application name. */
	readonly machineKeys?: Readonly<Record<string, readonly string[]>>;
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
token68, at most 4096 characters), whatever state the token is in.
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

	if (parsed.kind === 'malformed' || parsed.scheme.toLowerCase() !== 'bearer') {
		throw new StatelessAuthError('Expected Authorization: Bearer and a token', 400, 'invalid_request');
	}

	return parsed.credentials;
}

/** RFC 6749 §5.1: the pair, its type, and the access token's lifetime in seconds. */
function issueTokens(store: Store, userId: number, now: number, replacing?: number) {
	const accessToken = generateToken();
	const refreshToken = generateToken();
	const hashes = [hashToken(accessToken), hashToken(refreshToken), now + accessTokenLifetime, now + refreshTokenLifetime] as const;
	const row = replacing === undefined
		? store.insertTokens(userId, ...hashes)
		: store.replaceTokens(replacing, userId, ...hashes);
	return row && {
		access_token: accessToken,
		token_type: 'Bearer',
		expires_in: accessTokenLifetime / 1000,
		refresh_token: refreshToken,
	};
}

/**
The Flask-Stateless-Auth example, in Koa: create a user, trade a username and password for an
access and a refresh token, refresh, revoke, and read protected routes.
*/
export function createExampleApp({
	databasePath, now = Date.now, admins = [], machineKeys = {}, log = line => {
		console.error(line);
	},
}: ExampleOptions) {
	const store = openStore(databasePath);
	const auth = new StatelessAuthManager<User, TokenRecord>({realm: 'example'});
	auth.tokenLoader((token, tokenType) => {
		const row = store.tokenByHash(hashToken(token), tokenType);
		return row && new TokenRecord(row, now);
	});
	auth.userLoader(record => {
		const row = store.userById(record.userId);
		return row && new User(row);
	});

	// Machines call with a key in a header of their own; several keys per app allow rotation.
	const machines = new HeaderApiKeyAuthenticator({header: 'X-Example-ApiKey', realm: 'example'});
	for (const [appName, keys] of Object.entries(machineKeys)) {
		for (const key of keys) {
			machines.registerKey(key, appName);
		}
	}

	// The same users, with HTTP Basic; unknown users cost the same scrypt as wrong passwords.
	const basic = new HttpBasicAuth<User>({
		realm: 'example',
		async authenticate({username, password}) {
			const row = store.userByName(username);
			const valid = await verifyPassword(password, row?.password_hash ?? dummyPasswordHash);
			return valid && row ? new User(row) : undefined;
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
		const row = store.createUser(username, await hashPassword(password), admins.includes(username) ? ['admin'] : []);
		if (row === undefined) {
			ctx.status = 409;
			ctx.body = {error: {type: 'request', message: 'username is taken'}};
			return;
		}

		ctx.status = 201;
		ctx.body = {id: row.id, username: row.username};
	});

	// The token endpoints (RFC 6749 §5): a pair is a 200 with `Cache-Control: no-store`; a refusal
	// is a 400 {"error": "invalid_grant" or "invalid_request", "error_description": ...}.

	// Log in (the password grant, RFC 6749 §4.3), with JSON or a form. An unknown user and a wrong
	// password get the same answer after the same work.
	router.post('/token', tokenEndpoint, parseBody, async ctx => {
		const grantType = field(ctx.request.body, 'grant_type');
		if (grantType !== undefined && grantType !== 'password') {
			throw typeof grantType === 'string'
				? new StatelessAuthError('Only the password grant is accepted here; refresh with PUT /token', 400, 'unsupported_grant_type')
				: new StatelessAuthError('grant_type must be a string', 400, 'invalid_request');
		}

		const {username, password} = readCredentials(ctx.request.body);
		const row = store.userByName(username);
		const valid = await verifyPassword(password, row?.password_hash ?? dummyPasswordHash);
		if (row === undefined || !valid || row.is_active !== 1) {
			throw new StatelessAuthError('Invalid username or password', 400, 'invalid_grant');
		}

		ctx.body = issueTokens(store, row.id, now());
	});

	// Refresh: the refresh token buys a new pair in one transaction, and the old pair stops working.
	router.put('/token', tokenEndpoint, auth.tokenRequired({tokenType: 'refresh'}), ctx => {
		const {currentToken, currentUser} = ctx.state;
		const pair = issueTokens(store, currentUser.id, now(), currentToken.id);
		if (pair === undefined) {
			// Two refreshes raced with one token; the other one won.
			throw new StatelessAuthError('Invalid token', 400, 'invalid_grant');
		}

		ctx.body = pair;
	});

	// Log out: either token of a pair revokes the pair, expired or not, so that an expired access
	// token never makes logging out impossible. Revoking is not a protected route's check (the
	// guard refuses expired tokens): the header is parsed by the library's rules, then the pair
	// deleted. As in RFC 7009, a token that is already unknown is not an error.
	router.delete('/token', tokenEndpoint, ctx => {
		store.revokeTokens(hashToken(bearerToken(ctx)));
		ctx.status = 204;
	});

	// RFC 7009 token revocation: `token` (and an optional `token_type_hint`, which a pair found by
	// either of its tokens does not need) in a form or JSON body; 200 whether or not it was known.
	router.post('/token/revoke', tokenEndpoint, parseBody, ctx => {
		const token = field(ctx.request.body, 'token');
		if (typeof token !== 'string' || token === '') {
			throw new StatelessAuthError('token is required', 400, 'invalid_request');
		}

		store.revokeTokens(hashToken(token));
		ctx.body = {};
	});

	router.get('/secret', auth.tokenRequired('access', 'Bearer'), ctx => {
		ctx.body = {secret: 'Stateless auth is awesome :O'};
	});

	router.get('/whoami', auth.tokenRequired(), ctx => {
		ctx.body = {my_username: ctx.state.currentUser.username};
	});

	// Only users with the admin permission; others get a 403 insufficient_scope.
	router.get('/admin/users', auth.tokenRequired({permissions: ['admin']}), ctx => {
		ctx.body = {users: store.allUsers().map(row => ({id: row.id, username: row.username, permissions: new User(row).permissions}))};
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
	return {app, auth, store, close: store.close};
}
