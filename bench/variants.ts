import {createHash} from 'node:crypto';
import Koa, {type Middleware} from 'koa';
import passport from 'koa-passport';
import {Strategy as BearerStrategy} from 'passport-http-bearer';
import {StatelessAuthManager} from 'koa-stateless-auth';

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

	return {
		'bare Koa': bare,
		'hand-written bearer': hand,
		'koa-stateless-auth': library,
		'koa-passport + passport-http-bearer': withPassport,
	};
}
