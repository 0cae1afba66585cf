import net from 'node:net';
import test from 'ava';

/*
The real servers store tests run against: PostgreSQL at DATABASE_URL and Redis at REDIS_URL (the
machine's defaults below). On a machine without them the tests are skipped, saying so; with
REQUIRE_SERVICES=1 (as .ci/run sets) a missing server is a failure, so CI can never go green
without them.
*/

export const databaseUrl = process.env['DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';
export const redisUrl = process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379';
const required = process.env['REQUIRE_SERVICES'] === '1';

/** Whether something accepts TCP connections at the URL's host and port, within a second. */
async function reachable(url: string, defaultPort: number): Promise<boolean> {
	const {hostname, port} = new URL(url);
	return new Promise(resolve => {
		const socket = net.connect({host: hostname.replace(/^\[|\]$/g, ''), port: Number(port || defaultPort)});
		const done = (answer: boolean) => {
			socket.destroy();
			resolve(answer);
		};

		socket.setTimeout(1000, () => {
			done(false);
		});
		socket.once('connect', () => {
			done(true);
		});
		socket.once('error', () => {
			done(false);
		});
	});
}

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
