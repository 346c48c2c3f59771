#!/usr/bin/env bash
# Imports a Flask fixture (300 users, 1,500 pages) into SQLite and into PostgreSQL, then measures
# GET /wiki/TITLE on each with wrk, in one run. Loopback only; every step bounded in time.
#   usage: bench/backends.sh            (needs: wrk, a PostgreSQL at 127.0.0.1:5432, trust auth)
set -euo pipefail
cd "$(dirname "$0")/.."
PG_SERVER="${PG_SERVER:-postgres://postgres@127.0.0.1:5432}"
DURATION="${DURATION:-10s}"
WORK="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; psql "$PG_SERVER/postgres" -qc "DROP DATABASE IF EXISTS quire_bench WITH (FORCE)" >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
VENV="${WIKI_VENV:-$HOME/.cache/reference-flask-venv}"
[ -x "$VENV/bin/python" ] || ../shared/reference-flask/setup.sh >/dev/null
cargo build --release --quiet
BIN="${CARGO_TARGET_DIR:-target}/release/quire"

"$VENV/bin/python" ../shared/reference-flask/make_fixture.py "$WORK/flask/database.db" --seed 7 --users 300 --pages 1500 >/dev/null
TITLE=Bench_10KB

psql "$PG_SERVER/postgres" -qc "DROP DATABASE IF EXISTS quire_bench WITH (FORCE)" >/dev/null
psql "$PG_SERVER/postgres" -qc "CREATE DATABASE quire_bench" >/dev/null

declare -A URLS=([sqlite]="sqlite://$WORK/sqlite/quire.db?mode=rwc" [postgres]="$PG_SERVER/quire_bench")
PORT=3900
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr)"
for backend in sqlite postgres; do
    mkdir -p "$WORK/$backend"
    export DATABASE_URL="${URLS[$backend]}" QUIRE_DATA_DIR="$WORK/$backend" RUST_LOG=warn
    start=$(date +%s.%N)
    "$BIN" import-flask --db "$WORK/flask/database.db" --uploads "$WORK/flask/uploads/avatars" > "$WORK/$backend.import" 2>/dev/null
    end=$(date +%s.%N)
    echo "== $backend: import of 300 users / 1,500 pages: $(echo "$end - $start" | bc) s (process wall time, including migrations)"
    grep -E "^(users|pages|avatars):" "$WORK/$backend.import" | sed 's/^/   /'
    PORT=$((PORT + 1))
    "$BIN" serve --bind "127.0.0.1:$PORT" >/dev/null 2>&1 &
    pid=$!
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/" >/dev/null && break; sleep 0.1; done
    curl -sf "http://127.0.0.1:$PORT/wiki/$TITLE" >/dev/null
    echo "   GET /wiki/$TITLE, wrk -t2 -c16 -d$DURATION:"
    wrk -t2 -c16 -d"$DURATION" --latency "http://127.0.0.1:$PORT/wiki/$TITLE" | grep -E "Requests/sec|^ +(50|99)%" | sed 's/^ */   /'
    kill "$pid"; wait "$pid" 2>/dev/null || true
done
