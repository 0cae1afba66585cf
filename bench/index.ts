// `npm run bench`: throughput over loopback HTTP and cost per call in-process, each variant against
// baselines measured in the same run, in interleaved rounds; medians and ratios, never one timing.
import {fork, type ChildProcess} from 'node:child_process';
import {once} from 'node:events';
import autocannon from 'autocannon';
import Koa, {type Middleware} from 'koa';
import {Bench} from 'tinybench';
import {benchToken, handWritten, handWrittenAsync, ours, oursAsync, variantHeaders} from './variants.js';

const rounds = Number(process.env['BENCH_ROUNDS'] ?? 8);
const seconds = Number(process.env['BENCH_SECONDS'] ?? 1);
const connections = Number(process.env['BENCH_CONNECTIONS'] ?? 10);

function median(values: readonly number[]): number {
	const sorted = [...values].sort((a, b) => a - b);
	const middle = Math.floor(sorted.length / 2);
	return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

function format(value: number, digits = 0): string {
	return value.toLocaleString('en-US', {minimumFractionDigits: digits, maximumFractionDigits: digits});
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

type Measurement = {readonly requestsPerSecond: number; readonly cpuMicrosecondsPerRequest: number};

/** The server process's CPU time so far, in microseconds (user + system). */
async function cpuTime(server: ChildProcess): Promise<number> {
	const reply = once(server, 'message') as Promise<[{user: number; system: number}]>;
	server.send('cpu');
	const [{user, system}] = await reply;
	return user + system;
}

async function measure(name: string, server: ChildProcess, port: number, duration: number): Promise<Measurement> {
	const before = await cpuTime(server);
	const result = await autocannon({
		url: `http://127.0.0.1:${port}/`,
		connections,
		duration,
		headers: variantHeaders[name] ?? {},
	});
	const after = await cpuTime(server);
	if (result.non2xx > 0 || result.errors > 0) {
		throw new Error(`${name}: ${result.non2xx} non-2xx answers and ${result.errors} errors: the variant does not authenticate`);
	}

	return {requestsPerSecond: result.requests.average, cpuMicrosecondsPerRequest: (after - before) / result.requests.total};
}

const baseline = 'hand-written bearer';

async function httpBenchmark(): Promise<void> {
	const serverOptions = {execArgv: ['--import=./ts-node-register.js']};
	const main = fork(new URL('server.ts', import.meta.url), [], serverOptions);
	const contextual = fork(new URL('server.ts', import.meta.url), ['--async-context'], serverOptions);
	const [[mainPorts], [contextPorts]] = await Promise.all([once(main, 'message'), once(contextual, 'message')]) as [[Record<string, number>], [Record<string, number>]];
	const servers = new Map<string, [ChildProcess, number]>([
		...Object.entries(mainPorts).map(([name, port]): [string, [ChildProcess, number]] => [name, [main, port]]),
		...Object.entries(contextPorts).map(([name, port]): [string, [ChildProcess, number]] => [name, [contextual, port]]),
	]);
	const run = async (name: string, duration: number) => {
		const [server, port] = servers.get(name)!;
		return measure(name, server, port, duration);
	};

	const others = [...servers.keys()].filter(name => name !== baseline);
	const ratios = new Map<string, Array<{throughput: number; cpu: number}>>(others.map(name => [name, []]));
	const raw = new Map<string, Measurement[]>([...servers.keys()].map(name => [name, []]));
	try {
		for (const name of servers.keys()) {
			await run(name, 1); // Warm-up: JIT and connection set-up.
		}

		for (let round = 0; round < rounds; round++) {
			// Each variant is measured right after a run of the baseline, and its ratio is taken
			// against that run: a shared machine's load drifts between windows seconds apart. The
			// order rotates each round.
			for (const [index] of others.entries()) {
				const name = others[(index + round) % others.length]!;
				const reference = await run(baseline, seconds);
				const measured = await run(name, seconds);
				raw.get(baseline)!.push(reference);
				raw.get(name)!.push(measured);
				ratios.get(name)!.push({
					throughput: measured.requestsPerSecond / reference.requestsPerSecond,
					cpu: measured.cpuMicrosecondsPerRequest / reference.cpuMicrosecondsPerRequest,
				});
			}
		}
	} finally {
		main.disconnect();
		contextual.disconnect();
	}

	console.log(`\nHTTP over loopback: ${rounds} rounds, each variant ${seconds} s right after ${seconds} s of the hand-written baseline, ${connections} connections; medians\n`);
	printTable(
		['variant', 'req/s', 'throughput vs hand-written', 'server CPU µs/req', 'CPU vs hand-written'],
		[...servers.keys()].map(name => {
			const measurements = raw.get(name)!;
			const paired = ratios.get(name);
			return [
				name,
				format(median(measurements.map(sample => sample.requestsPerSecond))),
				paired === undefined ? '1.00' : format(median(paired.map(ratio => ratio.throughput)), 3),
				format(median(measurements.map(sample => sample.cpuMicrosecondsPerRequest)), 1),
				paired === undefined ? '1.00' : format(median(paired.map(ratio => ratio.cpu)), 3),
			];
		}),
	);
	const ratioOf = (name: string) => median(ratios.get(name)!.map(ratio => ratio.throughput));
	console.log(`\nkoa-stateless-auth / hand-written throughput: ${format(ratioOf('koa-stateless-auth'), 3)} (target >= 0.97); hand-written / bare Koa: ${format(1 / ratioOf('bare Koa'), 3)}; koa-stateless-auth / koa-passport: ${format(ratioOf('koa-stateless-auth') / ratioOf('koa-passport + passport-http-bearer'), 2)}`);
}

/** A Koa context for in-process calls, built by Koa itself from a minimal request. */
function createContext(app: Koa) {
	const authorization = `Bearer ${benchToken}`;
	const request = {
		headers: {host: 'bench', authorization},
		rawHeaders: ['Host', 'bench', 'Authorization', authorization],
		url: '/',
		method: 'GET',
		socket: {},
	};
	const response = {getHeader: () => undefined, setHeader: () => undefined, removeHeader: () => undefined};
	return app.createContext(request as never, response as never);
}

async function microBenchmark(): Promise<void> {
	const app = new Koa();
	const next = async () => undefined;
	const batch = 1000;
	const variants: Record<string, Middleware> = {
		'empty middleware (await next())': async (_ctx, nextMiddleware) => nextMiddleware(),
		'hand-written bearer': handWritten,
		'koa-stateless-auth': ours,
		'hand-written bearer, async loaders': handWrittenAsync,
		'koa-stateless-auth, async loaders': oursAsync,
	};
	const samples = new Map<string, number[]>(Object.keys(variants).map(name => [name, []]));
	for (let round = 0; round < rounds; round++) {
		const bench = new Bench({time: 400, warmupTime: 100});
		for (const [name, middleware] of Object.entries(variants)) {
			const ctx = createContext(app);
			bench.add(name, async () => {
				for (let call = 0; call < batch; call++) {
					await middleware(ctx, next);
				}
			});
		}

		await bench.run();
		for (const task of bench.tasks) {
			const {result} = task;
			if (result.state !== 'completed') {
				throw new Error(`${task.name}: ${result.state}`);
			}

			samples.get(task.name)!.push((result.latency.p50 * 1e6) / batch);
		}
	}

	const medians = new Map([...samples].map(([name, values]) => [name, median(values)]));
	const hand = medians.get('hand-written bearer')!;
	const handAsync = medians.get('hand-written bearer, async loaders')!;
	const empty = medians.get('empty middleware (await next())')!;
	console.log(`\nIn-process: ${rounds} rounds of tinybench, ${batch} sequential calls a sample; median ns per call\n`);
	printTable(
		['middleware', 'ns/call (median)', 'vs hand-written (same loaders)', 'above empty middleware (ns)'],
		[...medians].map(([name, value]) => [name, format(value), format(value / (name.endsWith('async loaders') ? handAsync : hand), 2), format(value - empty)]),
	);
	console.log(`\nkoa-stateless-auth / hand-written cost per call: ${format(medians.get('koa-stateless-auth')! / hand, 3)} (target <= 1.10); with async loaders: ${format(medians.get('koa-stateless-auth, async loaders')! / handAsync, 3)}`);
}

// BENCH_ONLY=http or BENCH_ONLY=micro runs one half.
const only = process.env['BENCH_ONLY'];
if (only !== 'micro') {
	await httpBenchmark();
}

if (only !== 'http') {
	await microBenchmark();
}
