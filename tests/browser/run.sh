#!/usr/bin/env bash
# Installs what the browser test needs (Debian's chromium, playwright-core from npm) and runs it
# against a freshly built quire.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ ! -x /usr/bin/chromium ] || ! command -v unzip >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver unzip >/dev/null
fi
(cd tests/browser && npm install --no-audit --no-fund --silent)
cargo build --quiet --bin quire
node tests/browser/run.mjs "${CARGO_TARGET_DIR:-target}/debug/quire"
