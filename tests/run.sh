#!/usr/bin/env bash
# Runs every test: installs the wasm target, wasm-tools and the browser
# test's packages if missing, builds the components and the test fixtures
# for wasm32-wasip2, then runs unit, end-to-end and contract tests in
# release mode (wasmtime compiles once, for the host and its tests alike),
# and the end-to-end suites on both lanes.
set -euo pipefail
cd "$(dirname "$0")/.."

rustup target list --installed | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2
command -v wasm-tools >/dev/null || cargo install wasm-tools --locked
# The dashboard's browser test drives Chromium (/usr/bin/chromium) with
# playwright-core, at the version its lock file pins.
[ -d tests/browser/node_modules ] || npm ci --prefix tests/browser --no-audit --no-fund

# Each component builds on its own, as spin.toml's build commands do. The
# test fixtures go first: the faulty router links the router crate without
# the router's exports, and cargo rewrites upshift_router.wasm when it
# builds it; the gateway labelled `next` is the same source, built again
# below without the label.
release=target/wasm32-wasip2/release
UPSHIFT_GATEWAY_BUILD=next cargo build --release --target wasm32-wasip2 -p upshift-gateway
cp "$release/upshift_gateway.wasm" "$release/upshift_gateway_next.wasm.tmp"
mv "$release/upshift_gateway_next.wasm.tmp" "$release/upshift_gateway_next.wasm"
for package in faulty-router gateway admin router auth splitter ai; do
  cargo build --release --target wasm32-wasip2 -p "upshift-$package"
done
cargo test --release --workspace
# The end-to-end suites again with the gateway component on the byte path,
# as Spin runs it, so that lane cannot rot (the suites of the manifest,
# the WIT contract and TLS settings have no lane).
suites=(routing proxying protocols failures config components upgrades live_upgrades auth ai rollouts distributed observability)
# --workspace keeps the features of the build above: nothing is rebuilt.
UPSHIFT_TEST_LANE=component cargo test --release --workspace --test e2e -- "${suites[@]/%/::}"
# The demo command builds the host alone: it must find everything built.
built=$(cargo build --release -p upshift 2>&1)
if grep Compiling <<<"$built"; then
  echo "building the host alone recompiled the above: run cargo hakari generate" >&2
  exit 1
fi
# Every parser of outside input, fuzzed for a bounded time.
bash tests/fuzz.sh 20
