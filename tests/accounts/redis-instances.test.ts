// The login throttle counts across instances: two app processes (tests/fixtures/accounts-app.ts)
// whose limiters share one key prefix on the machine's Redis refuse the attempt after the allowed
// failures, wherever those failures were made. The prefix is this file's own, deleted at the end.
import {spawn, type ChildProcess} from 'node:child_process';
import {randomBytes} from 'node:crypto';
import {createInterface} from 'node:readline';
import test from 'ava';
import {Redis} from 'ioredis';
import {redisUrl, serviceAvailable} from '../helpers/services.js';
import {deletePrefix} from '../fixtures/redis-helpers.js';

type Instance = {readonly url: string; readonly child: ChildProcess};

/** Start one instance; it is stopped (SIGTERM to its pid) by the caller, or when this process exits. */
async function start(env: Record<string, string>): Promise<Instance> {
	const child = spawn(process.execPath, ['--import=./ts-node-register.js', 'tests/fixtures/accounts-app.ts'], {
		env: {...process.env, ...env},
		stdio: ['ignore', 'pipe', 'pipe'],
	});
	process.once('exit', () => child.kill('SIGTERM'));
	const stderr: string[] = [];
	createInterface({input: child.stderr}).on('line', line => stderr.push(line));
	const url = await new Promise<string>((resolve, reject) => {
		const timer = setTimeout(() => {
			reject(new Error(`The app did not start within 20 s: ${stderr.join('\n')}`));
		}, 20_000);
		createInterface({input: child.stdout}).once('line', line => {
			clearTimeout(timer);
			resolve((JSON.parse(line) as {url: string}).url);
		});
		child.once('exit', code => {
			clearTimeout(timer);
			reject(new Error(`The app exited (${String(code)}) before it listened: ${stderr.join('\n')}`));
		});
	});
	return {url, child};
}

const login = async (url: string, username: string, password: string) => {
	const response = await fetch(`${url}/api/user/login`, {method: 'POST', headers: {'content-type': 'application/json'}, body: JSON.stringify({username, password})});
	return {status: response.status, retryAfter: response.headers.get('retry-after'), body: await response.text()};
};

if (await serviceAvailable('Redis', redisUrl)) {
	const admin = new Redis(redisUrl, {maxRetriesPerRequest: 1});
	admin.on('error', () => undefined);
	const prefix = `ksa-test:accounts-${randomBytes(6).toString('hex')}`;
	let instances: Instance[] = [];
	test.before(async () => {
		instances = await Promise.all([start({REDIS_URL: redisUrl, KSA_LIMIT_PREFIX: prefix, KSA_POINTS: '4'}), start({REDIS_URL: redisUrl, KSA_LIMIT_PREFIX: prefix, KSA_POINTS: '4'})]);
	});
	test.after.always(async () => {
		for (const instance of instances) {
			instance.child.kill('SIGTERM');
		}

		await deletePrefix(admin, prefix);
		await admin.quit();
	});

	test('failures on two instances add up: the fifth attempt is refused on both, though each saw only two', async t => {
		const [a, b] = instances as [Instance, Instance];
		t.not(a.child.pid, b.child.pid);
		t.is((await login(a.url, 'alice', 'alice password')).status, 200, 'each instance has alice');
		t.is((await login(b.url, 'alice', 'alice password')).status, 200);
		const statuses = [];
		for (const url of [a.url, b.url, a.url, b.url]) {
			statuses.push((await login(url, 'alice', 'wrong password')).status);
		}

		t.deepEqual(statuses, [400, 400, 400, 400]);
		const onA = await login(a.url, 'alice', 'alice password');
		t.is(onA.status, 429, 'two failures on A, two on B: four for the account and address');
		t.true(Number(onA.retryAfter) > 0 && Number(onA.retryAfter) <= 60);
		const onB = await login(b.url, 'alice', 'alice password');
		t.is(onB.status, 429);
		t.is(onB.body, onA.body);
		// The counters are Redis keys under the shared prefix, and no username is one.
		const keys = await admin.keys(`${prefix}*`);
		t.true(keys.some(key => key.startsWith(`${prefix}:uip:`)), keys.join(' '));
		t.false(keys.some(key => key.includes('alice')));
	});

	test('an unknown user is counted across instances the same way', async t => {
		const [a, b] = instances as [Instance, Instance];
		const statuses = [];
		for (const url of [b.url, a.url, b.url, a.url, b.url]) {
			statuses.push((await login(url, 'nobody-here', 'some password')).status);
		}

		t.deepEqual(statuses, [400, 400, 400, 400, 429]);
	});
}
