// The cache's fault script: `node --import=./ts-node-register.js bench/cache-faults.ts`.
// A redis-server of its own (a free port, nothing persisted; never the machine's shared Redis) holds
// the store and the invalidation bus of an instance with the cache on (tests/cache/instance.ts, run
// with --expose-gc). Redis is stopped with SHUTDOWN NOSAVE, then with SIGKILL, and restarted each
// time. While it is down every answer must be a 503 with Retry-After (never a 401, never the revoked
// token served); during the first outage FAULT_FAILURES failing requests (default 10^5) are sent,
// and the instance's heap is measured after a garbage collection FAULT_SAMPLES times (default 10);
// the process must stay up and service must resume by itself. Exits 1 when anything is off.
// `npm test` runs a short version (tests/cache/faults.test.ts).
import {runFaultScenario} from '../tests/cache/fault-scenario.js';

function setting(name: string, fallback: number): number {
	const raw = process.env[name];
	const value = raw === undefined || raw.trim() === '' ? fallback : Number(raw);
	if (!Number.isSafeInteger(value) || value < 1) {
		throw new Error(`${name} must be a positive integer, got ${JSON.stringify(raw)}`);
	}

	return value;
}

const failures = setting('FAULT_FAILURES', 100_000);
const samples = setting('FAULT_SAMPLES', 10);
const megabytes = (bytes: number) => (bytes / 1e6).toFixed(2);

const started = performance.now();
const report = await runFaultScenario({failures, samples, probe: 1000, kill: true, log: line => {
	console.error(line);
}});

console.log('\nOutages (Redis holds the store and the bus; the cache is on):\n');
console.log('| how Redis went | answers while down | violations | noticed after | service resumed after restart | bus live after restart |');
console.log('|---|---|---|---|---|---|');
for (const outage of report.outages) {
	console.log(`| ${outage.how} | ${Object.entries(outage.answers).map(([answer, count]) => `${count} × ${answer}`).join(', ')} | ${outage.violations.length} | ${outage.noticedAfter.toFixed(0)} ms | ${outage.resumedAfter.toFixed(0)} ms | ${outage.busLiveAfter.toFixed(0)} ms |`);
}

const [first] = report.heap;
const last = report.heap.at(-1)!;
const peak = Math.max(...report.heap.map(sample => sample.heapUsed));
console.log(`\nHeap of the instance over ${report.failures.requests.toLocaleString('en-US')} failing requests (${Math.round(report.failures.requests / report.failures.seconds).toLocaleString('en-US')}/s; statuses ${JSON.stringify(report.failures.statuses)}, ${report.failures.withoutRetryAfter} without a 503 and Retry-After), heapUsed after global.gc():\n`);
console.log('| failures | heapUsed (MB) |');
console.log('|---|---|');
for (const sample of report.heap) {
	console.log(`| ${sample.failures.toLocaleString('en-US')} | ${megabytes(sample.heapUsed)} |`);
}

const growth = last.heapUsed - first!.heapUsed;
console.log(`\nfirst ${megabytes(first!.heapUsed)} MB, last ${megabytes(last.heapUsed)} MB (${growth >= 0 ? '+' : ''}${megabytes(growth)} MB), peak ${megabytes(peak)} MB`);
console.log(`errors emitted on the app, by status: ${JSON.stringify(report.appErrors)}`);
console.log(`after recovery: the revoked token ${report.after.revoked}, a token of before the outage ${report.after.beforeOutage} (Redis persisted nothing), a new login ${report.after.newLogin}`);
console.log(`the instance ${report.crashed ? 'CRASHED' : 'stayed up'}; stderr: ${report.stderr.length === 0 ? 'empty' : report.stderr.join('\n')}`);

const problems = [
	...report.outages.flatMap(outage => outage.violations.map(violation => `${outage.how}: ${violation}`)),
	...(report.failures.withoutRetryAfter > 0 ? [`${report.failures.withoutRetryAfter} failing requests were not a 503 with Retry-After`] : []),
	...(growth > 8e6 ? [`the heap grew by ${megabytes(growth)} MB`] : []),
	...(report.after.revoked === 401 && report.after.newLogin === 200 ? [] : [`after recovery: ${JSON.stringify(report.after)}`]),
	...(report.crashed || report.stderr.length > 0 ? ['the instance crashed or wrote to stderr'] : []),
];
console.log(`\n${problems.length === 0 ? 'PASS' : `FAIL:\n${problems.join('\n')}`} (${((performance.now() - started) / 1000).toFixed(0)} s)`);
process.exitCode = problems.length === 0 ? 0 : 1;
