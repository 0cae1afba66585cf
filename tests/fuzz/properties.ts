/*
The fuzz properties, shared by tests/fuzz.test.ts (a few thousand runs in `npm test`) and
tests/fuzz/run.ts (`npm run fuzz`, a million). Each property throws an Error that says what went
wrong, so that fast-check reports it with the counterexample.
*/
import http from 'node:http';
import {isDeepStrictEqual} from 'node:util';
import fc from 'fast-check';
import type Koa from 'koa';
import {
	HeaderApiKeyAuthenticator, HttpBasicAuth, StatelessAuthManager, getAuthorizationHeader, parseAuthorizationHeader,
} from '../../source/index.js';
import {rawRequest} from '../helpers/http.js';
import {exampleRequests, parserInput, requestLines} from './arbitraries.js';
import {
	equalsAsciiCaseInsensitive, isChallenge, isToken, isToken68, nodeRejects, predict, readLine, secretsOf,
	type Expected, type WireLine,
} from './oracle.js';
import {maxTokenLength, routes, type RouteKind} from './world.js';

/** What one check of a property found. */
export type CheckResult = {
	readonly failed: boolean;
	readonly numRuns: number;
	readonly seed: number;
	/** fast-check's report (with the counterexample) when it failed. */
	readonly report: string | undefined;
};

/** A property, the share of the runs it gets, and counts of its outcomes (to show the generators reach every answer). */
export type FuzzProperty = {
	readonly name: string;
	/** Run it `numRuns` times from `seed`, starting with its examples if `withExamples`. */
	readonly check: (seed: number, numRuns: number, withExamples: boolean) => Promise<CheckResult>;
	/** Its share of the runs of `npm run fuzz`, relative to the others'. */
	readonly weight: number;
	readonly outcomes: Map<string, number>;
	/** Outcomes every run of a few hundred must reach. */
	readonly expectedOutcomes: readonly string[];
};

function checker<Ts>(property: fc.IRawProperty<Ts>, examples: Ts[] = []): FuzzProperty['check'] {
	return async (seed, numRuns, withExamples) => {
		const details = await fc.check(property, {seed, numRuns, examples: withExamples ? examples : []});
		const error = details.errorInstance instanceof Error ? details.errorInstance.message : details.errorInstance;
		const report = details.failed ? `${fc.defaultReportMessage(details) ?? ''}\nError: ${String(error)}` : undefined;
		return {failed: details.failed, numRuns: details.numRuns, seed: details.seed, report};
	};
}

const count = (outcomes: Map<string, number>, label: string) => outcomes.set(label, (outcomes.get(label) ?? 0) + 1);

const malformedReasons = new Set(['duplicate', 'invalid-scheme', 'missing-credentials', 'tab-separator', 'invalid-syntax', 'too-long', 'invalid-characters']);

function fail(message: string, details: Record<string, unknown>): never {
	throw new Error(`${message}\n${JSON.stringify(details, undefined, 1)}`);
}

/** `parseAuthorizationHeader` never throws, obeys the grammar, and agrees with the oracle's reading. */
function parserProperty(): FuzzProperty {
	const outcomes = new Map<string, number>();
	const input = fc.oneof(
		{weight: 6, arbitrary: parserInput},
		{weight: 2, arbitrary: fc.array(parserInput, {maxLength: 3})},
	);
	const maxLength = fc.option(fc.oneof(fc.integer({min: 1, max: 64}), fc.integer({min: 1, max: 2 * maxTokenLength})), {freq: 3});
	const property = fc.property(input, maxLength, (value, limit) => {
		let parsed: ReturnType<typeof parseAuthorizationHeader>;
		try {
			parsed = limit === null ? parseAuthorizationHeader(value) : parseAuthorizationHeader(value, {maxLength: limit});
		} catch (error) {
			fail('parseAuthorizationHeader threw', {value, limit, error: String(error)});
		}

		const max = limit ?? maxTokenLength;
		count(outcomes, parsed.kind === 'malformed' ? `malformed ${parsed.reason}` : parsed.kind);
		// The grammar of what it answers.
		if (parsed.kind === 'credentials' && !(isToken(parsed.scheme) && isToken68(parsed.credentials) && parsed.credentials.length <= max)) {
			fail('credentials outside the grammar', {value, limit, parsed});
		}

		if (parsed.kind === 'malformed' && (!malformedReasons.has(parsed.reason) || (parsed.scheme !== undefined && !isToken(parsed.scheme)))) {
			fail('a malformed answer outside the grammar', {value, limit, parsed});
		}

		if (!['absent', 'malformed', 'credentials'].includes(parsed.kind)) {
			fail('an unknown kind', {value, parsed});
		}

		// What the README and RFC 9110 say it is (oracle.ts).
		let expected: unknown;
		if (typeof value !== 'string' && value.length > 1) {
			expected = {kind: 'malformed', reason: 'duplicate', scheme: undefined};
		} else {
			const line = typeof value === 'string' ? value : value[0];
			const reading = line === undefined ? {kind: 'empty' as const} : readLine(line, max);
			switch (reading.kind) {
				case 'empty': {
					expected = {kind: 'absent'};
					break;
				}

				case 'credentials': {
					expected = {kind: 'credentials', scheme: reading.scheme, credentials: reading.credentials};
					break;
				}

				case 'malformed': {
					const reason = reading.schemeAlone ? 'missing-credentials' : (reading.tooLong ? 'too-long' : (parsed.kind === 'malformed' ? parsed.reason : 'any'));
					expected = {kind: 'malformed', reason, scheme: reading.scheme};
					break;
				}
			}
		}

		if (!isDeepStrictEqual({...parsed}, expected)) {
			fail('parseAuthorizationHeader disagrees with the oracle', {value, limit, parsed, expected});
		}
	});
	return {
		name: 'parseAuthorizationHeader', check: checker(property), weight: 30, outcomes,
		expectedOutcomes: ['absent', 'credentials', 'malformed duplicate', 'malformed invalid-scheme', 'malformed missing-credentials', 'malformed tab-separator', 'malformed invalid-syntax', 'malformed too-long', 'malformed invalid-characters'],
	};
}

