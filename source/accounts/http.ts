import type {Context} from 'koa';
import type {z} from 'zod';

/*
Reading request bodies and answering errors. The routes read their own bodies (JSON, or a form for
the OAuth token endpoints), so that an application needs no body parser for them; one that has run
already is used as it is.
*/

/** The largest request body read: a profile or a login is far below it. */
export const bodyLimit = 16 * 1024;

/** An answer other than success, thrown inside a route and answered as `{error, error_description, field?}`. */
export class AccountsAnswer extends Error {
	readonly status: number;
	readonly code: string;
	readonly field: string | undefined;
	readonly headers: Readonly<Record<string, string>>;

	constructor(status: number, code: string, message: string, {field, headers = {}}: {field?: string; headers?: Record<string, string>} = {}) {
		super(message);
		this.name = 'AccountsAnswer';
		this.status = status;
		this.code = code;
		this.field = field;
		this.headers = headers;
	}
}

export const notFound = (what: string) => new AccountsAnswer(404, 'not_found', `No such ${what}`);

async function readRaw(ctx: Context): Promise<string> {
	const declared = Number(ctx.get('content-length') || 0);
	if (declared > bodyLimit) {
		throw new AccountsAnswer(413, 'invalid_request', `The request body is larger than ${bodyLimit} bytes`);
	}

	const chunks: Buffer[] = [];
	let size = 0;
	for await (const chunk of ctx.req as AsyncIterable<Buffer>) {
		size += chunk.length;
		if (size > bodyLimit) {
			ctx.set('Connection', 'close');
			throw new AccountsAnswer(413, 'invalid_request', `The request body is larger than ${bodyLimit} bytes`);
		}

		chunks.push(chunk);
	}

	try {
		return new TextDecoder('utf-8', {fatal: true}).decode(Buffer.concat(chunks));
	} catch {
		throw new AccountsAnswer(400, 'invalid_request', 'The request body is not valid UTF-8');
	}
}

/**
The request body: what a body parser that ran before left on `ctx.request.body`, else read here.
JSON everywhere; `application/x-www-form-urlencoded` too where `form` (the OAuth token endpoints,
RFC 6749 §4.3.2), where a repeated parameter is refused (§3.2).
*/
export async function readBody(ctx: Context, form: boolean): Promise<unknown> {
	const parsed = (ctx.request as {body?: unknown}).body;
	if (parsed !== undefined) {
		return parsed;
	}

	if (!ctx.request.length && ctx.get('transfer-encoding') === '') {
		return undefined;
	}

	const types = form ? ['application/json', 'application/x-www-form-urlencoded'] : ['application/json'];
	const charset = ctx.request.charset;
	if (ctx.request.is(types) === false || (charset !== '' && charset.toLowerCase() !== 'utf-8')) {
		throw new AccountsAnswer(415, 'invalid_request', `The request body must be ${types.join(' or ')} in UTF-8`);
	}

	const text = await readRaw(ctx);
	if (ctx.request.is('application/json') !== false) {
		try {
			return JSON.parse(text) as unknown;
		} catch {
			throw new AccountsAnswer(400, 'invalid_request', 'The request body is not valid JSON');
		}
	}

	const body: Record<string, string> = {};
	for (const [key, value] of new URLSearchParams(text)) {
		if (Object.hasOwn(body, key)) {
			throw new AccountsAnswer(400, 'invalid_request', `${key} is given more than once`, {field: key});
		}

		body[key] = value;
	}

	return body;
}

/** Validate with a zod schema; the first problem is a 400 naming its field. */
export function validate<Schema extends z.ZodType>(schema: Schema, value: unknown, where: 'body' | 'query'): z.output<Schema> {
	const result = schema.safeParse(value);
	if (result.success) {
		return result.data;
	}

	const [issue] = result.error.issues;
	const path = issue?.path.map(String).join('.') ?? '';
	const field = issue?.code === 'unrecognized_keys' ? issue.keys.join(', ') : path;
	if (field === '') {
		throw new AccountsAnswer(400, 'invalid_request', where === 'body' ? 'The request body must be a JSON object' : 'Invalid query');
	}

	const message = issue?.code === 'unrecognized_keys' ? `Unknown field${issue.keys.length > 1 ? 's' : ''}` : issue?.message ?? 'Invalid';
	throw new AccountsAnswer(400, 'invalid_request', `${field}: ${message}`, {field});
}

/** Answer an {@link AccountsAnswer}. */
export function answer(ctx: Context, error: AccountsAnswer): void {
	ctx.status = error.status;
	for (const [name, value] of Object.entries(error.headers)) {
		ctx.set(name, value);
	}

	ctx.body = {error: error.code, error_description: error.message, ...(error.field === undefined ? {} : {field: error.field})};
}
