// Type tests: checked by `tsc --noEmit` (npm test), never run. Each `@ts-expect-error` must stay an error.
import Koa from 'koa';
import Router from '@koa/router';
import {
	StatelessAuthManager, StatelessAuthError, authErrorHandler, tokenRequired, type AuthState,
} from '../../source/index.js';

type Token = {userId: number; scopes: string[]};
type User = {id: number; username: string};

const auth = new StatelessAuthManager<User, Token>({realm: 'api'});
auth.tokenLoader(async (token: string, tokenType: string, authType: string) => ({userId: token.length + tokenType.length + authType.length, scopes: []}));
auth.userLoader(record => ({id: record.userId, username: 'x'}));
auth.userLoader(() => null);
auth.userLoader(async () => undefined);
// @ts-expect-error the token loader must return a Token
auth.tokenLoader(() => ({userId: 'nope'}));
// @ts-expect-error the user loader gets a Token and must return a User
auth.userLoader((record: {other: true}) => ({id: 1, username: String(record.other)}));

const router = new Router<object>();
router.get('/whoami', auth.tokenRequired(), ctx => {
	const user: User = ctx.state.currentUser;
	const token: Token = ctx.state.currentToken;
	// @ts-expect-error a User has no password
	ctx.body = {user, token, password: ctx.state.currentUser.password};
});
router.put('/refresh', auth.tokenRequired({tokenType: 'refresh'}), ctx => {
	ctx.body = ctx.state.currentToken.scopes;
});
router.get('/secret', auth.tokenRequired('access', 'Bearer'), ctx => {
	// @ts-expect-error the state carries the user, not a string
	const name: string = ctx.state.currentUser;
	ctx.body = name;
});
// @ts-expect-error route options are named
auth.tokenRequired({tokenTyp: 'refresh'});

// A custom stateKey is named in the third type argument, and then required.
const named = new StatelessAuthManager<User, Token, 'me'>({stateKey: 'me'});
router.get('/me', named.tokenRequired(), ctx => {
	const me: User = ctx.state.me;
	ctx.body = me;
});
// @ts-expect-error without the third type argument the key must stay currentUser
void new StatelessAuthManager<User, Token>({stateKey: 'me'});
// @ts-expect-error with a custom key in the types, the option is required
void new StatelessAuthManager<User, Token, 'me'>();

// The module-level tokenRequired is typed by its type arguments.
router.get('/module', tokenRequired<User, Token>(), ctx => {
	const user: User = ctx.state.currentUser;
	ctx.body = user;
});

// Events are typed.
auth.on('authorized', (ctx, principal) => {
	// @ts-expect-error the principal may come from any authenticator of a route: narrow it first
	const id: number = principal.id;
	ctx.set('X-User', String(id));
});
auth.on('unauthorized', (_ctx, error) => {
	const status: number = error.status;
	void status;
});
// @ts-expect-error no such event
auth.on('nope', () => undefined);

// The state type is exported for handlers written apart from their route.
function handler(ctx: Koa.ParameterizedContext<AuthState<User, Token>>): void {
	ctx.body = ctx.state.currentUser.username;
}

router.get('/apart', auth.tokenRequired(), handler);

const app = new Koa();
app.use(authErrorHandler({format: error => ({message: error.msg, type: error.type})}));
app.use(router.routes());
auth.initApp(app);

void new StatelessAuthError('x', 403, 'scope', {cause: new Error('y'), headers: {'X-A': ['a', 'b']}});
// @ts-expect-error the code is a number
void new StatelessAuthError('x', '401');

// Issue 4: routes with several authenticators carry the union of their principals.
import {HeaderApiKeyAuthenticator, HttpBasicAuth, USE_DEFAULT, currentUser, type ApiKeyPrincipal} from '../../source/index.js';

type Admin = {adminName: string};
const basic = new HttpBasicAuth<Admin>({authenticate: ({username, password}) => (password === 'x' ? {adminName: username} : undefined)});
const machines = new HeaderApiKeyAuthenticator();

