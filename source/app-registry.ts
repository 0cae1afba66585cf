import type Koa from 'koa';

/** A manager as the registry sees it: anything that makes route middleware. */
export type RegisteredManager = {
	tokenRequired(options?: object): unknown;
};

const managers = new WeakMap<Koa, RegisteredManager>();

/** Remember `manager` as the one of `app`; a second, different manager is a mistake. */
export function registerManager(app: Koa, manager: RegisteredManager): void {
	const existing = managers.get(app);
	if (existing !== undefined && existing !== manager) {
		throw new Error('koa-stateless-auth: this app already has a StatelessAuthManager; an app has one, registered once with auth.initApp(app).');
	}

	managers.set(app, manager);
}

/** The manager registered on `app`, if any. */
export function lookupManager(app: Koa): RegisteredManager | undefined {
	return managers.get(app);
}
