import type {LoaderOptions} from './authenticator.js';
import {loaderTimedOut, LoaderTimeoutError} from './errors.js';

/**
The requests waiting on their callbacks under one timeout, oldest first. All share one timeout, so
they expire in the order they started, and one coarse ticker serves them all: a timer per request
(setTimeout and clearTimeout) cost more than the rest of the middleware with async loaders. A
deadline passes within one tick (a tenth of the timeout, from 5 ms to 1 s) after it is due.
*/
class TimeoutQueue {
	readonly timeout: number;
	readonly #tick: number;
	#head: Deadline | undefined;
	#tail: Deadline | undefined;
	#timer: ReturnType<typeof setInterval> | undefined;
	// A clock read once a tick rather than once a request; exact while the ticker runs.
	#now = 0;

	constructor(timeout: number) {
		this.timeout = timeout;
		this.#tick = Math.min(1000, Math.max(5, Math.floor(timeout / 10)));
	}

	add(deadline: Deadline): void {
		if (this.#timer === undefined) {
			this.#now = performance.now();
			this.#timer = setInterval(() => {
				this.#expire();
			}, this.#tick);
		}

		deadline.expiresAt = this.#now + this.timeout;
		deadline.previous = this.#tail;
		deadline.next = undefined;
		if (this.#tail === undefined) {
			this.#head = deadline;
		} else {
			this.#tail.next = deadline;
		}

		this.#tail = deadline;
	}

	remove(deadline: Deadline): void {
		const {previous, next} = deadline;
		if (previous === undefined) {
			this.#head = next;
		} else {
			previous.next = next;
		}

		if (next === undefined) {
			this.#tail = previous;
		} else {
			next.previous = previous;
		}

		deadline.previous = undefined;
		deadline.next = undefined;
	}

	#expire(): void {
		this.#now = performance.now();
		while (this.#head !== undefined && this.#head.expiresAt <= this.#now) {
			const deadline = this.#head;
			this.remove(deadline);
			deadline.expire();
		}

		// Stopped by the tick, not by the last removal, so that a steady trickle of requests does
		// not start and stop a timer each.
		if (this.#head === undefined) {
			clearInterval(this.#timer);
			this.#timer = undefined;
		}
	}
}

const queues = new Map<number, TimeoutQueue>();

/** The queue of one timeout value, shared by every route that has it. */
export function timeoutQueue(timeout: number): TimeoutQueue {
	let queue = queues.get(timeout);
	if (queue === undefined) {
		queue = new TimeoutQueue(timeout);
		queues.set(timeout, queue);
	}

	return queue;
}

/**
The time limit of one request's callbacks, and the options handed to them. The clock starts at the
first callback that answers with a promise (a synchronous answer cannot hang); the
`AbortController` is made only if a callback reads `signal`.
*/
export class Deadline implements LoaderOptions {
	expiresAt = 0;
	previous: Deadline | undefined;
	next: Deadline | undefined;
	readonly #queue: TimeoutQueue;
	#queued = false;
	#expired = false;
	#reject: ((reason: unknown) => void) | undefined;
	#controller: AbortController | undefined;

	constructor(queue: TimeoutQueue) {
		this.#queue = queue;
	}

	get signal(): AbortSignal {
		if (this.#controller === undefined) {
			this.#controller = new AbortController();
			if (this.#expired) {
				this.#controller.abort(new LoaderTimeoutError(this.#queue.timeout));
			}
		}

		return this.#controller.signal;
	}

	/** `pending`, or the 503 of a timeout if the deadline passes first; a late result is dropped. */
	// Not async: a second promise around the one made here is a measurable cost per request.
	race<T>(pending: PromiseLike<T>): Promise<T> {
		if (this.#expired) {
			return Promise.reject(loaderTimedOut(this.#queue.timeout));
		}

		if (!this.#queued) {
			this.#queued = true;
			this.#queue.add(this);
		}

		return new Promise<T>((resolve, reject) => {
			this.#reject = reject;
			pending.then(resolve, reject);
		});
	}

	expire(): void {
		this.#expired = true;
		this.#queued = false;
		const error = loaderTimedOut(this.#queue.timeout);
		this.#controller?.abort(error.cause);
		this.#reject?.(error);
	}

	/** The request's callbacks are done: leave the queue, and hold on to nothing. */
	clear(): void {
		if (this.#queued) {
			this.#queued = false;
			this.#queue.remove(this);
		}

		this.#reject = undefined;
	}
}
