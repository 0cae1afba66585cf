// `npm run bench`: throughput over loopback HTTP and cost per call in-process, each variant against
// the hand-written middleware with the same kind of loaders, measured in the same run in
// interleaved rounds; medians of per-round ratios and their range, never one timing.
//
// Over HTTP, every measurement window gets a fresh server process of its own, started after the
// previous one exited: servers kept alive side by side were measured by their start order.
import {fork, type ChildProcess} from 'node:child_process';
import {once} from 'node:events';
import autocannon from 'autocannon';
import Koa, {type Middleware} from 'koa';
import {Bench} from 'tinybench';
import {createOurs, createOursAsync, handWritten, handWrittenAsync, tokenList, variants, type Requests, type VariantId} from './variants.js';
import {hotTokens, storeVariants, type StoreVariantId} from './store-variants.js';

function setting(name: string, fallback: number, {minimum, integer}: {minimum: number; integer: boolean}): number {
	const raw = process.env[name];
	if (raw === undefined || raw.trim() === '') {
		return fallback;
	}

	const value = Number(raw);
	if (!Number.isFinite(value) || value < minimum || (integer && !Number.isInteger(value))) {
		throw new Error(`${name} must be ${integer ? 'an integer' : 'a number'} from ${minimum}, got ${JSON.stringify(raw)}`);
	}

	return value;
}

const rounds = setting('BENCH_ROUNDS', 5, {minimum: 1, integer: true});
const seconds = setting('BENCH_SECONDS', 1, {minimum: 0.2, integer: false});
const warmupSeconds = setting('BENCH_WARMUP_SECONDS', 1, {minimum: 0, integer: false});
const connections = setting('BENCH_CONNECTIONS', 50, {minimum: 1, integer: true});

