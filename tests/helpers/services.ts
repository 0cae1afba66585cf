import test from 'ava';
import {databaseUrl, reachable, redisUrl} from './reachable.js';

export {databaseUrl, redisUrl};

/*
The real servers store tests run against: PostgreSQL at DATABASE_URL and Redis at REDIS_URL (with
the machine's defaults, in reachable.ts). On a machine without them the tests are skipped, saying so; with
REQUIRE_SERVICES=1 (as .ci/run sets) a missing server is a failure, so CI can never go green
without them.
*/

const required = process.env['REQUIRE_SERVICES'] === '1';

/**
Whether the service is there. When it is not: with REQUIRE_SERVICES=1, a failing test says which
server is missing; otherwise one skipped test says what was skipped and why.
*/
export async function serviceAvailable(name: 'PostgreSQL' | 'Redis', url: string): Promise<boolean> {
	const port = name === 'PostgreSQL' ? 5432 : 6379;
	if (await reachable(url, port)) {
		return true;
	}

	const redacted = url.replace(/\/\/[^@/]*@/, '//***@');
	if (required) {
		test(`${name} is reachable at ${redacted} (REQUIRE_SERVICES=1)`, t => {
			t.fail(`${name} is not reachable at ${redacted}: start it, or unset REQUIRE_SERVICES to skip these tests.`);
		});
	} else {
		console.warn(`Skipping the ${name} tests: nothing answers at ${redacted}. Set ${name === 'PostgreSQL' ? 'DATABASE_URL' : 'REDIS_URL'}, or start the server.`);
		test.skip(`${name} tests (no server at ${redacted})`, () => undefined);
	}

	return false;
}
