// The portal's build: one HTML entry, hashed assets, nothing inlined (the Content-Security-Policy allows no
// data: URLs), and the unit tests (vitest) beside it.
import { defineConfig } from "vitest/config";

export default defineConfig({
  build: {
    outDir: "dist",
    emptyOutDir: true,
    assetsInlineLimit: 0,
    sourcemap: false,
    modulePreload: { polyfill: false },
  },
  test: {
    include: ["tests/**/*.test.ts"],
    environment: "node",
  },
});
