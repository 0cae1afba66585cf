// One "process" of the cross-connection rotation race in sqlite-specific.test.ts: a worker thread
// with a connection of its own to the file, rotating the same refresh tokens as its siblings, round
// by round, released together by a barrier.
import {randomBytes, randomUUID} from 'node:crypto';
import {parentPort, workerData} from 'node:worker_threads';
import Database from 'better-sqlite3';
import type {TokenRecord} from '../../source/index.js';
import {SqliteTokenStore} from '../../source/stores/sqlite.js';

/** One database file and the refresh token of each round: its digest, family and user. */
export type RaceFile = {
	readonly file: string;
	readonly rounds: ReadonlyArray<{readonly digest: string; readonly familyId: string; readonly userId: string}>;
};

export type RaceInput = {
	readonly files: readonly RaceFile[];
	readonly workers: number;
	/** [arrived, generation]: a reusable barrier across the workers. */
	readonly barrier: SharedArrayBuffer;
};

/** Per file, per round, what `rotate` answered, or `error <code>`. */
export type RaceOutput = string[][];

function wait(state: Int32Array, workers: number): void {
	const generation = Atomics.load(state, 1);
	if (Atomics.add(state, 0, 1) === workers - 1) {
		Atomics.store(state, 0, 0);
		Atomics.add(state, 1, 1);
		Atomics.notify(state, 1);
		return;
	}

	while (Atomics.load(state, 1) === generation) {
		Atomics.wait(state, 1, generation);
	}
}

const {files, workers, barrier} = workerData as RaceInput;
const state = new Int32Array(barrier);
const output: RaceOutput = [];
for (const {file, rounds} of files) {
	const db = new Database(file, {timeout: 5000});
	const store = new SqliteTokenStore(db);
	const outcomes: string[] = [];
	output.push(outcomes);
	for (const [index, {digest, familyId, userId}] of rounds.entries()) {
		const now = 1_700_000_000_000 + index;
		const record = (type: string): TokenRecord => ({
			id: randomUUID(), digest: randomBytes(32).toString('hex'), type, userId, familyId, scopes: [], name: null, hint: '',
			createdAt: now, expiresAt: now + 3_600_000, lastUsedAt: null, epoch: 0, retiredAt: null, graceUntil: null, graceCiphertext: null,
		});
		wait(state, workers);
		try {
			outcomes.push((await store.rotate(digest, now, undefined, [record('access'), record('refresh')])).kind);
		} catch (error) {
			outcomes.push(`error ${(error as {code?: string}).code ?? String(error)}`);
		}
	}

	db.close();
}

parentPort?.postMessage(output);
