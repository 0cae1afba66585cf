export {StatelessAuthManager} from './manager.js';
export {USE_DEFAULT} from './options.js';
export {tokenRequired} from './token-required.js';
export {authErrorHandler} from './error-handler.js';
export {currentUser} from './current-user.js';
export {StatelessAuthError, isStatelessAuthError, LoaderTimeoutError} from './errors.js';
export {TokenMixin, UserMixin} from './mixins.js';
export {HttpAuth} from './authenticators/http-auth.js';
export {HttpBasicAuth} from './authenticators/basic.js';
export {HeaderApiKeyAuthenticator, authenticatedAppName} from './authenticators/header-api-key.js';
export {getAuthorizationHeader} from './authorization.js';
export {parseAuthorizationHeader} from './authorization-header.js';
export {openApiSecurity} from './openapi.js';
export {TokenService} from './tokens/service.js';
export {generateToken, isWellFormedToken, digestToken, tokenPattern} from './tokens/format.js';
export {hashPassword, verifyPassword, defaultScryptParameters} from './passwords.js';

export type {
	StatelessAuthOptions,
	StatelessAuthEvents,
	TokenRequiredOptions,
	BearerOptions,
	RouteOptions,
	ProtectOptions,
	Protect,
	GroupOptions,
	AuthGroup,
	AnyAuthenticator,
	AuthenticatorEntry,
	RouteUser,
	RouteToken,
	Relation,
	CommonOptions,
	TokenRequiredMiddleware,
} from './options.js';
export type {TokenLoader, UserLoader, ApiKeyLoader, TokenSources, Falsy} from './authenticators/bearer.js';
export type {
	Authenticator, AuthenticatorResult, AuthMode, LoaderOptions, NoCredentials, ChallengeParameters, SecuritySchemeObject, UserOf, TokenOf,
} from './authenticator.js';
export type {AuthState, AuthMiddleware} from './guard.js';
export type {AuthErrorHandlerOptions} from './error-handler.js';
export type {StatelessAuthErrorType, StatelessAuthErrorOptions, ErrorHeaders, RefusalReason} from './errors.js';
export type {ExpirableToken, ActivatableUser} from './mixins.js';
export type {HttpAuthOptions, AuthenticateCallback} from './authenticators/http-auth.js';
export type {HttpBasicAuthOptions, BasicCredentials} from './authenticators/basic.js';
export type {HeaderApiKeyOptions, ApiKeyPrincipal} from './authenticators/header-api-key.js';
export type {Authorization} from './authorization.js';
export type {PermissionRequirement, PermissionsReader} from './permissions.js';
export type {RouteSecurity, SecurityRequirementObject} from './openapi.js';
export type {ParsedAuthorization, MalformedReason, ParseAuthorizationOptions} from './authorization-header.js';
export type {BearerErrorCode} from './challenge.js';
export type {TokenServiceOptions, IssuedToken, TokenPair, IssueOptions, Verification, TokenType} from './tokens/service.js';
export type {TokenCache} from './tokens/cache-types.js';
export type {GenerateTokenOptions} from './tokens/format.js';
export type {ScryptParameters, PasswordCheck} from './passwords.js';
export type {
	TokenStore, TokenRecord, FoundToken, SessionLimit, RotateOutcome, UserStore, UserRecord, UserPage,
} from './stores/types.js';
