import {readFileSync} from 'node:fs';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import test from 'ava';
import ts from 'typescript';

// Every TypeScript block of the README compiles, under the project's strict settings, against the
// built package as a user imports it (`koa-stateless-auth`, resolved through package.json's exports).
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
const blocks = [...readme.matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map(match => ({
	code: match[1] ?? '',
	line: readme.slice(0, match.index).split('\n').length + 1,
}));

// The names snippets use without declaring them, as globals. Kept as text, outside the project's own
// compilation, so that no test file can lean on these globals by mistake.
const prelude = readFileSync(path.join(root, 'tests/readme/prelude.txt'), 'utf8');

function compile(snippets: ReadonlyMap<string, string>): readonly ts.Diagnostic[] {
	const files = new Map([...snippets, [path.join(root, 'tests/readme/prelude.d.ts'), prelude]]);
	const configPath = path.join(root, 'tsconfig.json');
	const {config} = ts.readConfigFile(configPath, name => ts.sys.readFile(name)) as {config: unknown};
	const {options} = ts.parseJsonConfigFileContent(config, ts.sys, root);
	const disk = ts.createCompilerHost({...options, noEmit: true});
	const host: ts.CompilerHost = {
		...disk,
		fileExists: name => files.has(name) || disk.fileExists(name),
		readFile: name => files.get(name) ?? disk.readFile(name),
		getSourceFile(name, version, ...rest) {
			const text = files.get(name);
			return text === undefined ? disk.getSourceFile(name, version, ...rest) : ts.createSourceFile(name, text, version);
		},
	};
	const program = ts.createProgram([...files.keys()], {...options, noEmit: true}, host);
	return ts.getPreEmitDiagnostics(program);
}

test('the README has TypeScript blocks to check', t => {
	t.true(blocks.length >= 15);
});

test('every TypeScript block of the README compiles under strict against the built package', t => {
	// Each block is a module of its own (`export {}`), beside the others, in the project's folder so
	// that the package's own name resolves to its exports.
	const files = new Map(blocks.map(({code, line}) => [path.join(root, 'tests/readme', `readme-line-${line}.ts`), `${code}\nexport {};\n`]));
	const diagnostics = compile(files);
	const messages = diagnostics.map(diagnostic => {
		const where = diagnostic.file === undefined ? '' : `${path.basename(diagnostic.file.fileName)}:${diagnostic.file.getLineAndCharacterOfPosition(diagnostic.start ?? 0).line + 1}: `;
		return where + ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n');
	});
	t.deepEqual(messages, []);
});

test('a block that does not compile is caught', t => {
	const file = path.join(root, 'tests/readme', 'broken.ts');
	const diagnostics = compile(new Map([[file, 'const n: number = auth.tokenRequired();\nexport {};\n']]));
	t.true(diagnostics.length > 0);
});
