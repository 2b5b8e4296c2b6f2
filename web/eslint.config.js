// ESLint for the portal's TypeScript: ESLint's and typescript-eslint's recommended rules, the type-aware ones
// included (they read the same tsconfig.json as `tsc`), run by `npm run check` and so by `make test`.
import js from "@eslint/js";
import { defineConfig } from "eslint/config";
import tseslint from "typescript-eslint";

export default defineConfig(
  // Generated from openapi/*.json by `npm run gen`; the build output is not source.
  { ignores: ["dist/", "src/api/*.d.ts"] },
  js.configs.recommended,
  tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        projectService: { allowDefaultProject: ["eslint.config.js"] },
        tsconfigRootDir: import.meta.dirname,
      },
    },
  },
  {
    // This file is plain JavaScript outside tsconfig.json: no type information to check it with.
    files: ["eslint.config.js"],
    ...tseslint.configs.disableTypeChecked,
  },
);
