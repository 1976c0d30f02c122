// @ts-check
import js from "@eslint/js";
import { defineConfig, globalIgnores } from "eslint/config";
import tseslint from "typescript-eslint";

export default defineConfig([
  globalIgnores(["node_modules/", ".next/", "dist/", "coverage/", "next-env.d.ts"]),
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    rules: {
      "@typescript-eslint/consistent-type-imports": "error",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_" }],
      // Route handlers must not log request bodies or tokens; use console.error for failures only.
      "no-console": ["error", { allow: ["error", "warn"] }],
    },
  },
]);
