import {randomUUID} from 'node:crypto';
import type {EventEmitter} from 'node:events';
import type {Context, Middleware, ParameterizedContext} from 'koa';
import type Router from '@koa/router';
import type {z} from 'zod';
import {
	StatelessAuthError, StatelessAuthManager, hashPassword, isStatelessAuthError, verifyPassword,
	type TokenPair, type TokenRecord, type UserRecord,
} from '../index.js';
import type {AccountEvents} from './events.js';
import {AccountsAnswer, answer, notFound, readBody, validate} from './http.js';
import {buildDocument, type OpenApiDocument, type OpenApiInfo} from './openapi.js';
import {normaliseOptions, type AccountRoutesOptions, type AccountUser} from './options.js';
import {accountSchemas, type AccountSchemas} from './schemas.js';
import {BruteForceGuard, type Refusal} from './throttle.js';

type HttpMethod = 'get' | 'post' | 'put' | 'delete';

/** What a response of a route is, for the OpenAPI document. */
export type RouteResponse = {
	readonly description: string;
	/** The name of its body's schema in `accountSchemas` (`error` for error answers). */
	readonly schema?: keyof AccountSchemas;
	/** Response headers it carries. */
	readonly headers?: readonly ('Retry-After' | 'Location')[];
};

/** One mounted route, as the OpenAPI document describes it. */
export type AccountRoute = {
	readonly method: HttpMethod;
	/** The path as mounted, Koa style: `/api/user/users/:id`. */
	readonly path: string;
	readonly operationId: string;
	readonly summary: string;
	/** The library middleware that guards it; `undefined` for a public route. */
	readonly guard: Middleware | undefined;
	/** The request body's schema (name in `accountSchemas`), and whether a form is accepted too. */
	readonly body?: {readonly schema: keyof AccountSchemas; readonly form?: boolean};
	/** The query's schema. */
	readonly query?: keyof AccountSchemas;
	readonly responses: Readonly<Record<number, RouteResponse>>;
};

/** What {@link accountRoutes} answers. */
export type AccountRoutes = {
	/** The manager, with `useTokens(tokens)` and the user loader registered: guard the application's own routes with it. */
	readonly auth: StatelessAuthManager<AccountUser, TokenRecord>;
	/** The audit events. */
	readonly events: EventEmitter<AccountEvents>;
	/** The routes that were mounted, in order. */
	readonly routes: readonly AccountRoute[];
	/**
	The OpenAPI 3.1 document of the mounted routes: paths, request and response schemas generated
	from the zod schemas the routes validate with, and security from the library's own
	`openApiSecurity()` of each route's middleware.
	*/
	openapi(info?: OpenApiInfo): OpenApiDocument;
};

type AccountState = {currentUser?: AccountUser; currentToken?: TokenRecord | undefined};
type RouteContext = ParameterizedContext<AccountState, {params: Record<string, string>}>;
type Handler = (ctx: RouteContext) => Promise<void> | void;

/** The structural part of a @koa/router Router that mounting uses. */
type Mountable = Record<HttpMethod, (path: string, ...middleware: Middleware[]) => unknown>;

const iso = (time: number): string => new Date(time).toISOString();

function publicUser({passwordHash: _hash, ...user}: UserRecord): AccountUser {
	return user;
}

function userView(user: AccountUser) {
	return {
		id: user.id,
		username: user.username,
		permissions: [...user.permissions],
		profile: user.profile,
		isActive: user.isActive,
		createdAt: iso(user.createdAt),
	};
}

/** The user and token a guard put on the request; the manager must keep the default `stateKey`. */
function principal(ctx: RouteContext): {user: AccountUser; token: TokenRecord | undefined} {
	const {currentUser: user, currentToken: token} = ctx.state;
	if (user === undefined) {
		throw new Error('koa-stateless-auth/accounts: no user on ctx.state.currentUser; the manager given as `auth` must keep the default stateKey.');
	}

	return {user, token};
}

function sessionToken(ctx: RouteContext): {user: AccountUser; token: TokenRecord} {
	const {user, token} = principal(ctx);
	if (token === undefined) {
		throw new Error('koa-stateless-auth/accounts: a session route ran without a token record.');
	}

	return {user, token};
}

