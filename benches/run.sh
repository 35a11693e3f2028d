#!/usr/bin/env bash
# clicktap's benchmarks in one command: see benches/README.md.
#
#   bash benches/run.sh [--smoke] [--rounds N] [--duration S] [--pin] [--set KEY=VALUE]...
#
# Builds in release, starts an origin on loopback (nginx: 302 for every path; or the
# built-in one) and a hook server for d's and h's webhooks (204 for /hook), then
# measures in rounds, alternating the contenders:
#   a. wrk -> origin                 b. wrk -> bare Pingora -> origin
#   c. wrk -> clicktap, capture off  d. wrk -> clicktap, full pipeline + webhook
#   e. wrk -> nginx proxy_pass -> origin
#   f. wrk -> clicktap, capture on, no webhook (capture + enrichment + queue only)
#   j. wrk -> clicktap, capture on, no webhook, a NATS sink publishing every event to
#      a local nats-server's JetStream (f with a sink: what publishing costs the proxy)
#   i. wrk -> clicktap, capture off, every request through Pingora's full proxy
#      (proxy.forwarding = "full"): c's forwarding path against pingora-proxy's
#   g. wrk -> lean Pingora (pingora-core only, an experiment) -> origin; on request
#   h. wrk -> nginx proxy_pass with an access log of redirects -> origin, and
#      syslog-ng following that log, one POST per click to the hook server: the setup
#      users would build instead of clicktap
# d and h deliver: their CPU is also counted from the start of wrk until the hook
# server has received every click they served (CPU per delivered click). Then
# delivery (events/s drained from a filled queue, unbatched and batched),
# click-to-webhook latency at a paced rate, and the visitor's latency at a fixed rate
# well below saturation (b, f and d, open loop), and publishing: the events/s one
# clicktap publishes from a filled queue into a NATS JetStream stream, and relay:
# click-to-webhook latency through a sidecar, nats-server and `clicktap relay`. Prints a markdown table and writes
# bench-results/<date>[-label].{json,md}. Every process it starts is stopped on exit.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: bash benches/run.sh [options]
  --smoke               a few seconds in all: one short round of everything (for CI)
  --rounds N            rounds of each contender, alternating (default 3)
  --duration S          measured seconds per run (default 10)
  --warmup S            unmeasured seconds before each run (default 2)
  --connections N       wrk connections (default 32)
  --wrk-threads N       wrk threads (default 1)
  --contenders LIST     subset of a,b,c,d,e,f,g,h,i,j (default a,b,c,d,e,f,h,i,j; g is
                        the lean-Pingora experiment, benches/lean_pingora.rs)
  --parts LIST          subset of proxy,delivery,latency,visitor,paced,publish,relay
                        (default all seven); visitor: redirect latency of b, f and d
                        at a fixed rate; paced: d's and h's CPU per delivered click
                        at a fixed click rate both keep up with; publish: events/s
                        from a filled queue into a local nats-server's JetStream;
                        relay: the latency part's clicks through a sidecar, NATS
                        and clicktap relay
  --pin                 wrk on CPU 1, everything else on CPU 0 (taskset)
  --wrk-cpus LIST       taskset CPU list for wrk (overrides --pin's choice)
  --server-cpus LIST    taskset CPU list for servers and the origin
  --set KEY=VALUE       a clicktap setting, TOML value: --set proxy.threads=1,
                        --set 'queue.flush_interval="10ms"' (repeatable). The Pingora
                        ones (proxy.threads, work_stealing, listener_tasks,
                        upstream_keepalive_pool) are passed to bare Pingora too.
  --webhook-set K=V     a setting of the bench webhook: --webhook-set concurrency=16
  --origin KIND         nginx | builtin (default: nginx when installed or installable)
  --nginx-workers N     worker_processes of the nginx proxy (e and h) (default 1)
  --syslog-ng-workers N http() workers of h's syslog-ng (default 4)
  --fill-seconds S      wrk seconds that fill the queue for the delivery runs (default 5)
  --latency-rate R      paced clicks/s for the latency run (default 1000)
  --latency-seconds S   seconds of paced clicks (default 10)
  --visitor-rate R      clicks/s of the visitor part, open loop, well below
                        saturation (default 2000)
  --visitor-seconds S   measured seconds of each visitor run (default 10)
  --paced-rate R        clicks/s of the paced part (default 4000: below what h's
                        syslog-ng delivers on two cores, so neither falls behind)
  --paced-seconds S     seconds of paced clicks (default 10)
  --quiet-below PCT     before each run, wait for the machine's CPU use to fall below
                        PCT (100 = one core; default 15): others' work skews results
  --quiet-timeout S     wait at most S seconds for that (default 60; 0: do not wait)
  --label NAME          suffix of the result files
  --no-build            use the binaries already built
EOF
}

