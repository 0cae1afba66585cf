import {defineConfig} from 'eslint/config';
import tseslint from 'typescript-eslint';

export default defineConfig(
	{ignores: ['dist/', 'coverage/', 'node_modules/']},
	...tseslint.configs.strictTypeChecked,
	{
		languageOptions: {
			parserOptions: {
				projectService: {allowDefaultProject: ['*.js']},
				tsconfigRootDir: import.meta.dirname,
			},
		},
		rules: {
			'@typescript-eslint/restrict-template-expressions': ['error', {allowNumber: true}],
			'@typescript-eslint/no-unused-vars': ['error', {argsIgnorePattern: '^_'}],
		},
	},
	{
		// Tests and benchmarks poke at edge cases on purpose: loaders that are async without
		// awaiting, awaited Map lookups (the hand-written baseline), type tests whose lines exist only
		// to be errors.
		files: ['tests/**', 'bench/**'],
		rules: {
			'@typescript-eslint/await-thenable': 'off',
			'@typescript-eslint/no-unsafe-return': 'off',
			'@typescript-eslint/no-non-null-assertion': 'off',
			'@typescript-eslint/require-await': 'off',
			'@typescript-eslint/no-meaningless-void-operator': 'off',
			'@typescript-eslint/no-unsafe-assignment': 'off',
			'@typescript-eslint/no-unnecessary-condition': 'off',
		},
	},
);
