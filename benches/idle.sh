#!/usr/bin/env bash
# Idle CPU with thousands of retries pending and not yet due: a webhook whose receiver
# answers 503 gets wrk's clicks (an origin answering 302 to everything), each fails once
# and waits an hour for its retry; then clicktap's CPU is read from /proc over 20 s of
# no traffic. Origin and receiver: a few lines of Python on loopback.
#
#   bash benches/idle.sh [BINARY]     (default target/release/clicktap, built if missing)
#
# Measured: 25.2% of a core before retries were indexed by due time, 1.6% after (docs/reliability.md,
# "Figures"). Needs wrk, curl and python3; uses loopback ports 18080-18090.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${1:-$ROOT/target/release/clicktap}
[[ -x $BIN ]] || (cd "$ROOT" && cargo build --release --bin clicktap >&2)
command -v wrk >/dev/null || { echo "idle.sh needs wrk (apt-get install wrk)" >&2; exit 1; }
D=$(mktemp -d)
cat >"$D/c.toml" <<T
[proxy]
listen = "127.0.0.1:18080"
upstream = "127.0.0.1:18081"
[queue]
path = "$D/q"
[delivery]
allow_private_targets = true
allow_http = true
[admin]
listen = "127.0.0.1:18090"
[log]
level = "warn"
[[webhooks]]
id = "down"
url = "http://127.0.0.1:18082/"
concurrency = 64
[webhooks.retry]
max_attempts = 5
schedule = ["1h"]
T
python3 - <<'PY' &
import http.server, socketserver, threading
class Origin(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        self.send_response(302); self.send_header("Location", "https://example.com/x")
        self.send_header("Content-Length", "0"); self.end_headers()
    def log_message(self, *a): pass
class Down(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(503); self.send_header("Content-Length", "0"); self.end_headers()
    def log_message(self, *a): pass
class Server(socketserver.ThreadingMixIn, http.server.HTTPServer): daemon_threads = True
o = Server(("127.0.0.1", 18081), Origin); r = Server(("127.0.0.1", 18082), Down)
threading.Thread(target=o.serve_forever, daemon=True).start(); r.serve_forever()
PY
S=$!
"$BIN" run --config "$D/c.toml" 2>"$D/log" &
P=$!
trap 'kill $P $S 2>/dev/null; wait $P 2>/dev/null; rm -rf "$D"' EXIT
metric() { curl -s 127.0.0.1:18090/metrics | awk -v m="$1" '$1 == m || index($1, m "{") == 1 { s += $2 } END { print s + 0 }'; }
for _ in $(seq 100); do curl -sf 127.0.0.1:18090/readyz >/dev/null && break; sleep 0.1; done
wrk -t1 -c16 -d8s http://127.0.0.1:18080/r/x >/dev/null 2>&1 || true
C=0 R=-1
for _ in $(seq 60); do
  C=$(metric clicktap_capture_clicks_total) R=$(metric clicktap_delivery_retried_total)
  [[ $R == "$C" ]] && break
  sleep 1
done
echo "clicks $C, retries pending $R"
t0=$(awk '{ print $14 + $15 }' /proc/$P/stat)
sleep 20
t1=$(awk '{ print $14 + $15 }' /proc/$P/stat)
echo "idle CPU: $((t1 - t0)) ticks in 20 s = $(awk -v t=$((t1 - t0)) 'BEGIN { printf "%.1f", t / 20 }')% of a core"
