#!/usr/bin/env bash
# Makes the pnpm pinned in package.json#packageManager available.
# On our machines /usr/bin/pnpm may be a corepack shim that fails its signature check until
# activated; `npm i -g pnpm` then fails with EEXIST unless forced.
set -euo pipefail
cd "$(dirname "$0")/.."
version="$(node -p "require('./package.json').packageManager.split('@')[1]")"
if pnpm --version >/dev/null 2>&1; then exit 0; fi
echo "pnpm missing or not activated: activating pnpm@${version} through corepack" >&2
if command -v corepack >/dev/null 2>&1; then
  corepack enable pnpm >/dev/null 2>&1 || true
  COREPACK_INTEGRITY_KEYS=0 COREPACK_ENABLE_DOWNLOAD_PROMPT=0 corepack prepare "pnpm@${version}" --activate >&2 || true
fi
if ! pnpm --version >/dev/null 2>&1; then
  echo "corepack did not provide pnpm: installing pnpm@${version} with npm" >&2
  npm install --global --force "pnpm@${version}" >&2
fi
pnpm --version >&2