router.get('/any', auth.protect({authenticators: [USE_DEFAULT, basic, machines]}), ctx => {
	const principal: User | Admin | ApiKeyPrincipal = ctx.state.currentUser;
	const record: Token | undefined = ctx.state.currentToken;
	// @ts-expect-error the principal may be an Admin or an app, not only a User
	const user: User = ctx.state.currentUser;
	ctx.body = {principal, record, user};
});
router.get('/basic', auth.protect({authenticators: [basic]}), ctx => {
	const admin: Admin = ctx.state.currentUser;
	const none: undefined = ctx.state.currentToken;
	ctx.body = {admin, none};
});
router.get('/optional', auth.tokenRequired({mode: 'optional'}), ctx => {
	// @ts-expect-error an optional route may be anonymous
	const user: User = ctx.state.currentUser;
	const maybe: User | undefined = ctx.state.currentUser;
	ctx.body = {user, maybe};
});
router.get('/keys', auth.tokenRequired({allowApiKey: true, permissions: ['admin']}), ctx => {
	const user: User = ctx.state.currentUser;
	// @ts-expect-error a Token key has no token record
	const record: Token = ctx.state.currentToken;
	ctx.body = {user, record};
});
router.get('/scopes', auth.tokenRequired({permissions: ['write'], readPermissions: (user, record) => [...record.scopes, String(user.id)]}), ctx => {
	ctx.body = ctx.state.currentUser.username;
});
// @ts-expect-error a reader answers strings
auth.tokenRequired({readPermissions: () => [1, 2]});
const group = auth.defaults({authenticators: [basic]});
router.get('/group', group.protect(), ctx => {
	const admin: Admin = ctx.state.currentUser;
	ctx.body = admin;
});
router.get('/group-extended', group.protect({authenticators: [USE_DEFAULT, machines]}), ctx => {
	const principal: Admin | ApiKeyPrincipal = ctx.state.currentUser;
	ctx.body = principal;
});
router.get('/public', group.protect({authenticators: null}), ctx => {
	const nobody: undefined = ctx.state.currentUser;
	ctx.body = nobody;
});
const fromService: User | undefined = currentUser<User>();
void fromService;

// Issue 8: the module-level tokenRequired is typed like the method.
router.get('/module-optional', tokenRequired<User, Token>({mode: 'optional'}), ctx => {
	// @ts-expect-error an optional route may be anonymous
	const user: User = ctx.state.currentUser;
	const maybe: User | undefined = ctx.state.currentUser;
	ctx.body = {user, maybe};
});
router.get('/module-keys', tokenRequired<User, Token>({allowApiKey: true}), ctx => {
	// @ts-expect-error a Token key has no token record
	const record: Token = ctx.state.currentToken;
	ctx.body = record;
});
// @ts-expect-error route options are named, at module level too
tokenRequired({permision: ['admin']});

// All-of routes carry tuples, in the order of their authenticators.
router.get('/all-of', auth.protect({authenticators: [machines, USE_DEFAULT], relation: 'and'}), ctx => {
	const [app, user]: [ApiKeyPrincipal, User] = ctx.state.currentUser;
	const [none, record]: [undefined, Token] = ctx.state.currentToken;
	// @ts-expect-error the principal is a tuple, not a User
	const single: User = ctx.state.currentUser;
	ctx.body = {app, user, none, record, single};
});
auth.protect({
	authenticators: [machines, USE_DEFAULT],
	relation: 'and',
	permissions: ['admin'],
	readPermissions: ([app, user]) => (app.appName === 'billing' ? [String(user.id)] : []),
});

// The authenticator that accepted the request is on the state; undefined on an anonymous one.
router.get('/which', auth.protect({authenticators: [USE_DEFAULT, basic]}), ctx => {
	const isBasic: boolean = ctx.state.authenticator === basic;
	ctx.body = isBasic;
});
router.get('/which-optional', auth.tokenRequired({mode: 'optional'}), ctx => {
	// @ts-expect-error an anonymous request has no authenticator
	ctx.body = ctx.state.authenticator.securitySchemeName;
});
