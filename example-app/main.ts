import type {AddressInfo} from 'node:net';
import {apiPrefix, createExampleApp, ensureAdmin} from './app.js';
import {openStores} from './stores.js';

// Every environment variable the example app reads: these, and those of openStores (DATABASE_PATH,
// DATABASE_URL, REDIS_URL).
const port = Number(process.env['PORT'] ?? 3000);
const host = process.env['HOST'] ?? '127.0.0.1';
// The first admin, made at start when ADMIN_PASSWORD is set and no user has the name. Never printed.
const adminUsername = process.env['ADMIN_USERNAME'] ?? 'admin';
const adminPassword = process.env['ADMIN_PASSWORD'] ?? '';
// The machine-to-machine key. Never printed: without it, POST /m2m/ping refuses every key.
const machineKey = process.env['M2M_API_KEY'] ?? '';

const stores = await openStores(process.env);
let admin = 'none: start with ADMIN_PASSWORD set to make one';
if (adminPassword !== '') {
	try {
		const outcome = await ensureAdmin(stores.users, {username: adminUsername, password: adminPassword});
		admin = {
			created: `${adminUsername} (created)`,
			exists: adminUsername,
			'exists-without-permission': `none: the user ${adminUsername} exists without the admin permission, and was left so; choose another ADMIN_USERNAME`,
		}[outcome];
	} catch (error) {
		// The message says which of the two is wrong, never the password.
		console.error(error instanceof Error ? error.message : 'The admin account could not be made.');
		await stores.close();
		process.exit(1);
	}
}

// Failed requests are logged by the app itself, one summary line each on stderr (no bodies,
// headers, tokens or passwords).
const {app} = createExampleApp({stores, machineKeys: machineKey === '' ? {} : {'example-cron': [machineKey]}});

