#!/usr/bin/env bash
# The scale path measured: one and then two `mangwale-exotel serve` processes
# (release binary, job workers running) on one PostgreSQL database, driven
# through every replica at once with
#   - webhooks: `wrk` posting form-encoded terminal status callbacks, each
#     with its own CallSid (64 connections in all, split over the replicas);
#   - ladders: `wrk` starting customer-status ladders through
#     `POST /comms/notify/customer/status`, each for its own order (8
#     connections in all); each ladder's first step, an app push, is due at
#     once and fired by whichever replica's worker claims it.
# Prints, for each topology: webhooks/s with p99, ladders started/s, and the
# step lateness (from a step's due time to its being recorded as sent, read
# from the jobs table), with the follow-up jobs' lag.
#
#     benches/replicas_pg.sh
#     PG_URL=postgres://postgres@127.0.0.1:5432 SECONDS_PER_RUN=20 benches/replicas_pg.sh
#
# Needs: wrk, curl, psql, python3, and a PostgreSQL server it may create a
# database on (`mangwale_bench_replicas`, dropped and created for each run).
set -euo pipefail
cd "$(dirname "$0")/.."

PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432}
DB=mangwale_bench_replicas
SECONDS_PER_RUN=${SECONDS_PER_RUN:-10}
WEBHOOK_CONNECTIONS=${WEBHOOK_CONNECTIONS:-64}
LADDER_CONNECTIONS=${LADDER_CONNECTIONS:-8}
TOPOLOGIES=${TOPOLOGIES:-1 2}
BASE_PORT=${BASE_PORT:-3930}
TOKEN=bench-webhook-token-0123456789
API_KEY=bench-api-key-0123456789

for tool in wrk curl psql python3; do
  command -v $tool >/dev/null || { echo "$tool is not installed" >&2; exit 2; }
done
cargo build --release --quiet -p mangwale-server --bin mangwale-exotel
BIN=target/release/mangwale-exotel

WORK=$(mktemp -d)
PIDS=()
stop_all() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  PIDS=()
}
trap 'stop_all; rm -rf "$WORK"' EXIT

cat benches/wrk/status_callbacks.lua benches/wrk/report.lua > "$WORK/callbacks.lua"
cat > "$WORK/ladders.lua" <<LUA
local prefix, n = "wrk", 0
function init(args) prefix = args[1] or prefix end
function request()
  n = n + 1
  local body = '{"order_id":"' .. prefix .. '-' .. n .. '","customer_id":"C-' .. n ..
    '","customer_phone":"+9198' .. string.format("%08d", n % 100000000) ..
    '","customer_name":"Bench","rider_name":"Ravi","status":"picked_up","eta_minutes":12,"language":"hi"}'
  return wrk.format("POST", nil, {["Content-Type"] = "application/json", ["X-API-Key"] = "$API_KEY"}, body)
end
LUA
cat benches/wrk/report.lua >> "$WORK/ladders.lua"

psql_db() { psql -qtAX "$PG_URL/$DB" -c "$1"; }

wait_for() { # url: until it answers at all
  for _ in $(seq 1 300); do curl -sS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "no answer from $1" >&2; exit 1
}

