#!/usr/bin/env bash
# Slow-client protection, measured: see benches/README.md, "Slow visitors".
#
#   bash benches/slow_clients.sh [--smoke] [--visitors N] [--seconds S] [--rate R]
#
# Builds in release, starts an origin on loopback (nginx: 302 for every path, an 8 MiB
# file at /large), and for each contender -- clicktap lean (`proxy.forwarding =
# "lean"`), clicktap full (`"full"`, pingora-proxy) and nginx proxy_pass (upstream
# keep-alive, its defaults otherwise) -- measures an ordinary visitor (bench-tools pace:
# clicks at a fixed rate, open loop) twice: alone, and while N slow visitors of each
# kind hold the proxy (bench-tools slow: trickled heads, trickled bodies, slow readers of
# the large answer, each reconnecting when the proxy ends it). Samples the proxy's RSS
# and the connections it holds to the origin, counts what became of the slow visitors,
# and prints a markdown table side by side (also written to bench-results/). Every
# process it starts is stopped on exit.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: bash benches/slow_clients.sh [options]
  --smoke             about a minute in all: 50 visitors of each kind, 8 s windows
  --visitors N        slow visitors of each kind (default 200)
  --seconds S         the window measured with slow visitors (default 75: longer than
                      the 60 s timeouts nginx and Pingora have by default)
  --base-seconds S    the window measured without them (default 10)
  --rate R            the ordinary visitor's clicks per second (default 200)
  --gap-ms MS         between a slow visitor's bytes sent, or 1 KiB reads (default 2000)
  --contenders LIST   subset of lean,full,nginx (default all three)
  --set KEY=VALUE     a clicktap setting, TOML value (repeatable)
  --label NAME        suffix of the result files
  --no-build          use the binaries already built
EOF
}

VISITORS=200 WINDOW=75 BASE_SECONDS=10 RATE=200 GAP_MS=2000 RAMP=3 NGINX_WORKERS=1
CONTENDERS=lean,full,nginx LABEL="" BUILD=1 SMOKE=0 SETS=() WEBHOOK_SETS=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --smoke) SMOKE=1 ;;
    --visitors) VISITORS=$2; shift ;;
    --seconds) WINDOW=$2; shift ;;
    --base-seconds) BASE_SECONDS=$2; shift ;;
    --rate) RATE=$2; shift ;;
    --gap-ms) GAP_MS=$2; shift ;;
    --contenders) CONTENDERS=$2; shift ;;
    --set) SETS+=("$2"); shift ;;
    --label) LABEL=$2; shift ;;
    --no-build) BUILD=0 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
if [[ $SMOKE == 1 ]]; then
  VISITORS=50 WINDOW=8 BASE_SECONDS=3 RAMP=2 GAP_MS=1000
  LABEL=${LABEL:-smoke}
fi

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
CLICKTAP=$TARGET/release/clicktap
TOOLS=$TARGET/release/examples/bench-tools
LOG_TAG=slow
ORIGIN_KIND=nginx
# shellcheck source=benches/lib.sh
. "$ROOT/benches/lib.sh"

ensure_tools
if [[ $BUILD == 1 ]]; then
  log "building (release)"
  cargo build --release --bin clicktap --example bench-tools >&2
fi

RUN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/clicktap-slow.XXXXXX")
PIDS=()
trap cleanup EXIT
trap 'exit 130' INT TERM
SERVER_PREFIX=""
pick_ports