/** `getAuthorizationHeader` over any raw header lines: never throws, and gives only well-formed single lines. */
function getAuthorizationHeaderProperty(): FuzzProperty {
	const outcomes = new Map<string, number>();
	const rawHeaders = fc.array(fc.tuple(fc.constantFrom('Authorization', 'authorization', 'AUTHORIZATION', 'Authorisation', 'X-Other', '\u212Authorization'), parserInput), {maxLength: 3});
	const property = fc.property(rawHeaders, lines => {
		const ctx = {req: {rawHeaders: lines.flat()}} as unknown as Koa.Context;
		let read: ReturnType<typeof getAuthorizationHeader>;
		try {
			read = getAuthorizationHeader(ctx);
		} catch (error) {
			fail('getAuthorizationHeader threw', {lines, error: String(error)});
		}

		const values = lines.filter(([name]) => equalsAsciiCaseInsensitive(name, 'authorization')).map(([, value]) => value);
		const [only] = values;
		const reading = values.length === 1 && only !== undefined ? readLine(only) : undefined;
		const expected = reading?.kind === 'credentials' ? {scheme: reading.scheme.toLowerCase(), credentials: reading.credentials} : undefined;
		count(outcomes, expected === undefined ? 'undefined' : 'credentials');
		if (!isDeepStrictEqual(read === undefined ? undefined : {...read}, expected)) {
			fail('getAuthorizationHeader disagrees with the oracle', {lines, read, expected});
		}
	});
	return {name: 'getAuthorizationHeader', check: checker(property), weight: 10, outcomes, expectedOutcomes: ['undefined', 'credentials']};
}

/** The value of the quoted-string parameter `name` of a challenge, unescaped. */
function parameterOf(challenge: string, name: string): string | undefined {
	const match = new RegExp(String.raw`[ ,]${name}="((?:[^"\\]|\\.)*)"`).exec(challenge);
	return match?.[1]?.replaceAll(/\\(.)/g, '$1');
}