run_topology() { # replicas
  local replicas=$1 i
  psql -qtAX "$PG_URL/postgres" -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" > /dev/null
  for i in $(seq 1 "$replicas"); do
    DATABASE_URL="$PG_URL/$DB" PORT=$((BASE_PORT + i)) API_KEYS=$API_KEY EXOTEL_WEBHOOK_TOKEN=$TOKEN \
      RUST_LOG=warn "$BIN" serve > "$WORK/replica$i.log" 2>&1 &
    PIDS+=($!)
    # The first replica migrates the database; the others start on it.
    wait_for "http://127.0.0.1:$((BASE_PORT + i))/health"
  done
  local started_ms
  started_ms=$(python3 -c 'import time; print(int(time.time() * 1000))')
  local run=$replicas-$(date +%s) loads=()
  for i in $(seq 1 "$replicas"); do
    local url="http://127.0.0.1:$((BASE_PORT + i))"
    wrk -t1 -c$((WEBHOOK_CONNECTIONS / replicas)) -d"${SECONDS_PER_RUN}s" -s "$WORK/callbacks.lua" \
      "$url/exotel/webhooks/call-status?token=$TOKEN" -- "r$run-$i" | grep '^RESULT' > "$WORK/webhooks$i" &
    loads+=($!)
    wrk -t1 -c$((LADDER_CONNECTIONS / replicas)) -d"${SECONDS_PER_RUN}s" -s "$WORK/ladders.lua" \
      "$url/comms/notify/customer/status" -- "L$run-$i" | grep '^RESULT' > "$WORK/ladders$i" &
    loads+=($!)
  done
  wait "${loads[@]}"
  local ended_ms
  ended_ms=$(python3 -c 'import time; print(int(time.time() * 1000))')
  # Let every job due by the end of the load run (first steps, follow-ups).
  for _ in $(seq 1 600); do
    [ "$(psql_db "SELECT count(*) FROM jobs WHERE state IN ('pending', 'running') AND run_at <= $ended_ms")" = 0 ] && break
    sleep 0.1
  done
  local steps followups
  steps=$(psql_db "SELECT count(*), coalesce(percentile_cont(0.5) WITHIN GROUP (ORDER BY updated_at - run_at), 0),
                          coalesce(percentile_cont(0.99) WITHIN GROUP (ORDER BY updated_at - run_at), 0),
                          coalesce(max(updated_at - run_at), 0)
                   FROM jobs WHERE kind = 'ladder.step' AND state = 'done' AND run_at BETWEEN $started_ms AND $ended_ms")
  followups=$(psql_db "SELECT count(*), coalesce(percentile_cont(0.99) WITHIN GROUP (ORDER BY updated_at - run_at), 0),
                              coalesce(max(updated_at - run_at), 0)
                       FROM jobs WHERE kind <> 'ladder.step' AND state = 'done' AND run_at BETWEEN $started_ms AND $ended_ms")
  stop_all
  python3 - "$replicas" "$SECONDS_PER_RUN" "$steps" "$followups" "$WORK" <<'PY'
import sys, glob
replicas, seconds, steps, followups, work = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
def load(kind):
    rows = [open(f).read().split() for f in sorted(glob.glob(f"{work}/{kind}[0-9]*"))]
    rows = [r for r in rows if r]
    # RESULT requests errors req/s p50 p99 max (benches/wrk/report.lua)
    return (sum(int(r[1]) for r in rows), sum(int(r[2]) for r in rows), sum(float(r[3]) for r in rows),
            max((float(r[5]) for r in rows), default=0.0))
w, l = load("webhooks"), load("ladders")
s = [float(x) for x in steps.split("|")]
f = [float(x) for x in followups.split("|")]
print(f"{replicas:>8} {w[2]:>10.0f} {w[3]:>8.2f} {w[1]:>6} {l[2]:>10.0f} {l[3]:>8.2f} {l[1]:>6} "
      f"{int(s[0]):>7} {s[1]:>7.1f} {s[2]:>7.1f} {s[3]:>7.0f} {f[1]:>9.1f} {f[2]:>8.0f}")
PY
  rm -f "$WORK"/webhooks* "$WORK"/ladders[0-9]*
}

echo "PostgreSQL at $PG_URL, $SECONDS_PER_RUN s per topology, webhooks on $WEBHOOK_CONNECTIONS connections" \
     "and ladder starts on $LADDER_CONNECTIONS, split over the replicas"
printf '%8s %10s %8s %6s %10s %8s %6s %7s %7s %7s %7s %9s %8s\n' replicas "webhook/s" "p99 ms" errors \
  "ladders/s" "p99 ms" errors steps "late50" "late99" "max" "follow99" "max"
for replicas in $TOPOLOGIES; do
  run_topology "$replicas"
done
echo "(late50/late99/max: a ladder step's due time to its being recorded as sent, ms;"
echo " follow99/max: the same for the webhooks' follow-up jobs)"
