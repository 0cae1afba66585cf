// One app with the account routes mounted, over real HTTP on 127.0.0.1:0, on a store from the
// factory list; every response and every event is recorded, for the tests that scan them.
import {randomUUID} from 'node:crypto';
import type {ExecutionContext} from 'ava';
import Koa from 'koa';
import Router from '@koa/router';
import {bodyParser} from '@koa/bodyparser';
import {
	StatelessAuthManager, TokenService, authErrorHandler, hashPassword,
	type TokenRecord, type TokenServiceOptions, type UserRecord, type UserStore,
} from '../../source/index.js';
import {accountRoutes, type AccountEvents, type AccountRoutes, type AccountRoutesOptions, type AccountUser} from '../../source/accounts/index.js';
import type {StoreFactory, Stores} from '../stores/contract.js';
import {listen} from '../helpers/http.js';

/** Low scrypt parameters: the tests' passwords hash in about a millisecond. */
export const fastScrypt = {ln: 10, r: 8, p: 1} as const;

export const adminPassword = 'admin password 1';

export type Answer = {
	readonly status: number;
	readonly body: unknown;
	readonly text: string;
	header(name: string): string | null;
};

export type CallOptions = {
	/** A bearer token. */
	readonly token?: string;
	/** An API key, sent as `Authorization: Token KEY`. */
	readonly apiKey?: string;
	/** A JSON body (or a string sent as it is). */
	readonly body?: unknown;
	/** A form body. */
	readonly form?: Record<string, string>;
	/** The client address (X-Forwarded-For; the app trusts its proxy). */
	readonly ip?: string;
	readonly headers?: Record<string, string>;
};

export type Pair = {readonly access_token: string; readonly refresh_token: string; readonly expires_in: number; readonly token_type: string};

export type Recorded = {readonly [Name in keyof AccountEvents]: {readonly name: Name; readonly payload: AccountEvents[Name][0]}}[keyof AccountEvents];

export type Harness = {
	readonly url: string;
	readonly stores: Stores;
	readonly users: UserStore;
	readonly tokens: TokenService;
	readonly mounted: AccountRoutes;
	/** The clock of the service and the routes, in milliseconds; move it by assigning. */
	clock: number;
	/** Every event, in order. */
	readonly events: Recorded[];
	/** Every response: status line, headers and body, as text. */
	readonly transcript: string[];
	/** Errors emitted on the app. */
	readonly errors: unknown[];
	call(method: string, path: string, options?: CallOptions): Promise<Answer>;
	/** Make a user in the store directly (not through the routes). */
	user(username: string, password: string, overrides?: Partial<UserRecord>): Promise<UserRecord>;
	login(username: string, password: string, options?: {ip?: string; name?: string}): Promise<Pair>;
	/** The admin's pair (user `admin`, permission `admin`). */
	admin(): Promise<Pair>;
	/** The events of one name. */
	of<Name extends keyof AccountEvents>(name: Name): Array<AccountEvents[Name][0]>;
};

export type HarnessOptions = Partial<Omit<AccountRoutesOptions, 'users' | 'tokens'>> & {
	readonly service?: Partial<Omit<TokenServiceOptions, 'store' | 'now'>>;
	/** Skip making the admin user. */
	readonly noAdmin?: boolean;
	/** Run @koa/bodyparser (JSON and forms) before the routes. */
	readonly parseBodies?: boolean;
	/** The application's own routes, on the same router after the account routes. */
	readonly ownRoutes?: (router: Router, mounted: AccountRoutes) => void;
};

const start = Date.now();