/**
Any configuration (realm, scheme, API key header): refused at start-up with a TypeError (README:
"a realm with control characters or non-ASCII is refused at start-up"; a scheme or a header name is
an HTTP token), or every challenge it makes is in RFC 9110's grammar and carries the realm unchanged.
*/
function challengeProperty(): FuzzProperty {
	const outcomes = new Map<string, number>();
	const text = fc.oneof(
		fc.string({unit: fc.integer({min: 0x20, max: 0x7E}).map(code => String.fromCharCode(code)), maxLength: 16}),
		fc.string({unit: fc.constantFrom('"', '\\', ' ', ',', '=', 'a', 'Z', '\t', '\r', '\n', '\u0000', '\u007F', '\u0085', '\u00E9', '\u212A', '\uD800'), maxLength: 12}),
		fc.string({unit: 'binary', maxLength: 12}),
	);
	const name = fc.oneof(
		{weight: 4, arbitrary: fc.string({unit: fc.constantFrom(..."!#$%&'*+-.^_`|~09AZaz".split('')), minLength: 1, maxLength: 10})},
		{weight: 1, arbitrary: fc.constantFrom('Bearer', 'Token', 'X-API-Key', 'Be arer', '', 'B\u00E9arer', '\u212Aey', 'a,b', 'a"b', 'a=b', 'a\tb')},
		{weight: 1, arbitrary: fc.string({maxLength: 10})},
	);
	const property = fc.property(text, name, name, (realm, authType, header) => {
		const printable = /^[\x20-\x7E]*$/.test(realm);
		let challenges: Array<string | undefined>;
		try {
			const auth = new StatelessAuthManager({realm, authType});
			const basic = new HttpBasicAuth({realm, authenticate: () => undefined});
			const machines = new HeaderApiKeyAuthenticator({realm, header});
			challenges = [
				auth.bearer().challenge(), auth.bearer().challenge({error: 'invalid_token'}), auth.tokenKey().challenge({error: 'invalid_request'}),
				auth.bearer().challenge({error: 'insufficient_scope', scope: 'read write'}), basic.challenge(), machines.challenge(),
			];
		} catch (error) {
			if (!(error instanceof TypeError) || (printable && isToken(authType) && isToken(header))) {
				fail('a configuration refused without reason, or not with a TypeError', {realm, authType, header, error: String(error)});
			}

			count(outcomes, 'refused');
			return;
		}

		if (!printable || !isToken(authType) || !isToken(header)) {
			fail('a configuration the README says is refused was accepted', {realm, authType, header, challenges});
		}

		for (const challenge of challenges) {
			if (challenge === undefined || !isChallenge(challenge) || parameterOf(challenge, 'realm') !== realm) {
				fail('a challenge outside the grammar, or without the realm as configured', {realm, authType, header, challenges});
			}
		}

		count(outcomes, 'accepted');
	});
	return {name: 'challenges of any configuration', check: checker(property), weight: 4, outcomes, expectedOutcomes: ['accepted', 'refused']};
}

/** The properties that need no server: the parsers and the challenges. */
export const inProcessProperties = (): FuzzProperty[] => [parserProperty(), getAuthorizationHeaderProperty(), challengeProperty()];

/** An answer as received. */
export type Observed = {
	readonly status: number;
	/** Header lines, names lower-cased, in order. */
	readonly headers: ReadonlyArray<readonly [string, string]>;
	readonly body: string;
};

/**
Sends requests to one server: over a keep-alive agent (one socket, reused across runs), or, for a
value Node's client refuses to send (a control character, see oracle.ts), byte for byte with
`rawRequest` on a connection of its own.
*/
export class FuzzClient {
	readonly #agent = new http.Agent({keepAlive: true, maxSockets: 1});
	readonly #url: URL;

	constructor(baseUrl: string) {
		this.#url = new URL(baseUrl);
	}

