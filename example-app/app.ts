import Koa from 'koa';
import Router from '@koa/router';
import {bodyParser} from '@koa/bodyparser';
import {
	HeaderApiKeyAuthenticator, HttpBasicAuth, StatelessAuthError, StatelessAuthManager, TokenMixin, UserMixin,
	authErrorHandler, authenticatedAppName,
} from 'koa-stateless-auth';
import {openStore, type Store, type TokenRow, type UserRow} from './database.js';
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
};

type Credentials = {username: string; password: string};

function readCredentials(body: unknown): Credentials {
	const {username, password} = (body ?? {}) as Partial<Record<string, unknown>>;
	if (typeof username !== 'string' || !/^[\w.-]{1,64}$/.test(username)) {
		throw new StatelessAuthError('username must be 1 to 64 letters, digits, "_", "." or "-"', 400, 'request');
	}

	if (typeof password !== 'string' || password.length < 8 || password.length > 1024) {
		throw new StatelessAuthError('password must be 8 to 1024 characters', 400, 'request');
	}

	return {username, password};
}

function issueTokens(store: Store, userId: number, now: number, replacing?: number) {
	const accessToken = generateToken();
	const refreshToken = generateToken();
	const hashes = [hashToken(accessToken), hashToken(refreshToken), now + accessTokenLifetime, now + refreshTokenLifetime] as const;
	const row = replacing === undefined
		? store.insertTokens(userId, ...hashes)
		: store.replaceTokens(replacing, userId, ...hashes);
	return row && {
		access_token: accessToken,
		refresh_token: refreshToken,
		token_type: 'Bearer',
		expires_in: accessTokenLifetime / 1000,
	};
}

/**
The Flask-Stateless-Auth example, in Koa: create a user, trade a username and password for an
access and a refresh token, refresh, revoke, and read protected routes.
*/
export function createExampleApp({databasePath, now = Date.now, admins = [], machineKeys = {}}: ExampleOptions) {
	const store = openStore(databasePath);
	const auth = new StatelessAuthManager<TokenRecord, User>({realm: 'example'});
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
	// The application's own error JSON for every refusal; other errors are Koa's.
	app.use(authErrorHandler({format: error => ({error: {type: error.type, message: error.msg}})}));
	app.use(bodyParser({enableTypes: ['json', 'form']}));
	auth.initApp(app);

	const router = new Router<object>();

	router.post('/user', async ctx => {
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

	// Log in. An unknown user and a wrong password get the same answer after the same work.
	router.post('/token', async ctx => {
		const {username, password} = readCredentials(ctx.request.body);
		const row = store.userByName(username);
		const valid = await verifyPassword(password, row?.password_hash ?? dummyPasswordHash);
		if (row === undefined || !valid || row.is_active !== 1) {
			// RFC 6749 §5.2: a bad resource-owner password is a 400 invalid_grant, not a 401 challenge.
			throw new StatelessAuthError('Invalid username or password', 400, 'credentials');
		}

		ctx.status = 201;
		ctx.set('Cache-Control', 'no-store');
		ctx.body = issueTokens(store, row.id, now());
	});

	// Refresh: the refresh token buys a new pair, and the old pair stops working.
	router.put('/token', auth.tokenRequired({tokenType: 'refresh'}), ctx => {
		const {currentToken, currentUser} = ctx.state;
		const pair = issueTokens(store, currentUser.id, now(), currentToken.id);
		if (pair === undefined) {
			// Two refreshes raced with one token; the other one won.
			throw new StatelessAuthError('Invalid token', 401, 'token');
		}

		ctx.set('Cache-Control', 'no-store');
		ctx.body = pair;
	});

	// Revoke the pair the access token belongs to.
	router.delete('/token', auth.tokenRequired(), ctx => {
		store.deleteTokens(ctx.state.currentToken.id);
		ctx.status = 204;
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
