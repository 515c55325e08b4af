#!/usr/bin/env bash
# Issue 15 figures. usage:
#   benches/hostile.sh disk-full BIN [ROWS]   # root: ledger on a 1 MiB tmpfs; prints duplicates on resume
#   benches/hostile.sh big-body BIN           # peak RSS of a run whose server answers 1 GB bodies
set -euo pipefail
WHAT=$1; BIN=$(realpath "$2"); ROWS=${3:-5000}
W=$(mktemp -d "${TMPDIR:-/tmp}/creem-hostile.XXXX")
trap 'umount "$W/disk" 2>/dev/null || true; kill ${SB:-} 2>/dev/null || true; rm -rf "$W"' EXIT
export CREEM_API_KEY=creem_test_benchmark
source "$(dirname "$0")/lib.sh"
gen_customers "$ROWS" "$W/c.csv"
write_campaign "$W/c.yaml" hostile "$W/c.csv" "$W/disk/out.csv" unlimited 32 2
mkdir -p "$W/disk" "$W/tmp"
export TMPDIR=$W/tmp   # the rescue file's folder
case $WHAT in
disk-full)
    mount -t tmpfs -o size=1m tmpfs "$W/disk"
    "$BIN" sandbox --listen 127.0.0.1:0 > "$W/sb.out" 2>/dev/null & SB=$!
    for _ in $(seq 100); do grep -q listening "$W/sb.out" 2>/dev/null && break; sleep 0.05; done
    URL=$(grep -o 'http://[0-9.:]*' "$W/sb.out")
    set +e
    "$BIN" run --quiet --base-url "$URL" "$W/c.yaml" > /dev/null 2> "$W/err1"; echo "first run: exit $?"
    grep -E "could not be written|stopped:" "$W/err1" | cut -c1-200
    echo "created at the server: $(curl -s "$URL/sandbox/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["created"])')"
    [ "${NO_RESCUE:-}" = 1 ] && rm -f "$W"/tmp/creem-batch-rescue-*   # as before the rescue file
    mount -o remount,size=64m "$W/disk"
    "$BIN" run --quiet --base-url "$URL" "$W/c.yaml" > /dev/null 2> "$W/err2"; echo "resume: exit $?"
    grep -E "note:" "$W/err2" | cut -c1-200
    curl -s "$URL/sandbox/stats" | python3 -c 'import json,sys; s=json.load(sys.stdin); print("created", s["created"], "request_ids created twice:", len(s["duplicates"]))'
    ;;
big-body)
    python3 - > "$W/srv.out" 2>/dev/null <<'PY' & SB=$!
import http.server, socketserver, sys
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        size = 1 << 30
        self.send_response(200); self.send_header("content-type", "application/json")
        self.send_header("content-length", str(size)); self.end_headers()
        chunk = b" " * (1 << 20)
        try:
            for _ in range(size >> 20): self.wfile.write(chunk)
        except Exception: pass
    def log_message(self, *a): pass
class S(socketserver.ThreadingMixIn, http.server.HTTPServer): daemon_threads = True
s = S(("127.0.0.1", 0), H); print(s.server_address[1], flush=True); s.serve_forever()
PY
    for _ in $(seq 100); do [ -s "$W/srv.out" ] && break; sleep 0.05; done
    sed -i "s/^  concurrency: 32/  concurrency: 4/" "$W/c.yaml"
    set +e
    /usr/bin/time -f "%e s, peak RSS %M KB" "$BIN" run --quiet --base-url "http://127.0.0.1:$(cat "$W/srv.out")" "$W/c.yaml" > /dev/null 2> "$W/err"
    echo "exit $?"; grep -v "^$" "$W/err" | cut -c1-200
    ;;
esac