ROUNDS=3 DURATION=10 WARMUP=2 CONNECTIONS=32 WRK_THREADS=1
CONTENDERS=a,b,c,d,e,f,h,i,j PARTS=proxy,delivery,latency,visitor,paced,publish,relay
WRK_CPUS="" SERVER_CPUS="" ORIGIN_KIND="" NGINX_WORKERS=1 SYSLOG_NG_WORKERS=4
FILL_SECONDS=5 LATENCY_RATE=1000 LATENCY_SECONDS=10 LABEL="" BUILD=1 SMOKE=0
VISITOR_RATE=2000 VISITOR_SECONDS=10 PACED_RATE=4000 PACED_SECONDS=10 QUIET_BELOW=15 QUIET_TIMEOUT=60
SETS=() WEBHOOK_SETS=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --smoke) SMOKE=1 ;;
    --rounds) ROUNDS=$2; shift ;;
    --duration) DURATION=$2; shift ;;
    --warmup) WARMUP=$2; shift ;;
    --connections) CONNECTIONS=$2; shift ;;
    --wrk-threads) WRK_THREADS=$2; shift ;;
    --contenders) CONTENDERS=$2; shift ;;
    --parts) PARTS=$2; shift ;;
    --pin) WRK_CPUS=${WRK_CPUS:-1}; SERVER_CPUS=${SERVER_CPUS:-0} ;;
    --wrk-cpus) WRK_CPUS=$2; shift ;;
    --server-cpus) SERVER_CPUS=$2; shift ;;
    --set) SETS+=("$2"); shift ;;
    --webhook-set) WEBHOOK_SETS+=("$2"); shift ;;
    --origin) ORIGIN_KIND=$2; shift ;;
    --nginx-workers) NGINX_WORKERS=$2; shift ;;
    --syslog-ng-workers) SYSLOG_NG_WORKERS=$2; shift ;;
    --fill-seconds) FILL_SECONDS=$2; shift ;;
    --latency-rate) LATENCY_RATE=$2; shift ;;
    --latency-seconds) LATENCY_SECONDS=$2; shift ;;
    --visitor-rate) VISITOR_RATE=$2; shift ;;
    --visitor-seconds) VISITOR_SECONDS=$2; shift ;;
    --paced-rate) PACED_RATE=$2; shift ;;
    --paced-seconds) PACED_SECONDS=$2; shift ;;
    --quiet-below) QUIET_BELOW=$2; shift ;;
    --quiet-timeout) QUIET_TIMEOUT=$2; shift ;;
    --label) LABEL=$2; shift ;;
    --no-build) BUILD=0 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
if [[ $SMOKE == 1 ]]; then
  ROUNDS=1 DURATION=1 WARMUP=0 FILL_SECONDS=1 LATENCY_RATE=200 LATENCY_SECONDS=1 QUIET_TIMEOUT=0
  VISITOR_SECONDS=2 PACED_SECONDS=1 PACED_RATE=500
  LABEL=${LABEL:-smoke}
fi

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
CLICKTAP=$TARGET/release/clicktap
BARE=$TARGET/release/examples/bare-pingora
LEAN=$TARGET/release/examples/lean-pingora
TOOLS=$TARGET/release/examples/bench-tools
LUA=$ROOT/benches/wrk/clicks.lua
# shellcheck source=benches/lib.sh
. "$ROOT/benches/lib.sh"

# ---------------------------------------------------------------- tools and build
without() { tr ',' '\n' <<<"$2" | grep -vx "$1" | paste -sd, -; }
ensure_tools
if [[ -z $NGINX ]] && has e "$CONTENDERS"; then
  log "no nginx: contender e (nginx proxy_pass) skipped"
  CONTENDERS=$(without e "$CONTENDERS")
fi
SYSLOG_NG=""
if has h "$CONTENDERS"; then
  ensure_syslog_ng
  if [[ -z $NGINX ]]; then
    log "no nginx: contender h (nginx + syslog-ng) skipped"
    CONTENDERS=$(without h "$CONTENDERS")
  elif [[ -z $SYSLOG_NG ]]; then
    log "$SYSLOG_NG_MISSING: contender h (nginx + syslog-ng) skipped"
    CONTENDERS=$(without h "$CONTENDERS")
  fi
fi
NATS_SERVER=""
if has publish "$PARTS" || has relay "$PARTS" || has j "$CONTENDERS"; then
  ensure_nats_server
  if [[ -z $NATS_SERVER ]]; then
    log "$NATS_MISSING: the publish and relay parts and contender j skipped"
    PARTS=$(without relay "$(without publish "$PARTS")") CONTENDERS=$(without j "$CONTENDERS")
  fi
fi

if [[ $BUILD == 1 ]]; then
  log "building (release)"
  cargo build --release --bin clicktap --example bare-pingora --example bench-tools >&2
  if has g "$CONTENDERS"; then cargo build --release --example lean-pingora >&2; fi
fi

# ---------------------------------------------------------------- processes
RUN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/clicktap-bench.XXXXXX")
PIDS=()
trap cleanup EXIT
trap 'exit 130' INT TERM

WRK_PREFIX=$(on_cpus "$WRK_CPUS")
SERVER_PREFIX=$(on_cpus "$SERVER_CPUS")

pick_ports

