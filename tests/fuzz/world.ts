/*
The ground truth of the fuzz tests: which credentials exist. The app under test (app.ts) is built
from it through the library's public API, and the oracle (oracle.ts) predicts answers from it and
from the README alone. Nothing here comes from the library.
*/

export type FuzzUser = {readonly id: number; readonly name: string; readonly isActive?: boolean};

export const users: ReadonlyMap<number, FuzzUser> = new Map([
	[1, {id: 1, name: 'alice'}],
	[2, {id: 2, name: 'bob'}],
	[4, {id: 4, name: 'dora', isActive: false}],
]);

/** A known bearer token exactly `maxTokenLength` (4096) characters long, padding included. */
export const longBearerToken = `${'Long-Token.~_+/'.repeat(273)}==`.slice(-4096);

/** Bearer tokens (`Authorization: Bearer ...`, token type `access`) and the user id each belongs to. */
export const bearerTokens: ReadonlyMap<string, number> = new Map([
	['alice-token', 1],
	['padded+/==', 2],
	[longBearerToken, 1],
	// An inactive user and a user that does not exist: both are refused like an unknown token.
	['dora-token', 4],
	['orphan-token', 99],
]);

/** `Authorization: Token KEY` keys (the manager's `apiKeyLoader`) and the user id each belongs to. */
export const tokenKeys: ReadonlyMap<string, number> = new Map([
	['alice-key', 1],
	['bob-key~', 2],
	['dora-key', 4],
	['orphan-key', 99],
]);

/**
Basic accounts: user-id to password. `mallet`'s credentials encode to Base64 with both `+` and `/`
(so that the URL-safe alphabet makes a difference), `jörg`'s are non-ASCII UTF-8, `colon`'s
password has colons. `nel` and `tab` have a control character in their password (a C1 and a C0
one), so that no request can ever sign in as them (RFC 7617 §2, decoded strictly).
*/
export const basicAccounts: ReadonlyMap<string, string> = new Map([
	['alice', 'alice-password'],
	['mallet', '??>>~~'],
	['j\u00F6rg', 'p\u00E4ssw\u00F6rd \u{1F511}'],
	['colon', 'pass:with:colons'],
	['nel', 'next\u0085line'],
	['tab', 'with\ttab'],
]);

/** Header API keys (`X-MyApp-ApiKey`) and the application each was registered for. */
export const machineHeader = 'X-MyApp-ApiKey';
export const machineKeys: ReadonlyMap<string, string> = new Map([
	['billing-key-1', 'billing'],
	['billing-key-2', 'billing'],
	['reports key', 'reports'],
	// Received from Node as latin1: the byte 0xE9 on the wire, not its UTF-8 encoding.
	['cl\u00E9-key', 'latin'],
]);

export const bearerRealm = 'api';
export const basicRealm = 'basic area';
export const machineRealm = 'machines';
export const maxTokenLength = 4096;

/** The routes of the app under test, by kind. */
export const routes = {
	bearer: '/bearer',
	optional: '/optional',
	keys: '/keys',
	basic: '/basic',
	headerKey: '/header-key',
} as const;

export type RouteKind = keyof typeof routes;
export const routeKinds = Object.keys(routes) as RouteKind[];
