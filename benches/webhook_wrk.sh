#!/usr/bin/env bash
# The webhook write path measured from outside, as a user would: `wrk`
# (1 thread, 64 keep-alive connections) posting form-encoded terminal status
# callbacks, each with its own CallSid, to the release binary under `serve`
# (SQLite file, job workers running, embedded simulators), and then, in the
# same run and the same way, to a bare axum handler that parses the same form
# and does nothing else (crates/server/examples/bare_form_handler.rs).
# Prints both figures and their ratio, and how far the follow-up jobs the
# callbacks enqueue fell behind while the load ran (sampled from /ops/queue).
#
#     benches/webhook_wrk.sh            # 10 s per target
#     SECONDS_PER_RUN=30 CONNECTIONS=64 benches/webhook_wrk.sh
#
# Needs: wrk, curl, python3 (Debian: apt-get install wrk curl python3).
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_RUN=${SECONDS_PER_RUN:-10}
CONNECTIONS=${CONNECTIONS:-64}
SERVICE_PORT=${SERVICE_PORT:-3917}
BARE_PORT=${BARE_PORT:-3918}
TOKEN=bench-webhook-token-0123456789
API_KEY=bench-api-key-0123456789

command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 2; }
cargo build --release --quiet -p mangwale-server --bin mangwale-exotel --example bare_form_handler
BIN=target/release/mangwale-exotel
BARE=target/release/examples/bare_form_handler

WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

cat benches/wrk/status_callbacks.lua benches/wrk/report.lua > "$WORK/callbacks.lua"

wait_for() { # url: until it answers at all
  for _ in $(seq 1 300); do curl -sS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "no answer from $1" >&2; exit 1
}

# The service: embedded defaults on a fresh SQLite file, workers running.
DATABASE_URL="sqlite://$WORK/bench.db" PORT=$SERVICE_PORT API_KEYS=$API_KEY EXOTEL_WEBHOOK_TOKEN=$TOKEN \
  RUST_LOG=warn "$BIN" serve > "$WORK/service.log" 2>&1 &
PIDS+=($!)
"$BARE" "127.0.0.1:$BARE_PORT" > "$WORK/bare.log" 2>&1 &
PIDS+=($!)
wait_for "http://127.0.0.1:$SERVICE_PORT/health"
wait_for "http://127.0.0.1:$BARE_PORT/exotel/webhooks/call-status"

run_wrk() { # url callsid-prefix
  # A 2 s warm-up of the same kind first, then the measured run.
  wrk -t1 -c"$CONNECTIONS" -d2s -s "$WORK/callbacks.lua" "$1" -- "$2warm" > /dev/null
  wrk -t1 -c"$CONNECTIONS" -d"${SECONDS_PER_RUN}s" --latency -s "$WORK/callbacks.lua" "$1" -- "$2" | grep '^RESULT'
}


queue() { curl -fsS -H "X-API-Key: $API_KEY" "http://127.0.0.1:$SERVICE_PORT/ops/queue"; }
# Prints "<follow-up jobs pending or running> <lag ms>" from /ops/queue.
backlog() {
  queue | python3 -c 'import json,sys
q = json.load(sys.stdin)
print(sum(k["pending"] + k["running"] for k in q["kinds"] if k["kind"] == "exotel.call_status"), q["totals"]["lagMs"])'
}

RUN=$(date +%s)
bare=$(run_wrk "http://127.0.0.1:$BARE_PORT/exotel/webhooks/call-status" "bare$RUN")

# Sample the follow-up jobs' backlog and lag every 500 ms under load.
: > "$WORK/samples"
( while :; do backlog >> "$WORK/samples" 2>/dev/null || true; sleep 0.5; done ) &
SAMPLER=$!
service=$(run_wrk "http://127.0.0.1:$SERVICE_PORT/exotel/webhooks/call-status?token=$TOKEN" "svc$RUN")
kill $SAMPLER 2>/dev/null || true
wait $SAMPLER 2>/dev/null || true

# How long the follow-up jobs take to drain once the load stops.
drain_start=$(date +%s.%N)
for _ in $(seq 1 600); do
  read -r left _ < <(backlog)
  [ "$left" = 0 ] && break
  sleep 0.1
done
drain_end=$(date +%s.%N)

python3 - "$bare" "$service" "$WORK/samples" "$drain_start" "$drain_end" "$CONNECTIONS" <<'PY'
import sys
bare, service, samples = sys.argv[1].split(), sys.argv[2].split(), sys.argv[3]
drain = float(sys.argv[5]) - float(sys.argv[4])
def row(name, r):
    req, err, rps, p50, p99, mx = int(r[1]), int(r[2]), float(r[3]), float(r[4]), float(r[5]), float(r[6])
    print(f"{name:<32} {req:>9} {err:>6} {rps:>9.0f} {p50:>7.2f} {p99:>7.2f} {mx:>8.2f}")
    return rps, p99, err
print(f"wrk -t1 -c{sys.argv[6]}: distinct CallSids, form-encoded terminal status callbacks")
print(f"{'target':<32} {'requests':>9} {'errors':>6} {'req/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>8}")
bare_rps, _, _ = row("bare axum form handler", bare)
rps, p99, err = row("mangwale-exotel serve (SQLite)", service)
points = [l.split() for l in open(samples) if len(l.split()) == 2]
lags = [int(p[1]) for p in points]
print(f"ratio service / bare: {rps / max(bare_rps, 1):.3f}")
if lags:
    print(f"follow-up jobs under load: lag max {max(lags)} ms, backlog max {max(int(p[0]) for p in points)} jobs "
          f"({len(lags)} samples); backlog drained {drain:.1f} s after the load stopped")
met = rps >= 20000 and p99 <= 10 and err == 0 and lags and max(lags) <= 1000
print("target (>= 20,000 req/s, p99 <= 10 ms, follow-up lag <= 1 s):", "MET" if met else "MISSED")
PY
