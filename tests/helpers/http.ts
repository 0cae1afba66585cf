import http from 'node:http';
import net from 'node:net';
import type {AddressInfo} from 'node:net';
import type {ExecutionContext} from 'ava';
import type Koa from 'koa';

/** Serve `app` on a free loopback port for the length of the test; resolves to its base URL. */
export async function listen(t: ExecutionContext, app: Koa): Promise<string> {
	const handle = app.callback();
	const server = http.createServer((request, response) => {
		void handle(request, response);
	});
	await new Promise<void>(resolve => {
		server.listen(0, '127.0.0.1', resolve);
	});
	t.teardown(async () => {
		await new Promise<void>(resolve => {
			server.close(() => {
				resolve();
			});
			server.closeAllConnections();
		});
	});
	const {port} = server.address() as AddressInfo;
	return `http://127.0.0.1:${port}`;
}

export type RawResponse = {
	status: number;
	/** Header lines as received, names lower-cased, repeated names kept apart. */
	headers: Array<[string, string]>;
	body: string;
	header(name: string): string | undefined;
	headerLines(name: string): string[];
};

/**
Send a request byte for byte as written, for what `fetch` refuses or normalises: repeated
header lines, tabs, raw bytes. `lines` are `[name, value]` pairs sent in order.
*/
export async function rawRequest(baseUrl: string, path: string, lines: Array<[string, string]>, method = 'GET', requestBody = ''): Promise<RawResponse> {
	const {hostname, port} = new URL(baseUrl);
	const head = [`${method} ${path} HTTP/1.1`, `Host: ${hostname}:${port}`, 'Connection: close', ...lines.map(([name, value]) => `${name}: ${value}`)];
	const chunks: Buffer[] = [];
	await new Promise<void>((resolve, reject) => {
		const socket = net.connect(Number(port), hostname, () => {
			// Written, not ended: Node's server drops a request whose client half-closed before the
			// answer was written (a route that answers after a timer). It closes after answering.
			socket.write(Buffer.from(`${head.join('\r\n')}\r\n\r\n${requestBody}`, 'latin1'));
		});
		socket.on('data', chunk => chunks.push(chunk));
		socket.on('end', resolve);
		socket.on('error', reject);
	});
	const text = Buffer.concat(chunks).toString('latin1');
	const split = text.indexOf('\r\n\r\n');
	const [statusLine = '', ...headerLines] = text.slice(0, split).split('\r\n');
	const headers = headerLines.map((line): [string, string] => {
		const colon = line.indexOf(':');
		return [line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim()];
	});
	let body = text.slice(split + 4);
	if (headers.some(([name, value]) => name === 'transfer-encoding' && value === 'chunked')) {
		body = decodeChunked(body);
	}

	return {
		status: Number(statusLine.split(' ')[1]),
		headers,
		body,
		header: name => headers.find(([key]) => key === name.toLowerCase())?.[1],
		headerLines: name => headers.filter(([key]) => key === name.toLowerCase()).map(([, value]) => value),
	};
}

function decodeChunked(body: string): string {
	let result = '';
	let rest = body;
	for (;;) {
		const lineEnd = rest.indexOf('\r\n');
		const size = Number.parseInt(rest.slice(0, lineEnd), 16);
		if (!size) {
			return result;
		}

		result += rest.slice(lineEnd + 2, lineEnd + 2 + size);
		rest = rest.slice(lineEnd + 2 + size + 2);
	}
}