# ---------------------------------------------------------------- nginx configs
# h: e's nginx writing the access log of redirects that a user would have a log
# shipper follow (one JSON object per click: what a click webhook would carry),
# buffered as a busy server's log is, and syslog-ng (benches/conf/syslog-ng-clicks.conf)
# POSTing each line to the hook server. Sets CLICKS_LOG, SYSLOG_NG_CTL, SYSLOG_NG_PID.
CLICKS_LOG_FLUSH=1
start_clicklog() {  # dir
  local dir=$1
  mkdir -p "$dir"
  CLICKS_LOG=$dir/clicks.log SYSLOG_NG_CTL=$dir/syslog-ng.ctl
  : >"$CLICKS_LOG"
  # shellcheck disable=SC2016
  start_nginx_proxy nginx-clicklog 'map $status $redirect { ~^30[1278] 1; default 0; }
  log_format clicks escape=json
    '\''{"time":"$time_iso8601","ip":"$remote_addr","method":"$request_method",'\''
    '\''"host":"$host","uri":"$request_uri","status":$status,'\''
    '\''"location":"$upstream_http_location","user_agent":"$http_user_agent",'\''
    '\''"referer":"$http_referer"}'\'';' \
    "access_log $CLICKS_LOG clicks buffer=64k flush=${CLICKS_LOG_FLUSH}s if=\$redirect;"
  NGINX_CLICKLOG_PID=$STARTED
  CLICKS_LOG=$CLICKS_LOG HOOK_URL="http://$HOOK/hook" SYSLOG_NG_WORKERS=$SYSLOG_NG_WORKERS \
    start syslog-ng "$SYSLOG_NG" -F --no-caps -e -f "$ROOT/benches/conf/syslog-ng-clicks.conf" \
    -R "$dir/syslog-ng.persist" -p "$dir/syslog-ng.pid" -c "$SYSLOG_NG_CTL"
  SYSLOG_NG_PID=$STARTED
  # Ready once its control socket answers: the configuration is loaded by then and
  # the file source open.
  for _ in $(seq 200); do
    "$SYSLOG_NG_CTL_BIN" stats -c "$SYSLOG_NG_CTL" >/dev/null 2>&1 && return 0
    kill -0 "$SYSLOG_NG_PID" 2>/dev/null || { echo "syslog-ng exited; its log:" >&2; cat "$RUN_DIR/syslog-ng.log" >&2; exit 1; }
    sleep 0.05
  done
  echo "syslog-ng did not answer on $SYSLOG_NG_CTL; its log:" >&2; cat "$RUN_DIR/syslog-ng.log" >&2; exit 1
}

# syslog-ng's counters of its http() destination, as JSON: processed, written,
# dropped, queued.
syslog_ng_stats() {
  "$SYSLOG_NG_CTL_BIN" stats -c "$SYSLOG_NG_CTL" 2>/dev/null | awk -F';' '
    $1 == "dst.http" && $5 ~ /^(processed|written|dropped|queued)$/ { v[$5] += $6 }
    END { printf "{\"processed\":%d,\"written\":%d,\"dropped\":%d,\"queued\":%d}", v["processed"], v["written"], v["dropped"], v["queued"] }'
}

# ---------------------------------------------------------------- measuring
# Waits (bounded) for the machine to be nearly idle: other work on a shared machine
# skews every figure. The reading goes into the run's record.
QUIET=null
await_quiet() {
  QUIET=null
  if [[ $QUIET_TIMEOUT != 0 ]]; then
    QUIET=$("$TOOLS" quiet --below "$QUIET_BELOW" --timeout "$QUIET_TIMEOUT")
  fi
}


RAW=$RUN_DIR/raw.jsonl
: >"$RAW"

# start_contender KEY DIR: starts contender KEY (a: the origin, already running)
# and waits until it listens; sets CONTENDER_PID and CONTENDER_URL (the short link
# through it), CONTENDER_PIDS (its processes, comma-separated: h has two),
# CONTENDER_SERVER (a server it needs that is not counted as its own: j's nats-server)
# and HOOK_BASE (the webhooks the hook server had received before it). clicktap's
# queue lives in DIR, h's access log and syslog-ng's files, j's NATS store too.
start_contender() {
  local key=$1 qdir=$2 pid url
  HOOK_BASE=$(hook_lines)
  CONTENDER_PIDS="" CONTENDER_SERVER=""
  case $key in
    a) pid=$ORIGIN_PID; url="http://$ORIGIN$LINK_PATH" ;;
    b) start bare "$BARE" --listen "127.0.0.1:$PROXY_PORT" --upstream "$ORIGIN" \
         --threads "$(setting proxy.threads 2)" --work-stealing "$(setting proxy.work_stealing true)" \
         --listener-tasks "$(setting proxy.listener_tasks 1)" \
         --keepalive-pool "$(setting proxy.upstream_keepalive_pool 1024)"
       pid=$STARTED; wait_port "$PROXY_PORT" "$pid" bare; url="http://127.0.0.1:$PROXY_PORT$LINK_PATH" ;;
    j) local conf=$RUN_DIR/clicktap-j.toml
       start_nats "$qdir/nats"; CONTENDER_SERVER=$NATS_PID
       clicktap_conf "$conf" "$qdir" true none; sink_conf "$conf" true
       start_clicktap clicktap-j "$conf"; pid=$CLICKTAP_PID; url="http://127.0.0.1:$PROXY_PORT$LINK_PATH" ;;
    c|d|f|i) local conf=$RUN_DIR/clicktap-$key.toml
       case $key in
         c) clicktap_conf "$conf" "$qdir" false none ;;
         i) clicktap_conf "$conf" "$qdir" false none full ;;
         d) clicktap_conf "$conf" "$qdir" true unbatched ;;
         f) clicktap_conf "$conf" "$qdir" true none ;;
       esac
       start_clicktap "clicktap-$key" "$conf"; pid=$CLICKTAP_PID; url="http://127.0.0.1:$PROXY_PORT$LINK_PATH" ;;
    g) start lean "$LEAN" --listen "127.0.0.1:$PROXY_PORT" --upstream "$ORIGIN" \
         --threads "$(setting proxy.threads 2)" --work-stealing "$(setting proxy.work_stealing true)"
       pid=$STARTED; wait_port "$PROXY_PORT" "$pid" lean; url="http://127.0.0.1:$PROXY_PORT$LINK_PATH" ;;
    e) start_nginx_proxy nginx-proxy; pid=$STARTED; url="http://127.0.0.1:$NGINX_PROXY_PORT$LINK_PATH" ;;
    h) start_clicklog "$qdir"; pid=$NGINX_CLICKLOG_PID; CONTENDER_PIDS="$pid,$SYSLOG_NG_PID"
       url="http://127.0.0.1:$NGINX_PROXY_PORT$LINK_PATH" ;;
  esac
  CONTENDER_PID=$pid CONTENDER_URL=$url CONTENDER_PIDS=${CONTENDER_PIDS:-$pid}
}

