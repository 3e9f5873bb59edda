// Lint configuration: ESLint 9 flat config with typescript-eslint's type-aware recommended rules (see README.md,
// "Development"). Rules turned off below say why on their own line.
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'coverage/'] },
  js.configs.recommended,
  {
    files: ['**/*.ts'],
    extends: [tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      // One program for src, test and the vitest config (the typecheck's), so type-aware rules see the tests too.
      parserOptions: { project: './tsconfig.test.json', tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // `_name` marks a value left out on purpose (an omitted field in a destructuring, an unused parameter).
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_', ignoreRestSiblings: true },
      ],
      // Passing on a caught error or an AbortSignal's reason (typed any/unknown) is fine; a string or literal is not.
      '@typescript-eslint/prefer-promise-reject-errors': ['error', { allowThrowingAny: true, allowThrowingUnknown: true }],
      // Zero-width spaces in comments keep `*/` from closing a doc comment that shows a `bytes */N` header.
      'no-irregular-whitespace': ['error', { skipComments: true }],
      // ~150 redundant casts on SQLite rows: harmless, autofixable, and in files being rewritten (issue 14 item 3).
      '@typescript-eslint/no-unnecessary-type-assertion': 'off',
      // String() on SQLite scalars and parsed log fields typed `unknown` is intended; no object reaches these sites.
      '@typescript-eslint/no-base-to-string': 'off',
      // `async` without `await` implements a Promise-returning interface; it catches no bug here.
      '@typescript-eslint/require-await': 'off',
    },
  },
  {
    files: ['test/**/*.ts'],
    rules: {
      // Tests read JSON output, SQLite rows and CDP messages as untyped values and assert on them; typing every
      // read would rewrite most test files for no bug found.
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-explicit-any': 'off',
    },
  },
  {
    files: ['**/*.{js,mjs}'],
    languageOptions: { globals: globals.node },
  },
);
