import test, {type ExecutionContext} from 'ava';
import {createFuzzApp} from './fuzz/app.js';
import {isChallenge, predict, type WireLine} from './fuzz/oracle.js';
import {
	FuzzClient, checkAnswer, httpProperty, inProcessProperties, signature, type FuzzProperty, type Observed,
} from './fuzz/properties.js';
import {routeKinds, routes} from './fuzz/world.js';
import {listen} from './helpers/http.js';

/*
Property-based fuzzing with fast-check (see tests/fuzz/): the header parsers over any input, the
challenges of any configuration, and the whole middleware over real HTTP (five routes: bearer,
bearer optional, bearer with Token keys, Basic, header API key) against an oracle written from the
README's "Answers" table. A fixed seed
and a few thousand runs in all, so that `npm test` is repeatable and quick; `npm run fuzz` runs the
same properties a million times.
*/
const seed = 20_261_201;

async function checkProperty(t: ExecutionContext, property: FuzzProperty, numRuns: number, offset: number) {
	const result = await property.check(seed + offset, numRuns, true);
	t.false(result.failed, result.report);
	t.is(result.numRuns, numRuns);
	// The generators must reach every answer, or the property proves little.
	for (const outcome of property.expectedOutcomes) {
		t.true((property.outcomes.get(outcome) ?? 0) > 0, `${property.name}: no run reached "${outcome}"`);
	}
}

for (const [index, property] of inProcessProperties().entries()) {
	test(`fuzz: ${property.name} never throws and answers as the README and RFC 9110 say`, async t => {
		await checkProperty(t, property, property.name === 'parseAuthorizationHeader' ? 1500 : 500, index);
	});
}

for (const [index, route] of routeKinds.entries()) {
	test(`fuzz: HTTP ${routes[route]} answers every hostile request as the README says`, async t => {
		const {app, errors} = createFuzzApp();
		const client = new FuzzClient(await listen(t, app));
		t.teardown(() => {
			client.close();
		});
		await checkProperty(t, await httpProperty(route, {errors}, client), 300, 10 + index);
	});
}

test('the checks catch a 5xx, a challenge outside the grammar, an echoed credential and a Basic refusal that differs', t => {
	const lines: WireLine[] = [['Authorization', 'Bearer secret-token-value']];
	const expected = predict('bearer', lines);
	const answer: Observed = {
		status: 401,
		headers: [['www-authenticate', 'Bearer realm="api", error="invalid_token"'], ['content-type', 'application/json; charset=utf-8']],
		body: '{"error":"Token error: Invalid token"}',
	};
	t.notThrows(() => {
		checkAnswer('bearer', lines, expected, answer, undefined);
	});
	t.throws(() => {
		checkAnswer('bearer', lines, expected, {...answer, status: 500}, undefined);
	}, {message: /a 500 answer/});
	t.throws(() => {
		checkAnswer('bearer', lines, expected, {...answer, headers: [['www-authenticate', 'Bearer realm="api" error="invalid_token"']]}, undefined);
	}, {message: /outside RFC 9110/});
	t.throws(() => {
		checkAnswer('bearer', lines, expected, {...answer, headers: [...answer.headers, ['x-debug', 'token secret-token-value']]}, undefined);
	}, {message: /echoed/});
	t.throws(() => {
		checkAnswer('bearer', lines, expected, {...answer, body: '{"error":"Token error: Invalid token secret-token-value"}'}, undefined);
	}, {message: /echoed/});

	const basicLines: WireLine[] = [['Authorization', 'Basic Zm9vOmJhcg==']];
	const basicExpected = predict('basic', basicLines);
	const refusal: Observed = {
		status: 401,
		headers: [['www-authenticate', 'Basic realm="basic area", charset="UTF-8"'], ['content-type', 'application/json; charset=utf-8'], ['date', 'Tue, 01 Dec 2026 14:00:00 GMT']],
		body: '{"error":"Request error: Authentication required"}',
	};
	const reference = signature({...refusal, headers: [...refusal.headers.slice(0, 2), ['date', 'Wed, 02 Dec 2026 09:00:00 GMT']]});
	t.notThrows(() => {
		checkAnswer('basic', basicLines, basicExpected, refusal, reference);
	});
	t.throws(() => {
		checkAnswer('basic', basicLines, basicExpected, {...refusal, headers: [...refusal.headers, ['x-reason', 'wrong password']]}, reference);
	}, {message: /Basic refusal that differs/});
});

test('the challenge grammar', t => {
	for (const challenge of ['Bearer', 'Bearer realm="api"', 'Bearer realm="a \\"b\\" \\\\ c", error="invalid_token"', 'Basic realm=api, charset="UTF-8"', 'Negotiate abc+/==', 'ApiKey realm="machines" , header="X-MyApp-ApiKey"']) {
		t.true(isChallenge(challenge), challenge);
	}

	for (const challenge of ['', ' Bearer', 'Bearer  ', 'Bearer realm="api" error="x"', 'Bearer realm="unterminated', 'Bearer realm="a"b"', 'Bearer realm="api",', 'Bearer ,realm="api"', 'Bearer\trealm="api"', 'Bearer realm="\u0001"', 'Be"arer', 'Bearer a=b=c']) {
		t.false(isChallenge(challenge), challenge);
	}
});
