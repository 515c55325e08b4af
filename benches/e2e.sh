#!/usr/bin/env bash
# End-to-end benchmark of creem-batch on this machine (release build). Prints a table.
#
#   bash benches/e2e.sh            # 10k / 100k / 1M dry runs, sends of 100k rows, rate, re-run
#   SEND_1M=1 bash benches/e2e.sh  # also send 1,000,000 rows to the sandbox (a few minutes)
#
# Everything talks to the built-in sandbox on 127.0.0.1; nothing leaves the machine.
# Peak memory is measured with /usr/bin/time -v (maximum resident set size).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
BIN=$PWD/target/release/creem-batch
WORK=$(mktemp -d)
trap 'kill $SANDBOX_PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
SANDBOX_PID=

gen_csv() { # rows file
  python3 - "$1" "$2" <<'PY'
import sys
rows, path = int(sys.argv[1]), sys.argv[2]
with open(path, "w") as f:
    f.write("email,first_name,seats,segment,referrer,locale,user_id\n")
    for i in range(rows):
        f.write(f"user{i}@example.com,Name {i},{i % 5 + 1},{['smb','enterprise','consumer'][i % 3]},aff_{i % 17},{['en','fr','zh-CN'][i % 3]},u_{i}\n")
PY
}

campaign() { # name csv rate concurrency
  cat > "$WORK/$1.yaml" <<YAML
campaign: $1
customers: $2
output: $1.results.csv
checkout:
  product_id: prod_6tW66i0oZM7w1qXReHJrwg
  units: "{{ seats }}"
  discount_code: SPRING2026
  locale: "{{ locale }}"
  plan_type: team_annual
  success_url: https://yourdomain.com/success
  customer:
    email: "{{ email }}"
  metadata:
    userId: "{{ user_id }}"
    segment: "{{ segment }}"
    referrer: "{{ referrer }}"
    source: spring_campaign
send:
  rate: $3
  concurrency: $4
  max_attempts: 5
  timeout: 30s
YAML
}

# Runs a command under /usr/bin/time; prints "seconds max_rss_kb".
measure() {
  /usr/bin/time -f "%e %M" -o "$WORK/time" "$@" > /dev/null 2> "$WORK/stderr" || { cat "$WORK/stderr" >&2; return 1; }
  cat "$WORK/time"
}

start_sandbox() {
  "$BIN" sandbox --listen 127.0.0.1:0 > "$WORK/sandbox.out" 2>/dev/null &
  SANDBOX_PID=$!
  for _ in $(seq 100); do grep -q listening "$WORK/sandbox.out" 2>/dev/null && break; sleep 0.05; done
  SANDBOX_URL=$(grep -o 'http://[0-9.:]*' "$WORK/sandbox.out")
}
stop_sandbox() { kill "$SANDBOX_PID"; wait "$SANDBOX_PID" 2>/dev/null || true; }

printf '%-44s %12s %12s\n' "measurement" "result" "peak RSS"
for rows in 10000 100000 1000000; do
  gen_csv $rows "$WORK/c$rows.csv"
  campaign "dry$rows" "c$rows.csv" unlimited 8
  read -r secs rss < <(measure "$BIN" run --dry-run "$WORK/dry$rows.yaml")
  printf '%-44s %9.0f/s %9.1f MB\n' "dry run, $rows rows" "$(echo "$rows / $secs" | bc -l)" "$(echo "$rss / 1024" | bc -l)"
done

