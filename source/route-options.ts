import type {AuthMode} from './authenticator.js';
import type {TokenSources} from './authenticators/bearer.js';
import {assertToken} from './challenge.js';
import {normalisePermissions} from './permissions.js';

/*
Validation of what a route (or a group, or `auth.bearer()`) says, once, when it is declared, for
every entry point alike: `auth.tokenRequired()`, the module-level `tokenRequired()`, `protect()`,
`defaults()`. A misspelt option is a TypeError naming it, never a route left without its check.
*/

/** The default `loaderTimeout`: far beyond any healthy datastore's answer, well within a client's patience. */
export const defaultLoaderTimeout = 10_000;
// setTimeout's longest delay; a longer one would fire at once.
const longestTimeout = 2_147_483_647;

const bearerKeys = ['tokenType', 'authType', 'tokenSources'] as const;
const routeKeys = ['permissions', 'readPermissions', 'mode', 'loaderTimeout'] as const;

/** The options each entry point takes, so that a misspelt one (`permision`) is refused. */
export const optionKeys = {
	bearer: new Set<string>(bearerKeys),
	tokenRequired: new Set<string>([...bearerKeys, ...routeKeys, 'allowApiKey']),
	protect: new Set<string>([...routeKeys, 'authenticators', 'relation']),
	defaults: new Set<string>([...routeKeys, 'authenticators']),
} as const;

export function assertFunction(value: unknown, name: string): void {
	if (typeof value !== 'function') {
		throw new TypeError(`\`${name}\` must be a function, got ${typeof value}.`);
	}
}

export function assertTokenType(value: unknown, option: string): asserts value is string {
	if (typeof value !== 'string' || value === '') {
		throw new TypeError(`The \`${option}\` option must be a non-empty string, got ${JSON.stringify(value)}.`);
	}
}

export function assertLoaderTimeout(value: unknown): asserts value is number | false | undefined {
	if (value !== undefined && value !== false && !(typeof value === 'number' && Number.isFinite(value) && value > 0 && value <= longestTimeout)) {
		throw new TypeError(`The \`loaderTimeout\` option must be a number of milliseconds from 1 to ${longestTimeout}, or false, got ${JSON.stringify(value)}.`);
	}
}

function assertBoolean(value: unknown, option: string): void {
	if (value !== undefined && typeof value !== 'boolean') {
		throw new TypeError(`The \`${option}\` option must be true or false, got ${JSON.stringify(value)}.`);
	}
}

export function assertTokenSources(value: unknown): asserts value is TokenSources | undefined {
	if (value === undefined) {
		return;
	}

	if (typeof value !== 'object' || value === null || Object.keys(value).some(key => key !== 'query' && key !== 'body')) {
		throw new TypeError(`The \`tokenSources\` option must be {query?: boolean, body?: boolean}, got ${JSON.stringify(value)}.`);
	}

	assertBoolean((value as TokenSources).query, 'tokenSources.query');
	assertBoolean((value as TokenSources).body, 'tokenSources.body');
}

/**
Check an options object of one entry point: an object, with only the keys it takes, each valid.
Answers a copy, so that the caller's object is never kept or changed.
*/
export function validateOptions<Options extends object>(value: Options | undefined, entry: keyof typeof optionKeys): Options {
	// Callers in JavaScript can pass anything.
	const options: unknown = value ?? {};
	if (typeof options !== 'object' || options === null || Array.isArray(options)) {
		throw new TypeError(`${entry}() takes an options object, got ${JSON.stringify(options)}.`);
	}

	const allowed = optionKeys[entry];
	const unknown = Object.keys(options).find(key => !allowed.has(key));
	if (unknown !== undefined) {
		throw new TypeError(`${entry}() has no \`${unknown}\` option; it takes ${[...allowed].join(', ')}.`);
	}

	const given = options as Record<string, unknown>;
	if (given['tokenType'] !== undefined) {
		assertTokenType(given['tokenType'], 'tokenType');
	}

	if (given['authType'] !== undefined) {
		assertToken(given['authType'], 'authType');
	}

	assertTokenSources(given['tokenSources']);
	assertBoolean(given['allowApiKey'], 'allowApiKey');
	assertMode(given['mode']);
	assertLoaderTimeout(given['loaderTimeout']);
	normalisePermissions(given['permissions'] as never);
	if (given['readPermissions'] !== undefined) {
		assertFunction(given['readPermissions'], 'readPermissions');
	}

	if (given['relation'] !== undefined && given['relation'] !== 'or' && given['relation'] !== 'and') {
		throw new TypeError(`The \`relation\` option must be 'or' or 'and', got ${JSON.stringify(given['relation'])}.`);
	}

	return {...options} as Options;
}

/**
A route's options of `tokenRequired`, given as nothing, an options object, or the token type and
scheme, validated now.
*/
export function normaliseTokenRequired<Options extends object>(first: Options | string | undefined, authType: string | undefined): Options {
	if (typeof first === 'string') {
		return validateOptions((authType === undefined ? {tokenType: first} : {tokenType: first, authType}) as unknown as Options, 'tokenRequired');
	}

	return validateOptions(first, 'tokenRequired');
}

export function assertMode(value: unknown): asserts value is AuthMode | undefined {
	if (value !== undefined && value !== 'required' && value !== 'optional') {
		throw new TypeError(`The \`mode\` option must be 'required' or 'optional', got ${JSON.stringify(value)}.`);
	}
}
