#!/usr/bin/env bash
# End-to-end benchmark of creem-batch on this machine (release build). Prints a table.
#
#   bash benches/e2e.sh           # everything below (about five minutes on 2 cores)
#   QUICK=1 bash benches/e2e.sh   # without the million-row send and its re-run
#   RUNS=5 bash benches/e2e.sh    # medians of 5 runs instead of 3
#
# Measured: dry runs of 10k / 100k / 1M rows (rows/s, peak RSS); sends of 100k rows with no
# rate limit at concurrency 8, 32 and 64 (requests/s, peak RSS, the client's CPU time per
# request), next to oha (or wrk) against the same sandbox with the same count, concurrency
# and a body of the same size; rate precision at 50/s for 20 s from the sandbox's own
# timestamps; a send of 1M rows and the re-run over its finished ledger.
#
# Timings are medians of RUNS runs (this is a shared 2-core VM: single runs vary by 20%). The
# sends run in rounds, creem-batch and the load generator back to back (taking turns at going
# first), and the ratio printed is the median of the rounds' ratios.
# Everything talks to the built-in sandbox on 127.0.0.1, started fresh for each run.
# Peak memory is /usr/bin/time's maximum resident set size.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
BIN=$PWD/target/release/creem-batch
RUNS=${RUNS:-3}
WORK=$(mktemp -d)
trap 'kill $SANDBOX_PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
SANDBOX_PID=
export CREEM_API_KEY=creem_test_benchmark

source benches/lib.sh
campaign() { # name csv rate concurrency
  write_campaign "$WORK/$1.yaml" "$1" "$2" "$1.results.csv" "$3" "$4"
}

# Runs a command under /usr/bin/time; prints "seconds max_rss_kb cpu_seconds".
measure() {
  /usr/bin/time -f "%e %M %U %S" -o "$WORK/time" "$@" > /dev/null 2> "$WORK/stderr" || { cat "$WORK/stderr" >&2; return 1; }
  read -r secs rss user sys < "$WORK/time"
  echo "$secs $rss $(echo "$user + $sys" | bc -l)"
}

# The median of the numbers on stdin.
median() { sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }

start_sandbox() {
  # Removed first: the shell truncates the file in the background child, and until then a grep
  # here would find the previous (stopped) sandbox's address.
  rm -f "$WORK/sandbox.out"
  "$BIN" sandbox --listen 127.0.0.1:0 > "$WORK/sandbox.out" 2>/dev/null &
  SANDBOX_PID=$!
  for _ in $(seq 100); do grep -q listening "$WORK/sandbox.out" 2>/dev/null && break; sleep 0.05; done
  SANDBOX_URL=$(grep -o 'http://[0-9.:]*' "$WORK/sandbox.out")
}
stop_sandbox() { kill "$SANDBOX_PID"; wait "$SANDBOX_PID" 2>/dev/null || true; }

row() { printf '%-50s %12s %10s  %s\n' "$@"; }
row "measurement" "result" "peak RSS" ""

for rows in 10000 100000 1000000; do
  gen_customers $rows "$WORK/c$rows.csv"
  campaign "dry$rows" "c$rows.csv" unlimited 8
  : > "$WORK/runs"
  for _ in $(seq "$RUNS"); do measure "$BIN" run --dry-run "$WORK/dry$rows.yaml" >> "$WORK/runs"; done
  secs=$(cut -d' ' -f1 "$WORK/runs" | median)
  rss=$(cut -d' ' -f2 "$WORK/runs" | sort -n | tail -1)
  row "dry run, $rows rows" "$(printf '%.0f/s' "$(echo "$rows / $secs" | bc -l)")" "$(printf '%.1f MB' "$(echo "$rss / 1024" | bc -l)")"
done

# The same body creem-batch sends for a row, for the load generator.
BODY=$("$BIN" run --dry-run "$WORK/dry10000.yaml" 2>/dev/null | head -1 | python3 -c 'import json,sys; print(json.dumps(json.loads(sys.stdin.readline())["body"], separators=(",", ":")))')
# One send of 100000 rows by creem-batch at concurrency $1; its line of "seconds rss cpu" goes
# to runs, its requests/s to pair.
send_by_creem_batch() {
  start_sandbox
  measure "$BIN" run --quiet --base-url "$SANDBOX_URL" "$WORK/send$1.yaml" | tee -a "$WORK/runs" |
    awk '{printf "%f\n", 100000 / $1}' >> "$WORK/pair"
  rm -f "$WORK/send$1.results.csv"
  stop_sandbox
}

# The same by oha (or wrk), with the same body, count and concurrency; requests/s to tool and pair.
send_by_tool() {
  start_sandbox
  if command -v oha > /dev/null; then
    oha -n 100000 -c "$1" --no-tui --output-format json -m POST -H "x-api-key: $CREEM_API_KEY" \
      -H 'content-type: application/json' -d "$BODY" "$SANDBOX_URL/v1/checkouts" |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["summary"]["requestsPerSec"])'
  else
    python3 - "$BODY" "$CREEM_API_KEY" > "$WORK/post.lua" <<'PY'
