import test from 'ava';
import {Validator} from '@seriousme/openapi-schema-validator';
import {USE_DEFAULT, openApiSecurity, type RouteSecurity} from '../source/index.js';
import {createFixture} from './helpers/fixture.js';

// The middleware describes what it enforces; the document built from it must be valid OpenAPI 3.1.
function describedRoutes() {
	const {auth, basic, machines} = createFixture();
	return {
		'/secret': auth.tokenRequired(),
		'/admin': auth.tokenRequired({permissions: ['admin']}),
		'/reports': auth.protect({authenticators: [USE_DEFAULT, basic], permissions: {allOf: ['view'], anyOf: ['reports', 'admin']}}),
		'/keys': auth.tokenRequired({allowApiKey: true}),
		'/m2m': auth.protect({authenticators: [machines]}),
		'/feed': auth.tokenRequired({mode: 'optional'}),
		'/health': auth.protect({authenticators: null}),
	};
}

function security(middleware: object): RouteSecurity {
	const described = openApiSecurity(middleware);
	if (described === undefined) {
		throw new Error('not described');
	}

	return described;
}

test('each route describes its security requirement', t => {
	const routes = describedRoutes();
	t.deepEqual(security(routes['/secret']).security, [{bearerAuth: []}]);
	t.deepEqual(security(routes['/admin']).security, [{bearerAuth: ['admin']}]);
	t.deepEqual(security(routes['/reports']).security, [
		{bearerAuth: ['view', 'reports']},
		{bearerAuth: ['view', 'admin']},
		{basicAuth: ['view', 'reports']},
		{basicAuth: ['view', 'admin']},
	]);
	t.deepEqual(security(routes['/keys']).security, [{bearerAuth: []}, {tokenAuth: []}]);
	t.deepEqual(security(routes['/m2m']).security, [{apiKeyAuth: []}]);
	t.deepEqual(security(routes['/feed']).security, [{bearerAuth: []}, {}]);
	t.deepEqual(security(routes['/health']).security, []);
	t.is(openApiSecurity(() => undefined), undefined);
});

test('the schemes describe themselves as OpenAPI security schemes', t => {
	const routes = describedRoutes();
	const schemes = Object.assign({}, ...Object.values(routes).map(route => security(route).securitySchemes) as object[]) as RouteSecurity['securitySchemes'];
	t.deepEqual(schemes, {
		bearerAuth: {type: 'http', scheme: 'bearer'},
		basicAuth: {type: 'http', scheme: 'basic'},
		tokenAuth: {type: 'apiKey', in: 'header', name: 'Authorization', description: 'Authorization: Token <key>'},
		apiKeyAuth: {type: 'apiKey', in: 'header', name: 'X-MyApp-ApiKey'},
	});
});

test('a document built from the routes is valid OpenAPI 3.1', async t => {
	const routes = describedRoutes();
	const paths = Object.fromEntries(Object.entries(routes).map(([path, middleware]) => [path, {
		get: {security: security(middleware).security, responses: {200: {description: 'OK'}, 401: {description: 'Unauthorized'}}},
	}]));
	const document = {
		openapi: '3.1.0',
		info: {title: 'example', version: '1.0.0'},
		paths,
		components: {securitySchemes: Object.assign({}, ...Object.values(routes).map(route => security(route).securitySchemes) as object[]) as object},
	};
	const result = await new Validator().validate(document);
	t.true(result.valid, JSON.stringify(result.errors));
	const broken = await new Validator().validate({...document, components: {securitySchemes: {bearerAuth: {type: 'http'}}}});
	t.false(broken.valid, 'the validator does catch a scheme without its scheme field');
});
