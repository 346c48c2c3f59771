#!/usr/bin/env bash
# Quire's figures in one command: builds the release binary, seeds a deterministic dataset into a
# temporary data dir, starts Quire and, as the ceiling, nginx serving the viewed page's exact HTML
# as a static file, then drives both with wrk on loopback. Every step is bounded in time.
#
#   bench/run.sh                          # 1,000 pages × 10 revisions, results into BENCHMARKS.md
#   PAGES=100000 REVS=10 bench/run.sh     # the scale dataset (100,000 pages, 1,000,000 revisions)
#
# Env: PAGES, REVS, USERS, SEEDED (a database bench-seed made earlier, copied instead of seeding;
# its line of output kept beside it as SEEDED.seeded), DURATION (per workload, default 10s), PORT, NGINX_PORT, OUT (the file
# the results go to; default BENCHMARKS.md, between its bench markers).
set -euo pipefail
cd "$(dirname "$0")/.."
PAGES="${PAGES:-1000}" REVS="${REVS:-10}" USERS="${USERS:-50}" DURATION="${DURATION:-10s}"
PORT="${PORT:-3700}" NGINX_PORT="${NGINX_PORT:-3701}" OUT="${OUT:-BENCHMARKS.md}"
WORK="$(mktemp -d)"
QUIRE_PID="" NGINX_PID=""
cleanup() {
    [ -n "$QUIRE_PID" ] && kill "$QUIRE_PID" 2>/dev/null || true
    [ -n "$NGINX_PID" ] && kill "$NGINX_PID" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

need() { command -v "$1" >/dev/null || { apt-get update -qq && apt-get install -y -qq "$2" >/dev/null; }; }
need wrk wrk
need nginx nginx-light
need bc bc

echo "building…" >&2
cargo build --release --quiet --bin quire --examples
BIN="${CARGO_TARGET_DIR:-target}/release/quire"
EX="${CARGO_TARGET_DIR:-target}/release/examples"

if [ -n "${SEEDED:-}" ]; then
    # A dataset made earlier by bench-seed with the same PAGES/REVS/USERS (the 100,000-page one
    # takes minutes to make): copied, so the run never changes it.
    cp "$SEEDED" "$WORK/quire.db"
    if [ -f "$SEEDED-wal" ]; then cp "$SEEDED-wal" "$WORK/quire.db-wal"; fi
    SEED_LINE="$(cat "$SEEDED.seeded" 2>/dev/null || echo "copied from $SEEDED")"
else
    echo "seeding $PAGES pages × $REVS revisions…" >&2
    SEED_LINE=$(timeout 3600 "$EX/bench-seed" "sqlite://$WORK/quire.db?mode=rwc" "$PAGES" "$REVS" "$USERS")
fi

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kib() { awk "/^$2:/ {print \$2}" "/proc/$1/status"; }
TICKS=$(getconf CLK_TCK)

RUST_LOG=warn QUIRE_LOGIN_LIMIT=0/60 QUIRE_ACCOUNT_LOGIN_LIMIT=0/60 "$BIN" serve --data-dir "$WORK" \
    --database-url "sqlite://$WORK/quire.db" --bind "127.0.0.1:$PORT" >/dev/null 2>&1 &
QUIRE_PID=$!
START_NS=$(date +%s%N)
for _ in $(seq 200); do curl -sf "http://127.0.0.1:$PORT/" >/dev/null && break; sleep 0.05; done
READY_MS=$(( ($(date +%s%N) - START_NS) / 1000000 ))
sleep 2
IDLE_RSS=$(rss_kib "$QUIRE_PID" VmRSS)
BASE="http://127.0.0.1:$PORT"

# The ceiling: nginx serving the same bytes Quire sends for the viewed page.
mkdir -p "$WORK/www" "$WORK/nginx"
curl -sf "$BASE/wiki/Bench_10KB" > "$WORK/www/page.html"
PAGE_BYTES=$(wc -c < "$WORK/www/page.html")
cat > "$WORK/nginx/nginx.conf" <<CONF
worker_processes auto;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $WORK/nginx;
    proxy_temp_path $WORK/nginx;
    fastcgi_temp_path $WORK/nginx;
    uwsgi_temp_path $WORK/nginx;
    scgi_temp_path $WORK/nginx;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        root $WORK/www;
        location / { default_type text/html; }
    }
}
CONF
nginx -c "$WORK/nginx/nginx.conf" &
NGINX_PID=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$NGINX_PORT/page.html" >/dev/null && break; sleep 0.05; done

