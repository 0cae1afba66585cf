/*
koa-stateless-auth/accounts: the whole account API mounted on a @koa/router router in one call
(frappyflaskauth's register_endpoints, for Koa). Built only on the library's public API; zod,
rate-limiter-flexible and @koa/router are optional peer dependencies of the package, needed here.
*/
export {accountRoutes} from './routes.js';
export {accountSchemas} from './schemas.js';

export type {AccountRoutes, AccountRoute, RouteResponse} from './routes.js';
export type {AccountRoutesOptions, AccountUser, BruteForceLimit, RateLimitOptions} from './options.js';
export type {AccountSchemas, PasswordPolicy} from './schemas.js';
export type {OpenApiDocument, OpenApiInfo} from './openapi.js';
export type {
	AccountEvents, LoginEvent, LoginFailedEvent, ThrottledEvent, LogoutEvent, PasswordChangedEvent, PasswordChangeFailedEvent, TokenReusedEvent,
	UserChangedEvent, PermissionsChangedEvent, ApiKeyEvent,
} from './events.js';
