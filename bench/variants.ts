import {createHash} from 'node:crypto';
import Koa, {type Middleware} from 'koa';
import passport from 'koa-passport';
import {Strategy as BearerStrategy} from 'passport-http-bearer';
import {HeaderApiKeyAuthenticator, HttpBasicAuth, StatelessAuthManager} from 'koa-stateless-auth';

// The same in-memory data for every variant and both processes: 1000 users, one token each,
// derived from the id so that the load generator knows the server's tokens.
type TokenRecord = {userId: number};
type User = {id: number; name: string};

export const tokens = new Map<string, TokenRecord>();
export const users = new Map<number, User>();
for (let id = 0; id < 1000; id++) {
	tokens.set(createHash('sha256').update(`bench-${id}`).digest('base64url'), {userId: id});
	users.set(id, {id, name: `user-${id}`});
}

export const benchToken = [...tokens.keys()][500]!;
const benchUser = users.get(500)!;
const passwords = new Map([...users.values()].map(user => [user.name, `password-of-${user.name}`]));
const usersByName = new Map([...users.values()].map(user => [user.name, user]));
const benchApiKey = createHash('sha256').update('bench-api-key').digest('base64url');

function unauthorized(ctx: Koa.Context): void {
	ctx.status = 401;
	ctx.set('WWW-Authenticate', 'Bearer');
	ctx.body = {error: 'unauthorized'};
}

/** The least any library can do for this job: a regex and two awaited Map lookups. */
export const handWritten: Middleware = async function handWritten(ctx, next) {
	const match = /^Bearer +([\w\-.~+/]+=*)$/i.exec(ctx.get('Authorization'));
	const record = match ? await tokens.get(match[1]!) : undefined;
	const user = record ? await users.get(record.userId) : undefined;
	if (user === undefined) {
		unauthorized(ctx);
		return;
	}

	(ctx.state as Record<string, unknown>)['currentUser'] = user;
	await next();
};

/** The same with loaders that answer through a promise, as a database driver does. */
const loadToken = async (token: string) => tokens.get(token);
const loadUser = async (id: number) => users.get(id);
export const handWrittenAsync: Middleware = async function handWrittenAsync(ctx, next) {
	const match = /^Bearer +([\w\-.~+/]+=*)$/i.exec(ctx.get('Authorization'));
	const record = match ? await loadToken(match[1]!) : undefined;
	const user = record ? await loadUser(record.userId) : undefined;
	if (user === undefined) {
		unauthorized(ctx);
		return;
	}

	(ctx.state as Record<string, unknown>)['currentUser'] = user;
	await next();
};

const asyncAuth = new StatelessAuthManager<TokenRecord, User>({realm: 'bench'});
asyncAuth.tokenLoader(loadToken);
asyncAuth.userLoader(async record => loadUser(record.userId));
export const oursAsync = asyncAuth.tokenRequired() as Middleware;

export const auth = new StatelessAuthManager<TokenRecord, User>({realm: 'bench'});
auth.tokenLoader(token => tokens.get(token));
auth.userLoader(record => users.get(record.userId));
export const ours = auth.tokenRequired() as Middleware;

passport.use(new BearerStrategy((token, done) => {
	const record = tokens.get(token);
	const user = record && users.get(record.userId);
	done(null, user ?? false);
}));

function respond(ctx: Koa.Context): void {
	const user = (ctx.state as {currentUser?: User; user?: User}).currentUser ?? (ctx.state as {user?: User}).user;
	ctx.body = {hello: user?.name ?? 'anonymous'};
}

// Basic and header API keys as the library ships them, over the same in-memory users.
const basic = new HttpBasicAuth<User>({
	realm: 'bench',
	authenticate: ({username, password}) => (passwords.get(username) === password ? usersByName.get(username) : undefined),
});
const machines = new HeaderApiKeyAuthenticator({header: 'X-Api-Key'});
machines.registerKey(benchApiKey, 'bench');
for (let index = 0; index < 9; index++) {
	machines.registerKey(createHash('sha256').update(`other-key-${index}`).digest('base64url'), `app-${index}`);
}

const withContext = new StatelessAuthManager<TokenRecord, User>({realm: 'bench', asyncContext: true});
withContext.tokenLoader(token => tokens.get(token));
withContext.userLoader(record => users.get(record.userId));

/** The request headers each variant is loaded with: valid credentials for it. */
export const variantHeaders: Record<string, Record<string, string>> = {
	'bare Koa': {authorization: `Bearer ${benchToken}`},
	'hand-written bearer': {authorization: `Bearer ${benchToken}`},
	'koa-stateless-auth': {authorization: `Bearer ${benchToken}`},
	'koa-passport + passport-http-bearer': {authorization: `Bearer ${benchToken}`},
	'koa-stateless-auth, asyncContext on': {authorization: `Bearer ${benchToken}`},
	'koa-stateless-auth, Basic': {authorization: `Basic ${Buffer.from(`${benchUser.name}:${passwords.get(benchUser.name)!}`).toString('base64')}`},
	'koa-stateless-auth, header API key (10 keys)': {'x-api-key': benchApiKey},
};

/**
The variant with `asyncContext` on, alone: on Node 20 a live AsyncLocalStorage slows every promise
of its process, so it runs in a server process of its own, not beside the others.
*/
export function createAsyncContextApp(): Record<string, Koa> {
	const contextual = new Koa();
	contextual.use(withContext.tokenRequired() as Middleware);
	contextual.use(respond);
	return {'koa-stateless-auth, asyncContext on': contextual};
}

/** One Koa app per variant, each answering the same small JSON. */
export function createVariantApps(): Record<string, Koa> {
	const bare = new Koa();
	bare.use(respond);

	const hand = new Koa();
	hand.use(handWritten);
	hand.use(respond);

	const library = new Koa();
	library.use(ours);
	library.use(respond);

	const withPassport = new Koa();
	withPassport.use(passport.initialize());
	withPassport.use(passport.authenticate('bearer', {session: false}));
	withPassport.use(respond);

	const basicApp = new Koa();
	basicApp.use(auth.protect({authenticators: [basic]}) as Middleware);
	basicApp.use(respond);

	const apiKeyApp = new Koa();
	apiKeyApp.use(auth.protect({authenticators: [machines]}) as Middleware);
	apiKeyApp.use(ctx => {
		ctx.body = {hello: (ctx.state as {currentUser: {appName: string}}).currentUser.appName};
	});

	return {
		'bare Koa': bare,
		'hand-written bearer': hand,
		'koa-stateless-auth': library,
		'koa-passport + passport-http-bearer': withPassport,
		'koa-stateless-auth, Basic': basicApp,
		'koa-stateless-auth, header API key (10 keys)': apiKeyApp,
	};
}