# A visitor's CSRF cookie and token (for logins), and a member's session (for saves).
curl -s -c "$WORK/visitor" "$BASE/login" > "$WORK/login.html"
export VISITOR_TOKEN=$(grep -o 'name="csrf_token" value="[^"]*"' "$WORK/login.html" | head -1 | cut -d'"' -f4)
export VISITOR_COOKIE="quire_csrf=$(awk '$6 == "quire_csrf" {print $7}' "$WORK/visitor")"
curl -s -b "$WORK/visitor" -c "$WORK/member" -o /dev/null \
    --data-urlencode "username=bench0000" --data-urlencode "password=bench-password" --data-urlencode "csrf_token=$VISITOR_TOKEN" "$BASE/login"
export MEMBER_COOKIE="quire_session=$(awk '$6 == "quire_session" {print $7}' "$WORK/member")"
export MEMBER_TOKEN=$(curl -s -H "Cookie: $MEMBER_COOKIE" "$BASE/create" | grep -o 'name="csrf_token" value="[^"]*"' | head -1 | cut -d'"' -f4)
export PAGES

ROWS=()
# run NAME CONNECTIONS URL [wrk args…]: one wrk run, with Quire's CPU per request.
run() {
    local name=$1 conns=$2 url=$3; shift 3
    local before after out rps p50 p99 requests cpu
    before=0 after=0
    [ -n "$QUIRE_PID" ] && before=$(cpu_ticks "$QUIRE_PID")
    out=$(timeout 120 wrk -t"$(( conns < 2 ? 1 : 2 ))" -c"$conns" -d"$DURATION" --latency "$@" "$url")
    [ -n "$QUIRE_PID" ] && after=$(cpu_ticks "$QUIRE_PID")
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
    p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
    requests=$(awk '/requests in/ {print $1}' <<<"$out")
    cpu=$(echo "scale=3; ($after - $before) * 1000 / $TICKS / ($requests + 0.0001)" | bc)
    LAST_OUT=$out LAST_RPS=$rps
    ROWS+=("| $name | $conns | $rps | $p50 | $p99 | ${cpu} ms |")
    echo "$name: $rps req/s, p50 $p50, p99 $p99" >&2
}
ratio() { echo "scale=2; $1 * 100 / $2" | bc; }

run "nginx: static copy of the page (ceiling)" 16 "http://127.0.0.1:$NGINX_PORT/page.html"
NGINX_RPS=$LAST_RPS
ROWS[-1]="${ROWS[-1]/| ms |/| – |}"
run "page view GET /wiki/Bench_10KB" 16 "$BASE/wiki/Bench_10KB"
VIEW_RPS=$LAST_RPS
run "page view GET /wiki/Bench_10KB" 64 "$BASE/wiki/Bench_10KB"
run "member page view (session cookie)" 16 "$BASE/wiki/Bench_10KB" -H "Cookie: $MEMBER_COOKIE"
MEMBER_RPS=$LAST_RPS
run "index GET /" 16 "$BASE/"
run "search GET /search?q=WORD" 16 "$BASE/" -s bench/lua/search.lua
run "search GET /search?q=WORD (latency, one client)" 1 "$BASE/" -s bench/lua/search.lua
run "login POST /login" 16 "$BASE/login" -s bench/lua/login.lua
LOGIN_RPS=$LAST_RPS
ARGON2=$(timeout 60 "$EX/bench-argon2" 5)

# Page views while logins run flat out.
timeout 120 wrk -t1 -c8 -d"$DURATION" -s bench/lua/login.lua "$BASE/login" >/dev/null &
LOGIN_LOAD=$!
sleep 1
run "page view while logins run flat out" 16 "$BASE/wiki/Bench_10KB"
wait "$LOGIN_LOAD" || true

run "mixed: 90 % views, 5 % search, 4 % saves, 1 % logins" 16 "$BASE/" -s bench/lua/mixed.lua
MIX=$(grep '^MIX' <<<"$LAST_OUT" || true)
MIX_LOGINS=0 run "mixed without the logins: 91 % views, 5 % search, 4 % saves" 16 "$BASE/" -s bench/lua/mixed.lua

