/*
`npm run fuzz`: the properties of tests/fuzz.test.ts, a million runs in all (FUZZ_RUNS to change),
from a random seed (FUZZ_SEED to replay one). The runs are shared by each property's weight (30
parseAuthorizationHeader, 10 getAuthorizationHeader, 4 challenges of any configuration, 12 each of
the five routes over real HTTP: 60 % of the runs are real requests, to one server on 127.0.0.1
over one keep-alive connection, except that a request with a control character Node refuses goes
on a connection of its own). Property p (from 0) runs in chunks of FUZZ_CHUNK
runs, chunk i from seed + p * 1e6 + i, and stops at its first failure, printing fast-check's report (with the
counterexample, the seed and the path to replay it). Exits non-zero on any failure.
*/
import http from 'node:http';
import type {AddressInfo} from 'node:net';
import process from 'node:process';
import {createFuzzApp} from './app.js';
import {FuzzClient, httpProperty, inProcessProperties, type FuzzProperty} from './properties.js';
import {routeKinds} from './world.js';

const totalRuns = Number(process.env['FUZZ_RUNS'] ?? 1_000_000);
const seed = Number(process.env['FUZZ_SEED'] ?? Math.floor(Math.random() * 0x7F_FF_FF_FF));
const chunk = Number(process.env['FUZZ_CHUNK'] ?? 10_000);
if (!Number.isSafeInteger(totalRuns) || totalRuns < 1 || !Number.isSafeInteger(seed) || !Number.isSafeInteger(chunk) || chunk < 1) {
	throw new TypeError('FUZZ_RUNS and FUZZ_CHUNK must be positive integers, FUZZ_SEED an integer.');
}

const crashes: unknown[] = [];
process.on('uncaughtException', error => crashes.push(error));
process.on('unhandledRejection', error => crashes.push(error));

const {app, errors} = createFuzzApp();
const handle = app.callback();
const server = http.createServer((request, response) => {
	void handle(request, response);
});
// The in-process properties block the event loop first, for longer than the default keep-alive
// timeout of 5 s: keep the connection open for as long as the run lasts.
server.keepAliveTimeout = 0;
await new Promise<void>(resolve => {
	server.listen(0, '127.0.0.1', resolve);
});
const client = new FuzzClient(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);

const properties: FuzzProperty[] = [...inProcessProperties()];
for (const route of routeKinds) {
	properties.push(await httpProperty(route, {errors}, client));
}

const totalWeight = properties.reduce((sum, property) => sum + property.weight, 0);
const seconds = (milliseconds: number) => `${(milliseconds / 1000).toFixed(1)} s`;

console.log(`fuzz: ${totalRuns} runs in all, seed ${seed}, chunks of ${chunk} (chunk i of property p runs from seed + p * 1e6 + i)`);
let allRuns = 0;
let allFailures = 0;
const started = performance.now();
let remaining = totalRuns;
for (const [index, property] of properties.entries()) {
	const share = index === properties.length - 1 ? remaining : Math.round(totalRuns * property.weight / totalWeight);
	remaining -= share;
	const propertySeed = seed + (index * 1_000_000);
	const propertyStarted = performance.now();
	let runs = 0;
	let failures = 0;
	for (let offset = 0, chunkIndex = 0; offset < share; offset += chunk, chunkIndex++) {
		// One property at a time, one request at a time.
		const result = await property.check(propertySeed + chunkIndex, Math.min(chunk, share - offset), chunkIndex === 0);
		runs += result.numRuns;
		if (result.failed) {
			failures++;
			console.log(`\n${property.name}: FAILED in the chunk of seed ${result.seed}\n${result.report ?? ''}\n`);
			break;
		}
	}

	const elapsed = performance.now() - propertyStarted;
	const missed = property.expectedOutcomes.filter(outcome => !property.outcomes.has(outcome));
	if (missed.length > 0) {
		failures++;
		console.log(`${property.name}: no run reached ${missed.map(outcome => `"${outcome}"`).join(', ')}`);
	}

	allRuns += runs;
	allFailures += failures;
	const outcomes = [...property.outcomes].sort(([a], [b]) => a.localeCompare(b)).map(([outcome, times]) => `${outcome}: ${times}`).join(', ');
	console.log(`${property.name.padEnd(31)} runs ${String(runs).padStart(8)}  failures ${failures}  seed ${propertySeed}  elapsed ${seconds(elapsed).padStart(8)}  (${Math.round(runs / (elapsed / 1000))}/s)`);
	console.log(`  outcomes: ${outcomes}`);
}

client.close();
server.closeAllConnections();
await new Promise<void>(resolve => {
	server.close(() => {
		resolve();
	});
});

if (errors.length > 0 || crashes.length > 0) {
	allFailures++;
	console.log(`the app emitted ${errors.length} errors; the process had ${crashes.length} uncaught exceptions or rejections`, [...errors, ...crashes].slice(0, 5));
}

console.log(`TOTAL runs ${allRuns}  failures ${allFailures}  seed ${seed}  elapsed ${seconds(performance.now() - started)}`);
process.exitCode = allFailures === 0 ? 0 : 1;
