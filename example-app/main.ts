import type {AddressInfo} from 'node:net';
import {randomBytes} from 'node:crypto';
import {fileURLToPath} from 'node:url';
import {createExampleApp} from './app.js';

const port = Number(process.env['PORT'] ?? 3000);
const host = process.env['HOST'] ?? '127.0.0.1';
const databasePath = process.env['DATABASE_PATH'] ?? fileURLToPath(new URL('example.sqlite', import.meta.url));

// Who gets the admin permission on sign-up, and the machine-to-machine key (a fresh one each
// start unless given; printed below so the curl line works).
const admins = (process.env['ADMIN_USERS'] ?? 'admin').split(',').filter(Boolean);
const machineKey = process.env['M2M_API_KEY'] ?? randomBytes(32).toString('base64url');

const {app, close} = createExampleApp({databasePath, admins, machineKeys: {'example-cron': [machineKey]}});
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
	console.log(`Also: GET /admin/users (users in ADMIN_USERS=${admins.join(',')}), GET /basic/whoami (curl -u alice:'correct horse'), and`);
	console.log(`  curl -s -X POST ${url}/m2m/ping -H 'X-Example-ApiKey: ${machineKey}'`);
});

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
	process.once(signal, () => {
		server.close(() => {
			close();
		});
		server.closeAllConnections();
	});
}
