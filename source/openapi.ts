import type {Authenticator, SecuritySchemeObject} from './authenticator.js';
import type {AuthMode} from './authenticator.js';
import type {NormalisedPermissions} from './permissions.js';

/** An OpenAPI 3.1 Security Requirement Object: scheme names and the scopes (roles) needed. */
export type SecurityRequirementObject = Readonly<Record<string, readonly string[]>>;

/**
What a route's middleware enforces, in OpenAPI 3.1 terms: its `security` (alternatives, any one
of which suffices; `{}` for anonymous access on optional routes) and the
`components.securitySchemes` those requirements name.
*/
export type RouteSecurity = {
	readonly security: readonly SecurityRequirementObject[];
	readonly securitySchemes: Readonly<Record<string, SecuritySchemeObject>>;
};

const routes = new WeakMap<object, RouteSecurity>();

/**
Describe a guard's authenticators, permissions (as scopes) and mode: with the relation `'or'`, one
requirement per authenticator (alternatives); with `'and'`, one requirement naming them all.
*/
export function describeRoute(
	authenticators: ReadonlyArray<Authenticator<unknown, unknown>>,
	permissions: NormalisedPermissions | undefined,
	mode: AuthMode,
	relation: 'or' | 'and' = 'or',
): RouteSecurity {
	// Those that advertise nothing (the refusal of `Token` keys) are not part of the contract.
	const advertised = authenticators.filter(authenticator => authenticator.challenge() !== undefined);
	// anyOf has no OpenAPI form of its own: each alternative becomes one requirement.
	const scopeSets = permissions === undefined
		? [[]]
		: (permissions.anyOf.length === 0 ? [permissions.allOf] : permissions.anyOf.map(permission => [...permissions.allOf, permission]));
	const security: SecurityRequirementObject[] = relation === 'and'
		? scopeSets.map(scopes => Object.fromEntries(advertised.map(authenticator => [authenticator.securitySchemeName, [...scopes]])))
		: advertised.flatMap(authenticator => scopeSets.map(scopes => ({[authenticator.securitySchemeName]: [...scopes]})));
	if (mode === 'optional') {
		security.push({});
	}

	const securitySchemes = Object.fromEntries(advertised.map(authenticator => [authenticator.securitySchemeName, authenticator.securityScheme]));
	return {security, securitySchemes};
}

/** Remember what `middleware` enforces, for {@link openApiSecurity}. */
export function attachRouteSecurity<M extends object>(middleware: M, security: RouteSecurity): M {
	routes.set(middleware, security);
	return middleware;
}

/**
What a middleware made by this library enforces, as OpenAPI 3.1 `security` and
`components.securitySchemes`, so that an API's document matches the middleware; `undefined` for
other middleware. A route opted out with `authenticators: null` has `security: []`.

@example
```
const adminOnly = auth.tokenRequired({permissions: ['admin']});
router.get('/admin', adminOnly, handler);
const {security, securitySchemes} = openApiSecurity(adminOnly)!;
document.paths['/admin'] = {get: {security, responses: {200: {description: 'ok'}}}};
Object.assign(document.components.securitySchemes, securitySchemes);
```
*/
export function openApiSecurity(middleware: object): RouteSecurity | undefined {
	return routes.get(middleware);
}