import json, sys
print('wrk.method = "POST"')
print('wrk.body = %s' % json.dumps(sys.argv[1]))
print('wrk.headers["Content-Type"] = "application/json"')
print('wrk.headers["x-api-key"] = %s' % json.dumps(sys.argv[2]))
PY
    wrk -t2 -c"$1" -d5s -s "$WORK/post.lua" "$SANDBOX_URL/v1/checkouts" | awk '/Requests\/sec/ {print $2}'
  fi | tee -a "$WORK/tool" >> "$WORK/pair"
  stop_sandbox
}

TOOL=$(command -v oha > /dev/null && echo oha || { command -v wrk > /dev/null && echo wrk; } || true)
for c in 8 32 64; do
  campaign "send$c" "c100000.csv" unlimited $c
  : > "$WORK/runs"
  : > "$WORK/tool"
  : > "$WORK/ratios"
  for round in $(seq "$RUNS"); do
    # Each round sends with both, back to back, taking turns at going first: the machine's
    # speed drifts between rounds, so the ratio is judged within each round.
    : > "$WORK/pair"
    if [ -z "$TOOL" ]; then
      send_by_creem_batch $c
    elif [ $((round % 2)) = 1 ]; then
      send_by_creem_batch $c
      send_by_tool $c
    else
      send_by_tool $c
      send_by_creem_batch $c
    fi
    if [ -n "$TOOL" ]; then
      # pair: creem-batch's then the tool's requests/s when creem-batch went first, else reversed.
      if [ $((round % 2)) = 1 ]; then ours=$(sed -n 1p "$WORK/pair"); theirs=$(sed -n 2p "$WORK/pair")
      else ours=$(sed -n 2p "$WORK/pair"); theirs=$(sed -n 1p "$WORK/pair"); fi
      echo "100 * $ours / $theirs" | bc -l >> "$WORK/ratios"
    fi
  done
  secs=$(cut -d' ' -f1 "$WORK/runs" | median)
  rss=$(cut -d' ' -f2 "$WORK/runs" | sort -n | tail -1)
  cpu=$(cut -d' ' -f3 "$WORK/runs" | median)
  rps=$(echo "100000 / $secs" | bc -l)
  row "send 100000 rows, no rate limit, concurrency $c" "$(printf '%.0f/s' "$rps")" "$(printf '%.1f MB' "$(echo "$rss / 1024" | bc -l)")" \
    "$(printf 'client CPU %.0f us/request' "$(echo "$cpu * 10" | bc -l)")"
  if [ -n "$TOOL" ]; then
    each=$(sort -g "$WORK/ratios" | awk '{printf "%s%.0f%%", (NR > 1 ? ", " : ""), $1}')
    row "  $TOOL, same sandbox, body and concurrency" "$(printf '%.0f/s' "$(median < "$WORK/tool")")" "" \
      "$(printf 'creem-batch = %.0f%% of %s (per round: %s)' "$(median < "$WORK/ratios")" "$TOOL" "$each")"
  fi
done

# Rate precision: 50/s for 20 s, judged by the sandbox's own arrival timestamps.
start_sandbox
gen_customers 1001 "$WORK/c1001.csv"
campaign rate50 "c1001.csv" 50/s 8
measure "$BIN" run --quiet --base-url "$SANDBOX_URL" "$WORK/rate50.yaml" > /dev/null
curl -s "$SANDBOX_URL/sandbox/stats" | python3 -c '
import json, sys
r = json.load(sys.stdin)["post_rate"]
print("%-50s %10.2f/s   busiest second: %d requests (limit 50 + burst 1)" % ("rate 50/s for 20 s (sandbox timestamps)", r["achieved_per_second"], r["max_in_any_second"]))'
stop_sandbox

# Re-run over a completed ledger: time to decide nothing is left.
if [ "${QUICK:-0}" = 1 ]; then
  rerun_rows=100000
else
  rerun_rows=1000000
  start_sandbox
  campaign send1m "c1000000.csv" unlimited 32
  read -r secs rss _ < <(measure "$BIN" run --quiet --base-url "$SANDBOX_URL" "$WORK/send1m.yaml")
  row "send 1000000 rows, concurrency 32" "$(printf '%.0f/s' "$(echo "1000000 / $secs" | bc -l)")" "$(printf '%.1f MB' "$(echo "$rss / 1024" | bc -l)")"
  stop_sandbox
fi
start_sandbox
if [ "$rerun_rows" = 100000 ]; then
  campaign send1m "c100000.csv" unlimited 32
  measure "$BIN" run --quiet --base-url "$SANDBOX_URL" "$WORK/send1m.yaml" > /dev/null
fi
posts_before=$(curl -s "$SANDBOX_URL/sandbox/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["posts"])')
: > "$WORK/runs"
for _ in $(seq "$RUNS"); do measure "$BIN" run --quiet --base-url "$SANDBOX_URL" "$WORK/send1m.yaml" >> "$WORK/runs"; done
posts=$(curl -s "$SANDBOX_URL/sandbox/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["posts"])')
secs=$(cut -d' ' -f1 "$WORK/runs" | median)
rss=$(cut -d' ' -f2 "$WORK/runs" | sort -n | tail -1)
row "re-run over the finished $rerun_rows-row ledger" "$(printf '%.2fs' "$secs")" "$(printf '%.1f MB' "$(echo "$rss / 1024" | bc -l)")" \
  "requests sent by the re-runs: $((posts - posts_before))"
stop_sandbox
