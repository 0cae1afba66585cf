import type {LoaderOptions} from './authenticator.js';
import {isPromiseLike} from './promise-like.js';

/**
The permissions a route needs: a list (every one of them), or `{allOf, anyOf}` (every one of
`allOf`, and at least one of `anyOf`).
*/
export type PermissionRequirement =
	| readonly string[]
	| {readonly allOf?: readonly string[]; readonly anyOf?: readonly string[]};

/**
Reads what a principal may do. The default reads `user.permissions` (an array, a `Set` or any
iterable of strings); pass one to read scopes carried by the token record instead. Like a loader,
it counts towards the route's `loaderTimeout`, and gets its `signal` as the last argument.
*/
export type PermissionsReader<User, Token> = (
	user: User,
	token: Token,
	options: LoaderOptions,
) => Iterable<string> | null | undefined | Promise<Iterable<string> | null | undefined>;

export type NormalisedPermissions = {
	readonly allOf: readonly string[];
	readonly anyOf: readonly string[];
	/** What was needed, as the `scope` of an `insufficient_scope` challenge. */
	readonly scope: string;
};

// RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ), which also keeps a challenge safe.
const scopeTokenPattern = /^[\x21\x23-\x5B\x5D-\x7E]+$/;

function normaliseList(value: unknown, option: string): string[] {
	if (value === undefined) {
		return [];
	}

	if (!Array.isArray(value) || !value.every(item => typeof item === 'string' && scopeTokenPattern.test(item))) {
		throw new TypeError(`The \`${option}\` option must be a list of permission names (printable ASCII, no spaces, quotes or backslashes), got ${JSON.stringify(value)}.`);
	}

	return [...value as string[]];
}

/** Validate a route's permission requirement once, when the route is declared. */
export function normalisePermissions(requirement: PermissionRequirement | undefined): NormalisedPermissions | undefined {
	if (requirement === undefined) {
		return undefined;
	}

	const isList = Array.isArray(requirement);
	const given: unknown = requirement;
	// A typo must not leave a route without its permission check (callers in JavaScript pass anything).
	if (!isList && (typeof given !== 'object' || given === null || Object.keys(given).some(key => key !== 'allOf' && key !== 'anyOf'))) {
		throw new TypeError(`The \`permissions\` option must be a list of permission names or {allOf, anyOf}, got ${JSON.stringify(requirement)}.`);
	}

	const {allOf: allOfOption, anyOf: anyOfOption} = isList ? {allOf: requirement, anyOf: undefined} : requirement as {allOf?: unknown; anyOf?: unknown};
	const allOf = normaliseList(allOfOption, isList ? 'permissions' : 'permissions.allOf');
	const anyOf = normaliseList(anyOfOption, 'permissions.anyOf');
	if (allOf.length === 0 && anyOf.length === 0) {
		return undefined;
	}

	return {allOf, anyOf, scope: [...new Set([...allOf, ...anyOf])].join(' ')};
}

/** The default reader: `user.permissions`, when it is an iterable. */
export function readUserPermissions(user: unknown): Iterable<string> | undefined {
	const permissions = (user as {permissions?: unknown} | undefined)?.permissions;
	return typeof permissions === 'object' && permissions !== null && Symbol.iterator in permissions
		? permissions as Iterable<string>
		: undefined;
}

function satisfies(granted: Iterable<string> | null | undefined, required: NormalisedPermissions): boolean {
	// Any falsy answer grants nothing (a 403), like null, whatever the types said.
	const set = granted instanceof Set ? granted as ReadonlySet<string> : new Set(granted || []);
	return required.allOf.every(permission => set.has(permission))
		&& (required.anyOf.length === 0 || required.anyOf.some(permission => set.has(permission)));
}

/** Whether what the reader grants meets the requirement; a promise when the reader answers with one. */
export function checkPermissions(
	granted: ReturnType<PermissionsReader<unknown, unknown>>,
	required: NormalisedPermissions,
): boolean | Promise<boolean> {
	return isPromiseLike(granted) ? Promise.resolve(granted).then(value => satisfies(value, required)) : satisfies(granted, required);
}
