// Lint: the rules that catch bugs the type checker does not (promises nobody waits for, async
// callbacks where a sync one is expected, swallowed errors, loose equality), plus type-only imports.
// Formatting is prettier's job (`npm run format:check`), not eslint's.
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

const config = tseslint.config(
  {
    ignores: ['dist/**', 'src/gen/**', 'node_modules/**', 'bench/peers/node_modules/**', '.xserver/**', '.prof/**'],
  },
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    languageOptions: {
      parserOptions: {
        project: './tsconfig.eslint.json',
        tsconfigRootDir: import.meta.dirname,
      },
      globals: { ...globals.node },
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      'no-empty': ['error', { allowEmptyCatch: false }],
      eqeqeq: ['error', 'always'],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
    },
  },
  {
    files: ['**/*.ts'],
    rules: {
      // `typeof import('ws')` next to a lazy `await import('ws')` stays allowed.
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports', disallowTypeAnnotations: false }],
    },
  },
  {
    // node:test's test() returns a promise the runner itself awaits.
    files: ['templates/init/test/**/*.ts'],
    rules: { '@typescript-eslint/no-floating-promises': 'off' },
  },
  {
    // Runs in browsers (and Node): the chat page, the playground page and the client SDK.
    files: ['examples/chat/**/*.ts', 'examples/contracts.ts', 'playground/**/*.js', 'src/client/**/*.ts'],
    languageOptions: { globals: { ...globals.browser } },
  },
);

export default config;
