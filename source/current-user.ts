import {AsyncLocalStorage} from 'node:async_hooks';
import {ConfigurationError} from './errors.js';

type RequestStore = {readonly user: unknown};

// Created only when a manager asks for it: on Node 20, a live AsyncLocalStorage makes every
// promise in the process a little slower, so an app that never calls currentUser() pays nothing.
let storage: AsyncLocalStorage<RequestStore> | undefined;

/** The storage the guards run requests in, created on first use. */
export function requestStorage(): AsyncLocalStorage<RequestStore> {
	storage ??= new AsyncLocalStorage();
	return storage;
}

/**
The user of the request in progress, from anywhere in its async call chain (a service, a
repository), or `undefined` in an anonymous request (an optional or opted-out route). It throws
anywhere else: outside a route protected by a manager created with `asyncContext: true` (a route of
another manager, a public route, a background job), rather than answer `undefined` where no one
asked who the user is.

@example
```
const auth = new StatelessAuthManager<User, Token>({asyncContext: true});
// in a service called by a protected route:
const user = currentUser<User>();
```
*/
// The type argument names what the application's routes resolve; it is a statement, not a check.
// eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters
export function currentUser<User = unknown>(): User | undefined {
	const store = storage?.getStore();
	if (store === undefined) {
		throw new ConfigurationError('currentUser() was called outside a route of a StatelessAuthManager created with `asyncContext: true`.');
	}

	return store.user as User | undefined;
}