# ---------------------------------------------------------------- the origin
mkdir -p "$RUN_DIR/www"
head -c $((8 << 20)) /dev/zero | tr '\0' 'a' >"$RUN_DIR/www/large"
# nginx's workers run as an unprivileged user: the file and the way to it must be theirs to read.
chmod o+x "$RUN_DIR" && chmod o+rx "$RUN_DIR/www" && chmod o+r "$RUN_DIR/www/large"
# A request with a body is answered once the body is in, as an application reads it
# before it answers (nginx's own return would answer at once): nginx passes it, buffered
# whole, to a second server of its own on a unix socket.
serve origin "$ORIGIN" "$ORIGIN_PORT" "location / { return 302 https://example.com/dest\$request_uri; }
    location /r/slow-body { proxy_pass http://unix:$RUN_DIR/app.sock; }
    location = /large { root $RUN_DIR/www; default_type application/octet-stream; }" \
  "server { listen unix:$RUN_DIR/app.sock; location / { return 302 https://example.com/dest\$request_uri; } }"
ORIGIN_PID=$STARTED

# Connections from the proxy to the origin now (ESTABLISHED, the origin's port as the
# remote end), read from /proc so that no tool beyond coreutils and awk is needed.
origin_conns() {
  awk -v port="$(printf '%04X' "$ORIGIN_PORT")" '
    FNR > 1 { split($3, r, ":"); if (r[2] == port && $4 == "01") n++ }
    END { print n + 0 }' /proc/net/tcp /proc/net/tcp6
}

# ---------------------------------------------------------------- the contenders
start_contender() {  # name -> CONTENDER_PID, CONTENDER_ADDR
  case $1 in
    lean|full)
      clicktap_conf "$RUN_DIR/$1.toml" "$RUN_DIR/queue-$1" true none "$1"
      start_clicktap "clicktap-$1" "$RUN_DIR/$1.toml"
      CONTENDER_PID=$CLICKTAP_PID CONTENDER_ADDR=127.0.0.1:$PROXY_PORT ;;
    nginx)
      # nginx's own limits as they come: client_header_timeout, client_body_timeout and
      # send_timeout 60 s, the request body buffered before the upstream is contacted,
      # large_client_header_buffers 4 8k.
      start_nginx_proxy nginx-proxy
      CONTENDER_PID=$STARTED CONTENDER_ADDR=127.0.0.1:$NGINX_PROXY_PORT ;;
    *) echo "unknown contender: $1" >&2; exit 2 ;;
  esac
}

# measure SECONDS: the ordinary visitor's clicks for SECONDS, with the proxy's RSS and
# its connections to the origin sampled meanwhile; prints one JSON object.
measure() {
  local secs=$1 url="http://$CONTENDER_ADDR$LINK_PATH"
  "$TOOLS" pace --no-receiver --url "$url" --rate "$RATE" --seconds "$secs" --connections 4 \
    >"$RUN_DIR/pace.json" &
  local ppid=$!
  # Others' CPU leaves out the bench's own processes: the origin, pace, the slow visitors.
  local mine
  mine=$(IFS=,; echo "$ORIGIN_PID,$ppid${SLOW_PIDS[*]:+,${SLOW_PIDS[*]}}")
  "$TOOLS" sample --pid "$CONTENDER_PID" --seconds "$secs" --exclude "$mine" >"$RUN_DIR/proc.json" &
  local spid=$!
  local max=0 n
  while kill -0 "$ppid" 2>/dev/null; do
    n=$(origin_conns); ((n > max)) && max=$n
    sleep 0.5
  done
  wait "$ppid" || { echo "pace failed" >&2; exit 1; }
  wait "$spid"
  local p r k out=""
  p=$(cat "$RUN_DIR/pace.json") r=$(cat "$RUN_DIR/proc.json")
  for k in clicks errors redirect_p50_ms redirect_p99_ms redirect_max_ms; do out+="\"$k\":$(jnum "$k" "$p"),"; done
  for k in rss_mean_kib rss_max_kib cpu_pct others_pct; do out+="\"$k\":$(jnum "$k" "$r"),"; done
  printf '{%s"origin_conns_max":%d}' "$out" "$max"
}