const invalidGrant = (message: string) => new AccountsAnswer(400, 'invalid_grant', message);
const tooManyRequests = ({retryAfter}: Refusal) => new AccountsAnswer(429, 'too_many_requests', 'Too many failed attempts; try again later', {
	headers: {'Retry-After': String(retryAfter)},
});

/** A user's live tokens, one entry per session (family): logins, or API keys. */
async function families(tokens: AccountRoutesOptions['tokens'], userId: string) {
	const grouped = new Map<string, TokenRecord[]>();
	for (const record of await tokens.sessions(userId)) {
		grouped.set(record.familyId, [...(grouped.get(record.familyId) ?? []), record]);
	}

	return [...grouped].map(([id, records]) => ({id, records, apiKey: records.some(record => record.type === 'api_key')}));
}

/**
Mount the whole account API on a @koa/router router in one call: login, refresh, logout (this
session, everywhere), the current user, my sessions, my password, and, for `userAdminPermission`,
user management; API keys with `apiKeys`. frappyflaskauth's `register_endpoints`, with its options
and defaults, and brute-force protection, audit events and an OpenAPI document of its own.

@example
```
const tokens = new TokenService({store: new SqliteTokenStore(db), prefix: 'myapp', accessTtl: 86_400});
const {auth, events, openapi} = accountRoutes(router, {users: new SqliteUserStore(db), tokens});
router.get('/reports', auth.tokenRequired({permissions: ['reports']}), handler);
app.use(authErrorHandler()).use(router.routes()).use(router.allowedMethods());
```
*/
export function accountRoutes<StateT, ContextT>(router: Router<StateT, ContextT>, options: AccountRoutesOptions): AccountRoutes {
	const mountable = router as unknown as Partial<Mountable> | null;
	if (typeof mountable !== 'object' || mountable === null || (['get', 'post', 'put', 'delete'] as const).some(method => typeof mountable[method] !== 'function')) {
		throw new TypeError('The first argument of accountRoutes() must be a @koa/router Router.');
	}

	const settings = normaliseOptions(options);
	const {users, tokens, auth, events, now, passwordParameters: scrypt, apiPrefix: prefix} = settings;
	const lifetime = settings.tokenExpiration * 1000;
	const schemas = accountSchemas({minLength: settings.minPasswordLength, maxLength: settings.maxPasswordLength});
	const throttle = new BruteForceGuard(settings.rateLimit);

	auth.useTokens(tokens);
	auth.userLoader(async record => {
		// tokenExpiration, whatever the service's accessTtl: an access token lives that long from its issue.
		if (record.type === 'access' && now() >= record.createdAt + lifetime) {
			throw new StatelessAuthError('access token expired', 401, 'token', {reason: 'expired_token'});
		}

		const user = await users.getById(record.userId);
		return user === undefined ? undefined : publicUser(user);
	});

	const emit = <Name extends keyof AccountEvents>(ctx: Context, name: Name, ...payload: AccountEvents[Name]): void => {
		try {
			(events as unknown as EventEmitter).emit(name, ...payload);
		} catch (error) {
			// A failing audit listener must not turn a done login into an error after its tokens were issued.
			ctx.app.emit('error', error, ctx);
		}
	};

	const address = (ctx: Context): string => settings.clientAddress(ctx);

	/** RFC 6749 §5.1, after checking that the service lets the access token live `tokenExpiration`. */
	async function tokenAnswer(pair: TokenPair) {
		if (pair.access.expiresAt - pair.access.record.createdAt < lifetime) {
			await tokens.revoke(pair.refresh.token);
			throw new Error(`koa-stateless-auth/accounts: tokenExpiration is ${settings.tokenExpiration} s, but the TokenService's access tokens live ${(pair.access.expiresAt - pair.access.record.createdAt) / 1000} s: make the service with accessTtl >= tokenExpiration (new TokenService({..., accessTtl: ${settings.tokenExpiration}})).`);
		}

		return {
			access_token: pair.access.token,
			token_type: 'Bearer' as const,
			expires_in: Math.floor(settings.tokenExpiration),
			refresh_token: pair.refresh.token,
		};
	}

	/** Log out a user's login sessions (never their API keys), but `except`; answers how many. */
	async function endSessions(userId: string, except?: string): Promise<number> {
		let ended = 0;
		for (const session of await families(tokens, userId)) {
			if (!session.apiKey && session.id !== except && await tokens.revokeSession(userId, session.id)) {
				ended++;
			}
		}

		return ended;
	}

	async function findUser(id: string | undefined): Promise<UserRecord> {
		const user = id === undefined ? undefined : await users.getById(id);
		if (user === undefined) {
			throw notFound('user');
		}

		return user;
	}

	async function update(id: string, changes: Parameters<typeof users.update>[1]): Promise<AccountUser> {
		if (!await users.update(id, changes)) {
			throw notFound('user');
		}

		return publicUser(await findUser(id));
	}

	const body = async <Name extends keyof AccountSchemas>(ctx: RouteContext, name: Name, form = false): Promise<z.output<AccountSchemas[Name]>> =>
		validate(schemas[name], await readBody(ctx as unknown as Context, form), 'body') as z.output<AccountSchemas[Name]>;

	/** A password check under the brute-force limits: 429 before any check while refused; counted when wrong. */
	async function throttled<Outcome extends {readonly accepted: boolean}>(
		ctx: Context, action: 'login' | 'password_change', username: string, userId: string | undefined, check: () => Promise<Outcome>,
	): Promise<Outcome> {
		const ip = address(ctx);
		const attempt = await throttle.attempt(username, ip);
		if ('retryAfter' in attempt) {
			emit(ctx, 'throttled', {action, username, userId, ip, limit: attempt.limit, retryAfter: attempt.retryAfter});
			throw tooManyRequests(attempt);
		}

		// A wrong password (or a check that threw) keeps the points the attempt took: a failure.
		const outcome = await check();
		if (outcome.accepted) {
			await throttle.succeed(attempt);
		}

		return outcome;
	}

	const bearer = auth.tokenRequired();
	const me = settings.apiKeys ? auth.tokenRequired({allowApiKey: true}) : bearer;
	const admin = auth.tokenRequired({permissions: [settings.userAdminPermission]});
	const routes: AccountRoute[] = [];
	const guarded = {
		401: {description: 'No valid access token: the library\'s refusal, with its WWW-Authenticate challenge.'},
		403: {description: 'An API key where none is accepted, or a permission missing.'},
	} as const;
	const invalid = {400: {description: 'A body that is not valid: `invalid_request` naming the `field`.', schema: 'error'}} as const;
	const missing = {404: {description: 'No such user (or session, or key, of mine).', schema: 'error'}} as const;
	const throttledAnswer = {429: {description: 'Too many failed attempts: wait `Retry-After` seconds. Never a 401.', schema: 'error', headers: ['Retry-After']}} as const;

	// Before the guard, so that its refusals are not stored either.
	const noStore = async function noStore(ctx: Context, next: () => Promise<unknown>): Promise<void> {
		ctx.set('Cache-Control', 'no-store');
		await next();
	};

	function mount(route: AccountRoute, handler: Handler): void {
		const run = async function accountsRoute(ctx: RouteContext): Promise<void> {
			try {
				await handler(ctx);
			} catch (error) {
				if (error instanceof AccountsAnswer) {
					answer(ctx, error);
					return;
				}

				throw error;
			}
		};

		const middleware = route.guard === undefined ? [noStore, run] : [noStore, route.guard, run];
		(mountable as Mountable)[route.method](route.path, ...(middleware as Middleware[]));
		routes.push(route);
	}

	// The session: login, refresh, logout.

	mount({
		method: 'post', path: `${prefix}/login`, operationId: 'login', summary: 'Log in with a username and password: a new session (RFC 6749 password grant)', guard: undefined,
		body: {schema: 'loginRequest', form: true},
		responses: {
			200: {description: 'The access and refresh tokens (RFC 6749 §5.1), with `Cache-Control: no-store`.', schema: 'tokenResponse'},
			400: {description: '`invalid_grant` for an unknown user, a wrong password or an inactive account alike; `invalid_request` for a bad body.', schema: 'error'},
			...throttledAnswer,
		},
	}, async ctx => {
		const {username: sent, password, name} = await body(ctx, 'loginRequest', true);
		const username = sent.normalize('NFKC').trim();
		const {accepted, user, valid} = await throttled(ctx, 'login', username, undefined, async () => {
			const found = await users.getByUsername(username);
			// An unknown user costs the same scrypt as a wrong password, and gets the same answer.
			const check = await verifyPassword(password, found?.passwordHash, scrypt);
			if (check.valid && check.needsRehash && found !== undefined) {
				await users.update(found.id, {passwordHash: await hashPassword(password, scrypt)});
			}

			return {accepted: check.valid && found?.isActive === true, user: found, valid: check.valid};
		});
		if (!accepted || user === undefined) {
			const reason = user === undefined ? 'unknown_user' : (valid ? 'inactive' : 'wrong_password');
			emit(ctx, 'loginFailed', {username, userId: user?.id, ip: address(ctx), reason});
			throw invalidGrant('Invalid username or password');
		}

		const pair = await tokens.issuePair(user.id, name === undefined ? {} : {name});
		ctx.body = await tokenAnswer(pair);
		emit(ctx, 'login', {userId: user.id, username: user.username, ip: address(ctx), sessionId: pair.refresh.record.familyId});
	});

	mount({
		method: 'post', path: `${prefix}/refresh`, operationId: 'refresh', summary: 'Trade the refresh token for a new pair (rotation; a reused refresh token revokes its session)', guard: undefined,
		body: {schema: 'refreshRequest', form: true},
		responses: {
			200: {description: 'The new pair (RFC 6749 §5.1); the old one stops working.', schema: 'tokenResponse'},
			400: {description: '`invalid_grant` for every refresh token that cannot be used (unknown, expired, revoked, reused, its user gone).', schema: 'error'},
		},
	}, async ctx => {
		const {refresh_token: refreshToken} = await body(ctx, 'refreshRequest', true);
		let pair: TokenPair;
		try {
			pair = await tokens.refresh(refreshToken);
		} catch (error) {
			if (isStatelessAuthError(error) && error.status === 400) {
				if (error.reason === 'token_reused') {
					emit(ctx, 'tokenReused', {userId: undefined, ip: address(ctx)});
				}

				throw invalidGrant('Invalid refresh token');
			}

			throw error;
		}

		const user = await users.getById(pair.refresh.record.userId);
		if (user?.isActive !== true) {
			// Deleted or deactivated since the login: the session ends here.
			await tokens.revoke(pair.refresh.token);
			throw invalidGrant('Invalid refresh token');
		}

		ctx.body = await tokenAnswer(pair);
	});

	mount({
		method: 'post', path: `${prefix}/logout`, operationId: 'logout', summary: 'Log out this session (both of its tokens)', guard: bearer,
		responses: {204: {description: 'Logged out.'}, ...guarded},
	}, async ctx => {
		const {user, token} = sessionToken(ctx);
		await tokens.revokeSession(user.id, token.familyId);
		emit(ctx, 'logout', {userId: user.id, username: user.username, ip: address(ctx), scope: 'session', sessionId: token.familyId});
		ctx.status = 204;
	});

	mount({
		method: 'post', path: `${prefix}/logout-all`, operationId: 'logoutEverywhere', summary: 'Log out everywhere: every session and API key of mine', guard: bearer,
		responses: {204: {description: 'Every token of mine is revoked.'}, ...guarded},
	}, async ctx => {
		const {user} = sessionToken(ctx);
		await tokens.revokeAll(user.id);
		emit(ctx, 'logout', {userId: user.id, username: user.username, ip: address(ctx), scope: 'everywhere', sessionId: undefined});
		ctx.status = 204;
	});

	// Myself.

	mount({
		method: 'get', path: `${prefix}/me`, operationId: 'currentUser', summary: `Who I am${settings.apiKeys ? ' (an API key works here)' : ''}`, guard: me,
		responses: {200: {description: 'The current user.', schema: 'user'}, ...guarded},
	}, ctx => {
		ctx.body = userView(principal(ctx).user);
	});

	if (settings.allowOwnProfileEdit) {
		mount({
			method: 'put', path: `${prefix}/me/profile`, operationId: 'editOwnProfile', summary: 'Replace my profile', guard: bearer,
			body: {schema: 'profileRequest'},
			responses: {200: {description: 'The user, changed.', schema: 'user'}, ...invalid, ...guarded},
		}, async ctx => {
			const {user} = sessionToken(ctx);
			const {profile} = await body(ctx, 'profileRequest');
			ctx.body = userView(await update(user.id, {profile}));
			emit(ctx, 'profileChanged', {userId: user.id, username: user.username, ip: address(ctx), by: user.id});
		});
	}

	mount({
		method: 'get', path: `${prefix}/sessions`, operationId: 'listSessions', summary: 'My sessions (logins), with a hint of each, never a token', guard: bearer,
		responses: {200: {description: 'My live sessions, oldest first.', schema: 'sessionList'}, ...guarded},
	}, async ctx => {
		const {user, token} = sessionToken(ctx);
		const sessions = (await families(tokens, user.id)).filter(session => !session.apiKey).map(({id, records}) => {
			const refresh = records.find(record => record.type === 'refresh') ?? records[0];
			const lastUsed = Math.max(0, ...records.map(record => record.lastUsedAt ?? 0));
			return {
				id,
				hint: refresh?.hint ?? '',
				name: refresh?.name ?? null,
				createdAt: iso(Math.min(...records.map(record => record.createdAt))),
				lastUsedAt: lastUsed === 0 ? null : iso(lastUsed),
				expiresAt: iso(Math.max(...records.map(record => record.expiresAt))),
				current: id === token.familyId,
			};
		});
		ctx.body = {sessions};
	});

	mount({
		method: 'delete', path: `${prefix}/sessions/:id`, operationId: 'revokeSession', summary: 'Log out one of my sessions', guard: bearer,
		responses: {204: {description: 'That session is logged out.'}, ...missing, ...guarded},
	}, async ctx => {
		const {user} = sessionToken(ctx);
		const id = ctx.params['id'] ?? '';
		const session = (await families(tokens, user.id)).find(candidate => candidate.id === id && !candidate.apiKey);
		if (session === undefined || !await tokens.revokeSession(user.id, id)) {
			throw notFound('session');
		}

		emit(ctx, 'logout', {userId: user.id, username: user.username, ip: address(ctx), scope: 'session', sessionId: id});
		ctx.status = 204;
	});

	mount({
		method: 'put', path: `${prefix}/password`, operationId: 'changePassword', summary: 'Change my password (the current one is checked)', guard: bearer,
		body: {schema: 'changePasswordRequest'},
		responses: {
			204: {description: 'Changed.'},
			400: {description: '`invalid_password` (field `oldPassword`) when the current password is wrong; `invalid_request` for a bad body.', schema: 'error'},
			...guarded,
			...throttledAnswer,
		},
	}, async ctx => {
		const {user, token} = sessionToken(ctx);
		const {oldPassword, newPassword, endOtherSessions} = await body(ctx, 'changePasswordRequest');
		const {accepted} = await throttled(ctx, 'password_change', user.username, user.id, async () => {
			const stored = await users.getById(user.id);
			return {accepted: (await verifyPassword(oldPassword, stored?.passwordHash, scrypt)).valid};
		});
		if (!accepted) {
			emit(ctx, 'passwordChangeFailed', {userId: user.id, username: user.username, ip: address(ctx)});
			throw new AccountsAnswer(400, 'invalid_password', 'The current password is wrong', {field: 'oldPassword'});
		}

		await update(user.id, {passwordHash: await hashPassword(newPassword, scrypt)});
		const endedSessions = endOtherSessions ? await endSessions(user.id, token.familyId) : 0;
		emit(ctx, 'passwordChanged', {userId: user.id, username: user.username, ip: address(ctx), by: user.id, endedSessions});
		ctx.status = 204;
	});

	// API keys.

	if (settings.apiKeys) {
		mount({
			method: 'post', path: `${prefix}/api-keys`, operationId: 'createApiKey', summary: 'Make an API key for `Authorization: Token KEY` (shown once)', guard: bearer,
			body: {schema: 'apiKeyRequest'},
			responses: {201: {description: 'The key, shown this once.', schema: 'newApiKey'}, ...invalid, ...guarded},
		}, async ctx => {
			const {user} = sessionToken(ctx);
			const {name} = await body(ctx, 'apiKeyRequest');
			const {token, record} = await tokens.issue(user.id, 'api_key', {name});
			ctx.status = 201;
			ctx.body = {id: record.familyId, key: token, name: record.name, hint: record.hint, createdAt: iso(record.createdAt), expiresAt: iso(record.expiresAt)};
			emit(ctx, 'apiKeyCreated', {userId: user.id, username: user.username, ip: address(ctx), keyId: record.familyId, name: record.name});
		});

		mount({
			method: 'get', path: `${prefix}/api-keys`, operationId: 'listApiKeys', summary: 'My API keys (hints only)', guard: bearer,
			responses: {200: {description: 'My live API keys, oldest first.', schema: 'apiKeyList'}, ...guarded},
		}, async ctx => {
			const {user} = sessionToken(ctx);
			const keys = (await families(tokens, user.id)).filter(session => session.apiKey).flatMap(session => session.records.filter(record => record.type === 'api_key'));
			ctx.body = {
				apiKeys: keys.map(record => ({
					id: record.familyId, name: record.name, hint: record.hint, createdAt: iso(record.createdAt),
					lastUsedAt: record.lastUsedAt === null ? null : iso(record.lastUsedAt), expiresAt: iso(record.expiresAt),
				})),
			};
		});

		mount({
			method: 'delete', path: `${prefix}/api-keys/:id`, operationId: 'revokeApiKey', summary: 'Revoke one of my API keys', guard: bearer,
			responses: {204: {description: 'Revoked.'}, ...missing, ...guarded},
		}, async ctx => {
			const {user} = sessionToken(ctx);
			const id = ctx.params['id'] ?? '';
			const key = (await families(tokens, user.id)).find(candidate => candidate.id === id && candidate.apiKey);
			if (key === undefined || !await tokens.revokeSession(user.id, id)) {
				throw notFound('API key');
			}

			emit(ctx, 'apiKeyRevoked', {userId: user.id, username: user.username, ip: address(ctx), keyId: id, name: key.records[0]?.name ?? null});
			ctx.status = 204;
		});
	}

	// User management: none of it exists with noUserManagement.

	if (!settings.noUserManagement) {
		const adminOnly = {...guarded, 403: {description: `Without the \`${settings.userAdminPermission}\` permission (or with an API key).`}} as const;

		mount({
			method: 'get', path: `${prefix}/users`, operationId: 'listUsers', summary: `Every user, ${settings.pageSize} a page, ordered by username`, guard: admin,
			query: 'userListQuery',
			responses: {200: {description: 'One page, and the total.', schema: 'userList'}, 400: {description: 'A bad `page`.', schema: 'error'}, ...adminOnly},
		}, async ctx => {
			const {page} = validate(schemas.userListQuery, ctx.query, 'query');
			const {users: list, total} = await users.list((page - 1) * settings.pageSize, settings.pageSize);
			ctx.body = {users: list.map(user => userView(publicUser(user))), total, page, pageSize: settings.pageSize};
		});

		mount({
			method: 'post', path: `${prefix}/users`, operationId: 'createUser', summary: 'Create a user', guard: admin,
			body: {schema: 'createUserRequest'},
			responses: {
				201: {description: 'The new user.', schema: 'user', headers: ['Location']},
				...invalid,
				409: {description: 'The username is taken: `username_taken`.', schema: 'error'},
				...adminOnly,
			},
		}, async ctx => {
			const by = principal(ctx).user;
			const request = await body(ctx, 'createUserRequest');
			const user: UserRecord = {
				id: randomUUID(),
				username: request.username,
				passwordHash: await hashPassword(request.password, scrypt),
				permissions: [...(request.permissions ?? settings.defaultPermissions)],
				profile: request.profile ?? {},
				isActive: request.isActive,
				createdAt: now(),
			};
			if (!await users.create(user)) {
				throw new AccountsAnswer(409, 'username_taken', 'That username is taken', {field: 'username'});
			}

			ctx.status = 201;
			ctx.set('Location', `${prefix}/users/${encodeURIComponent(user.id)}`);
			ctx.body = userView(publicUser(user));
			emit(ctx, 'userCreated', {userId: user.id, username: user.username, ip: address(ctx), by: by.id});
		});

		mount({
			method: 'get', path: `${prefix}/users/:id`, operationId: 'getUser', summary: 'One user', guard: admin,
			responses: {200: {description: 'The user.', schema: 'user'}, ...missing, ...adminOnly},
		}, async ctx => {
			ctx.body = userView(publicUser(await findUser(ctx.params['id'])));
		});

		mount({
			method: 'delete', path: `${prefix}/users/:id`, operationId: 'deleteUser', summary: 'Delete a user, and revoke every token and API key of theirs', guard: admin,
			responses: {204: {description: 'Deleted.'}, ...missing, ...adminOnly},
		}, async ctx => {
			const by = principal(ctx).user;
			const user = await findUser(ctx.params['id']);
			await tokens.revokeAll(user.id);
			if (!await users.delete(user.id)) {
				throw notFound('user');
			}

			emit(ctx, 'userDeleted', {userId: user.id, username: user.username, ip: address(ctx), by: by.id});
			ctx.status = 204;
		});

		mount({
			method: 'put', path: `${prefix}/users/:id/permissions`, operationId: 'setPermissions', summary: 'Replace a user\'s permissions', guard: admin,
			body: {schema: 'permissionsRequest'},
			responses: {200: {description: 'The user, changed.', schema: 'user'}, ...invalid, ...missing, ...adminOnly},
		}, async ctx => {
			const by = principal(ctx).user;
			const user = await findUser(ctx.params['id']);
			const {permissions} = await body(ctx, 'permissionsRequest');
			const changed = await update(user.id, {permissions});
			ctx.body = userView(changed);
			emit(ctx, 'permissionsChanged', {userId: user.id, username: user.username, ip: address(ctx), by: by.id, previous: user.permissions, permissions: changed.permissions});
		});

		mount({
			method: 'put', path: `${prefix}/users/:id/profile`, operationId: 'setProfile', summary: 'Replace a user\'s profile', guard: admin,
			body: {schema: 'profileRequest'},
			responses: {200: {description: 'The user, changed.', schema: 'user'}, ...invalid, ...missing, ...adminOnly},
		}, async ctx => {
			const by = principal(ctx).user;
			const user = await findUser(ctx.params['id']);
			const {profile} = await body(ctx, 'profileRequest');
			ctx.body = userView(await update(user.id, {profile}));
			emit(ctx, 'profileChanged', {userId: user.id, username: user.username, ip: address(ctx), by: by.id});
		});

		mount({
			method: 'put', path: `${prefix}/users/:id/password`, operationId: 'setPassword', summary: 'Set another user\'s password', guard: admin,
			body: {schema: 'setPasswordRequest'},
			responses: {204: {description: 'Set.'}, ...invalid, ...missing, ...adminOnly},
		}, async ctx => {
			const by = principal(ctx).user;
			const user = await findUser(ctx.params['id']);
			const {password, endSessions: end} = await body(ctx, 'setPasswordRequest');
			await update(user.id, {passwordHash: await hashPassword(password, scrypt)});
			const endedSessions = end ? await endSessions(user.id) : 0;
			emit(ctx, 'passwordChanged', {userId: user.id, username: user.username, ip: address(ctx), by: by.id, endedSessions});
			ctx.status = 204;
		});
	}

	const mounted = Object.freeze([...routes]);
	return {
		auth,
		events,
		routes: mounted,
		openapi: info => buildDocument(mounted, schemas, info),
	};
}
