import net from 'node:net';

// The machine's PostgreSQL and Redis as the store tests and the benchmark find them: the
// environment's DATABASE_URL and REDIS_URL, else these defaults. No test framework here, so that
// the benchmark can import it too.
export const databaseUrl = process.env['DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';
export const redisUrl = process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379';

/** Whether something accepts TCP connections at the URL's host and port, within a second. */
export async function reachable(url: string, defaultPort: number): Promise<boolean> {
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
