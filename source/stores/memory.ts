/* eslint-disable @typescript-eslint/require-await -- the interface answers promises; memory answers at once. */
import type {
	FoundToken, RotateOutcome, SessionLimit, TokenRecord, TokenStore, UserPage, UserRecord, UserStore,
} from './types.js';

/*
Stores in the process's memory: for tests, and for one process that may forget its logins when it
stops. Every operation is synchronous inside, so each is atomic; they answer promises like every
other store.
*/

function copy(record: TokenRecord): TokenRecord {
	return {...record, scopes: [...record.scopes]};
}

/** Tokens in memory. */
export class MemoryTokenStore implements TokenStore {
	readonly #byDigest = new Map<string, TokenRecord>();
	readonly #epochs = new Map<string, number>();

	async create(records: readonly TokenRecord[], limit?: SessionLimit): Promise<boolean> {
		const [first] = records;
		if (first !== undefined && limit !== undefined) {
			const sessions = this.#sessions(first.userId, limit.now);
			if (sessions.length >= limit.max) {
				if (limit.onLimit === 'refuse') {
					return false;
				}

				for (const familyId of sessions.slice(0, sessions.length - limit.max + 1)) {
					this.#revokeFamily(familyId);
				}
			}
		}

		for (const record of records) {
			this.#byDigest.set(record.digest, {...record, scopes: [...record.scopes]});
		}

		return true;
	}

	async find(digest: string): Promise<FoundToken | undefined> {
		const record = this.#byDigest.get(digest);
		// A copy: a caller changing what it was given never changes what is stored.
		return record === undefined ? undefined : {record: copy(record), epoch: this.#epochs.get(record.userId) ?? 0};
	}

	async touch(id: string, at: number): Promise<void> {
		for (const [digest, record] of this.#byDigest) {
			if (record.id === id) {
				this.#byDigest.set(digest, {...record, lastUsedAt: at});
				return;
			}
		}
	}

	async rotate(digest: string, now: number, grace: {readonly until: number; readonly ciphertext: string} | undefined, records: readonly TokenRecord[]): Promise<RotateOutcome> {
		const record = this.#byDigest.get(digest);
		if (record === undefined) {
			return {kind: 'unknown'};
		}

		if (record.retiredAt !== null) {
			if (record.graceUntil !== null && record.graceCiphertext !== null && now <= record.graceUntil) {
				return {kind: 'grace', ciphertext: record.graceCiphertext};
			}

			this.#revokeFamily(record.familyId);
			return {kind: 'reused'};
		}

		for (const [otherDigest, other] of this.#byDigest) {
			// Retired tokens stay: one retired rotations ago must still be seen as reuse.
			if (other.familyId === record.familyId && otherDigest !== digest && other.retiredAt === null) {
				this.#byDigest.delete(otherDigest);
			}
		}

		this.#byDigest.set(digest, {...record, retiredAt: now, graceUntil: grace?.until ?? null, graceCiphertext: grace?.ciphertext ?? null});
		for (const created of records) {
			this.#byDigest.set(created.digest, {...created, scopes: [...created.scopes]});
		}

		return {kind: 'rotated'};
	}

	async revokeFamily(familyId: string): Promise<number> {
		return this.#revokeFamily(familyId);
	}

	async revokeUser(userId: string): Promise<void> {
		this.#epochs.set(userId, (this.#epochs.get(userId) ?? 0) + 1);
	}

	async epoch(userId: string): Promise<number> {
		return this.#epochs.get(userId) ?? 0;
	}

	async list(userId: string, now: number): Promise<readonly TokenRecord[]> {
		return [...this.#byDigest.values()]
			.filter(record => record.userId === userId && record.retiredAt === null && record.expiresAt > now)
			.sort((a, b) => a.createdAt - b.createdAt)
			.map(record => copy(record));
	}

	async prune(now: number): Promise<number> {
		let pruned = 0;
		for (const [digest, record] of this.#byDigest) {
			if (record.expiresAt <= now || record.epoch !== (this.#epochs.get(record.userId) ?? 0)) {
				this.#byDigest.delete(digest);
				pruned++;
			}
		}

		return pruned;
	}

	/** The user's live sessions (families with a current token not expired), oldest first. */
	#sessions(userId: string, now: number): string[] {
		const epoch = this.#epochs.get(userId) ?? 0;
		const oldest = new Map<string, number>();
		for (const record of this.#byDigest.values()) {
			if (record.userId === userId && record.epoch === epoch && record.retiredAt === null && record.expiresAt > now) {
				oldest.set(record.familyId, Math.min(oldest.get(record.familyId) ?? Number.POSITIVE_INFINITY, record.createdAt));
			}
		}

		return [...oldest].sort((a, b) => a[1] - b[1]).map(([familyId]) => familyId);
	}

	#revokeFamily(familyId: string): number {
		let revoked = 0;
		for (const [digest, record] of this.#byDigest) {
			if (record.familyId === familyId) {
				this.#byDigest.delete(digest);
				revoked++;
			}
		}

		return revoked;
	}
}

/** Users in memory. */
export class MemoryUserStore implements UserStore {
	readonly #byId = new Map<string, UserRecord>();

	async create(user: UserRecord): Promise<boolean> {
		if (this.#byId.has(user.id) || [...this.#byId.values()].some(existing => existing.username === user.username)) {
			return false;
		}

		this.#byId.set(user.id, structuredClone(user));
		return true;
	}

	async getById(id: string): Promise<UserRecord | undefined> {
		const user = this.#byId.get(id);
		return user === undefined ? undefined : structuredClone(user);
	}

	async getByUsername(username: string): Promise<UserRecord | undefined> {
		const user = [...this.#byId.values()].find(candidate => candidate.username === username);
		return user === undefined ? undefined : structuredClone(user);
	}

	async list(offset: number, limit: number): Promise<UserPage> {
		const all = [...this.#byId.values()].sort((a, b) => (a.username < b.username ? -1 : (a.username > b.username ? 1 : 0)));
		return {users: all.slice(offset, offset + limit).map(user => structuredClone(user)), total: all.length};
	}

	async update(id: string, changes: Partial<Pick<UserRecord, 'permissions' | 'profile' | 'passwordHash' | 'isActive'>>): Promise<boolean> {
		const user = this.#byId.get(id);
		if (user === undefined) {
			return false;
		}

		this.#byId.set(id, structuredClone({...user, ...changes}));
		return true;
	}

	async delete(id: string): Promise<boolean> {
		return this.#byId.delete(id);
	}
}
