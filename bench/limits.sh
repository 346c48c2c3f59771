#!/usr/bin/env bash
# The attacks of issue 15 on limits and text (bench/limits.rs), against one Quire binary started
# here with its default limits on a fresh SQLite data dir. Bounded: the client's requests have a
# 30 s timeout, the run a 120 s one, and the server is stopped at the end.
#
#   bench/limits.sh                          # the binary of this checkout (release build)
#   BIN=/path/to/other/quire bench/limits.sh # another build, e.g. main before the change
set -euo pipefail
cd "$(dirname "$0")/.."
PORT="${PORT:-3710}"
WORK="$(mktemp -d)"
PID=""
cleanup() {
    [ -n "$PID" ] && kill "$PID" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

if [ -z "${BIN:-}" ]; then
    cargo build --release --quiet --bin quire
    BIN="$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')/release/quire"
fi
cargo build --quiet --example bench-limits
EX="$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')/debug/examples/bench-limits"

"$BIN" serve --bind "127.0.0.1:$PORT" --data-dir "$WORK" >"$WORK/log" 2>&1 &
PID=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$PORT/" >/dev/null && break; sleep 0.1; done
echo "binary: $BIN ($(nproc) cores)"
timeout 120 "$EX" "http://127.0.0.1:$PORT" "$WORK/avatars"
