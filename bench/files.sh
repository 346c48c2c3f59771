#!/usr/bin/env bash
# Files (issue 9): upload and download throughput of one file through Quire (curl over loopback,
# SQLite in a temporary data dir) against a plain `cp` of the same file on the same disk, and
# the server's peak RSS during four concurrent uploads of different 40 MiB files.
#   usage: bench/files.sh                 (release build; BIN=path/to/quire to use another)
#          SIZE_MIB=40 DATABASE_URL=postgres://… bench/files.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MIB="${SIZE_MIB:-40}"
PORT="${PORT:-3917}"
WORK="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
if [ -z "${BIN:-}" ]; then
    cargo build --release --quiet --bin quire
    BIN="${CARGO_TARGET_DIR:-target}/release/quire"
fi
BASE="http://127.0.0.1:$PORT"
JAR="$WORK/cookies"

QUIRE_DATA_DIR="$WORK/data" RUST_LOG=warn QUIRE_MAX_UPLOAD=200MiB \
    "$BIN" serve --bind "127.0.0.1:$PORT" >"$WORK/server.log" 2>&1 &
SERVER=$!
for _ in $(seq 100); do curl -fs "$BASE/healthz" >/dev/null 2>&1 && break; sleep 0.1; done

token() { curl -fs -b "$JAR" -c "$JAR" "$BASE$1" | grep -o 'name="csrf_token" value="[^"]*"' | head -1 | sed 's/.*value="//; s/"$//'; }
T=$(token /register)
curl -fs -b "$JAR" -c "$JAR" -o /dev/null --data-urlencode username=bench --data-urlencode "password=bench password 1" \
    --data-urlencode "confirm_password=bench password 1" --data-urlencode "csrf_token=$T" "$BASE/register"
T=$(token /login)
curl -fs -b "$JAR" -c "$JAR" -o /dev/null --data-urlencode username=bench --data-urlencode "password=bench password 1" \
    --data-urlencode "csrf_token=$T" "$BASE/login"
T=$(token /create)
curl -fs -b "$JAR" -c "$JAR" -o /dev/null --data-urlencode title=Bench --data-urlencode content=files \
    --data-urlencode "csrf_token=$T" "$BASE/create"

for i in 0 1 2 3 4; do head -c "$((SIZE_MIB * 1024 * 1024))" /dev/urandom >"$WORK/file$i.bin"; done
sync

mibs() { awk -v s="$1" -v t="$2" 'BEGIN { printf "%.0f", s / t }'; }
start=$(date +%s.%N); cp "$WORK/file0.bin" "$WORK/copy.bin"; sync; end=$(date +%s.%N)
CP=$(awk -v a="$start" -v b="$end" 'BEGIN { print b - a }')

upload() {
    local T; T=$(token /wiki/Bench/attachments)
    curl -fs -b "$JAR" -o /dev/null -w '%{http_code} %{time_total}\n' \
        -F "csrf_token=$T" -F "file=@$1" "$BASE/wiki/Bench/attachments"
}
read -r CODE UP < <(upload "$WORK/file0.bin")
[ "$CODE" = 303 ] || { echo "upload answered $CODE"; exit 1; }
DOWN=$(curl -fs -b "$JAR" -o "$WORK/back.bin" -w '%{time_total}' "$BASE/wiki/Bench/attachments/file0.bin")
cmp -s "$WORK/file0.bin" "$WORK/back.bin" || { echo "the download differs from the upload"; exit 1; }

# Four at once; the kernel's high-water mark of the server's resident set is read after.
BEFORE=$(awk '/VmRSS/ {print $2}' "/proc/$SERVER/status")
PIDS=()
for i in 1 2 3 4; do upload "$WORK/file$i.bin" >"$WORK/up$i" & PIDS+=($!); done
wait "${PIDS[@]}"
for i in 1 2 3 4; do read -r code _ <"$WORK/up$i"; [ "$code" = 303 ] || { echo "concurrent upload $i answered $code"; exit 1; }; done
PEAK=$(awk '/VmHWM/ {print $2}' "/proc/$SERVER/status")

echo "machine: $(nproc) cores, $(uname -sr); database: ${DATABASE_URL:-sqlite (temporary data dir)}; file: $SIZE_MIB MiB of random bytes"
echo "cp:       $(mibs "$SIZE_MIB" "$CP") MiB/s ($CP s)"
echo "upload:   $(mibs "$SIZE_MIB" "$UP") MiB/s ($UP s, curl -F, 303 after commit)"
echo "download: $(mibs "$SIZE_MIB" "$DOWN") MiB/s ($DOWN s, byte-for-byte equal)"
echo "RSS: $((BEFORE / 1024)) MiB before, peak $((PEAK / 1024)) MiB over the whole run (four concurrent $SIZE_MIB MiB uploads included)"
