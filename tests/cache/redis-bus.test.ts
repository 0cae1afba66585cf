// RedisInvalidationBus on a redis-server of this file's own (a free port, nothing persisted; never
// the machine's shared Redis): messages between instances, never one's own; not live while its
// subscription is down, and a reset when it drops and when it is back; a publish that cannot be made
// is reported and never rejects.
import {once} from 'node:events';
import type {ChildProcess} from 'node:child_process';
import test from 'ava';
import {Redis} from 'ioredis';
import {RedisInvalidationBus, type InvalidationListener, type InvalidationMessage} from '../../source/cache/index.js';
import {freePort, haveRedisServer, redisCommand, redisServerPath, startRedis, stopRedis, until} from './helpers.js';

function recorder() {
	const messages: InvalidationMessage[] = [];
	let resets = 0;
	const listener: InvalidationListener = {
		message(message) {
			messages.push(message);
		},
		reset() {
			resets++;
		},
	};
	return {
		listener, messages, get resets() {
			return resets;
		},
	};
}

if (haveRedisServer) {
	let server: ChildProcess | undefined;
	let port = 0;
	const clients: Redis[] = [];
	const client = async () => {
		const redis = new Redis(`redis://127.0.0.1:${port}`, {
			enableOfflineQueue: false, maxRetriesPerRequest: 0, commandTimeout: 500, retryStrategy: times => Math.min(times * 20, 200),
		});
		redis.on('error', () => undefined);
		clients.push(redis);
		await once(redis, 'ready');
		return redis;
	};

	test.before(async () => {
		port = await freePort();
		server = await startRedis(port);
	});
	test.after.always(async () => {
		for (const redis of clients) {
			redis.disconnect();
		}

		server?.kill('SIGKILL');
	});

	test.serial('messages reach the other instances, never their sender; a malformed one resets', async t => {
		const errors: Error[] = [];
		const [first, second] = [await client(), await client()];
		const a = new RedisInvalidationBus(first, {channel: 'bus-1', onError: error => errors.push(error)});
		const heardA = recorder();
		a.listen(heardA.listener);
		const b = new RedisInvalidationBus(second, {channel: 'bus-1', onError: error => errors.push(error)});
		const heardB = recorder();
		b.listen(heardB.listener);
		await until(async () => a.live && b.live, 5000, 'both subscribed');
		t.is(heardA.resets, 1, 'subscribing is a reset: anything before it may have been missed');
		t.not(a.id, b.id);

		await a.publish({kind: 'user', userId: 'u1'});
		await a.publish({kind: 'token', digest: 'ab'.repeat(32)});
		await b.publish({kind: 'all'});
		await until(async () => heardB.messages.length === 2 && heardA.messages.length === 1, 2000, 'delivered');
		t.deepEqual(heardB.messages, [{kind: 'user', userId: 'u1'}, {kind: 'token', digest: 'ab'.repeat(32)}]);
		t.deepEqual(heardA.messages, [{kind: 'all'}]);

		const resetsBefore = heardB.resets;
		const publisher = await client();
		await publisher.publish('bus-1', 'not json');
		await until(async () => heardB.resets === resetsBefore + 1, 2000, 'a malformed message resets');
		t.true(errors.some(error => /malformed/.test(error.message)));
		await a.close();
		await b.close();
		t.false(a.live);
	});

	test.serial('a dropped subscription is not live and resets; once resubscribed it resets again and hears messages', async t => {
		const [first, second] = [await client(), await client()];
		const a = new RedisInvalidationBus(first, {channel: 'bus-2'});
		const b = new RedisInvalidationBus(second, {channel: 'bus-2', onError: () => undefined});
		const heard = recorder();
		b.listen(heard.listener);
		await until(async () => a.live && b.live, 5000, 'both subscribed');
		const resets = heard.resets;
		const states: boolean[] = [];
		const watcher = setInterval(() => states.push(b.live), 1);
		t.regex(await redisCommand(port, 'CLIENT', 'KILL', 'TYPE', 'pubsub'), /^:[1-9]/);
		await until(async () => heard.resets >= resets + 2 && b.live, 5000, 'resubscribed');
		clearInterval(watcher);
		t.true(states.includes(false), 'not live while it was away');
		await a.publish({kind: 'user', userId: 'after'});
		await until(async () => heard.messages.length === 1, 2000, 'heard after the reconnect');
		t.deepEqual(heard.messages, [{kind: 'user', userId: 'after'}]);
		await a.close();
		await b.close();
	});

	test.serial('with Redis down: not live, a publish is reported and resolves, and it all comes back with Redis', async t => {
		const errors: Error[] = [];
		const a = new RedisInvalidationBus(await client(), {channel: 'bus-3', publishTimeout: 300, onError: error => errors.push(error)});
		const heard = recorder();
		a.listen(heard.listener);
		await until(async () => a.live, 5000, 'subscribed');
		await stopRedis(server!, port);
		await until(async () => !a.live, 2000, 'not live');
		const started = performance.now();
		await a.publish({kind: 'user', userId: 'u1'});
		t.true(performance.now() - started < 1000);
		t.true(errors.some(error => /could not be published/.test(error.message)), errors.map(error => error.message).join('; '));
		server = await startRedis(port);
		await until(async () => a.live, 5000, 'live again');
		await a.close();
	});
} else if (process.env['REQUIRE_SERVICES'] === '1') {
	test(`${redisServerPath} is installed (REQUIRE_SERVICES=1)`, t => {
		t.fail(`The bus tests start a redis-server of their own, and there is none at ${redisServerPath}.`);
	});
} else {
	test.skip(`RedisInvalidationBus tests (no ${redisServerPath})`, () => undefined);
}
