#!/usr/bin/env bash
# usage: benches/rate.sh [BIN]  (default target/release/creem-batch)
#
# `rate: auto` against the sandbox (issue 18). Not a test: it prints a table of ratios.
# - A hidden limit: `--max-rps L` (429 with Retry-After: 1 beyond a token bucket of L/s) and a
#   latency; 15 x L rows, so the ideal makespan is 15 s. Efficiency = 15 s / makespan;
#   throttled = the share of POSTs answered 429 (the sandbox's own counts).
# - A server with K workers (`--workers K --latency D`, no ceiling): capacity K/D; 15 s worth
#   of rows. Throughput reached / capacity, and latency inflation = p50 of the POSTs' wait at
#   the sandbox (queue + service) over the same p50 unloaded (a run at 10/s).
# Every run uses concurrency 64, so the in-flight bound is not what limits it. max_rate is the
# default 100/s except where a row says otherwise (L = 500 needs more than 100/s).
set -euo pipefail
BIN=${1:-target/release/creem-batch}
DIR=$(mktemp -d "${TMPDIR:-/tmp}/creem-rate.XXXX")
SB=
trap '[ -n "$SB" ] && kill $SB 2>/dev/null; rm -rf "$DIR"' EXIT
export CREEM_API_KEY=creem_test_benchmark

customers() { # ROWS -> path of a CSV with that many rows
  local path=$DIR/c$1.csv
  [ -f "$path" ] || python3 - "$1" "$path" <<'PY'
import sys
rows, path = int(sys.argv[1]), sys.argv[2]
with open(path, "w") as f:
    f.write("email,seats\n")
    for i in range(rows):
        f.write(f"user{i}@example.com,{i % 5 + 1}\n")
PY
  echo "$path"
}

start_sandbox() { # sandbox args... -> sets SB (pid) and URL
  "$BIN" sandbox --listen 127.0.0.1:0 "$@" > "$DIR/sb.out" 2>/dev/null &
  SB=$!
  for _ in $(seq 200); do grep -q listening "$DIR/sb.out" 2>/dev/null && break; sleep 0.05; done
  URL=$(grep -o 'http://[0-9.:]*' "$DIR/sb.out")
}

stop_sandbox() {
  kill "$SB"; wait "$SB" 2>/dev/null || true; SB=
}

# run ROWS RATE MAX_RATE -> the run's --json line; the sandbox must be running
run() {
  rm -f "$DIR/out.csv"
  cat > "$DIR/c.yaml" <<YAML
campaign: rate-bench
customers: $(customers "$1")
output: $DIR/out.csv
checkout:
  product_id: prod_6tW66i0oZM7w1qXReHJrwg
  units: "{{ seats }}"
  customer:
    email: "{{ email }}"
send:
  rate: $2
  max_rate: $3
  concurrency: 64
YAML
  "$BIN" run --quiet --json --base-url "$URL" "$DIR/c.yaml" 2>/dev/null
}

stats() { curl -s "$URL/sandbox/stats"; }

field() { # JSON-TEXT PYTHON-EXPRESSION-ON-j
  python3 -c "import json,sys; j=json.loads(sys.argv[1]); print($2)" "$1"
}

printf '%-34s %8s %10s %10s %9s %10s\n' case rows makespan efficiency throttled rate_found
for spec in "20 50ms 100/s" "100 50ms 100/s" "500 50ms 1000/s" "100 300ms 100/s" "100 50ms 1000/s"; do
  set -- $spec
  L=$1 LAT=$2 MAX=$3 ROWS=$((15 * $1))
  start_sandbox --max-rps "$L" --latency "$LAT"
  OUT=$(run "$ROWS" auto "$MAX")
  ST=$(stats)
  stop_sandbox
  SECS=$(field "$OUT" "j['elapsed_seconds']")
  printf '%-34s %8s %9.1fs %10.2f %8.1f%% %9s/s\n' \
    "L=$L/s latency $LAT max_rate $MAX" "$ROWS" "$SECS" \
    "$(field "$OUT" "15 / j['elapsed_seconds']")" \
    "$(field "$ST" "100 * j['throttled'] / j['posts']")" \
    "$(field "$OUT" "j['rate_found']")"
done

echo
printf '%-34s %8s %10s %12s %14s\n' case rows throughput of_capacity p50_inflation
for spec in "16 50ms" "8 100ms"; do
  set -- $spec
  K=$1 LAT=$2
  CAPACITY=$(python3 -c "print($K / (${LAT%ms} / 1000))")
  ROWS=$(python3 -c "print(int(15 * $CAPACITY))")
  start_sandbox --workers "$K" --latency "$LAT"
  run 40 10/s 100/s > /dev/null
  UNLOADED=$(field "$(stats)" "j['post_wait_ms']['p50']")
  stop_sandbox
  start_sandbox --workers "$K" --latency "$LAT"
  OUT=$(run "$ROWS" auto 2000/s)
  ST=$(stats)
  stop_sandbox
  printf '%-34s %8s %9.0f/s %12.2f %13.2fx\n' "K=$K workers x $LAT (capacity ${CAPACITY%.*}/s)" "$ROWS" \
    "$(field "$OUT" "$ROWS / j['elapsed_seconds']")" \
    "$(field "$OUT" "$ROWS / j['elapsed_seconds'] / $CAPACITY")" \
    "$(field "$ST" "j['post_wait_ms']['p50'] / $UNLOADED")"
done
