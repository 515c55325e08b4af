#!/usr/bin/env bash
# usage: benches/send.sh BIN ROWS CONCURRENCY [sandbox-args...] -> prints "secs rss_kb" and the summary
set -euo pipefail
BIN=$1; ROWS=$2; C=$3; shift 3
mkdir -p "${BENCH_DIR:-/tmp/creem-bench}"; W=$(mktemp -d "${BENCH_DIR:-/tmp/creem-bench}/w.XXXX")
export CREEM_API_KEY=creem_test_benchmark
[ -f ${BENCH_DIR:-/tmp/creem-bench}/c$ROWS.csv ] || python3 - "$ROWS" ${BENCH_DIR:-/tmp/creem-bench}/c$ROWS.csv <<'PY'
import sys
rows, path = int(sys.argv[1]), sys.argv[2]
with open(path, "w") as f:
    f.write("email,first_name,seats,segment,referrer,locale,user_id\n")
    for i in range(rows):
        f.write(f"user{i}@example.com,Name {i},{i % 5 + 1},{['smb','enterprise','consumer'][i % 3]},aff_{i % 17},{['en','fr','zh-CN'][i % 3]},u_{i}\n")
PY
cat > $W/c.yaml <<YAML
campaign: bench
customers: ${BENCH_DIR:-/tmp/creem-bench}/c$ROWS.csv
output: $W/out.csv
checkout:
  product_id: prod_6tW66i0oZM7w1qXReHJrwg
  units: "{{ seats }}"
  success_url: https://yourdomain.com/success
  customer:
    email: "{{ email }}"
  metadata:
    userId: "{{ user_id }}"
    segment: "{{ segment }}"
send:
  rate: unlimited
  concurrency: $C
  max_attempts: 5
  timeout: 30s
YAML
$BIN sandbox --listen 127.0.0.1:0 "$@" > $W/sb.out 2>/dev/null &
SB=$!
for _ in $(seq 100); do grep -q listening $W/sb.out 2>/dev/null && break; sleep 0.05; done
URL=$(grep -o 'http://[0-9.:]*' $W/sb.out)
/usr/bin/time -f "%e %M" -o $W/time $BIN run --quiet --base-url $URL $W/c.yaml 2> $W/err >/dev/null || true
echo "$(cat $W/time) | $(tail -3 $W/err | tr '\n' ' ')"
kill $SB; wait $SB 2>/dev/null || true
rm -rf $W
