#!/usr/bin/env bash
# Installs what building Idra needs — only what is missing, so a second run takes seconds:
# protoc (for etcd-client), the wasm32 target, cargo-leptos 0.3.10, wasm-bindgen-cli equal
# to Cargo.lock's wasm-bindgen, and with `release` also wasm-opt from npm's binaryen@132
# (Debian's binaryen 108 builds a wasm that fails to hydrate). Registries only: crates.io,
# npm and Debian.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

command -v protoc >/dev/null || apt_install protobuf-compiler
command -v npm >/dev/null || apt_install nodejs npm

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  rustup target add wasm32-unknown-unknown
fi

if ! cargo leptos --version 2>/dev/null | grep -qx "cargo-leptos 0.3.10"; then
  echo "installing cargo-leptos 0.3.10 (about 18 minutes on 2 cores, once)"
  cargo install cargo-leptos --locked --version 0.3.10
fi

wasm_bindgen_version=$(awk '$0 == "name = \"wasm-bindgen\"" { getline; gsub(/"/, "", $3); print $3 }' Cargo.lock)
if ! wasm-bindgen --version 2>/dev/null | grep -qx "wasm-bindgen $wasm_bindgen_version"; then
  echo "installing wasm-bindgen-cli $wasm_bindgen_version (about 7 minutes, once)"
  # Not --locked: its lockfile names a crate version the registry mirror lacks.
  cargo install wasm-bindgen-cli --version "$wasm_bindgen_version"
fi

if [ "${1:-}" = release ] && [ ! -x .tools/node_modules/.bin/wasm-opt ]; then
  npm install --prefix .tools --no-audit --no-fund --silent binaryen@132
fi
echo "build tools: ready"
