#!/usr/bin/env bash
# The floors of issue 16, in one run each (release build):
#   1. a dry run of ROWS rows next to a plain Python csv-to-JSON loop doing the same work
#      (benches/python_baseline.py prints the same lines), and the dry run's peak RSS;
#   2. a send of ROWS rows to the sandbox (rate unlimited, concurrency 32): peak RSS;
#   3. the re-run over that finished ledger: its time, and the requests it sends (must be 0).
#
#   bash benches/floors.sh            # 1,000,000 rows
#   ROWS=100000 bash benches/floors.sh
#
# Peak memory is /usr/bin/time's maximum resident set size. Needs python3.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
BIN=$PWD/target/release/creem-batch
ROWS=${ROWS:-1000000}
WORK=$(mktemp -d)
SANDBOX_PID=
trap 'kill $SANDBOX_PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
export CREEM_API_KEY=creem_test_benchmark

source benches/lib.sh
gen_customers "$ROWS" "$WORK/customers.csv"
# dry1000000: the name benches/python_baseline.py uses, so both print the same lines.
write_campaign "$WORK/floors.yaml" dry1000000 customers.csv floors.results.csv unlimited 32

timed() { # label command...: prints "label: <seconds> s, peak <MB> MB"
  local label=$1; shift
  /usr/bin/time -f "%e %M" -o "$WORK/time" "$@" >"$WORK/out" 2>"$WORK/err" || true
  read -r secs kb <"$WORK/time"
  printf '%-34s %8.2f s   peak %6.1f MB\n' "$label" "$secs" "$(echo "$kb / 1024" | bc -l)"
}

echo "rows: $ROWS"
timed "dry run (creem-batch)" "$BIN" run --dry-run "$WORK/floors.yaml"
dry=$(cut -d' ' -f1 "$WORK/time")
timed "dry run (python baseline)" python3 benches/python_baseline.py "$WORK/customers.csv"
py=$(cut -d' ' -f1 "$WORK/time")
printf '%-34s %8.1fx\n' "python / creem-batch" "$(echo "$py / $dry" | bc -l)"

"$BIN" sandbox --listen 127.0.0.1:0 --lenient >"$WORK/sandbox.log" 2>&1 &
SANDBOX_PID=$!
for _ in $(seq 100); do grep -q "http://" "$WORK/sandbox.log" && break; sleep 0.1; done
URL=$(grep -o 'http://127.0.0.1:[0-9]*' "$WORK/sandbox.log" | head -1)
timed "send to the sandbox" "$BIN" run --quiet --base-url "$URL" "$WORK/floors.yaml"
tail -2 "$WORK/err"
timed "re-run over the finished ledger" "$BIN" run --quiet --base-url "$URL" "$WORK/floors.yaml"
tail -2 "$WORK/err"
