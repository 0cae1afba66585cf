import {createHash} from 'node:crypto';
import Koa, {type Middleware} from 'koa';
import passport from 'koa-passport';
import {Strategy as BearerStrategy} from 'passport-http-bearer';
import {HeaderApiKeyAuthenticator, HttpBasicAuth, StatelessAuthManager} from 'koa-stateless-auth';

// The same in-memory data for every variant and every process: 1000 users, one token each,
// derived from the id so that the load generator knows the server's tokens.
type TokenRecord = {userId: number};
type User = {id: number; name: string};

export const tokens = new Map<string, TokenRecord>();
export const users = new Map<number, User>();
for (let id = 0; id < 1000; id++) {
	tokens.set(createHash('sha256').update(`bench-${id}`).digest('base64url'), {userId: id});
	users.set(id, {id, name: `user-${id}`});
}

/** Every token of the 1000, in user order: the load rotates through them, one request each. */
export const tokenList: readonly string[] = [...tokens.keys()];
const passwords = new Map([...users.values()].map(user => [user.name, `password-of-${user.name}`]));
const usersByName = new Map([...users.values()].map(user => [user.name, user]));
const apiKeys = Array.from({length: 10}, (_, index) => createHash('sha256').update(`bench-api-key-${index}`).digest('base64url'));

// Loaders that answer synchronously, as a cache or a Map does.
const findToken = (token: string) => tokens.get(token);
const findUser = (record: TokenRecord) => users.get(record.userId);

// Loaders that answer through a promise, as every real datastore does (already settled: no I/O,
// no setImmediate, so that only the cost of the promises themselves shows). The hand-written
// middleware and the library get these very functions.
const loadToken = async (token: string) => tokens.get(token);
const loadUser = async (record: TokenRecord) => users.get(record.userId);

function unauthorized(ctx: Koa.Context): void {
	ctx.status = 401;
	ctx.set('WWW-Authenticate', 'Bearer');
	ctx.body = {error: 'unauthorized'};
}

/** The least any library can do for this job: a regex and two awaited lookups, here synchronous ones. */
export const handWritten: Middleware = async function handWritten(ctx, next) {
	const match = /^Bearer +([\w\-.~+/]+=*)$/i.exec(ctx.get('Authorization'));
	const record = match ? await findToken(match[1]!) : undefined;
	const user = record ? await findUser(record) : undefined;
	if (user === undefined) {
		unauthorized(ctx);
		return;
	}

	(ctx.state as Record<string, unknown>)['currentUser'] = user;
	await next();
};

/** The same with the loaders that return promises. */
export const handWrittenAsync: Middleware = async function handWrittenAsync(ctx, next) {
	const match = /^Bearer +([\w\-.~+/]+=*)$/i.exec(ctx.get('Authorization'));
	const record = match ? await loadToken(match[1]!) : undefined;
	const user = record ? await loadUser(record) : undefined;
	if (user === undefined) {
		unauthorized(ctx);
		return;
	}

	(ctx.state as Record<string, unknown>)['currentUser'] = user;
	await next();
};

/** `auth.tokenRequired()` with the synchronous loaders. */
export function createOurs(): Middleware {
	const auth = new StatelessAuthManager<User, TokenRecord>({realm: 'bench'});
	auth.tokenLoader(findToken);
	auth.userLoader(findUser);
	return auth.tokenRequired() as Middleware;
}

/** `auth.tokenRequired()` with the loaders that return promises; `loaderTimeout: false` turns the timeout off. */
export function createOursAsync(loaderTimeout?: false): Middleware {
	const auth = new StatelessAuthManager<User, TokenRecord>({realm: 'bench', ...(loaderTimeout === undefined ? {} : {loaderTimeout})});
	auth.tokenLoader(loadToken);
	auth.userLoader(loadUser);
	return auth.tokenRequired() as Middleware;
}

function respond(ctx: Koa.Context): void {
	const user = (ctx.state as {currentUser?: User; user?: User}).currentUser ?? (ctx.state as {user?: User}).user;
	ctx.body = {hello: user?.name ?? 'anonymous'};
}

function appOf(...middleware: Middleware[]): Koa {
	const app = new Koa();
	for (const one of middleware) {
		app.use(one);
	}

	return app;
}

/** The headers of the requests a variant is loaded with, each valid for it; the load takes them in turn, one a request. */
export type Requests = ReadonlyArray<{readonly headers: Readonly<Record<string, string>>}>;

const bearerRequests = (): Requests => tokenList.map(token => ({headers: {authorization: `Bearer ${token}`}}));

export type VariantId =
	| 'hand-async'
	| 'ours-async'
	| 'ours-async-untimed'
	| 'hand-async-again'
	| 'hand'
	| 'bare'
	| 'ours'
	| 'passport'
	| 'basic'
	| 'apikey'
	| 'context';

