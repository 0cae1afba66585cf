// What the cache tests and scripts share: instances of tests/cache/instance.ts as child processes, a
// redis-server of their own on a free port (never the machine's shared one), and JSON requests.
import {spawn, type ChildProcess} from 'node:child_process';
import {existsSync} from 'node:fs';
import {once} from 'node:events';
import net from 'node:net';
import {createInterface} from 'node:readline';

export const redisServerPath = '/usr/bin/redis-server';
export const haveRedisServer = existsSync(redisServerPath);

// One redis-server starter for every test that needs a Redis of its own.
export {freePort, startRedis} from '../fixtures/redis-helpers.js';

/** Send one command to a Redis over a plain socket (no client that would reconnect); answers the raw reply. */
export async function redisCommand(port: number, ...words: readonly string[]): Promise<string> {
	const socket = net.connect(port, '127.0.0.1');
	await once(socket, 'connect');
	const reply = new Promise<string>(resolve => {
		let text = '';
		socket.on('data', (chunk: Buffer) => {
			text += chunk.toString();
			socket.end();
		});
		socket.on('close', () => {
			resolve(text);
		});
	});
	socket.write(`*${words.length}\r\n${words.map(word => `$${Buffer.byteLength(word)}\r\n${word}\r\n`).join('')}`);
	return reply;
}

/** Stop our redis-server (SHUTDOWN NOSAVE) and wait for its process to end. */
export async function stopRedis(child: ChildProcess, port: number): Promise<void> {
	if (child.exitCode !== null || child.signalCode !== null) {
		return;
	}

	const exited = once(child, 'exit');
	await redisCommand(port, 'SHUTDOWN', 'NOSAVE');
	await exited;
}

export type Instance = {
	readonly url: string;
	readonly child: ChildProcess;
	/** Lines on stderr: a crash, an unhandled rejection. */
	readonly stderr: string[];
	stop(): void;
};

/** Start an instance with these environment variables; `nodeOptions` such as `--expose-gc`. */
export async function spawnInstance(env: Record<string, string>, nodeOptions: readonly string[] = []): Promise<Instance> {
	const child = spawn(process.execPath, [...nodeOptions, '--import=./ts-node-register.js', 'tests/cache/instance.ts'], {
		env: {...process.env, ...env},
		stdio: ['ignore', 'pipe', 'pipe'],
	});
	const stop = () => {
		if (child.exitCode === null && child.signalCode === null) {
			child.kill('SIGTERM');
		}
	};

	process.once('exit', stop);
	const stderr: string[] = [];
	createInterface({input: child.stderr}).on('line', line => {
		stderr.push(line);
	});
	const url = await new Promise<string>((resolve, reject) => {
		const timer = setTimeout(() => {
			reject(new Error(`The instance did not start within 30 s: ${stderr.join('\n')}`));
		}, 30_000);
		createInterface({input: child.stdout}).once('line', line => {
			clearTimeout(timer);
			resolve((JSON.parse(line) as {url: string}).url);
		});
		child.once('exit', code => {
			clearTimeout(timer);
			reject(new Error(`The instance exited (${String(code)}) before it listened: ${stderr.join('\n')}`));
		});
	});
	return {url, child, stderr, stop};
}

export type Answer = {readonly status: number; readonly body: unknown; readonly retryAfter: string | null};

/** One JSON request; answers the status, the parsed body and `Retry-After`. */
export async function call(url: string, path: string, {method = 'GET', token, body}: {method?: string; token?: string; body?: unknown} = {}): Promise<Answer> {
	const headers: Record<string, string> = {};
	if (token !== undefined) {
		headers['authorization'] = `Bearer ${token}`;
	}

	if (body !== undefined) {
		headers['content-type'] = 'application/json';
	}

	const response = await fetch(`${url}${path}`, {method, headers, ...(body === undefined ? {} : {body: JSON.stringify(body)})});
	const text = await response.text();
	let parsed: unknown = text;
	try {
		parsed = JSON.parse(text) as unknown;
	} catch {}

	return {status: response.status, body: parsed, retryAfter: response.headers.get('retry-after')};
}

export type Pair = {readonly access_token: string; readonly refresh_token: string};

export type Stats = {
	readonly pid: number;
	readonly cache: {readonly hits: number; readonly loads: number; readonly coalesced: number; readonly resets: number; readonly remoteInvalidations: number; readonly bypassed: number; readonly failures: number} | null;
	readonly bus: {readonly live: boolean} | null;
	readonly counts: {readonly find: number; readonly touch: number; readonly appErrors: number; readonly busErrors: number; readonly redisErrors: number};
	readonly statuses: Record<string, number>;
	readonly heapUsed: number;
	readonly collected: boolean;
};

export async function stats(url: string): Promise<Stats> {
	return (await call(url, '/stats')).body as Stats;
}

export const sleep = async (ms: number) => new Promise(resolve => {
	setTimeout(resolve, ms);
});

/** Poll `check` until it is true, or throw after `limit` ms. */
export async function until(check: () => Promise<boolean>, limit: number, what: string): Promise<number> {
	const started = performance.now();
	while (performance.now() - started < limit) {
		if (await check()) {
			return performance.now() - started;
		}

		await sleep(20);
	}

	throw new Error(`${what}: not within ${limit} ms`);
}
