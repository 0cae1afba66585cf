import {z} from 'zod';

/*
Every request body, query and response of the account routes, as zod 4 schemas: the routes validate
with them, and the OpenAPI document is generated from them (`z.toJSONSchema`), so that the two can
never disagree.
*/

/** The password rules (ASVS 5.0 6.2): a length range counted in code points after NFKC, nothing else. */
export type PasswordPolicy = {
	readonly minLength: number;
	readonly maxLength: number;
};

// RFC 6749 §3.3 scope-token, the library's grammar for permission names.
const permissionPattern = /^[\x21\x23-\x5B\x5D-\x7E]+$/;
// Letters, digits and `. _ @ + -` of any script: no spaces, no controls, no look-alike punctuation.
const usernamePattern = /^[\p{L}\p{N}._@+-]+$/u;

// Code points, as JSON Schema's minLength counts them: a surrogate pair is one character.
const codePoints = (value: string): number => value.length - (value.match(/[\uD800-\uDBFF][\uDC00-\uDFFF]/g)?.length ?? 0);

/** A username as stored: NFKC-normalised and trimmed, so that one name typed two ways is one name. */
export const usernameSchema = z.string().normalize('NFKC').trim().min(1).max(64).regex(usernamePattern, {
	error: 'Use letters, digits and . _ @ + - only',
}).meta({description: 'Letters, digits and `. _ @ + -`; NFKC-normalised and trimmed.'});

const permissionSchema = z.string().min(1).max(128).regex(permissionPattern, {
	error: 'A permission is printable ASCII without spaces, quotes or backslashes',
});

export const permissionsSchema = z.array(permissionSchema).max(100);

const profileSchema = z.record(z.string().min(1).max(64), z.unknown()).meta({description: 'Free-form profile fields.'});

/**
A new password: NFKC-normalised (as `hashPassword` will), then counted in code points, as JSON
Schema's `minLength` counts. No composition rules (ASVS 5.0 6.2.5).
*/
export function newPasswordSchema({minLength, maxLength}: PasswordPolicy) {
	return z.string()
		.normalize('NFKC')
		.refine(value => codePoints(value) >= minLength, {error: `At least ${minLength} characters`, abort: true})
		.refine(value => codePoints(value) <= maxLength, {error: `At most ${maxLength} characters`})
		.meta({minLength, maxLength, description: `${minLength} to ${maxLength} characters of any kind (NFKC-normalised); no composition rules.`});
}

/** A password being checked, not set: any length the policy ever allowed, bounded against abuse. */
function givenPasswordSchema({maxLength}: PasswordPolicy) {
	return z.string().min(1).max(Math.max(1024, maxLength));
}

const sessionName = z.string().trim().min(1).max(100).meta({description: 'A label for the session, such as the device.'});

/** The schemas of one mount: the password rules are options. */
export function accountSchemas(policy: PasswordPolicy) {
	const given = givenPasswordSchema(policy);
	const fresh = newPasswordSchema(policy);
	const userView = z.object({
		id: z.string(),
		username: z.string(),
		permissions: z.array(z.string()),
		profile: z.record(z.string(), z.unknown()),
		isActive: z.boolean(),
		createdAt: z.iso.datetime(),
	});
	return {
		// The password grant of RFC 6749 §4.3.2 (JSON or a form).
		loginRequest: z.strictObject({
			grant_type: z.literal('password').optional(),
			username: z.string().min(1).max(256),
			password: given,
			name: sessionName.optional(),
		}),
		// RFC 6749 §6.
		refreshRequest: z.strictObject({
			grant_type: z.literal('refresh_token').optional(),
			refresh_token: z.string().min(1).max(4096),
		}),
		changePasswordRequest: z.strictObject({
			oldPassword: given,
			newPassword: fresh,
			endOtherSessions: z.boolean().default(false).meta({description: 'Also log out every other session of mine (API keys stay).'}),
		}),
		setPasswordRequest: z.strictObject({
			password: fresh,
			endSessions: z.boolean().default(true).meta({description: 'Also log out every session of the user (API keys stay).'}),
		}),
		createUserRequest: z.strictObject({
			username: usernameSchema,
			password: fresh,
			permissions: permissionsSchema.optional().meta({description: 'Defaults to the mount\'s `defaultPermissions`.'}),
			profile: profileSchema.optional(),
			isActive: z.boolean().default(true),
		}),
		permissionsRequest: z.strictObject({permissions: permissionsSchema}),
		profileRequest: z.strictObject({profile: profileSchema}),
		apiKeyRequest: z.strictObject({name: z.string().trim().min(1).max(64).meta({description: 'What the key is for.'})}),
		userListQuery: z.object({page: z.coerce.number().int().min(1).max(1_000_000).default(1)}),

		// RFC 6749 §5.1.
		tokenResponse: z.object({
			access_token: z.string(),
			token_type: z.literal('Bearer'),
			expires_in: z.number().int().meta({description: 'Seconds the access token lives: `tokenExpiration`.'}),
			refresh_token: z.string(),
		}),
		user: userView,
		userList: z.object({users: z.array(userView), total: z.number().int(), page: z.number().int(), pageSize: z.number().int()}),
		sessionList: z.object({
			sessions: z.array(z.object({
				id: z.string(),
				hint: z.string().meta({description: 'The refresh token\'s prefix and first characters: never the token.'}),
				name: z.string().nullable(),
				createdAt: z.iso.datetime().meta({description: 'When the session\'s current tokens were issued (the login or the last refresh).'}),
				lastUsedAt: z.iso.datetime().nullable(),
				expiresAt: z.iso.datetime(),
				current: z.boolean(),
			})),
		}),
		apiKeyList: z.object({
			apiKeys: z.array(z.object({
				id: z.string(),
				name: z.string().nullable(),
				hint: z.string(),
				createdAt: z.iso.datetime(),
				lastUsedAt: z.iso.datetime().nullable(),
				expiresAt: z.iso.datetime(),
			})),
		}),
		newApiKey: z.object({
			id: z.string(),
			key: z.string().meta({description: 'The key: shown this once, never again.'}),
			name: z.string().nullable(),
			hint: z.string(),
			createdAt: z.iso.datetime(),
			expiresAt: z.iso.datetime(),
		}),
		error: z.object({
			error: z.string().meta({description: 'A stable code: `invalid_request`, `invalid_grant`, `invalid_password`, `not_found`, `username_taken`, `too_many_requests`.'}),
			error_description: z.string(),
			field: z.string().optional().meta({description: 'The request field that is wrong, for `invalid_request`.'}),
		}),
	};
}

export type AccountSchemas = ReturnType<typeof accountSchemas>;
