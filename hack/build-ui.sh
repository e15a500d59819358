#!/usr/bin/env bash
# Build the dashboard (ui/) into exocorp/api_gateway/ui_dist/, cached by content: npm ci runs only
# when ui/package-lock.json changed, the build only when an input's content changed (the sources,
# the lock file, the configs, or docs/openapi.json, from which the API types are generated).
set -euo pipefail
cd "$(dirname "$0")/.."
out=exocorp/api_gateway/ui_dist
hash_of() { sha256sum "$@" | sha256sum | cut -c1-16; }

lock_hash=$(hash_of ui/package-lock.json ui/package.json)
if [ "$(cat ui/node_modules/.exocorp-lock-hash 2>/dev/null)" != "$lock_hash" ]; then
  echo "ui: installing the locked dependencies (npm ci)"
  (cd ui && npm ci --no-audit --no-fund --loglevel=error)
  echo "$lock_hash" > ui/node_modules/.exocorp-lock-hash
fi

inputs=$( (find ui/src -type f ! -name schema.d.ts; echo ui/index.html ui/vite.config.ts ui/tsconfig.json \
  ui/package.json ui/package-lock.json docs/openapi.json) | tr ' ' '\n' | LC_ALL=C sort)
build_hash=$(hash_of $inputs)
if [ "$(cat "$out/.build-hash" 2>/dev/null)" = "$build_hash" ] && [ -f "$out/index.html" ]; then
  echo "ui: up to date ($build_hash)"
  exit 0
fi
echo "ui: building ($build_hash)"
(cd ui && npm run --silent build)
echo "$build_hash" > "$out/.build-hash"
