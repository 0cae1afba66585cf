/*
The audit events of the account routes. Every payload says who (user id, and username where there
is one), from where (the client address) and what; none carries a password, a hash, a token or an
API key, only token hints and session ids.
*/

/** Who did it, from where: `by` is the acting user's id (an admin's, or the user's own). */
type Actor = {
	/** The client address, as `clientAddress` read it. */
	readonly ip: string;
};

export type LoginEvent = Actor & {
	readonly userId: string;
	readonly username: string;
	/** The new session's id (as in `GET <apiPrefix>/sessions`). */
	readonly sessionId: string;
};

export type LoginFailedEvent = Actor & {
	/** The username as sent (normalised). */
	readonly username: string;
	/** The account's id when there is one. */
	readonly userId: string | undefined;
	/** What was wrong: for the audit log only, the client gets one answer for all. */
	readonly reason: 'unknown_user' | 'wrong_password' | 'inactive';
};

export type ThrottledEvent = Actor & {
	readonly action: 'login' | 'password_change';
	readonly username: string;
	readonly userId: string | undefined;
	/** The limit that refused: see `rateLimit`. */
	readonly limit: 'usernameAndIp' | 'username' | 'ip';
	/** Seconds until the next attempt, as in `Retry-After`. */
	readonly retryAfter: number;
};

export type LogoutEvent = Actor & {
	readonly userId: string;
	readonly username: string;
	/** `session`: one session (`sessionId`); `everywhere`: every token of the user, API keys included. */
	readonly scope: 'session' | 'everywhere';
	readonly sessionId: string | undefined;
};

export type PasswordChangedEvent = Actor & {
	readonly userId: string;
	readonly username: string;
	/** Who changed it: the user, or an admin. */
	readonly by: string;
	/** How many sessions were logged out with it. */
	readonly endedSessions: number;
};

export type PasswordChangeFailedEvent = Actor & {
	readonly userId: string;
	readonly username: string;
};

export type TokenReusedEvent = Actor & {
	/** Unknown: the service revokes the session before the route could read whose it was. */
	readonly userId: undefined;
};

export type UserChangedEvent = Actor & {
	readonly userId: string;
	readonly username: string;
	readonly by: string;
};

export type PermissionsChangedEvent = UserChangedEvent & {
	readonly previous: readonly string[];
	readonly permissions: readonly string[];
};

export type ApiKeyEvent = Actor & {
	readonly userId: string;
	readonly username: string;
	/** The key's id (its session id). */
	readonly keyId: string;
	readonly name: string | null;
};

/** The events of the account routes, for `EventEmitter<AccountEvents>`. */
export type AccountEvents = {
	/** A login succeeded: a new session. */
	login: [LoginEvent];
	/** A login was refused (unknown user, wrong password, inactive account). */
	loginFailed: [LoginFailedEvent];
	/** A login or password change was refused 429 by the brute-force limits, before any password was checked. */
	throttled: [ThrottledEvent];
	logout: [LogoutEvent];
	passwordChanged: [PasswordChangedEvent];
	/** A password change with a wrong current password. */
	passwordChangeFailed: [PasswordChangeFailedEvent];
	/** A retired refresh token came back (RFC 9700 §4.14.2): its session was revoked. */
	tokenReused: [TokenReusedEvent];
	userCreated: [UserChangedEvent];
	/** A user was deleted, and every token and API key of theirs revoked. */
	userDeleted: [UserChangedEvent];
	permissionsChanged: [PermissionsChangedEvent];
	profileChanged: [UserChangedEvent];
	apiKeyCreated: [ApiKeyEvent];
	apiKeyRevoked: [ApiKeyEvent];
};
