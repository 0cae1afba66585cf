// The fault test, short (bench/cache-faults.ts is the long one, with 10^5 failures): a redis-server
// of the test's own (a free port, nothing persisted; never the machine's shared one) holds the store
// and the invalidation bus of an instance with the cache on, and is stopped and restarted under it.
// While it is down every answer is a 503 with Retry-After (never a 401, never the revoked token
// served, though the valid one was cached); the process stays up; its heap does not grow with the
// failures; service resumes by itself. See tests/cache/fault-scenario.ts.
import test from 'ava';
import {haveRedisServer, redisServerPath} from './helpers.js';
import {runFaultScenario} from './fault-scenario.js';

if (haveRedisServer) {
	test('Redis stopped and restarted under an instance with the cache on: 503 with Retry-After while down, a flat heap, service resumes', async t => {
		const report = await runFaultScenario({failures: 4000, samples: 2, probe: 500, kill: false, log: line => {
			t.log(line);
		}});
		for (const outage of report.outages) {
			t.deepEqual(outage.violations, [], outage.how);
			t.true(Object.keys(outage.answers).length > 0);
		}

		t.is(report.failures.requests, 4000);
		t.deepEqual(Object.keys(report.failures.statuses), ['503']);
		t.is(report.failures.withoutRetryAfter, 0);
		t.true((report.appErrors['503'] ?? 0) >= 4000, 'each 503 was emitted on the app');
		const [first, ...rest] = report.heap;
		const growth = Math.max(...rest.map(sample => sample.heapUsed)) - first!.heapUsed;
		t.log(`heapUsed after a collection: ${report.heap.map(sample => `${sample.failures} failures ${(sample.heapUsed / 1e6).toFixed(2)} MB`).join(', ')}`);
		t.true(growth < 4e6, `the heap grew by ${(growth / 1e6).toFixed(2)} MB over the failures`);
		t.deepEqual(report.after, {revoked: 401, beforeOutage: 401, newLogin: 200}, 'nothing was persisted: old tokens are gone; the revoked one stays refused; a new login works');
		t.false(report.crashed);
		t.deepEqual(report.stderr, []);
	});
} else if (process.env['REQUIRE_SERVICES'] === '1') {
	test(`${redisServerPath} is installed (REQUIRE_SERVICES=1)`, t => {
		t.fail(`The cache fault test starts a redis-server of its own, and there is none at ${redisServerPath}.`);
	});
} else {
	test.skip(`cache fault test (no ${redisServerPath})`, () => undefined);
}
