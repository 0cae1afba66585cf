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
);
