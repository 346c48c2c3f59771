#!/usr/bin/env bash
# Backup and restore against the databases' own tools, on one seeded dataset: the time of
# `quire backup` and `quire restore` and the archive's size, beside `sqlite3 .backup`/`.restore`
# of the same SQLite file and `pg_dump -Fc`/`pg_restore` of the same wiki in PostgreSQL (copied
# there with `quire copy-database`, whose time is shown too). Every step is bounded in time.
#
#   bench/backup.sh                            # 10,000 pages × 10 revisions
#   PAGES=100000 REVS=10 bench/backup.sh       # the scale dataset
#
# Env: PAGES, REVS, USERS, PG (a PostgreSQL server URL whose user may create databases; default
# postgres://postgres@127.0.0.1:5432/postgres; empty: SQLite only), SEEDED (a database
# bench-seed made earlier, copied instead of seeding). Prints a Markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."
PAGES="${PAGES:-10000}" REVS="${REVS:-10}" USERS="${USERS:-50}"
PG="${PG-postgres://postgres@127.0.0.1:5432/postgres}"
WORK="$(mktemp -d)"
DBS=()
cleanup() {
    for db in "${DBS[@]}"; do psql -q "$PG" -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

need() { command -v "$1" >/dev/null || { apt-get update -qq && apt-get install -y -qq "$2" >/dev/null; }; }
need sqlite3 sqlite3
need bc bc
need /usr/bin/time time
[ -z "$PG" ] || { need pg_dump postgresql-client; need psql postgresql-client; }

echo "building…" >&2
cargo build --release --quiet --bin quire --example bench-seed
TARGET="${CARGO_TARGET_DIR:-target}"
BIN="$TARGET/release/quire"

if [ -n "${SEEDED:-}" ]; then
    cp "$SEEDED" "$WORK/quire.db"
    if [ -f "$SEEDED-wal" ]; then cp "$SEEDED-wal" "$WORK/quire.db-wal"; fi
    SEED_LINE="$(cat "$SEEDED.seeded" 2>/dev/null || echo "copied from $SEEDED")"
else
    echo "seeding $PAGES pages × $REVS revisions…" >&2
    SEED_LINE=$(timeout 3600 "$TARGET/release/examples/bench-seed" "sqlite://$WORK/quire.db?mode=rwc" "$PAGES" "$REVS" "$USERS")
fi
# One file, as `.backup` and `quire backup` both see it.
sqlite3 "$WORK/quire.db" "PRAGMA wal_checkpoint(TRUNCATE);" >/dev/null
DB_SIZE=$(stat -c %s "$WORK/quire.db")

ROWS=()
# seconds COMMAND…: runs it (bounded to an hour), prints the wall-clock seconds and, through
# GNU time, the peak resident memory in MiB.
seconds() {
    local start end
    start=$(date +%s.%N)
    timeout 3600 /usr/bin/time -f %M -o "$WORK/rss" "$@" >/dev/null
    end=$(date +%s.%N)
    echo "$(echo "scale=2; ($end - $start) / 1" | bc) | $(( $(cat "$WORK/rss") / 1024 ))"
}
size() { stat -c %s "$1"; }
row() { ROWS+=("| $1 | $2 | $3 |"); echo "| $1 | $2 | $3 |" >&2; }
# The command line of quire on a database (with a data dir of its own): in Q.
on() { Q=(env RUST_LOG=warn "QUIRE_DATA_DIR=$WORK/data-$1" "DATABASE_URL=$2" "$BIN"); }
pg_url() { echo "${PG%/*}/$1"; }
createdb_pg() { psql -q "$PG" -c "CREATE DATABASE $1" >/dev/null; DBS+=("$1"); }

echo "SQLite…" >&2
SRC="sqlite://$WORK/quire.db"
on src "$SRC"; T=$(seconds "${Q[@]}" backup --quiet --out "$WORK/quire.zip")
row "\`quire backup\` from SQLite" "$T" "$(size "$WORK/quire.zip")"
on restored "sqlite://$WORK/restored.db?mode=rwc"; T=$(seconds "${Q[@]}" restore --quiet "$WORK/quire.zip")
row "\`quire restore\` into SQLite (with the search index rebuilt)" "$T" "$(size "$WORK/restored.db")"
# Each copy goes once measured: at 100,000 pages each one is 13 GB.
rm -f "$WORK/restored.db" "$WORK/restored.db-wal" "$WORK/restored.db-shm" "$WORK/quire.zip"
T=$(seconds sqlite3 "$WORK/quire.db" ".backup '$WORK/sqlite.bak'")
row "\`sqlite3 .backup\`" "$T" "$(size "$WORK/sqlite.bak")"
T=$(seconds sqlite3 "$WORK/copy.db" ".restore '$WORK/sqlite.bak'")
row "\`sqlite3 .restore\`" "$T" "$(size "$WORK/copy.db")"
rm -f "$WORK/copy.db" "$WORK/sqlite.bak"

if [ -n "$PG" ]; then
    echo "PostgreSQL…" >&2
    RUN="bench_$$"
    createdb_pg "${RUN}_src"
    on src "$SRC"; T=$(seconds "${Q[@]}" copy-database --quiet --to "$(pg_url "${RUN}_src")")
    row "\`quire copy-database\` SQLite → PostgreSQL" "$T" "—"
    rm -f "$WORK/quire.db" "$WORK/quire.db-wal" "$WORK/quire.db-shm"
    on pg "$(pg_url "${RUN}_src")"; T=$(seconds "${Q[@]}" backup --quiet --out "$WORK/pg.zip")
    row "\`quire backup\` from PostgreSQL" "$T" "$(size "$WORK/pg.zip")"
    T=$(seconds pg_dump -Fc -f "$WORK/pg.dump" "$(pg_url "${RUN}_src")")
    row "\`pg_dump -Fc\`" "$T" "$(size "$WORK/pg.dump")"
    createdb_pg "${RUN}_quire"
    on pgr "$(pg_url "${RUN}_quire")"; T=$(seconds "${Q[@]}" restore --quiet "$WORK/pg.zip")
    row "\`quire restore\` into PostgreSQL (with the search index rebuilt)" "$T" "—"
    psql -q "$PG" -c "DROP DATABASE ${RUN}_quire" >/dev/null
    rm -f "$WORK/pg.zip"
    createdb_pg "${RUN}_pg"
    T=$(seconds pg_restore -d "$(pg_url "${RUN}_pg")" "$WORK/pg.dump")
    row "\`pg_restore\`" "$T" "—"
fi

echo "Dataset: $SEED_LINE; SQLite file $DB_SIZE bytes."
echo
echo "| step | seconds | peak RSS (MiB) | bytes |"
echo "|---|---|---|---|"
printf '%s\n' "${ROWS[@]}"