export CREEM_API_KEY=creem_test_benchmark
for c in 8 32 64; do
  start_sandbox
  campaign "send$c" "c100000.csv" unlimited $c
  read -r secs rss < <(measure "$BIN" run --quiet --base-url "$SANDBOX_URL" "$WORK/send$c.yaml")
  printf '%-44s %9.0f/s %9.1f MB\n' "send 100000 rows, no rate limit, concurrency $c" "$(echo "100000 / $secs" | bc -l)" "$(echo "$rss / 1024" | bc -l)"
  if command -v oha > /dev/null; then
    body='{"product_id":"prod_6tW66i0oZM7w1qXReHJrwg","request_id":"x","units":1,"customer":{"email":"a@example.com"}}'
    oha_rps=$(oha -n 100000 -c $c --no-tui -j -m POST -H "x-api-key: $CREEM_API_KEY" -H 'content-type: application/json' -d "$body" "$SANDBOX_URL/v1/checkouts" | python3 -c 'import json,sys; print(json.load(sys.stdin)["summary"]["requestsPerSec"])')
    printf '%-44s %9.0f/s  (creem-batch = %.0f%% of oha)\n' "  oha, same server, concurrency $c" "$oha_rps" "$(echo "100 * 100000 / $secs / $oha_rps" | bc -l)"
  elif command -v wrk > /dev/null; then
    # wrk: a C load generator, fixed body, same server and connection count, 5 seconds.
    cat > "$WORK/post.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"product_id":"prod_6tW66i0oZM7w1qXReHJrwg","request_id":"x","units":1,"customer":{"email":"a@example.com"}}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["x-api-key"] = "creem_test_benchmark"
LUA
    wrk_rps=$(wrk -t2 -c$c -d5s -s "$WORK/post.lua" "$SANDBOX_URL/v1/checkouts" | awk '/Requests\/sec/ {print $2}')
    printf '%-44s %9.0f/s  (creem-batch = %.0f%% of wrk)\n' "  wrk, same server, $c connections" "$wrk_rps" "$(echo "100 * 100000 / $secs / $wrk_rps" | bc -l)"
  fi
  stop_sandbox
done

if [ "${SEND_1M:-0}" = 1 ]; then
  start_sandbox
  campaign send1m "c1000000.csv" unlimited 32
  read -r secs rss < <(measure "$BIN" run --quiet --base-url "$SANDBOX_URL" "$WORK/send1m.yaml")
  printf '%-44s %9.0f/s %9.1f MB\n' "send 1000000 rows, concurrency 32" "$(echo "1000000 / $secs" | bc -l)" "$(echo "$rss / 1024" | bc -l)"
  read -r secs rss < <(measure "$BIN" run --quiet --base-url "$SANDBOX_URL" "$WORK/send1m.yaml")
  printf '%-44s %10.2fs %9.1f MB\n' "re-run over the finished 1000000-row ledger" "$secs" "$(echo "$rss / 1024" | bc -l)"
  stop_sandbox
fi

# Rate precision: 50/s for 20 s, judged by the sandbox's own arrival timestamps.
start_sandbox
gen_csv 1001 "$WORK/c1001.csv"
campaign rate50 "c1001.csv" 50/s 8
measure "$BIN" run --quiet --base-url "$SANDBOX_URL" "$WORK/rate50.yaml" > /dev/null
curl -s "$SANDBOX_URL/sandbox/stats" | python3 -c '
import json, sys
r = json.load(sys.stdin)["post_rate"]
print("%-44s %9.2f/s   busiest second: %d requests (limit 50 + burst 1)" % ("rate 50/s for 20 s (sandbox timestamps)", r["achieved_per_second"], r["max_in_any_second"]))'
stop_sandbox

# Re-run over a completed ledger: time to decide nothing is left (100k rows, or 1M above).
start_sandbox
campaign rerun100k "c100000.csv" unlimited 32
measure "$BIN" run --quiet --base-url "$SANDBOX_URL" "$WORK/rerun100k.yaml" > /dev/null
read -r secs rss < <(measure "$BIN" run --quiet --base-url "$SANDBOX_URL" "$WORK/rerun100k.yaml")
posts=$(curl -s "$SANDBOX_URL/sandbox/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["posts"])')
printf '%-44s %10.2fs %9.1f MB  (sandbox POSTs in total: %s)\n' "re-run over a finished 100000-row ledger" "$secs" "$(echo "$rss / 1024" | bc -l)" "$posts"
stop_sandbox