function median(values: readonly number[]): number {
	const sorted = [...values].sort((a, b) => a - b);
	const middle = Math.floor(sorted.length / 2);
	return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

function format(value: number, digits = 0): string {
	return value.toLocaleString('en-US', {minimumFractionDigits: digits, maximumFractionDigits: digits});
}

/** "median (min–max)" of per-round ratios. */
function spread(values: readonly number[], digits = 3): string {
	return `${format(median(values), digits)} (${format(Math.min(...values), digits)}–${format(Math.max(...values), digits)})`;
}

function printTable(header: readonly string[], rows: ReadonlyArray<readonly string[]>): void {
	const widths = header.map((cell, column) => Math.max(cell.length, ...rows.map(row => row[column]!.length)));
	const line = (cells: readonly string[]) => `| ${cells.map((cell, column) => cell.padEnd(widths[column]!)).join(' | ')} |`;
	console.log(line(header));
	console.log(`|${widths.map(width => '-'.repeat(width + 2)).join('|')}|`);
	for (const row of rows) {
		console.log(line(row));
	}
}

/** Rotated left by `by`: the order of the variants changes each round. */
function rotate<T>(items: readonly T[], by: number): T[] {
	const shift = items.length === 0 ? 0 : by % items.length;
	return [...items.slice(shift), ...items.slice(0, shift)];
}

// --- HTTP ---

type Measurement = {
	readonly requestsPerSecond: number;
	readonly cpuMicrosecondsPerRequest: number;
	/** The load generator's (this process's) CPU time per request. */
	readonly clientCpuMicrosecondsPerRequest: number;
};
type Server = {readonly child: ChildProcess; readonly port: number};
/** Every variant the harness can measure: the middleware rows, and the cache's store rows. */
type AnyId = VariantId | StoreVariantId;
const every: Readonly<Record<AnyId, {readonly name: string; readonly baseline: AnyId | undefined; readonly requests: () => Requests; readonly prime?: boolean}>> = {...variants, ...storeVariants};

async function startServer(id: AnyId): Promise<Server> {
	const child = fork(new URL('server.ts', import.meta.url), [id], {execArgv: ['--import=./ts-node-register.js']});
	const port = await new Promise<number>((resolve, reject) => {
		child.once('message', message => {
			resolve((message as {port: number}).port);
		});
		child.once('error', reject);
		child.once('exit', code => {
			reject(new Error(`the server of ${id} exited (${code}) before it listened`));
		});
	});
	return {child, port};
}

/** Stops the server and waits for its process to be gone, so that no two servers ever overlap. */
async function stopServer({child}: Server): Promise<void> {
	if (child.exitCode !== null || child.signalCode !== null) {
		return;
	}

	const exited = once(child, 'exit');
	if (child.connected) {
		child.disconnect(); // The server exits on disconnect.
	} else {
		child.kill();
	}

	await exited;
}

/** The server process's CPU time so far, in microseconds (user + system), over IPC. */
async function cpuTime({child}: Server): Promise<number> {
	const reply = once(child, 'message') as Promise<[{user: number; system: number}]>;
	child.send('cpu');
	const [{user, system}] = await reply;
	return user + system;
}

async function load(id: AnyId, {port}: Server, requests: Requests, duration: number): Promise<autocannon.Result> {
	let next = 0;
	const result = await autocannon({
		url: `http://127.0.0.1:${port}/`,
		connections,
		duration,
		// Samples (and the check for the end) every 100 ms rather than every second: the window
		// ends within 100 ms of its duration. Throughput is counted over the whole window.
		sampleInt: 100,
		// One request, rebuilt each time with the next credentials of the list, whichever connection
		// sends it: consecutive requests carry consecutive tokens of the 1000. (A list of 1000
		// requests would be built by each connection when the window starts, and walked by all the
		// connections in step.)
		requests: [{
			setupRequest(request) {
				Object.assign(request.headers!, requests[next++ % requests.length]!.headers);
				return request;
			},
		}],
	});
	if (result.non2xx > 0 || result.errors > 0 || result.timeouts > 0 || result.requests.total === 0) {
		throw new Error(`${id}: ${result.non2xx} non-2xx answers, ${result.errors} errors and ${result.timeouts} timeouts in ${result.requests.total} requests: the variant does not authenticate`);
	}

	return result;
}

/**
Each request of the list once, before the warm-up (the store rows): a cache is filled and each
token's last use written, so that the warm-up's seconds warm the same code in every row, whether its
store answers in microseconds or in milliseconds.
*/
async function prime(id: AnyId, {port}: Server, requests: Requests): Promise<void> {
	let next = 0;
	const result = await autocannon({
		url: `http://127.0.0.1:${port}/`,
		connections,
		amount: requests.length,
		requests: [{
			setupRequest(request) {
				Object.assign(request.headers!, requests[next++ % requests.length]!.headers);
				return request;
			},
		}],
	});
	if (result.non2xx > 0 || result.errors > 0 || result.timeouts > 0) {
		throw new Error(`${id}: ${result.non2xx} non-2xx answers, ${result.errors} errors and ${result.timeouts} timeouts while priming`);
	}
}

/** One measurement window: a fresh server, warmed up by load that is not measured, then measured, then stopped. */
async function measureWindow(id: AnyId): Promise<Measurement> {
	const requests = every[id].requests();
	const server = await startServer(id);
	try {
		if (every[id].prime === true) {
			await prime(id, server, requests);
		}

		if (warmupSeconds > 0) {
			await load(id, server, requests, warmupSeconds);
		}

		const before = await cpuTime(server);
		const client = process.cpuUsage();
		const result = await load(id, server, requests, seconds);
		const {user, system} = process.cpuUsage(client);
		const after = await cpuTime(server);
		return {
			requestsPerSecond: result.requests.total / result.duration,
			cpuMicrosecondsPerRequest: (after - before) / result.requests.total,
			clientCpuMicrosecondsPerRequest: (user + system) / result.requests.total,
		};
	} finally {
		await stopServer(server);
	}
}

type Ratio = {readonly throughput: number; readonly cpu: number};
type Group<Id extends AnyId = VariantId> = {readonly baseline: Id; readonly members: readonly Id[]};

const allIds = Object.keys(variants) as VariantId[];

// Over HTTP the loader timeout's cost (about 0.1 µs a request, in-process) is far below the noise
// of a window: that row runs when asked for by name, or with BENCH_VARIANTS=all.
const defaultIds = allIds.filter(id => id !== 'ours-async-untimed');

/** BENCH_VARIANTS=ours-async,passport runs those (and the baselines they are paired with); `all`, every one. */
function selectedGroups(): Group[] {
	const raw = process.env['BENCH_VARIANTS']?.trim();
	const wanted: readonly string[] = raw === undefined || raw === '' ? defaultIds : raw === 'all' ? allIds : raw.split(',').map(id => id.trim()).filter(id => id !== '');
	const unknown = wanted.filter(id => !Object.hasOwn(variants, id));
	if (unknown.length > 0) {
		throw new Error(`BENCH_VARIANTS: unknown ${unknown.join(', ')}; the variants are ${allIds.join(', ')}`);
	}

	const groups = allIds
		.filter(id => variants[id].baseline === undefined)
		.map(baseline => ({baseline, members: allIds.filter(id => variants[id].baseline === baseline && wanted.includes(id))}))
		.filter(group => group.members.length > 0);
	if (groups.length === 0) {
		throw new Error(`BENCH_VARIANTS selects nothing to compare with a baseline: ${raw ?? ''}`);
	}

	return groups;
}

type Measured<Id extends AnyId> = {
	readonly raw: Map<Id, Measurement[]>;
	/** Per round, each variant's window against the geometric mean of its baseline's windows right before and after it. */
	readonly ratios: Map<Id, Ratio[]>;
};

/** `rounds` interleaved rounds over the groups: baseline, variant, baseline, variant, …, baseline. */
async function measureGroups<Id extends AnyId>(groups: ReadonlyArray<Group<Id>>, label: string): Promise<Measured<Id>> {
	const measured = groups.flatMap(group => [group.baseline, ...group.members]);
	const windows = groups.reduce((sum, group) => sum + (2 * group.members.length) + 1, 0);
	const raw = new Map<Id, Measurement[]>(measured.map(id => [id, []]));
	// Per round, each variant's window against the geometric mean of the baseline windows right
	// before and right after it: a shared machine's load drifts between windows seconds apart.
	const ratios = new Map<Id, Ratio[]>(measured.map(id => [id, []]));
	// About half a second to start a server (Node and ts-node), a tenth to stop it and read its CPU.
	const estimate = rounds * windows * (0.6 + warmupSeconds + seconds);
	console.error(`${label}: ${rounds} rounds of ${windows} windows (${warmupSeconds} s warm-up + ${seconds} s measured, each in a fresh server): about ${format(estimate / 60, 1)} min on an idle machine`);
	const run = async (id: Id) => {
		const measurement = await measureWindow(id);
		raw.get(id)!.push(measurement);
		return measurement;
	};

	for (let round = 0; round < rounds; round++) {
		const started = performance.now();
		// The headline group first in even rounds, last in odd ones; the order of the variants
		// within each group rotates: baseline, variant, baseline, variant, …, baseline.
		for (const group of round % 2 === 0 ? groups : [...groups].reverse()) {
			let before = await run(group.baseline);
			for (const id of rotate(group.members, round)) {
				const measurement = await run(id);
				const after = await run(group.baseline);
				ratios.get(id)!.push({
					throughput: measurement.requestsPerSecond / Math.sqrt(before.requestsPerSecond * after.requestsPerSecond),
					cpu: measurement.cpuMicrosecondsPerRequest / Math.sqrt(before.cpuMicrosecondsPerRequest * after.cpuMicrosecondsPerRequest),
				});
				before = after;
			}
		}

		const progress = groups.flatMap(group => group.members).map(id => `${id} ${format(ratios.get(id)!.at(-1)!.throughput, 3)}`);
		console.error(`round ${round + 1}/${rounds} (${format((performance.now() - started) / 1000, 1)} s): ${progress.join(', ')}`);
	}

	return {raw, ratios};
}

async function httpBenchmark(): Promise<void> {
	const groups = selectedGroups();
	const {raw, ratios} = await measureGroups(groups, 'HTTP');

	const header = ['variant', 'id', 'req/s', 'vs hand-written (range)', 'server CPU µs/req', 'CPU vs hand-written (range)', 'client CPU µs/req'];
	const rowsOf = (group: Group) => [group.baseline, ...group.members].map(id => {
		const measurements = raw.get(id)!;
		const paired = ratios.get(id)!;
		return [
			variants[id].name,
			id,
			format(median(measurements.map(sample => sample.requestsPerSecond))),
			paired.length === 0 ? '1 (baseline)' : spread(paired.map(ratio => ratio.throughput)),
			format(median(measurements.map(sample => sample.cpuMicrosecondsPerRequest)), 1),
			paired.length === 0 ? '1 (baseline)' : spread(paired.map(ratio => ratio.cpu)),
			format(median(measurements.map(sample => sample.clientCpuMicrosecondsPerRequest)), 1),
		];
	});
	const titles: Partial<Record<VariantId, string>> = {
		'hand-async': 'Loaders that return promises, as every real datastore does (headline)',
		hand: 'Synchronous loaders (a cache, a Map), other schemes, other libraries',
	};
	console.log(`\nHTTP over loopback: ${rounds} rounds; every window a fresh server process (one alive at a time), ${warmupSeconds} s of load not measured, then ${seconds} s measured; ${connections} connections; bearer requests rotate through 1000 tokens. Ratios: each variant's window against the hand-written windows right before and after it (geometric mean), median of the rounds and their range; req/s and CPU: medians of the windows`);
	for (const group of groups) {
		console.log(`\n${titles[group.baseline] ?? group.baseline}\n`);
		printTable(header, rowsOf(group));
	}

	// On a small machine the load generator may be the bottleneck: then throughput moves less than
	// the server's cost does, and the server's CPU per request is the measure of the middleware.
	const baselineWindows = groups.flatMap(group => raw.get(group.baseline)!);
	const clientCost = median(baselineWindows.map(sample => sample.clientCpuMicrosecondsPerRequest));
	const serverCost = median(baselineWindows.map(sample => sample.cpuMicrosecondsPerRequest));
	console.log(`\nThe load generator (autocannon, one process) spent ${format(clientCost, 1)} µs of CPU per request, the hand-written servers ${format(serverCost, 1)} µs.${clientCost > serverCost ? ' The load generator is the slower side: throughput is bounded by it at least as much as by the server, and moves less than the server\'s cost; the server CPU per request measures the middleware.' : ''}\n`);
	const has = (id: VariantId) => ratios.get(id) !== undefined && ratios.get(id)!.length > 0;
	const throughputs = (id: VariantId) => ratios.get(id)!.map(ratio => ratio.throughput);
	const cpus = (id: VariantId) => ratios.get(id)!.map(ratio => ratio.cpu);
	if (has('ours-async')) {
		const value = median(throughputs('ours-async'));
		console.log(`HEADLINE koa-stateless-auth / hand-written, async loaders, throughput: ${spread(throughputs('ours-async'))}; target >= 0.97: ${value >= 0.97 ? 'met' : 'NOT met'}. Server CPU per request: ${spread(cpus('ours-async'))}`);
		if (has('hand-async-again')) {
			// The same code against itself: how far from 1 a ratio lands by noise alone in this run.
			const control = throughputs('hand-async-again');
			const noise = Math.max(...control.map(ratio => Math.abs(ratio - 1)));
			if (noise > 0.03) {
				console.log(`  (this run cannot resolve a 3 % margin: the A/A control's throughput ratio was off 1 by up to ${format(noise * 100, 0)} %)`);
			}
		}
	}

	if (has('ours-async-untimed')) {
		console.log(`koa-stateless-auth with loaderTimeout: false / hand-written, async loaders, throughput: ${spread(throughputs('ours-async-untimed'))}; CPU per request: ${spread(cpus('ours-async-untimed'))}`);
	}

	if (has('hand-async-again')) {
		console.log(`A/A control, hand-written / the same hand-written, async loaders, throughput: ${spread(throughputs('hand-async-again'))}; CPU per request: ${spread(cpus('hand-async-again'))} (the noise of one paired ratio)`);
	}

	if (has('ours')) {
		console.log(`koa-stateless-auth / hand-written, sync loaders, throughput: ${spread(throughputs('ours'))}; CPU per request: ${spread(cpus('ours'))}`);
	}

	if (has('bare')) {
		console.log(`hand-written / bare Koa, sync loaders, throughput: ${spread(throughputs('bare').map(ratio => 1 / ratio))}`);
	}

	if (has('ours') && has('passport')) {
		// Both against the hand-written windows of the same round: their quotient, round by round.
		const ours = ratios.get('ours')!;
		const passport = ratios.get('passport')!;
		const throughput = ours.map((ratio, round) => ratio.throughput / passport[round]!.throughput);
		const cpu = ours.map((ratio, round) => passport[round]!.cpu / ratio.cpu);
		console.log(`koa-stateless-auth / koa-passport, same sync loaders, throughput: ${spread(throughput, 2)}; koa-passport's server CPU per request / ours: ${spread(cpu, 2)}`);
	}

	if (has('ours-async') && has('passport')) {
		const oursRate = median(raw.get('ours-async')!.map(sample => sample.requestsPerSecond));
		const passportRate = median(raw.get('passport')!.map(sample => sample.requestsPerSecond));
		console.log(`koa-stateless-auth with async loaders / koa-passport with sync loaders, median req/s (not paired): ${format(oursRate / passportRate, 2)}`);
	}
}

// --- In-process ---

/** Koa contexts for in-process calls, built by Koa itself from minimal requests, one per token. */
function createContexts(app: Koa) {
	const response = {getHeader: () => undefined, setHeader: () => undefined, removeHeader: () => undefined};
	return tokenList.map(token => {
		const authorization = `Bearer ${token}`;
		const request = {
			headers: {host: 'bench', authorization},
			rawHeaders: ['Host', 'bench', 'Authorization', authorization],
			url: '/',
			method: 'GET',
			socket: {},
		};
		return app.createContext(request as never, response as never);
	});
}

async function microBenchmark(): Promise<void> {
	const next = async () => undefined;
	const contexts = createContexts(new Koa());
	const batch = contexts.length;
	const empty = 'empty middleware (await next())';
	const hand = 'hand-written bearer, sync loaders';
	const handAsync = 'hand-written bearer, async loaders';
	// Each row: its middleware, and the row it is compared with (the same loaders).
	const rows: ReadonlyArray<readonly [string, Middleware, string]> = [
		[empty, async (_ctx, nextMiddleware) => nextMiddleware(), hand],
		[hand, handWritten, hand],
		['koa-stateless-auth, sync loaders', createOurs(), hand],
		[handAsync, handWrittenAsync, handAsync],
		['koa-stateless-auth, async loaders', createOursAsync(), handAsync],
		['koa-stateless-auth, async loaders, loaderTimeout: false', createOursAsync(false), handAsync],
	];
	const samples = new Map<string, number[]>(rows.map(([name]) => [name, []]));
	const ratios = new Map<string, number[]>(rows.map(([name]) => [name, []]));
	for (let round = 0; round < rounds; round++) {
		const bench = new Bench({time: 400, warmupTime: 100});
		for (const [name, middleware] of rotate(rows, round)) {
			bench.add(name, async () => {
				for (let call = 0; call < batch; call++) {
					await middleware(contexts[call]!, next);
				}
			});
		}

		await bench.run();
		const perCall = new Map<string, number>();
		for (const task of bench.tasks) {
			const {result} = task;
			if (result.state !== 'completed') {
				throw new Error(`${task.name}: ${result.state}`);
			}

			perCall.set(task.name, (result.latency.p50 * 1e6) / batch);
		}

		for (const [name, , baseline] of rows) {
			samples.get(name)!.push(perCall.get(name)!);
			ratios.get(name)!.push(perCall.get(name)! / perCall.get(baseline)!);
		}
	}

	const medianOf = (name: string) => median(samples.get(name)!);
	console.log(`\nIn-process: ${rounds} rounds of tinybench, each sample ${batch} sequential calls over 1000 contexts (one token each); ns per call, median of the rounds; ratios per round against the hand-written middleware with the same loaders, median (range)\n`);
	printTable(
		['middleware', 'ns/call', 'vs hand-written, same loaders (range)', 'above empty middleware (ns)'],
		rows.map(([name]) => [name, format(medianOf(name)), spread(ratios.get(name)!, 2), format(medianOf(name) - medianOf(empty))]),
	);
	console.log(`\nkoa-stateless-auth / hand-written cost per call, sync loaders: ${spread(ratios.get('koa-stateless-auth, sync loaders')!)} (target <= 1.10)`);
	console.log(`koa-stateless-auth / hand-written cost per call, async loaders: ${spread(ratios.get('koa-stateless-auth, async loaders')!)}; with loaderTimeout: false: ${spread(ratios.get('koa-stateless-auth, async loaders, loaderTimeout: false')!)}`);
	console.log(`cost of the default loaderTimeout per call, async loaders: ${format(medianOf('koa-stateless-auth, async loaders') - medianOf('koa-stateless-auth, async loaders, loaderTimeout: false'))} ns`);
}

// --- The verification cache: store rows, and the hot-token burst

const burstSeconds = setting('BENCH_BURST_SECONDS', 3, {minimum: 0.5, integer: false});
const burstConnections = setting('BENCH_BURST_CONNECTIONS', 200, {minimum: 1, integer: true});
/** VerificationCache's default TTL, which the store rows use. */
const cacheTtlSeconds = 5;

type StoreCalls = {
	readonly find: number;
	readonly touch: number;
	readonly cache: {readonly loads: number; readonly coalesced: number; readonly hits: number} | null;
};

/** The store calls the server process counted, over IPC. */
async function storeCallsOf({child}: Server): Promise<StoreCalls> {
	const reply = once(child, 'message') as Promise<[StoreCalls]>;
	child.send('store-calls');
	const [calls] = await reply;
	return calls;
}

/** A cold server hit by `burstConnections` connections with 10 hot tokens, for `burstSeconds`. */
async function burst(id: StoreVariantId): Promise<{requests: number; calls: StoreCalls}> {
	const server = await startServer(id);
	try {
		let next = 0;
		const result = await autocannon({
			url: `http://127.0.0.1:${server.port}/`,
			connections: burstConnections,
			duration: burstSeconds,
			sampleInt: 100,
			requests: [{
				setupRequest(request) {
					request.headers = {...request.headers, authorization: `Bearer ${hotTokens[next++ % hotTokens.length]!}`};
					return request;
				},
			}],
		});
		if (result.non2xx > 0 || result.errors > 0 || result.timeouts > 0) {
			throw new Error(`burst ${id}: ${result.non2xx} non-2xx answers, ${result.errors} errors and ${result.timeouts} timeouts in ${result.requests.total} requests`);
		}

		return {requests: result.requests.total, calls: await storeCallsOf(server)};
	} finally {
		await stopServer(server);
	}
}

async function cacheBenchmark(): Promise<void> {
	const ids = Object.keys(storeVariants) as StoreVariantId[];
	const available = new Map(await Promise.all(ids.map(async id => [id, await storeVariants[id].available()] as const)));
	const skipped = ids.filter(id => available.get(id) !== true);
	// BENCH_CACHE_VARIANTS=store-redis,store-redis-cached runs those rows (and the in-memory route) only.
	const wanted = process.env['BENCH_CACHE_VARIANTS']?.split(',').map(id => id.trim()).filter(id => id !== '');
	const unknown = (wanted ?? []).filter(id => !Object.hasOwn(storeVariants, id));
	if (unknown.length > 0) {
		throw new Error(`BENCH_CACHE_VARIANTS: unknown ${unknown.join(', ')}; the rows are ${ids.join(', ')}`);
	}

	const members = ids.filter(id => id !== 'store-memory' && available.get(id) === true && (wanted === undefined || wanted.includes(id)));
	const {raw, ratios} = await measureGroups([{baseline: 'store-memory', members}], 'Cache');
	console.log(`\nThe verification cache over HTTP: auth.useTokens(service) over each store, with VerificationCache (default options: TTL ${cacheTtlSeconds} s) and without, against the in-memory route (the same route over MemoryTokenStore, no cache); ${rounds} rounds, each window a fresh server process that seeds the store with the 1000 tokens before it listens, then one request per token (filling the cache, writing each last use), ${warmupSeconds} s of load not measured, then ${seconds} s measured (within one TTL of the priming: no lookups in it; in a steady state the cache adds one lookup per token in use per TTL, here at most 200 a second); ${connections} connections; requests rotate through the 1000 tokens. Ratios against the in-memory windows right before and after, median of the rounds and their range${skipped.length > 0 ? `. Not run (no server, or the store's module not built): ${skipped.join(', ')}` : ''}\n`);
	printTable(
		['variant', 'id', 'req/s', 'vs in-memory route (range)', 'server CPU µs/req', 'CPU vs in-memory (range)'],
		['store-memory' as const, ...members].map(id => {
			const paired = ratios.get(id)!;
			const measurements = raw.get(id)!;
			return [
				storeVariants[id].name,
				id,
				format(median(measurements.map(sample => sample.requestsPerSecond))),
				paired.length === 0 ? '1 (baseline)' : spread(paired.map(ratio => ratio.throughput)),
				format(median(measurements.map(sample => sample.cpuMicrosecondsPerRequest)), 1),
				paired.length === 0 ? '1 (baseline)' : spread(paired.map(ratio => ratio.cpu)),
			];
		}),
	);
	console.log('');
	for (const id of members) {
		const throughputs = ratios.get(id)!.map(ratio => ratio.throughput);
		const value = median(throughputs);
		if (storeVariants[id].cached) {
			console.log(`CACHE ${storeVariants[id].name} / in-memory route, throughput: ${spread(throughputs)}; target >= 0.9: ${value >= 0.9 ? 'met' : 'NOT met'}`);
		} else if (id === 'store-postgres' || id === 'store-redis') {
			console.log(`${storeVariants[id].name}, uncached / in-memory route, throughput: ${spread(throughputs)}`);
		}
	}

	// The burst: cold servers, many connections, few tokens; the store calls counted in the server.
	const stores = ['memory', 'sqlite', 'postgres', 'redis'] as const;
	const rows: string[][] = [];
	let worst = 0;
	for (const store of stores) {
		for (const cached of [false, true]) {
			const id = `store-${store}${cached ? '-cached' : ''}` as StoreVariantId;
			if (available.get(id) !== true || (wanted !== undefined && !wanted.includes(id) && !wanted.includes(`store-${store}-cached`))) {
				continue;
			}

			const {requests, calls} = await burst(id);
			const perToken = calls.find / hotTokens.length;
			const windows = Math.ceil(burstSeconds / cacheTtlSeconds);
			if (cached) {
				worst = Math.max(worst, perToken / windows);
			}

			rows.push([
				storeVariants[id].name, format(requests), format(calls.find), format(perToken, 1), format(calls.touch / hotTokens.length, 1),
				calls.cache === null ? '–' : format(calls.cache.coalesced), calls.cache === null ? '–' : format(calls.cache.hits),
			]);
			console.error(`burst ${id}: ${requests} requests, ${calls.find} store lookups, ${calls.touch} last-use writes`);
		}
	}

	console.log(`\nHot-token burst: a cold server (fresh process, empty cache), ${burstConnections} connections, ${hotTokens.length} tokens, ${burstSeconds} s (the cache's TTL is ${cacheTtlSeconds} s); store calls counted in the server process, read over IPC\n`);
	printTable(['store', 'requests', 'store lookups', 'lookups per token', 'last-use writes per token', 'coalesced', 'cache hits'], rows);
	console.log(`\nCACHE burst: at most ${format(worst, 1)} store lookup per token per TTL with the cache; target <= 1: ${worst <= 1 ? 'met' : 'NOT met'}`);
}

// BENCH_ONLY=http, micro or cache runs one part.
const only = process.env['BENCH_ONLY'];
if (only !== undefined && only !== '' && only !== 'http' && only !== 'micro' && only !== 'cache') {
	throw new Error(`BENCH_ONLY must be http, micro or cache, got ${JSON.stringify(only)}`);
}

const started = performance.now();
if (only === undefined || only === '' || only === 'http') {
	await httpBenchmark();
}

if (only === undefined || only === '' || only === 'micro') {
	await microBenchmark();
}

if (only === undefined || only === '' || only === 'cache') {
	await cacheBenchmark();
}

console.error(`\nbench: ${format((performance.now() - started) / 1000, 0)} s`);