export type Variant = {
	readonly name: string;
	/** The hand-written variant with the same kind of loaders, whose windows this one's are paired with; none for a baseline. */
	readonly baseline: VariantId | undefined;
	readonly requests: () => Requests;
	/** Builds the app, in the server process only: nothing of the other variants (an AsyncLocalStorage, passport) exists there. */
	readonly createApp: () => Koa;
};

/** Every variant, headline (loaders that return promises) first; the server process builds one of them. */
export const variants: Readonly<Record<VariantId, Variant>> = {
	'hand-async': {
		name: 'hand-written bearer, async loaders',
		baseline: undefined,
		requests: bearerRequests,
		createApp: () => appOf(handWrittenAsync, respond),
	},
	'ours-async': {
		name: 'koa-stateless-auth, async loaders',
		baseline: 'hand-async',
		requests: bearerRequests,
		createApp: () => appOf(createOursAsync(), respond),
	},
	'ours-async-untimed': {
		name: 'koa-stateless-auth, async loaders, loaderTimeout: false',
		baseline: 'hand-async',
		requests: bearerRequests,
		createApp: () => appOf(createOursAsync(false), respond),
	},
	'hand-async-again': {
		// An A/A control: the baseline's very code in a server of its own, measured as a variant.
		// Its ratio should be 1 give or take the noise; its range is the noise of one round.
		name: 'hand-written bearer, async loaders (A/A control: the same again)',
		baseline: 'hand-async',
		requests: bearerRequests,
		createApp: () => appOf(handWrittenAsync, respond),
	},
	hand: {
		name: 'hand-written bearer, sync loaders',
		baseline: undefined,
		requests: bearerRequests,
		createApp: () => appOf(handWritten, respond),
	},
	bare: {
		name: 'bare Koa (no authentication)',
		baseline: 'hand',
		requests: bearerRequests,
		createApp: () => appOf(respond),
	},
	ours: {
		name: 'koa-stateless-auth, sync loaders',
		baseline: 'hand',
		requests: bearerRequests,
		createApp: () => appOf(createOurs(), respond),
	},
	passport: {
		name: 'koa-passport + passport-http-bearer, sync loaders',
		baseline: 'hand',
		requests: bearerRequests,
		createApp() {
			passport.use(new BearerStrategy((token, done) => {
				const record = findToken(token);
				const user = record && findUser(record);
				done(null, user ?? false);
			}));
			return appOf(passport.initialize(), passport.authenticate('bearer', {session: false}), respond);
		},
	},
	basic: {
		// Base64 and UTF-8 checks; 1000 users, each request another one.
		name: 'koa-stateless-auth, Basic',
		baseline: 'hand',
		requests: () => [...users.values()].map(user => ({
			headers: {authorization: `Basic ${Buffer.from(`${user.name}:${passwords.get(user.name)!}`).toString('base64')}`},
		})),
		createApp() {
			const auth = new StatelessAuthManager<User, TokenRecord>({realm: 'bench'});
			const basic = new HttpBasicAuth<User>({
				realm: 'bench',
				authenticate: ({username, password}) => (passwords.get(username) === password ? usersByName.get(username) : undefined),
			});
			return appOf(auth.protect({authenticators: [basic]}) as Middleware, respond);
		},
	},
	apikey: {
		// A SHA-256 and a constant-time comparison with each of the 10 keys; each request another key.
		name: 'koa-stateless-auth, header API key (10 keys)',
		baseline: 'hand',
		requests: () => apiKeys.map(key => ({headers: {'x-api-key': key}})),
		createApp() {
			const auth = new StatelessAuthManager<User, TokenRecord>({realm: 'bench'});
			const machines = new HeaderApiKeyAuthenticator({header: 'X-Api-Key'});
			for (const [index, key] of apiKeys.entries()) {
				machines.registerKey(key, `app-${index}`);
			}

			return appOf(auth.protect({authenticators: [machines]}) as Middleware, ctx => {
				ctx.body = {hello: (ctx.state as {currentUser: {appName: string}}).currentUser.appName};
			});
		},
	},
	context: {
		// On Node 20 a live AsyncLocalStorage slows every promise of its process: this manager
		// exists only in its own server process.
		name: 'koa-stateless-auth, asyncContext on, sync loaders',
		baseline: 'hand',
		requests: bearerRequests,
		createApp() {
			const withContext = new StatelessAuthManager<User, TokenRecord>({realm: 'bench', asyncContext: true});
			withContext.tokenLoader(findToken);
			withContext.userLoader(findUser);
			return appOf(withContext.tokenRequired() as Middleware, respond);
		},
	},
};