/** The walkthrough `npm start` prints: every route, in an order that works when pasted into bash. */
function curlLines(url: string): string[] {
	const a = `${url}${apiPrefix}`;
	const json = '-H \'Content-Type: application/json\'';
	const bearer = '-H "Authorization: Bearer $ACCESS"';
	const status = '-w \'%{http_code}\\n\'';
	const alice = (password: string) => `-d '{"username":"alice","password":"${password}"}'`;
	const adminNote = adminPassword === '' ? '   # start with ADMIN_PASSWORD set for the admin lines' : '';
	return [
		'# keep: prints a token pair and keeps it in $ACCESS and $REFRESH; field: reads a field of the JSON on stdin',
		'keep() { echo "$1"; ACCESS=$(node -pe \'JSON.parse(process.argv[1]).access_token\' "$1"); REFRESH=$(node -pe \'JSON.parse(process.argv[1]).refresh_token\' "$1"); }',
		'field() { node -pe "process.argv[1].split(\'.\').reduce((value, key) => value[key], JSON.parse(require(\'fs\').readFileSync(0)))" "$1"; }',
		'# sign up (201; 409 if taken), then log in: a session (JSON, or the form of RFC 6749)',
		`curl -s -X POST ${url}/user ${json} ${alice('correct horse')}`,
		`keep "$(curl -s -X POST ${a}/login ${json} -d '{"username":"alice","password":"correct horse","name":"laptop"}')"`,
		'# the app\'s own routes, with the same tokens',
		`curl -s ${url}/whoami ${bearer}`,
		`curl -s ${url}/secret ${bearer}`,
		`curl -s ${url}/public`,
		`curl -s ${url}/basic/whoami -u 'alice:correct horse'`,
		'# who I am; my profile',
		`curl -s ${a}/me ${bearer}`,
		`curl -s -X PUT ${a}/me/profile ${bearer} ${json} -d '{"profile":{"nickname":"al"}}'`,
		'# refresh: a new pair, the old one stops working (sent again after 10 s: the session is revoked)',
		`keep "$(curl -s -X POST ${a}/refresh ${json} -d "{\\"refresh_token\\":\\"$REFRESH\\"}")"`,
		'# my sessions; log out another one (a second login, from a phone)',
		`curl -s -X POST ${a}/login -d 'grant_type=password&username=alice&password=correct+horse&name=phone' -o /dev/null`,
		`curl -s ${a}/sessions ${bearer}`,
		`OTHER=$(curl -s ${a}/sessions ${bearer} | node -pe "JSON.parse(require('fs').readFileSync(0)).sessions.find(session => !session.current).id")`,
		`curl -s -X DELETE ${a}/sessions/$OTHER ${bearer} ${status}`,
		'# change my password (204; 400 invalid_password if the current one is wrong; 429 after too many)',
		`curl -s -X PUT ${a}/password ${bearer} ${json} -d '{"oldPassword":"correct horse","newPassword":"battery staple","endOtherSessions":true}' ${status}`,
		'# an API key (shown once), listed by hint; it works where keys are allowed (403 elsewhere); revoked',
		`CREATED=$(curl -s -X POST ${a}/api-keys ${bearer} ${json} -d '{"name":"backup script"}'); KEY=$(echo "$CREATED" | field key); KEY_ID=$(echo "$CREATED" | field id)`,
		`curl -s ${a}/api-keys ${bearer}`,
		`curl -s ${url}/whoami -H "Authorization: Token $KEY"`,
		`curl -s ${a}/me -H "Authorization: Token $KEY"`,
		`curl -s ${url}/secret -H "Authorization: Token $KEY" -w ' %{http_code}\\n'`,
		`curl -s -X DELETE ${a}/api-keys/$KEY_ID ${bearer} ${status}`,
		'# log out: this session; RFC 7009 revocation with either token (no access token needed); everywhere',
		`curl -s -X POST ${a}/logout ${bearer} ${status}`,
		`keep "$(curl -s -X POST ${a}/login ${json} ${alice('battery staple')})"`,
		`curl -s -X POST ${url}/token/revoke -d "token=$REFRESH" -w ' %{http_code}\\n'`,
		`keep "$(curl -s -X POST ${a}/login ${json} ${alice('battery staple')})"`,
		`curl -s -X POST ${a}/logout-all ${bearer} ${status}`,
		`# the admin (ADMIN_USERNAME, ADMIN_PASSWORD): users, a page at a time; make one, read, change, delete it${adminNote}`,
		`keep "$(curl -s -X POST ${a}/login --data-urlencode 'username=${adminUsername}' --data-urlencode "password=$ADMIN_PASSWORD")"`,
		`curl -s "${a}/users?page=1" ${bearer}`,
		`ID=$(curl -s -X POST ${a}/users ${bearer} ${json} -d '{"username":"bob","password":"correct horse","permissions":["reports"]}' | field id)`,
		`curl -s ${a}/users/$ID ${bearer}`,
		`curl -s -X PUT ${a}/users/$ID/permissions ${bearer} ${json} -d '{"permissions":["reports","export"]}'`,
		`curl -s -X PUT ${a}/users/$ID/profile ${bearer} ${json} -d '{"profile":{"team":"blue"}}'`,
		`curl -s -X PUT ${a}/users/$ID/password ${bearer} ${json} -d '{"password":"battery staple"}' ${status}`,
		`curl -s -X DELETE ${a}/users/$ID ${bearer} ${status}`,
		`# machine to machine, with the key the app was started with${machineKey === '' ? '   # start with M2M_API_KEY set to enable it' : ''}`,
		`curl -s -X POST ${url}/m2m/ping -H "X-Example-ApiKey: $M2M_API_KEY"`,
		'# the OpenAPI document of the account routes',
		`curl -s ${url}/openapi.json | head -c 120; echo`,
	];
}

const server = app.listen(port, host, () => {
	const {port: actualPort} = server.address() as AddressInfo;
	const url = `http://${host}:${actualPort}`;
	console.log(`koa-stateless-auth example listening on ${url} (data: ${stores.description}; admin: ${admin})`);
	console.log('Try it in bash:');
	for (const line of curlLines(url)) {
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
