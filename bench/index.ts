// `npm run bench`: throughput over loopback HTTP and cost per call in-process, each variant against
// baselines measured in the same run, in interleaved rounds; medians and ratios, never one timing.
import {fork} from 'node:child_process';
import {once} from 'node:events';
import autocannon from 'autocannon';
import Koa, {type Middleware} from 'koa';
import {Bench} from 'tinybench';
import {benchToken, handWritten, handWrittenAsync, ours, oursAsync, variantHeaders} from './variants.js';

const rounds = Number(process.env['BENCH_ROUNDS'] ?? 9);
const seconds = Number(process.env['BENCH_SECONDS'] ?? 2);
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

async function load(name: string, port: number, duration: number): Promise<number> {
	const result = await autocannon({
		url: `http://127.0.0.1:${port}/`,
		connections,
		duration,
		headers: variantHeaders[name] ?? {},
	});
	if (result.non2xx > 0 || result.errors > 0) {
		throw new Error(`${name}: ${result.non2xx} non-2xx answers and ${result.errors} errors: the variant does not authenticate`);
	}

	return result.requests.average;
}

async function httpBenchmark(): Promise<void> {
	const serverOptions = {execArgv: ['--import=./ts-node-register.js']};
	const child = fork(new URL('server.ts', import.meta.url), [], serverOptions);
	const contextChild = fork(new URL('server.ts', import.meta.url), ['--async-context'], serverOptions);
	const [[mainPorts], [contextPorts]] = await Promise.all([once(child, 'message'), once(contextChild, 'message')]) as [[Record<string, number>], [Record<string, number>]];
	const ports = {...mainPorts, ...contextPorts};
	const names = Object.keys(ports);
	const samples = new Map<string, number[]>(names.map(name => [name, []]));
	try {
		for (const name of names) {
			await load(name, ports[name]!, 2); // Warm-up: JIT and connection set-up.
		}

		for (let round = 0; round < rounds; round++) {
			// Rotate the order each round so that no variant always runs first or last.
			for (const [index] of names.entries()) {
				const name = names[(index + round) % names.length]!;
				samples.get(name)!.push(await load(name, ports[name]!, seconds));
			}
		}
	} finally {
		child.disconnect();
		contextChild.disconnect();
	}

	// Ratios are taken within each round, between runs seconds apart, then their median: a
	// shared machine's load drifts more between rounds than within one.
	const ratioTo = (name: string, baseline: string) => median(samples.get(name)!.map((value, round) => value / samples.get(baseline)![round]!));
	console.log(`\nHTTP over loopback: ${rounds} interleaved rounds of ${seconds} s, ${connections} connections; medians\n`);
	printTable(
		['variant', 'req/s', 'vs bare Koa', 'vs hand-written', 'rounds (req/s)'],
		names.map(name => [
			name,
			format(median(samples.get(name)!)),
			format(ratioTo(name, 'bare Koa'), 2),
			format(ratioTo(name, 'hand-written bearer'), 2),
			samples.get(name)!.map(sample => format(sample)).join(' '),
		]),
	);
	const library = 'koa-stateless-auth';
	console.log(`\n${library} / hand-written: ${format(ratioTo(library, 'hand-written bearer'), 3)} (target >= 0.97); / koa-passport: ${format(ratioTo(library, 'koa-passport + passport-http-bearer'), 2)}`);
	console.log('(ratios: median over rounds of the ratio within each round)');
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
