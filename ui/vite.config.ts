import { defineConfig } from "vite";

// Output goes straight into the gateway package, which serves it at "/" (see docs/ui.md).
export default defineConfig({
  esbuild: { jsx: "automatic", jsxImportSource: "preact" },
  build: {
    outDir: "../exocorp/api_gateway/ui_dist",
    emptyOutDir: true,
    target: "es2022",
    // The strict CSP forbids inline script; Vite's module preload polyfill is inline-free,
    // but modern Chromium needs none.
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    reportCompressedSize: true,
  },
});
