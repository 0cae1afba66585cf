/** Whether `value` is a promise or another thenable, as `await` would see it. */
export function isPromiseLike<T>(value: T | PromiseLike<T>): value is PromiseLike<T> {
	return typeof (value as {then?: unknown} | null | undefined)?.then === 'function';
}