SAVE_LINE=$(timeout 120 "$EX/bench-save" "$BASE" 32 "${DURATION%s}")
PEAK_RSS=$(rss_kib "$QUIRE_PID" VmHWM)
kill "$QUIRE_PID" 2>/dev/null || true
wait "$QUIRE_PID" 2>/dev/null || true
QUIRE_PID=""

# The same page views on PostgreSQL (the same generator, a database of its own), when one
# answers on 127.0.0.1:5432 (PG_SERVER overrides); skipped with the reason otherwise.
PG_SERVER="${PG_SERVER:-postgres://postgres@127.0.0.1:5432}"
PG_LINE="PostgreSQL: not measured (no server answers at $PG_SERVER)"
if (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null && command -v psql >/dev/null; then
    psql "$PG_SERVER/postgres" -qc "DROP DATABASE IF EXISTS quire_bench WITH (FORCE)" >/dev/null
    psql "$PG_SERVER/postgres" -qc "CREATE DATABASE quire_bench" >/dev/null
    timeout 1800 "$EX/bench-seed" "$PG_SERVER/quire_bench" "$PAGES" "$REVS" "$USERS" >/dev/null
    mkdir -p "$WORK/pg"
    RUST_LOG=warn QUIRE_LOGIN_LIMIT=0/60 "$BIN" serve --data-dir "$WORK/pg" --database-url "$PG_SERVER/quire_bench" \
        --bind "127.0.0.1:$((PORT + 2))" >/dev/null 2>&1 &
    QUIRE_PID=$!
    PG_BASE="http://127.0.0.1:$((PORT + 2))"
    for _ in $(seq 200); do curl -sf "$PG_BASE/" >/dev/null && break; sleep 0.05; done
    curl -s -c "$WORK/pg-visitor" "$PG_BASE/login" > "$WORK/pg-login.html"
    PG_TOKEN=$(grep -o 'name="csrf_token" value="[^"]*"' "$WORK/pg-login.html" | head -1 | cut -d'"' -f4)
    curl -s -b "$WORK/pg-visitor" -c "$WORK/pg-member" -o /dev/null --data-urlencode "username=bench0000" \
        --data-urlencode "password=bench-password" --data-urlencode "csrf_token=$PG_TOKEN" "$PG_BASE/login"
    PG_COOKIE="quire_session=$(awk '$6 == "quire_session" {print $7}' "$WORK/pg-member")"
    run "PostgreSQL: page view GET /wiki/Bench_10KB" 16 "$PG_BASE/wiki/Bench_10KB"
    PG_VIEW_RPS=$LAST_RPS
    run "PostgreSQL: member page view (session cookie)" 16 "$PG_BASE/wiki/Bench_10KB" -H "Cookie: $PG_COOKIE"
    PG_MEMBER_RPS=$LAST_RPS
    PG_LINE="PostgreSQL / SQLite: page view **$(ratio "$PG_VIEW_RPS" "$VIEW_RPS") %**, member page view **$(ratio "$PG_MEMBER_RPS" "$MEMBER_RPS") %**"
    kill "$QUIRE_PID" 2>/dev/null || true
    wait "$QUIRE_PID" 2>/dev/null || true
    QUIRE_PID=""
    psql "$PG_SERVER/postgres" -qc "DROP DATABASE IF EXISTS quire_bench WITH (FORCE)" >/dev/null || true
fi

# The seed's Flask app (../shared/reference-flask, gunicorn with 2 workers) on its own 10 KB
# page, made through its forms.
FLASK_LINE="Flask: not measured (../shared/reference-flask is missing)"
FLASK_DIR=../shared/reference-flask
if [ -x "$FLASK_DIR/serve.sh" ]; then
    VENV="${WIKI_VENV:-$HOME/.cache/reference-flask-venv}"
    [ -x "$VENV/bin/gunicorn" ] || WIKI_VENV="$VENV" "$FLASK_DIR/setup.sh" >/dev/null
    FLASK_PORT=$((PORT + 3))
    WIKI_VENV="$VENV" "$FLASK_DIR/serve.sh" "$FLASK_PORT" "$WORK/flask" >/dev/null 2>&1 &
    FLASK_PID=$!
    FLASK="http://127.0.0.1:$FLASK_PORT"
    for _ in $(seq 200); do curl -sf "$FLASK/" >/dev/null && break; sleep 0.1; done
    flask_token() { curl -s -b "$WORK/flask.jar" -c "$WORK/flask.jar" "$FLASK$1" | grep -o 'name="csrf_token"[^>]*value="[^"]*"' | head -1 | sed 's/.*value="//; s/"$//'; }
    curl -s -b "$WORK/flask.jar" -c "$WORK/flask.jar" -o /dev/null --data-urlencode "username=bench" --data-urlencode "password=bench-password" \
        --data-urlencode "confirm_password=bench-password" --data-urlencode "csrf_token=$(flask_token /register)" "$FLASK/register"
    curl -s -b "$WORK/flask.jar" -c "$WORK/flask.jar" -o /dev/null --data-urlencode "username=bench" --data-urlencode "password=bench-password" \
        --data-urlencode "csrf_token=$(flask_token /login)" "$FLASK/login"
    curl -s "$BASE/wiki/Bench_10KB" >/dev/null 2>&1 || true
    head -c 10240 "$WORK/www/page.html" | sed 's/<[^>]*>//g' > "$WORK/flask-content.txt"
    curl -s -b "$WORK/flask.jar" -c "$WORK/flask.jar" -o /dev/null --data-urlencode "title=Bench_10KB" \
        --data-urlencode "content@$WORK/flask-content.txt" --data-urlencode "csrf_token=$(flask_token /create)" "$FLASK/create"
    if curl -sf "$FLASK/wiki/Bench_10KB" >/dev/null; then
        run "Flask (gunicorn, 2 workers): GET /wiki/Bench_10KB" 16 "$FLASK/wiki/Bench_10KB"
        ROWS[-1]="${ROWS[-1]/| ms |/| – |}"
        FLASK_LINE="page view / Flask: **$(echo "scale=1; $VIEW_RPS / $LAST_RPS" | bc)×** (Flask $LAST_RPS requests/s)"
    else
        FLASK_LINE="Flask: not measured (the page could not be made through its forms)"
    fi
    kill "$FLASK_PID" 2>/dev/null || true
    pkill -f "gunicorn.*127.0.0.1:$FLASK_PORT" 2>/dev/null || true
fi

{
    echo "<!-- bench:start -->"
    echo "Run of \`$0\` on $(date -u '+%Y-%m-%d %H:%M UTC') — $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr), wrk -t2 -d$DURATION on loopback."
    echo "Command: \`PAGES=$PAGES REVS=$REVS USERS=$USERS DURATION=$DURATION bench/run.sh\`. Dataset: $SEED_LINE. Viewed page: $PAGE_BYTES bytes of HTML."
    echo
    echo "| workload | connections | requests/s | p50 | p99 | Quire CPU per request |"
    echo "|---|---|---|---|---|---|"
    printf '%s\n' "${ROWS[@]}"
    echo
    echo "- page view / nginx ceiling: **$(ratio "$VIEW_RPS" "$NGINX_RPS") %**; member page view / nginx: **$(ratio "$MEMBER_RPS" "$NGINX_RPS") %**"
    echo "- $PG_LINE"
    echo "- $FLASK_LINE"
    echo "- logins: **$LOGIN_RPS/s** against an argon2 ceiling of **$ARGON2 verifications/s** (bench-argon2, one thread per core): **$(ratio "$LOGIN_RPS" "$ARGON2") %**"
    echo "- saves, 32 editors each on their own page (bench-save; each save is a GET of the editor then the POST, only POSTs timed): $SAVE_LINE"
    echo "- mixed workload, what was sent: ${MIX#MIX }"
    echo "- start-up to first answer: $READY_MS ms; idle RSS: $((IDLE_RSS / 1024)) MiB; peak RSS over the run: $((PEAK_RSS / 1024)) MiB"
    echo "<!-- bench:end -->"
} > "$WORK/results.md"
cat "$WORK/results.md"
if [ -f "$OUT" ] && grep -q '<!-- bench:start -->' "$OUT"; then
    python3 - "$OUT" "$WORK/results.md" <<'PY'
import sys, re
out, new = sys.argv[1], open(sys.argv[2]).read()
text = open(out).read()
text = re.sub(r"<!-- bench:start -->.*?<!-- bench:end -->\n?", lambda m: new, text, count=1, flags=re.S)
open(out, "w").write(text)
PY
fi
