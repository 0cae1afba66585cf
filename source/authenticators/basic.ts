import {Buffer, isUtf8} from 'node:buffer';
import type {Context} from 'koa';
import {equalsIgnoreAsciiCase, parseAuthorizationHeader, readHeaderLines} from '../authorization-header.js';
import type {Authorization} from '../authorization.js';
import {formatChallenge} from '../challenge.js';
import {HttpAuth, type HttpAuthOptions} from './http-auth.js';

/** What a Basic `Authorization` header carries (RFC 7617). */
export type BasicCredentials = Authorization & {
	readonly authType: 'basic';
	readonly username: string;
	readonly password: string;
};

/** Options of {@link HttpBasicAuth}. */
export type HttpBasicAuthOptions<User> = HttpAuthOptions<User, BasicCredentials> & {
	/**
	The realm of the challenge.

	@default 'Authentication Required'
	*/
	readonly realm?: string;
};

// Standard Base64 only (RFC 4648 §4): no URL-safe alphabet, padding only at the end.
const base64Pattern = /^[A-Za-z\d+/]*={0,2}$/;
// C0 controls, DEL and C1 controls (RFC 7617 §2: user-id and password are text without controls).
const controlPattern = /[\u0000-\u001F\u007F-\u009F]/;

/**
Decode the token68 of `Basic <token68>` strictly: canonical standard Base64, valid UTF-8 (never a
U+FFFD that would make two passwords equal), a colon, and no control characters.
*/
function decodeBasic(credentials: string): {username: string; password: string} | undefined {
	if (credentials.length % 4 !== 0 || !base64Pattern.test(credentials)) {
		return undefined;
	}

	const bytes = Buffer.from(credentials, 'base64');
	// Non-zero padding bits decode to the same bytes as another value; only the canonical one counts.
	if (bytes.toString('base64') !== credentials) {
		return undefined;
	}

	// Validate first (isUtf8 is a fast scan), so that decoding never substitutes U+FFFD.
	if (!isUtf8(bytes)) {
		return undefined;
	}

	const text = bytes.toString('utf8');
	// RFC 7617 §2: the user-id cannot contain a colon; the password may.
	const colon = text.indexOf(':');
	if (colon === -1) {
		return undefined;
	}

	const username = text.slice(0, colon);
	const password = text.slice(colon + 1);
	return controlPattern.test(username) || controlPattern.test(password) ? undefined : {username, password};
}

/**
HTTP Basic authentication (RFC 7617), the TypeScript form of Flask-APScheduler's `HTTPBasicAuth`:
challenge `Basic realm="...", charset="UTF-8"`, strict decoding, and one byte-identical 401 for
every failure (missing, malformed, unknown user, wrong password). Give unknown users and wrong
passwords the same work in `authenticate` (verify against a dummy hash), so timing tells nothing.

@example
```
const basic = new HttpBasicAuth<User>({
	realm: 'admin',
	authenticate: async ({username, password}) => {
		const user = await users.findByName(username);
		const {valid} = await verifyPassword(password, user?.passwordHash); // undefined: a dummy, same cost
		return valid ? user : undefined;
	},
});
router.get('/admin', auth.protect({authenticators: [basic]}), handler);
```
*/
export class HttpBasicAuth<User> extends HttpAuth<User, BasicCredentials> {
	readonly scheme = 'Basic';
	readonly #challenge: string;

	constructor(options: HttpBasicAuthOptions<User>) {
		super({...options, realm: options.realm ?? 'Authentication Required'});
		this.#challenge = formatChallenge('Basic', {realm: this.realm, charset: 'UTF-8'});
	}

	override getAuthorization(ctx: Context): BasicCredentials | undefined {
		const parsed = parseAuthorizationHeader(readHeaderLines(ctx.req.rawHeaders, this.credentialsHeader));
		if (parsed.kind === 'absent') {
			return undefined;
		}

		if (parsed.kind === 'malformed' && parsed.reason === 'duplicate') {
			throw this.refusal();
		}

		if (parsed.scheme === undefined || !equalsIgnoreAsciiCase(parsed.scheme, 'basic')) {
			return undefined;
		}

		const decoded = parsed.kind === 'credentials' ? decodeBasic(parsed.credentials) : undefined;
		if (decoded === undefined) {
			throw this.refusal();
		}

		return {authType: 'basic', ...decoded};
	}

	override getAuthenticateHeader(): string {
		return this.#challenge;
	}
}
