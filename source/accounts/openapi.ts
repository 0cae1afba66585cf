import {z} from 'zod';
import {openApiSecurity, type SecurityRequirementObject, type SecuritySchemeObject} from '../index.js';
import type {AccountRoute} from './routes.js';
import type {AccountSchemas} from './schemas.js';

/** The `info` of the document. */
export type OpenApiInfo = {
	readonly title: string;
	readonly version: string;
	readonly description?: string;
};

/** An OpenAPI 3.1 document (the parts this module writes). */
export type OpenApiDocument = {
	readonly openapi: '3.1.0';
	readonly info: OpenApiInfo;
	readonly paths: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
	readonly components: {
		readonly schemas: Readonly<Record<string, unknown>>;
		readonly securitySchemes: Readonly<Record<string, SecuritySchemeObject>>;
	};
};

const headerObjects = {
	'Retry-After': {description: 'Seconds to wait before the next attempt.', schema: {type: 'integer', minimum: 1}},
	Location: {description: 'The new user.', schema: {type: 'string'}},
} as const;

const schemaName = (key: string): string => `${key.slice(0, 1).toUpperCase()}${key.slice(1)}`;
const reference = (key: string) => ({$ref: `#/components/schemas/${schemaName(key)}`});

/** A zod schema as a JSON Schema 2020-12 object, without its `$schema` (the document's dialect is 2020-12 already). */
function jsonSchema(schema: z.ZodType, io: 'input' | 'output'): Record<string, unknown> {
	const converted: Record<string, unknown> = {...z.toJSONSchema(schema, {io})};
	delete converted['$schema'];
	return converted;
}

/**
The OpenAPI 3.1 document of the mounted routes: every path and method, request bodies and query
parameters from the schemas the routes validate with (as the client sends them), response bodies
(as the routes answer them), and each route's security as its guard describes it.
*/
export function buildDocument(routes: readonly AccountRoute[], schemas: AccountSchemas, info: OpenApiInfo = {title: 'Accounts', version: '1.0.0'}): OpenApiDocument {
	const paths: Record<string, Record<string, unknown>> = {};
	const securitySchemes: Record<string, SecuritySchemeObject> = {};
	const used = new Map<keyof AccountSchemas, 'input' | 'output'>();
	for (const route of routes) {
		const parameters: unknown[] = [];
		const path = route.path.replaceAll(/:(\w+)/g, (_match, name: string) => {
			parameters.push({name, in: 'path', required: true, schema: {type: 'string'}});
			return `{${name}}`;
		});
		if (route.query !== undefined) {
			const query = jsonSchema(schemas[route.query], 'input') as {properties?: Record<string, unknown>; required?: string[]};
			for (const [name, schema] of Object.entries(query.properties ?? {})) {
				parameters.push({name, in: 'query', required: query.required?.includes(name) ?? false, schema});
			}
		}

		let security: readonly SecurityRequirementObject[] = [];
		if (route.guard !== undefined) {
			const described = openApiSecurity(route.guard);
			if (described === undefined) {
				throw new TypeError(`The guard of ${route.method.toUpperCase()} ${route.path} is not a middleware of koa-stateless-auth.`);
			}

			security = described.security;
			Object.assign(securitySchemes, described.securitySchemes);
		}

		if (route.body !== undefined) {
			used.set(route.body.schema, 'input');
		}

		const responses = Object.fromEntries(Object.entries(route.responses).map(([status, response]) => {
			if (response.schema !== undefined) {
				used.set(response.schema, 'output');
			}

			return [status, {
				description: response.description,
				...(response.headers === undefined ? {} : {headers: Object.fromEntries(response.headers.map(name => [name, headerObjects[name]]))}),
				...(response.schema === undefined ? {} : {content: {'application/json': {schema: reference(response.schema)}}}),
			}];
		}));
		const {body: request} = route;
		const body = request === undefined ? {} : {
			requestBody: {
				required: true,
				content: Object.fromEntries((request.form === true ? ['application/json', 'application/x-www-form-urlencoded'] : ['application/json'])
					.map(type => [type, {schema: reference(request.schema)}])),
			},
		};
		paths[path] = {
			...paths[path],
			[route.method]: {
				operationId: route.operationId,
				summary: route.summary,
				tags: ['accounts'],
				security,
				...(parameters.length === 0 ? {} : {parameters}),
				...body,
				responses,
			},
		};
	}

	const componentSchemas = Object.fromEntries([...used].map(([key, io]) => [schemaName(key), jsonSchema(schemas[key], io)]));
	return {openapi: '3.1.0', info, paths, components: {schemas: componentSchemas, securitySchemes}};
}