RAW=$RUN_DIR/raw.jsonl
: >"$RAW"
SLOW_PIDS=()
for name in ${CONTENDERS//,/ }; do
  log "$name: starting"
  start_contender "$name"
  # A warm-up, then the ordinary visitor alone.
  "$TOOLS" pace --no-receiver --url "http://$CONTENDER_ADDR$LINK_PATH" --rate "$RATE" --seconds 1 >/dev/null
  base=$(measure "$BASE_SECONDS")
  log "$name: alone: $(jnum redirect_p99_ms "$base") ms p99"
  SLOW_PIDS=()
  for kind in head body read; do
    "$TOOLS" slow --addr "$CONTENDER_ADDR" --kind "$kind" --count "$VISITORS" --gap-ms "$GAP_MS" \
      --seconds "$((RAMP + WINDOW + 1))" >"$RUN_DIR/slow-$kind.json" &
    SLOW_PIDS+=("$!")
  done
  # The slow visitors connect over one gap; the window starts once they all could.
  sleep "$RAMP"
  held=$(measure "$WINDOW")
  wait "${SLOW_PIDS[@]}"
  SLOW_PIDS=()
  log "$name: with slow visitors: $(jnum redirect_p99_ms "$held") ms p99"
  printf '{"contender":"%s","alone":%s,"slow":%s,"head":%s,"body":%s,"read":%s}\n' "$name" "$base" "$held" \
    "$(cat "$RUN_DIR/slow-head.json")" "$(cat "$RUN_DIR/slow-body.json")" "$(cat "$RUN_DIR/slow-read.json")" >>"$RAW"
  stop "$CONTENDER_PID"
  rm -rf "$RUN_DIR/queue-$name"
done

# ---------------------------------------------------------------- the table
mib() { awk -v k="$1" 'BEGIN { printf "%.0f", k / 1024 }'; }
fmt() { awk -v v="$1" 'BEGIN { printf (v < 10 ? "%.2f" : "%.0f"), v }'; }
# A slow visitor kind's fate: held at the end / opened, and the mean life of those ended.
fate() {
  local j=$1
  printf '%s of %s held, %s ended (%s s)' "$(jnum held_at_end "$j")" "$(jnum count "$j")" \
    "$(jnum ended_by_proxy "$j")" "$(fmt "$(jnum ended_mean_life_s "$j")")"
}
table() {
  echo "| | alone p50 / p99 ms | with slow visitors p50 / p99 / max ms | errors | RSS alone → with (max) MiB | proxy CPU % alone / with | origin connections alone / with | trickled heads | trickled bodies | slow readers | others' CPU % |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|"
  local line name a s
  while read -r line; do
    name=$(sed -E 's/^\{"contender":"([a-z]+)".*/\1/' <<<"$line")
    a=$(sed -E 's/.*"alone":(\{[^}]*\}).*/\1/' <<<"$line")
    s=$(sed -E 's/.*"slow":(\{[^}]*\}).*/\1/' <<<"$line")
    printf '| %s | %s / %s | %s / %s / %s | %s of %s | %s → %s (%s) | %s / %s | %s / %s | %s | %s | %s | %s |\n' "$name" \
      "$(fmt "$(jnum redirect_p50_ms "$a")")" "$(fmt "$(jnum redirect_p99_ms "$a")")" \
      "$(fmt "$(jnum redirect_p50_ms "$s")")" "$(fmt "$(jnum redirect_p99_ms "$s")")" \
      "$(fmt "$(jnum redirect_max_ms "$s")")" \
      "$(jnum errors "$s")" "$(jnum clicks "$s")" \
      "$(mib "$(jnum rss_mean_kib "$a")")" "$(mib "$(jnum rss_mean_kib "$s")")" "$(mib "$(jnum rss_max_kib "$s")")" \
      "$(fmt "$(jnum cpu_pct "$a")")" "$(fmt "$(jnum cpu_pct "$s")")" \
      "$(jnum origin_conns_max "$a")" "$(jnum origin_conns_max "$s")" \
      "$(fate "$(sed -E 's/.*"head":(\{[^}]*\}).*/\1/' <<<"$line")")" \
      "$(fate "$(sed -E 's/.*"body":(\{[^}]*\}).*/\1/' <<<"$line")")" \
      "$(fate "$(sed -E 's/.*"read":(\{[^}]*\}).*/\1/' <<<"$line")")" \
      "$(fmt "$(jnum others_pct "$s")")"
  done <"$RAW"
}

mkdir -p "$ROOT/bench-results"
stamp=$(date -u +%Y%m%dT%H%M%SZ)${LABEL:+-$LABEL}
{
  echo "## Slow visitors, $stamp"
  echo
  echo "$VISITORS slow visitors of each kind (1 byte or 1 KiB every $GAP_MS ms) for $WINDOW s;"
  echo "the ordinary visitor: $RATE clicks/s over 4 keep-alive connections; commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown);"
  echo "CPU: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), $(nproc) cores."
  echo
  table
} | tee "$ROOT/bench-results/slow-$stamp.md"
cp "$RAW" "$ROOT/bench-results/slow-$stamp.jsonl"