	async send(path: string, lines: readonly WireLine[]): Promise<Observed> {
		if (lines.some(([, value]) => nodeRejects(value))) {
			const response = await rawRequest(this.#url.href, path, lines.map(([name, value]) => [name, value]));
			return {status: response.status, headers: response.headers, body: response.body};
		}

		return this.#send(path, lines, true);
	}

	async #send(path: string, lines: readonly WireLine[], retry: boolean): Promise<Observed> {
		return new Promise((resolve, reject) => {
			const request = http.request({
				host: this.#url.hostname,
				port: this.#url.port,
				path,
				agent: this.#agent,
				headers: ['Host', this.#url.host, ...lines.flat()],
			}, response => {
				const chunks: Buffer[] = [];
				response.on('data', (chunk: Buffer) => chunks.push(chunk));
				response.on('end', () => {
					const headers: Array<[string, string]> = [];
					for (let index = 0; index + 1 < response.rawHeaders.length; index += 2) {
						headers.push([response.rawHeaders[index]!.toLowerCase(), response.rawHeaders[index + 1]!]);
					}

					resolve({status: response.statusCode ?? 0, headers, body: Buffer.concat(chunks).toString('utf8')});
				});
				response.on('error', reject);
			});
			request.setTimeout(10_000, () => request.destroy(new Error(`no answer within 10 s to ${path} ${JSON.stringify(lines)}`)));
			request.on('error', error => {
				// A kept-alive socket the server closed (its keepAliveTimeout) just as it was reused: send
				// again, once, on a new one (Node's documented remedy, request.reusedSocket).
				if (retry && request.reusedSocket && (error as NodeJS.ErrnoException).code === 'ECONNRESET') {
					resolve(this.#send(path, lines, false));
				} else {
					reject(error);
				}
			});
			request.end();
		});
	}

	close(): void {
		this.#agent.destroy();
	}
}

const httpDate = /^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d\d:\d\d:\d\d GMT$/;
const headerLines = (observed: Observed, name: string) => observed.headers.filter(([key]) => key === name).map(([, value]) => value);
/** What must be byte-identical between two refusals: status, body and headers but the date and the connection's. */
export const signature = (observed: Observed) => JSON.stringify([observed.status, observed.body, observed.headers.filter(([name]) => !['date', 'connection', 'keep-alive'].includes(name))]);

/** Check one answer against the oracle's prediction; throws what is wrong. */
export function checkAnswer(route: RouteKind, lines: readonly WireLine[], expected: Expected, observed: Observed, basicReference: string | undefined): void {
	const details = {route, lines, expected, observed};
	if (!Number.isInteger(observed.status) || observed.status >= 500) {
		fail(`a ${observed.status} answer`, details);
	}

	const challenges = headerLines(observed, 'www-authenticate');
	const outsideGrammar = challenges.filter(challenge => !isChallenge(challenge));
	if (outsideGrammar.length > 0) {
		fail('a WWW-Authenticate value outside RFC 9110\'s challenge grammar', {...details, outsideGrammar});
	}

	// Never a credential sent, echoed in the answer.
	const texts = [observed.body, ...observed.headers.filter(([name, value]) => !(name === 'date' && httpDate.test(value))).map(([, value]) => value)];
	const echoed = secretsOf(lines).filter(secret => texts.some(text => text.includes(secret)));
	if (echoed.length > 0) {
		fail('a credential echoed in the answer', {...details, echoed});
	}

	if (expected.kind === 'node-rejects') {
		if (!expected.statuses.includes(observed.status) || challenges.length > 0 || observed.body !== '') {
			fail(`Node's own ${expected.statuses.join(' or ')} was expected`, details);
		}

		return;
	}

	if (observed.status !== expected.status) {
		fail(`status ${observed.status}, expected ${expected.status}`, details);
	}

	if (!isDeepStrictEqual(challenges, expected.challenges)) {
		fail('WWW-Authenticate differs from the prediction', details);
	}

	let body: unknown;
	try {
		body = JSON.parse(observed.body);
	} catch {
		fail('the body is not JSON', details);
	}

	if (!isDeepStrictEqual(body, expected.body) || headerLines(observed, 'content-type')[0] !== 'application/json; charset=utf-8') {
		fail('the body differs from the prediction', details);
	}

	// Basic: every failure is one byte-identical answer.
	if (route === 'basic' && expected.label === '401 basic' && basicReference !== undefined && signature(observed) !== basicReference) {
		fail('a Basic refusal that differs from the others', {...details, basicReference});
	}
}

/** The app behind the HTTP properties: the errors it emitted. */
export type FuzzServer = {readonly errors: readonly unknown[]};

const httpExpectedOutcomes: Record<RouteKind, readonly string[]> = {
	bearer: ['200 bearer', '401 no token', '401 other scheme', '400 malformed', '401 invalid token', '403 keys not accepted', 'node 400', 'node 431'],
	optional: ['200 bearer', '200 anonymous', '400 malformed', '401 invalid token', 'node 400', 'node 431'],
	keys: ['200 bearer', '200 token', '401 no token', '401 other scheme', '400 malformed', '401 invalid token', 'node 400', 'node 431'],
	basic: ['200 basic', '401 basic', 'node 400', 'node 431'],
	headerKey: ['200 api key', '401 no api key', '401 invalid api key', '400 malformed api key', 'node 400', 'node 431'],
};

/**
The property of one route: a hostile request over real HTTP, its answer checked against the
oracle. Its first request, with no credentials, is Basic's reference refusal.
*/
export async function httpProperty(route: RouteKind, server: FuzzServer, client: FuzzClient): Promise<FuzzProperty> {
	const reference = await client.send(routes.basic, []);
	if (reference.status !== 401) {
		throw new Error(`Basic's reference refusal is a ${reference.status}`);
	}

	const basicReference = signature(reference);
	const outcomes = new Map<string, number>();
	const property = fc.asyncProperty(requestLines(route), async lines => {
		const expected = predict(route, lines);
		count(outcomes, expected.kind === 'node-rejects' ? `node ${expected.statuses.join('/')}` : expected.label);
		const errorsBefore = server.errors.length;
		const observed = await client.send(routes[route], lines);
		checkAnswer(route, lines, expected, observed, basicReference);
		if (server.errors.length !== errorsBefore) {
			fail('the app emitted an error', {route, lines, errors: server.errors.slice(errorsBefore).map(String)});
		}
	});
	return {name: `HTTP ${routes[route]}`, check: checker(property, exampleRequests(route).map((lines): [WireLine[]] => [lines])), weight: 12, outcomes, expectedOutcomes: httpExpectedOutcomes[route]};
}
