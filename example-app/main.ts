import type {AddressInfo} from 'node:net';
import {createExampleApp} from './app.js';
import {openStores} from './stores.js';

// Every environment variable the example app reads: these, and those of openStores (DATABASE_PATH).
const port = Number(process.env['PORT'] ?? 3000);
const host = process.env['HOST'] ?? '127.0.0.1';
// Who gets the admin permission on sign-up.
const admins = (process.env['ADMIN_USERS'] ?? 'admin').split(',').filter(Boolean);
// The machine-to-machine key. Never printed: without it, POST /m2m/ping refuses every key.
const machineKey = process.env['M2M_API_KEY'] ?? '';

const stores = await openStores(process.env);
// Failed requests are logged by the app itself, one summary line each on stderr (no bodies,
// headers, tokens or passwords).
const {app} = createExampleApp({stores, admins, machineKeys: machineKey === '' ? {} : {'example-cron': [machineKey]}});

const server = app.listen(port, host, () => {
	const {port: actualPort} = server.address() as AddressInfo;
	const url = `http://${host}:${actualPort}`;
	const json = '-H \'Content-Type: application/json\'';
	const alice = '\'{"username":"alice","password":"correct horse"}\'';
	const admin = `'{"username":"${admins[0] ?? 'admin'}","password":"correct horse"}'`;
	console.log(`koa-stateless-auth example listening on ${url} (data: ${stores.description})`);
	console.log('Try it in bash (keep prints a token pair and keeps it in $ACCESS and $REFRESH):');
	for (const line of [
		'keep() { echo "$1"; ACCESS=$(node -pe \'JSON.parse(process.argv[1]).access_token\' "$1"); REFRESH=$(node -pe \'JSON.parse(process.argv[1]).refresh_token\' "$1"); }',
		`curl -s -X POST ${url}/user ${json} -d ${alice}`,
		`keep "$(curl -s -X POST ${url}/token ${json} -d ${alice})"`,
		`curl -s ${url}/whoami -H "Authorization: Bearer $ACCESS"`,
		`curl -s ${url}/secret -H "Authorization: Bearer $ACCESS"`,
		`curl -s ${url}/sessions -H "Authorization: Bearer $ACCESS"`,
		`curl -s ${url}/public`,
		`curl -s -u 'alice:correct horse' ${url}/basic/whoami`,
		`keep "$(curl -s -X PUT ${url}/token -H "Authorization: Bearer $REFRESH")"`,
		`curl -s -X POST ${url}/token/revoke -d "token=$ACCESS" -w ' %{http_code}\\n'`,
		`curl -s -X POST ${url}/user ${json} -d ${admin}`,
		`keep "$(curl -s -X POST ${url}/token ${json} -d ${admin})"`,
		`curl -s ${url}/admin/users -H "Authorization: Bearer $ACCESS"`,
		`curl -s -X DELETE ${url}/token -H "Authorization: Bearer $REFRESH" -w '%{http_code}\\n'`,
		`curl -s -X POST ${url}/m2m/ping -H "X-Example-ApiKey: $M2M_API_KEY"${machineKey === '' ? '   # start with M2M_API_KEY set to enable it' : ''}`,
	]) {
		console.log(`  ${line}`);
	}
});

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
	process.once(signal, () => {
		server.close(() => {
			void stores.close();
		});
		server.closeAllConnections();
	});
}
