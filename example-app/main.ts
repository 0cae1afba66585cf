import type {AddressInfo} from 'node:net';
import {fileURLToPath} from 'node:url';
import {createExampleApp} from './app.js';

const port = Number(process.env['PORT'] ?? 3000);
const host = process.env['HOST'] ?? '127.0.0.1';
const databasePath = process.env['DATABASE_PATH'] ?? fileURLToPath(new URL('example.sqlite', import.meta.url));

const {app, close} = createExampleApp({databasePath});
app.on('error', (error: unknown) => {
	console.error('request failed:', error);
});

const server = app.listen(port, host, () => {
	const {port: actualPort} = server.address() as AddressInfo;
	const url = `http://${host}:${actualPort}`;
	console.log(`koa-stateless-auth example listening on ${url} (database: ${databasePath})`);
	console.log('Create a user, then get a token:');
	console.log(`  curl -s -X POST ${url}/user -H 'Content-Type: application/json' -d '{"username":"alice","password":"correct horse"}'`);
	console.log(`  curl -s -X POST ${url}/token -H 'Content-Type: application/json' -d '{"username":"alice","password":"correct horse"}'`);
	console.log(`  curl -s ${url}/whoami -H 'Authorization: Bearer <access_token>'`);
});

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
	process.once(signal, () => {
		server.close(() => {
			close();
		});
		server.closeAllConnections();
	});
}
