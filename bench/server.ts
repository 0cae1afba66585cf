// The benchmark's server process: one variant (named by its id, the first argument) on a loopback
// port, so that the load generator runs in another process (and on the other core). The parent
// starts a fresh one for each measurement window and stops it before starting the next.
import {once} from 'node:events';
import type {AddressInfo} from 'node:net';
import type Koa from 'koa';
import {variants} from './variants.js';
import {cacheStats, storeCalls, storeVariants} from './store-variants.js';

type Served = {readonly createApp: () => Koa | Promise<Koa>; readonly close?: () => Promise<void>};
const every: Readonly<Record<string, Served>> = {...variants, ...storeVariants};

const id = process.argv[2] ?? '';
if (!Object.hasOwn(every, id)) {
	throw new Error(`bench/server.ts: unknown variant ${JSON.stringify(id)}`);
}

const variant = every[id]!;
const server = (await variant.createApp()).listen(0, '127.0.0.1');
await once(server, 'listening');
process.send?.({port: (server.address() as AddressInfo).port});
// The parent asks for the CPU time before and after the measured window, for the CPU cost per
// request, and (store rows) for the store calls counted in this process.
process.on('message', message => {
	if (message === 'cpu') {
		process.send?.(process.cpuUsage());
	} else if (message === 'store-calls') {
		process.send?.({...storeCalls, cache: cacheStats() ?? null});
	}
});
process.on('disconnect', () => {
	server.closeAllConnections();
	void (async () => {
		try {
			await variant.close?.();
		} finally {
			process.exit(0);
		}
	})();
});
