// The benchmark's server process: every variant on its own loopback port, so the load generator
// runs in another process (and on the other core).
import type {AddressInfo} from 'node:net';
import {createAsyncContextApp, createVariantApps} from './variants.js';

const ports: Record<string, number> = {};
const apps = process.argv.includes('--async-context') ? createAsyncContextApp() : createVariantApps();
for (const [name, app] of Object.entries(apps)) {
	const server = app.listen(0, '127.0.0.1');
	await new Promise(resolve => server.once('listening', resolve));
	ports[name] = (server.address() as AddressInfo).port;
}

process.send?.(ports);
// The parent asks for the CPU time before and after each window, for the CPU cost per request.
process.on('message', message => {
	if (message === 'cpu') {
		process.send?.(process.cpuUsage());
	}
});
process.on('disconnect', () => {
	process.exit(0);
});
