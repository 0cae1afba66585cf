export {StatelessAuthManager} from './manager.js';
export {tokenRequired} from './token-required.js';
export {authErrorHandler} from './error-handler.js';
export {StatelessAuthError, isStatelessAuthError} from './errors.js';
export {TokenMixin, UserMixin} from './mixins.js';
export {parseAuthorizationHeader} from './authorization-header.js';

export type {
	StatelessAuthOptions,
	StatelessAuthEvents,
	TokenRequiredOptions,
} from './manager.js';
export type {TokenLoader, UserLoader} from './authenticators/bearer.js';
export type {AuthState, AuthMiddleware} from './guard.js';
export type {AuthErrorHandlerOptions} from './error-handler.js';
export type {StatelessAuthErrorType, StatelessAuthErrorOptions, ErrorHeaders} from './errors.js';
export type {ExpirableToken, ActivatableUser} from './mixins.js';
export type {ParsedAuthorization, MalformedReason, ParseAuthorizationOptions} from './authorization-header.js';