/** Serve the account routes on a store of `factory`; everything is closed when the test ends. */
export async function harness(t: ExecutionContext, factory: StoreFactory, options: HarnessOptions = {}): Promise<Harness> {
	const {service: serviceOptions = {}, noAdmin = false, ownRoutes, parseBodies = false, ...routeOptions} = options;
	const stores = await factory.create();
	t.teardown(async () => {
		await stores.close();
	});
	const clock = {now: start};
	const tokens = new TokenService({store: stores.tokens, prefix: 'acct', accessTtl: 86_400, now: () => clock.now, ...serviceOptions});
	const auth = routeOptions.auth ?? new StatelessAuthManager<AccountUser, TokenRecord>({realm: 'accounts'});
	const app = new Koa();
	// The tests send their client address in X-Forwarded-For.
	app.proxy = true;
	const errors: unknown[] = [];
	app.on('error', (error: unknown) => errors.push(error));
	const transcript: string[] = [];
	app.use(async (ctx, next) => {
		try {
			await next();
		} finally {
			// Recorded after authErrorHandler answered: the body as sent.
			transcript.push(`${ctx.status} ${JSON.stringify(ctx.response.headers)} ${typeof ctx.body === 'string' ? ctx.body : JSON.stringify(ctx.body ?? null)}`);
		}
	});
	app.use(authErrorHandler({format: error => ({error: error.reason, error_description: error.msg})}));
	if (parseBodies) {
		app.use(bodyParser({enableTypes: ['json', 'form']}));
	}
	const router = new Router();
	const mounted = accountRoutes(router, {passwordParameters: fastScrypt, now: () => clock.now, ...routeOptions, auth, users: stores.users, tokens});
	const events: Recorded[] = [];
	for (const name of ['login', 'loginFailed', 'throttled', 'logout', 'passwordChanged', 'passwordChangeFailed', 'tokenReused', 'userCreated', 'userDeleted',
		'permissionsChanged', 'profileChanged', 'apiKeyCreated', 'apiKeyRevoked'] as const) {
		mounted.events.on(name, (payload: unknown) => {
			events.push({name, payload} as Recorded);
		});
	}

	ownRoutes?.(router, mounted);
	app.use(router.routes());
	app.use(router.allowedMethods());
	const url = await listen(t, app);

	const call = async (method: string, path: string, {token, apiKey, body, form, ip, headers = {}}: CallOptions = {}): Promise<Answer> => {
		const sent: Record<string, string> = {...headers};
		if (token !== undefined) {
			sent['authorization'] = `Bearer ${token}`;
		}

		if (apiKey !== undefined) {
			sent['authorization'] = `Token ${apiKey}`;
		}

		if (ip !== undefined) {
			sent['x-forwarded-for'] = ip;
		}

		let payload: string | undefined;
		if (form !== undefined) {
			sent['content-type'] ??= 'application/x-www-form-urlencoded';
			payload = new URLSearchParams(form).toString();
		} else if (body !== undefined) {
			sent['content-type'] ??= 'application/json';
			payload = typeof body === 'string' ? body : JSON.stringify(body);
		}

		const response = await fetch(`${url}${path}`, {method, headers: sent, ...(payload === undefined ? {} : {body: payload})});
		const text = await response.text();
		let parsed: unknown = text;
		try {
			parsed = JSON.parse(text);
		} catch {}

		return {status: response.status, body: parsed, text, header: name => response.headers.get(name)};
	};

	const h: Harness = {
		url,
		stores,
		users: stores.users,
		tokens,
		mounted,
		get clock() {
			return clock.now;
		},
		set clock(value: number) {
			clock.now = value;
		},
		events,
		transcript,
		errors,
		call,
		async user(username, password, overrides = {}) {
			const record: UserRecord = {
				id: randomUUID(), username, passwordHash: await hashPassword(password, fastScrypt), permissions: [], profile: {}, isActive: true, createdAt: clock.now, ...overrides,
			};
			if (!await stores.users.create(record)) {
				throw new Error(`user ${username} exists`);
			}

			return record;
		},
		async login(username, password, {ip, name} = {}) {
			const answer = await call('POST', `${routeOptions.apiPrefix ?? '/api/user'}/login`, {body: {username, password, ...(name === undefined ? {} : {name})}, ...(ip === undefined ? {} : {ip})});
			if (answer.status !== 200) {
				throw new Error(`login of ${username} answered ${answer.status} ${answer.text}`);
			}

			return answer.body as Pair;
		},
		async admin() {
			return h.login('admin', adminPassword);
		},
		of(name) {
			return events.filter(event => event.name === name).map(event => event.payload);
		},
	};
	if (!noAdmin) {
		await h.user('admin', adminPassword, {permissions: [options.userAdminPermission ?? 'admin']});
	}

	return h;
}
