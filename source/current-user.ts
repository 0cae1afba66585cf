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
repository), or `undefined` outside a protected request or in an anonymous one. Needs
`asyncContext: true` on the manager; without it, it throws, rather than answer `undefined` for
every request.

@example
```
const auth = new StatelessAuthManager<Token, User>({asyncContext: true});
// in a service called by a protected route:
const user = currentUser<User>();
```
*/
// The type argument names what the application's routes resolve; it is a statement, not a check.
// eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters
export function currentUser<User = unknown>(): User | undefined {
	if (storage === undefined) {
		throw new ConfigurationError('currentUser() needs a StatelessAuthManager created with `asyncContext: true`.');
	}

	return storage.getStore()?.user as User | undefined;
}
