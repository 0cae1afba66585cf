// The benchmark's server process: one variant (named by its id, the first argument) on a loopback
// port, so that the load generator runs in another process (and on the other core). The parent
// starts a fresh one for each measurement window and stops it before starting the next.
import {once} from 'node:events';
import type {AddressInfo} from 'node:net';
import {variants, type VariantId} from './variants.js';

const id = process.argv[2] ?? '';
if (!Object.hasOwn(variants, id)) {
	throw new Error(`bench/server.ts: unknown variant ${JSON.stringify(id)}`);
}

const server = variants[id as VariantId].createApp().listen(0, '127.0.0.1');
await once(server, 'listening');
process.send?.({port: (server.address() as AddressInfo).port});
// The parent asks for the CPU time before and after the measured window, for the CPU cost per request.
process.on('message', message => {
	if (message === 'cpu') {
		process.send?.(process.cpuUsage());
	}
});
process.on('disconnect', () => {
	process.exit(0);
});
