#!/usr/bin/env bash
# usage: benches/send.sh BIN ROWS CONCURRENCY [sandbox-args...] -> prints "secs rss_kb" and the summary
set -euo pipefail
BIN=$1; ROWS=$2; C=$3; shift 3
mkdir -p "${BENCH_DIR:-/tmp/creem-bench}"; W=$(mktemp -d "${BENCH_DIR:-/tmp/creem-bench}/w.XXXX")
export CREEM_API_KEY=creem_test_benchmark
source "$(dirname "$0")/lib.sh"
[ -f ${BENCH_DIR:-/tmp/creem-bench}/c$ROWS.csv ] || gen_customers "$ROWS" ${BENCH_DIR:-/tmp/creem-bench}/c$ROWS.csv
write_campaign $W/c.yaml bench ${BENCH_DIR:-/tmp/creem-bench}/c$ROWS.csv $W/out.csv unlimited $C
$BIN sandbox --listen 127.0.0.1:0 "$@" > $W/sb.out 2>/dev/null &
SB=$!
for _ in $(seq 100); do grep -q listening $W/sb.out 2>/dev/null && break; sleep 0.05; done
URL=$(grep -o 'http://[0-9.:]*' $W/sb.out)
/usr/bin/time -f "%e %M" -o $W/time $BIN run --quiet --base-url $URL $W/c.yaml 2> $W/err >/dev/null || true
echo "$(cat $W/time) | $(tail -3 $W/err | tr '\n' ' ')"
kill $SB; wait $SB 2>/dev/null || true
rm -rf $W
