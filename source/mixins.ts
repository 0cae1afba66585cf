/**
What the manager asks of a token record, when the record has it: whether it has expired. A record
without `tokenExpired` never expires by itself (the loader decides).
*/
export type ExpirableToken = {
	/**
	Whether the token may no longer be used for this token type and scheme.
	A truthy answer (or a promise of one) refuses the request with `<tokenType> token expired`.
	*/
	tokenExpired?(tokenType: string, authType: string): boolean | Promise<boolean>;
};

/**
What the manager asks of a user, when the user has it: whether the account is active. A user
without `isActive` is active; one whose `isActive` is defined but falsy (`false`, `0`, `null`) is
refused like an unknown token.
*/
export type ActivatableUser = {
	readonly isActive?: unknown;
};

/**
An optional base class for token records, the counterpart of Flask-Stateless-Auth's `TokenMixin`.
Override `tokenExpired` to expire tokens.

@example
```
class AccessToken extends TokenMixin {
	expiresAt = 0;

	override tokenExpired() {
		return Date.now() >= this.expiresAt;
	}
}
```
*/
export class TokenMixin implements ExpirableToken {
	/** @returns `false`: a token never expires unless a subclass says so. */
	tokenExpired(_tokenType: string, _authType: string): boolean | Promise<boolean> {
		return false;
	}
}

/**
An optional base class for users, the counterpart of Flask-Stateless-Auth's `UserMixin`.
Override `isActive` (a getter works) to refuse disabled accounts.
*/
export class UserMixin implements ActivatableUser {
	/** @returns `true`: a user is active unless a subclass says otherwise. */
	get isActive(): boolean {
		return true;
	}
}