stop_contender() {
  local p
  for p in ${CONTENDER_PIDS//,/ } $CONTENDER_SERVER; do stop "$p"; done
}

# await_delivered KEY: waits (at most 300 s) until contender KEY (d or h) has
# delivered every click it served to the hook server; prints bench-tools delivered's
# JSON (served, delivered, the webhooks received, and the seconds it took).
await_delivered() {
  local key=$1 out served
  if [[ $key == d ]]; then served=(--metrics "http://127.0.0.1:$ADMIN_PORT/metrics")
  else served=(--clicks-log "$CLICKS_LOG" --flush "$CLICKS_LOG_FLUSH"); fi
  out=$("$TOOLS" delivered "${served[@]}" --hook-log "$HOOK_LOG" --hook-base "$HOOK_BASE" --timeout 300) ||
    out='{"complete":false,"error":"bench-tools delivered failed"}'
  [[ $out == *'"complete":true'* ]] || log "$key: not every click delivered within 300 s: $out"
  echo "$out"
}

measure_proxy() {  # contender round
  local key=$1 round=$2 pid pids url loss=null deliver=null qdir=$RUN_DIR/queue-$1-$2
  start_contender "$key" "$qdir"
  pid=$CONTENDER_PID pids=$CONTENDER_PIDS url=$CONTENDER_URL
  await_quiet
  if [[ $WARMUP != 0 ]]; then run_wrk "$url" "$WARMUP" >/dev/null; fi
  # d and h deliver what they serve: the warm-up's clicks are delivered before wrk
  # starts, so that the CPU counted until delivery is that of the measured clicks.
  local delivers=0 before=""
  if [[ $key == d || $key == h ]]; then delivers=1; before=$(await_delivered "$key"); fi
  rm -f "$RUN_DIR/delivered"
  # shellcheck disable=SC2086
  $WRK_PREFIX wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency -s "$LUA" "$url" \
    >"$RUN_DIR/wrk.out" 2>&1 &
  local wpid=$!
  "$TOOLS" sample --pid "$pids" --seconds "$DURATION" \
    --exclude "$ORIGIN_PID,$HOOK_PID,$wpid${CONTENDER_SERVER:+,$CONTENDER_SERVER}" >"$RUN_DIR/proc.json" &
  local s1=$!
  "$TOOLS" sample --pid "$ORIGIN_PID" --seconds "$DURATION" >"$RUN_DIR/origin.json" &
  local s2=$!
  local s3=""
  if [[ $delivers == 1 ]]; then
    "$TOOLS" sample --pid "$pids" --seconds 900 --interval-ms 500 --stop-file "$RUN_DIR/delivered" \
      --exclude "$ORIGIN_PID,$HOOK_PID,$wpid" >"$RUN_DIR/deliver-proc.json" &
    s3=$!
  fi
  wait "$wpid" || { cat "$RUN_DIR/wrk.out" >&2; exit 1; }
  if [[ $delivers == 1 ]]; then
    local after
    after=$(await_delivered "$key")
    touch "$RUN_DIR/delivered"; wait "$s3"
    local sng=null
    [[ $key == h ]] && sng=$(syslog_ng_stats)
    deliver=$(printf '{"before":%s,"after":%s,"proc":%s,"syslog_ng":%s}' \
      "$before" "$after" "$(cat "$RUN_DIR/deliver-proc.json")" "$sng")
  fi
  wait "$s1" "$s2"
  local w
  w=$(grep '^WRKJSON ' "$RUN_DIR/wrk.out" | sed 's/^WRKJSON //')
  if [[ $key == d || $key == f ]]; then loss=$("$TOOLS" settle "http://127.0.0.1:$ADMIN_PORT/metrics"); fi
  [[ $key != a ]] && stop_contender
  rm -rf "$qdir"
  printf '{"kind":"proxy","contender":"%s","round":%d,"wrk":%s,"proc":%s,"origin_proc":%s,"loss":%s,"deliver":%s,"quiet":%s}\n' \
    "$key" "$round" "$w" "$(cat "$RUN_DIR/proc.json")" "$(cat "$RUN_DIR/origin.json")" "$loss" "$deliver" "$QUIET" >>"$RAW"
  log "$key round $round: $(sed -E 's/.*"requests":([0-9]+),"duration_us":([0-9]+).*/\1 requests in \2 µs/' <<<"$w")"
  if [[ $delivers == 1 ]]; then
    log "$key round $round: delivered after wrk: $after"
  fi
}

# The visitor's latency at a fixed rate well below saturation: bench-tools pace sends
# clicks in an open loop (each on schedule, whatever the previous answers did), so
# the latency is the proxy's own, not wrk's closed-loop queueing. d's webhook goes to
# the hook server as in the proxy part, so pace needs no receiver for any of them.
measure_visitor() {  # contender round
  local key=$1 round=$2 pid url qdir=$RUN_DIR/queue-visitor-$1-$2
  start_contender "$key" "$qdir"
  pid=$CONTENDER_PID url=$CONTENDER_URL
  await_quiet
  if [[ $WARMUP != 0 ]]; then
    # shellcheck disable=SC2086
    $WRK_PREFIX "$TOOLS" pace --no-receiver --url "$url" --rate "$VISITOR_RATE" --seconds "$WARMUP" >/dev/null
  fi
  rm -f "$RUN_DIR/paced"
  # shellcheck disable=SC2086
  $WRK_PREFIX "$TOOLS" pace --no-receiver --url "$url" --rate "$VISITOR_RATE" --seconds "$VISITOR_SECONDS" \
    >"$RUN_DIR/pace.json" &
  local ppid=$!
  "$TOOLS" sample --pid "$pid" --seconds 600 --stop-file "$RUN_DIR/paced" \
    --exclude "$ORIGIN_PID,$HOOK_PID,$ppid" >"$RUN_DIR/proc.json" &
  local s=$!
  wait "$ppid" || { touch "$RUN_DIR/paced"; echo "pace failed ($key round $round)" >&2; exit 1; }
  touch "$RUN_DIR/paced"; wait "$s"
  local p
  p=$(cat "$RUN_DIR/pace.json")
  stop "$pid"
  rm -rf "$qdir"
  printf '{"kind":"visitor","contender":"%s","round":%d,"pace":%s,"proc":%s,"quiet":%s}\n' \
    "$key" "$round" "$p" "$(cat "$RUN_DIR/proc.json")" "$QUIET" >>"$RAW"
  log "$(printf 'visitor %s round %d: %.0f clicks/s, p50 %.3f ms, p99 %.3f ms, %d errors' "$key" "$round" \
    "$(jnum achieved_rate "$p")" "$(jnum redirect_p50_ms "$p")" "$(jnum redirect_p99_ms "$p")" "$(jnum errors "$p")")"
}

# d and h at a fixed click rate that both keep up with (open loop, bench-tools pace):
# their CPU from the first paced click until the hook server has received every click
# served, per click delivered. At saturation (the proxy part) the two compete with wrk
# and the origin for both cores and h's syslog-ng falls tens of seconds behind; here
# each delivers as it goes, as on a server that is not overloaded.
measure_paced() {  # contender round
  local key=$1 round=$2 pid pids url qdir=$RUN_DIR/queue-paced-$1-$2
  start_contender "$key" "$qdir"
  pid=$CONTENDER_PID pids=$CONTENDER_PIDS url=$CONTENDER_URL
  await_quiet
  if [[ $WARMUP != 0 ]]; then
    # shellcheck disable=SC2086
    $WRK_PREFIX "$TOOLS" pace --no-receiver --url "$url" --rate "$PACED_RATE" --seconds "$WARMUP" >/dev/null
  fi
  local before after
  before=$(await_delivered "$key")
  rm -f "$RUN_DIR/delivered"
  # shellcheck disable=SC2086
  $WRK_PREFIX "$TOOLS" pace --no-receiver --url "$url" --rate "$PACED_RATE" --seconds "$PACED_SECONDS" \
    >"$RUN_DIR/pace.json" &
  local ppid=$!
  "$TOOLS" sample --pid "$pids" --seconds 900 --interval-ms 500 --stop-file "$RUN_DIR/delivered" \
    --exclude "$ORIGIN_PID,$HOOK_PID,$ppid" >"$RUN_DIR/deliver-proc.json" &
  local s=$!
  wait "$ppid" || { touch "$RUN_DIR/delivered"; echo "pace failed ($key round $round)" >&2; exit 1; }
  after=$(await_delivered "$key")
  touch "$RUN_DIR/delivered"; wait "$s"
  local sng=null
  [[ $key == h ]] && sng=$(syslog_ng_stats)
  stop_contender
  rm -rf "$qdir"
  printf '{"kind":"paced","contender":"%s","round":%d,"pace":%s,"deliver":{"before":%s,"after":%s,"proc":%s,"syslog_ng":%s},"quiet":%s}\n' \
    "$key" "$round" "$(cat "$RUN_DIR/pace.json")" "$before" "$after" "$(cat "$RUN_DIR/deliver-proc.json")" "$sng" "$QUIET" >>"$RAW"
  log "paced $key round $round: delivered after the last click: $after"
}

# One queue filled through clicktap with the webhook configured but disabled, so
# that every round drains the same events.
fill_queue() {
  local conf=$RUN_DIR/fill.toml
  FILLED=$RUN_DIR/filled-queue
  clicktap_conf "$conf" "$FILLED" true disabled
  if has publish "$PARTS"; then sink_conf "$conf" false; fi
  start_clicktap clicktap-fill "$conf"
  run_wrk "http://127.0.0.1:$PROXY_PORT$LINK_PATH" "$FILL_SECONDS" >/dev/null
  FILL_EVENTS=$("$TOOLS" settle "http://127.0.0.1:$ADMIN_PORT/metrics" |
    sed -E 's/.*"clicktap_queue_appended_total":([0-9.e+]+).*/\1/')
  FILL_EVENTS=${FILL_EVENTS%.*}
  stop "$CLICKTAP_PID"
  log "queue filled with $FILL_EVENTS events"
}

# start_nats STORE: the bench's own nats-server with JetStream, its store in STORE.
start_nats() {
  start nats-server "$NATS_SERVER" -a 127.0.0.1 -p "$NATS_PORT" -js -sd "$1"
  NATS_PID=$STARTED
  wait_port "$NATS_PORT" "$NATS_PID" nats-server
}

measure_delivery() {  # mode round
  local mode=$1 round=$2 qdir=$RUN_DIR/drain-queue conf=$RUN_DIR/drain.toml
  rm -rf "$qdir"; cp -a "$FILLED" "$qdir"
  clicktap_conf "$conf" "$qdir" true "$mode"
  rm -f "$RUN_DIR/drained"
  await_quiet
  start_clicktap "clicktap-drain" "$conf"
  "$TOOLS" sample --pid "$CLICKTAP_PID" --seconds 600 --stop-file "$RUN_DIR/drained" \
    --exclude "$ORIGIN_PID,$HOOK_PID" >"$RUN_DIR/proc.json" &
  local s=$!
  local d
  d=$("$TOOLS" drain "http://127.0.0.1:$ADMIN_PORT/metrics" --expect "$FILL_EVENTS" --timeout 300)
  touch "$RUN_DIR/drained"; wait "$s"
  stop "$CLICKTAP_PID"
  printf '{"kind":"delivery","mode":"%s","round":%d,"drain":%s,"proc":%s,"quiet":%s}\n' \
    "$mode" "$round" "$d" "$(cat "$RUN_DIR/proc.json")" "$QUIET" >>"$RAW"
  log "delivery $mode round $round: $d"
}

# The publish part: the filled queue published by one clicktap (capture idle, no
# webhook) into a fresh JetStream stream of a local nats-server; events/s from the
# first acknowledgement to the last, and the CPU of clicktap and of nats-server.
measure_publish() {  # round
  local round=$1 qdir=$RUN_DIR/publish-queue conf=$RUN_DIR/publish.toml store=$RUN_DIR/nats-store
  rm -rf "$qdir" "$store"; cp -a "$FILLED" "$qdir"
  clicktap_conf "$conf" "$qdir" true none
  sink_conf "$conf" true
  start_nats "$store"
  local nats=$NATS_PID
  rm -f "$RUN_DIR/published"
  await_quiet
  start_clicktap "clicktap-publish" "$conf"
  "$TOOLS" sample --pid "$CLICKTAP_PID" --seconds 600 --stop-file "$RUN_DIR/published" \
    --exclude "$ORIGIN_PID,$HOOK_PID,$nats" >"$RUN_DIR/proc.json" &
  local s=$!
  "$TOOLS" sample --pid "$nats" --seconds 600 --stop-file "$RUN_DIR/published" \
    --exclude "$ORIGIN_PID,$HOOK_PID,$CLICKTAP_PID" >"$RUN_DIR/nats-proc.json" &
  local n=$!
  local d
  d=$("$TOOLS" drain "http://127.0.0.1:$ADMIN_PORT/metrics" --expect "$FILL_EVENTS" --timeout 300 \
    --counter 'clicktap_sink_events_total{outcome="acked"}')
  touch "$RUN_DIR/published"; wait "$s" "$n"
  stop "$CLICKTAP_PID"; stop "$nats"
  rm -rf "$qdir" "$store"
  printf '{"kind":"publish","round":%d,"drain":%s,"proc":%s,"nats":%s,"quiet":%s}\n' \
    "$round" "$d" "$(cat "$RUN_DIR/proc.json")" "$(cat "$RUN_DIR/nats-proc.json")" "$QUIET" >>"$RAW"
  log "publish round $round: $d"
}

measure_latency() {  # round
  local round=$1 qdir=$RUN_DIR/latency-queue conf=$RUN_DIR/latency.toml
  rm -rf "$qdir"
  clicktap_conf "$conf" "$qdir" true receiver
  rm -f "$RUN_DIR/paced"
  await_quiet
  start_clicktap "clicktap-latency" "$conf"
  # shellcheck disable=SC2086
  $WRK_PREFIX "$TOOLS" pace --url "http://127.0.0.1:$PROXY_PORT/r/latency" \
    --receiver "127.0.0.1:$RECEIVER_PORT" --rate "$LATENCY_RATE" --seconds "$LATENCY_SECONDS" \
    >"$RUN_DIR/pace.json" &
  local ppid=$!
  "$TOOLS" sample --pid "$CLICKTAP_PID" --seconds 600 --stop-file "$RUN_DIR/paced" \
    --exclude "$ORIGIN_PID,$HOOK_PID,$ppid" >"$RUN_DIR/proc.json" &
  local s=$!
  wait "$ppid"
  touch "$RUN_DIR/paced"; wait "$s"
  local p
  p=$(cat "$RUN_DIR/pace.json")
  stop "$CLICKTAP_PID"
  rm -rf "$qdir"
  printf '{"kind":"latency","round":%d,"pace":%s,"proc":%s,"quiet":%s}\n' \
    "$round" "$p" "$(cat "$RUN_DIR/proc.json")" "$QUIET" >>"$RAW"
  log "latency round $round: $p"
}

# The relay part: the latency part's paced clicks through a fleet on one machine: a
# sidecar publishing every event (no webhook) into a local nats-server, and one
# `clicktap relay` delivering the bench webhook from the stream to the pace receiver.
# Click-to-webhook latency as the latency part measures it, beside it in the report.
measure_relay() {  # round
  local round=$1 qdir=$RUN_DIR/relay-queue conf=$RUN_DIR/relay-sidecar.toml rconf=$RUN_DIR/relay.toml
  local store=$RUN_DIR/relay-nats nats relay
  rm -rf "$qdir" "$store"
  clicktap_conf "$conf" "$qdir" true none
  sink_conf "$conf" true
  relay_conf "$rconf"
  start_nats "$store"; nats=$NATS_PID
  start_clicktap "clicktap-sidecar" "$conf"
  start relay "$CLICKTAP" relay --config "$rconf"; relay=$STARTED
  wait_port "$RELAY_ADMIN_PORT" "$relay" relay
  # Ready once the relay consumes: the sidecar's sink has made the stream by then.
  local _
  for _ in $(seq 300); do
    curl -fsS -o /dev/null "http://127.0.0.1:$RELAY_ADMIN_PORT/readyz" 2>/dev/null && break
    kill -0 "$relay" 2>/dev/null || { echo "relay exited; its log:" >&2; cat "$RUN_DIR/relay.log" >&2; exit 1; }
    sleep 0.1
  done
  curl -fsS -o /dev/null "http://127.0.0.1:$RELAY_ADMIN_PORT/readyz" ||
    { echo "relay not ready after 30 s; its log:" >&2; cat "$RUN_DIR/relay.log" >&2; exit 1; }
  rm -f "$RUN_DIR/paced"
  await_quiet
  # shellcheck disable=SC2086
  $WRK_PREFIX "$TOOLS" pace --url "http://127.0.0.1:$PROXY_PORT/r/latency" \
    --receiver "127.0.0.1:$RECEIVER_PORT" --rate "$LATENCY_RATE" --seconds "$LATENCY_SECONDS" \
    >"$RUN_DIR/pace.json" &
  local ppid=$!
  "$TOOLS" sample --pid "$CLICKTAP_PID,$relay" --seconds 600 --stop-file "$RUN_DIR/paced" \
    --exclude "$ORIGIN_PID,$HOOK_PID,$ppid,$nats" >"$RUN_DIR/proc.json" &
  local s=$!
  wait "$ppid"
  touch "$RUN_DIR/paced"; wait "$s"
  stop "$relay"; stop "$CLICKTAP_PID"; stop "$nats"
  rm -rf "$qdir" "$store"
  printf '{"kind":"relay","round":%d,"pace":%s,"proc":%s,"quiet":%s}\n' \
    "$round" "$(cat "$RUN_DIR/pace.json")" "$(cat "$RUN_DIR/proc.json")" "$QUIET" >>"$RAW"
  log "relay round $round: $(cat "$RUN_DIR/pace.json")"
}

# ---------------------------------------------------------------- the run
start_origin
start_hook
log "origin: $ORIGIN_KIND on $ORIGIN; contenders $CONTENDERS; $ROUNDS round(s) of ${DURATION}s"
# rotated LIST N: LIST's words, rotated left by N. Each round starts one contender
# further on, so that none always runs first or last in a round (the machine drifts
# within a round too).
rotated() {
  local -a w
  read -ra w <<<"$1"
  local n=${#w[@]} i
  for ((i = 0; i < n; i++)); do printf '%s ' "${w[(i + $2) % n]}"; done
}
for round in $(seq "$ROUNDS"); do
  if has proxy "$PARTS"; then
    for key in $(rotated "a b g c i f j d e h" $((round - 1))); do
      has "$key" "$CONTENDERS" && measure_proxy "$key" "$round"
    done
  fi
  if has visitor "$PARTS"; then
    for key in $(rotated "b f d" $((round - 1))); do
      has "$key" "$CONTENDERS" && measure_visitor "$key" "$round"
    done
  fi
  if has paced "$PARTS"; then
    for key in $(rotated "d h" $((round - 1))); do
      has "$key" "$CONTENDERS" && measure_paced "$key" "$round"
    done
  fi
done
if has delivery "$PARTS" || has publish "$PARTS"; then fill_queue; fi
if has delivery "$PARTS"; then
  for round in $(seq "$ROUNDS"); do
    measure_delivery unbatched "$round"
    measure_delivery batched "$round"
  done
fi
if has publish "$PARTS"; then
  for round in $(seq "$ROUNDS"); do measure_publish "$round"; done
fi
if has latency "$PARTS" || has relay "$PARTS"; then
  for round in $(seq "$ROUNDS"); do
    if has latency "$PARTS"; then measure_latency "$round"; fi
    if has relay "$PARTS"; then measure_relay "$round"; fi
  done
fi

# ---------------------------------------------------------------- the report
META=$RUN_DIR/meta.json
{
  printf '{"date":%s,"commit":%s,' "$(json_str "$(date -u +%FT%TZ)")" \
    "$(json_str "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)")"
  printf '"machine":{"nproc":%s,"model":%s,"kernel":%s,"mem":%s},' "$(nproc)" \
    "$(json_str "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')")" \
    "$(json_str "$(uname -r)")" "$(json_str "$(free -h | awk '/Mem:/ {print $2}')")"
  printf '"tools":{"wrk":%s,"nginx":%s,"syslog_ng":%s,"nats_server":%s},' "$(json_str "$(wrk -v 2>&1 | head -1)")" \
    "$(json_str "$([[ -n $NGINX ]] && "$NGINX" -v 2>&1 | head -1 || echo none)")" \
    "$(json_str "$([[ -n $SYSLOG_NG ]] && "$SYSLOG_NG" -V 2>&1 | head -1 || echo none)")" \
    "$(json_str "$([[ -n $NATS_SERVER ]] && "$NATS_SERVER" --version 2>&1 | head -1 || echo none)")"
  printf '"settings":{"rounds":%s,"duration_s":%s,"warmup_s":%s,"connections":%s,"wrk_threads":%s,' \
    "$ROUNDS" "$DURATION" "$WARMUP" "$CONNECTIONS" "$WRK_THREADS"
  printf '"wrk_cpus":%s,"server_cpus":%s,"origin":%s,"nginx_proxy_workers":%s,"syslog_ng_workers":%s,' \
    "$(json_str "$WRK_CPUS")" "$(json_str "$SERVER_CPUS")" "$(json_str "$ORIGIN_KIND")" "$NGINX_WORKERS" "$SYSLOG_NG_WORKERS"
  printf '"quiet_below_pct":%s,"quiet_timeout_s":%s,' "$QUIET_BELOW" "$QUIET_TIMEOUT"
  printf '"fill_seconds":%s,"latency_rate":%s,"latency_seconds":%s,' \
    "$FILL_SECONDS" "$LATENCY_RATE" "$LATENCY_SECONDS"
  printf '"paced_rate":%s,"paced_seconds":%s,' "$PACED_RATE" "$PACED_SECONDS"
  printf '"visitor_rate":%s,"visitor_seconds":%s,"parts":%s,"smoke":%s,' "$VISITOR_RATE" "$VISITOR_SECONDS" \
    "$(json_str "$PARTS")" "$([[ $SMOKE == 1 ]] && echo true || echo false)"
  printf '"clicktap_sets":%s,"webhook_sets":%s}}\n' "$(json_list "${SETS[@]}")" "$(json_list "${WEBHOOK_SETS[@]}")"
} >"$META"

mkdir -p "$ROOT/bench-results"
NAME=$(date -u +%Y%m%dT%H%M%SZ)${LABEL:+-$LABEL}
OUT=$ROOT/bench-results/$NAME
{
  echo "## clicktap benchmarks $NAME"
  echo
  echo "Machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'); origin: $ORIGIN_KIND;" \
    "wrk -t$WRK_THREADS -c$CONNECTIONS, ${DURATION}s x $ROUNDS round(s) after ${WARMUP}s warm-up;" \
    "CPUs: wrk ${WRK_CPUS:-any}, servers ${SERVER_CPUS:-any}${SETS[*]:+; clicktap settings: ${SETS[*]}}${WEBHOOK_SETS[*]:+; webhook: ${WEBHOOK_SETS[*]}}$(
      has visitor "$PARTS" && echo "; visitor: ${VISITOR_RATE} clicks/s for ${VISITOR_SECONDS}s")$(
      has paced "$PARTS" && echo "; paced: ${PACED_RATE} clicks/s for ${PACED_SECONDS}s")"
  echo
  "$TOOLS" report --raw "$RAW" --out "$OUT.json" --meta "$META"
} | tee "$OUT.md"
log "results: $OUT.json and $OUT.md"
