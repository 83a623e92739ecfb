// The chat's web client. The bindings in ../functions/_generated import
// "convex/server" from outside this folder: `dedupe` resolves it (and React)
// from web/node_modules, so the page has one copy of each.
import { defineConfig } from "vite";

export default defineConfig({
  esbuild: { jsx: "automatic" },
  resolve: { dedupe: ["convex", "react", "react-dom"] },
  server: { fs: { allow: [".."] } },
  build: { outDir: "dist", emptyOutDir: true },
});
