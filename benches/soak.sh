#!/usr/bin/env bash
# clicktap's soak test: see benches/README.md ("Soak"). Not part of `cargo test`.
#
#   bash benches/soak.sh [--smoke] [--minutes M] [--rate R] [--set KEY=VALUE]...
#
# Builds in release, starts an origin and a hook server on loopback (as benches/run.sh
# does, from benches/lib.sh), measures clicktap's saturation with wrk (full pipeline, a
# native webhook per click), then sends clicks at half of it in an open loop for
# --minutes through a fresh clicktap with the same configuration, sampling its memory,
# CPU, queue, disk and delivery every --interval seconds. At the end it waits (bounded)
# for delivery to catch up, stops clicktap with SIGTERM and checks that nothing was
# dropped, every click was stored and delivered, and memory, queue and delivery stayed
# flat. Writes bench-results/soak-<date>[-label].{json,md}; exits 1 when a check fails.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: bash benches/soak.sh [options]
  --minutes M           minutes of paced clicks (default 10)
  --smoke               30 seconds, sampled every 2 s, 3 s of saturation; the flatness
                        checks are shown but not judged (too short for a plateau)
  --rate R              clicks/s (default: half of the saturation measured)
  --saturation-seconds S  seconds of wrk measuring saturation (default 10)
  --interval S          seconds between samples (default 10)
  --chunk S             seconds per pace process (default 60; see benches/README.md)
  --max-in-flight N     clicks in flight at most, so connections too (default 64; 0: no
                        limit, and clicktap's memory then follows the machine's stalls)
  --catchup-timeout S   after the load, wait at most S seconds for delivery (default 120)
  --rss-tolerance PCT   RSS: last third's mean at most PCT% above the middle third's (10)
  --size-tolerance PCT  queue events, bytes, disk and delivery log: the last third's
                        peak at most PCT% above the middle third's; bytes per event
                        within PCT% (default 10)
  --set KEY=VALUE       a clicktap setting (repeatable), after the soak's own:
                        queue.retention="2m", delivery.log_retention="2m"
  --webhook-set K=V     a setting of the bench webhook
  --origin KIND         nginx | builtin (default: nginx when installed or installable)
  --connections N       wrk connections for the saturation run (default 32)
  --wrk-threads N       wrk threads (default 1)
  --quiet-below PCT     before measuring saturation, wait for the machine's CPU use to
                        fall below PCT (default 15; 100 = one core)
  --quiet-timeout S     wait at most S seconds for that (default 60; 0: do not wait)
  --label NAME          suffix of the result files
  --no-build            use the binaries already built
EOF
}

MINUTES=10 RATE="" SAT_SECONDS=10 INTERVAL=10 CHUNK=60 MAX_IN_FLIGHT=64 CATCHUP_TIMEOUT=120
RSS_TOL=10 SIZE_TOL=10 ORIGIN_KIND="" CONNECTIONS=32 WRK_THREADS=1
QUIET_BELOW=15 QUIET_TIMEOUT=60 LABEL="" BUILD=1 SMOKE=0
# A short retention puts the queue and the delivery log in the regime a long-running
# clicktap reaches after queue.retention (7 days by default): appends at the tail,
# retention trimming the head. Their size must plateau there; see benches/README.md.
SETS=('queue.retention="2m"' 'delivery.log_retention="2m"') WEBHOOK_SETS=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --minutes) MINUTES=$2; shift ;;
    --smoke) SMOKE=1 ;;
    --rate) RATE=$2; shift ;;
    --saturation-seconds) SAT_SECONDS=$2; shift ;;
    --interval) INTERVAL=$2; shift ;;
    --chunk) CHUNK=$2; shift ;;
    --max-in-flight) MAX_IN_FLIGHT=$2; shift ;;
    --catchup-timeout) CATCHUP_TIMEOUT=$2; shift ;;
    --rss-tolerance) RSS_TOL=$2; shift ;;
    --size-tolerance) SIZE_TOL=$2; shift ;;
    --set) SETS+=("$2"); shift ;;
    --webhook-set) WEBHOOK_SETS+=("$2"); shift ;;
    --origin) ORIGIN_KIND=$2; shift ;;
    --connections) CONNECTIONS=$2; shift ;;
    --wrk-threads) WRK_THREADS=$2; shift ;;
    --quiet-below) QUIET_BELOW=$2; shift ;;
    --quiet-timeout) QUIET_TIMEOUT=$2; shift ;;
    --label) LABEL=$2; shift ;;
    --no-build) BUILD=0 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
LOAD_S=$(awk -v m="$MINUTES" 'BEGIN { printf "%d", m * 60 + 0.5 }')
if [[ $SMOKE == 1 ]]; then
  LOAD_S=30 INTERVAL=2 SAT_SECONDS=3 CHUNK=30 CATCHUP_TIMEOUT=60 QUIET_TIMEOUT=0
  LABEL=${LABEL:-smoke}
fi
((LOAD_S >= 3 * INTERVAL)) || { echo "--minutes: at least three samples' worth (3 x --interval)" >&2; exit 2; }

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
CLICKTAP=$TARGET/release/clicktap
TOOLS=$TARGET/release/examples/bench-tools
LUA=$ROOT/benches/wrk/clicks.lua
LOG_TAG=soak
# shellcheck source=benches/lib.sh
. "$ROOT/benches/lib.sh"

ensure_tools
if [[ $BUILD == 1 ]]; then
  log "building (release)"
  cargo build --release --bin clicktap --example bench-tools >&2
fi

RUN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/clicktap-soak.XXXXXX")
PIDS=()
trap cleanup EXIT
trap 'exit 130' INT TERM
WRK_PREFIX="" SERVER_PREFIX=""
pick_ports
HZ=$(getconf CLK_TCK)
METRICS_URL=http://127.0.0.1:$ADMIN_PORT/metrics
URL=http://127.0.0.1:$PROXY_PORT$LINK_PATH

# ---------------------------------------------------------------- readings
# m KEY: a counter or gauge of the last metrics read ($M), 0 when absent.
m() { local v; v=$(jnum "$1" "$M"); printf '%s' "${v:-0}"; }
read_metrics() { M=$("$TOOLS" metrics "$METRICS_URL"); }
# clicktap's user + system CPU ticks (all its threads) and the machine's busy ticks.
# ticks PID...: CPU ticks (user + system) of these processes, their live children and
# the children they reaped (nginx's workers; pace's chunks); 0 for one that is gone.
ticks() {
  local p
  for p in "$@" $(pgrep -P "$(IFS=,; echo "$*")" || true); do
    awk '{ sub(/.*\) /, ""); print $12 + $13 + $14 + $15 }' "/proc/$p/stat" 2>/dev/null || true
  done | awk '{ s += $1 } END { print s + 0 }'
}
machine_ticks() { awk 'NR == 1 { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
now_s() { date +%s.%N; }
# dur_s "2m": seconds of a clicktap duration setting (one number and a unit), or empty.
dur_s() {
  local v=${1//\"/}
  awk -v v="$v" 'BEGIN {
    if (!match(v, /^[0-9.]+/)) exit; n = substr(v, 1, RLENGTH); u = substr(v, RLENGTH + 1)
    f["ms"] = 0.001; f["s"] = 1; f["m"] = 60; f["h"] = 3600; f["d"] = 86400
    if (u in f) printf "%g", n * f[u] }'
}

# ---------------------------------------------------------------- saturation
start_origin
start_hook
log "origin: $ORIGIN_KIND on $ORIGIN; hook server on $HOOK"
SAT_JSON=null SATURATION=null QUIET=null
if [[ -z $RATE ]]; then
  # A clicktap of its own, so that the soak's counters and queue start empty.
  clicktap_conf "$RUN_DIR/saturation.toml" "$RUN_DIR/queue-saturation" true unbatched
  if [[ $QUIET_TIMEOUT != 0 ]]; then
    QUIET=$("$TOOLS" quiet --below "$QUIET_BELOW" --timeout "$QUIET_TIMEOUT")
  fi
  start_clicktap clicktap-saturation "$RUN_DIR/saturation.toml"
  run_wrk "$URL" 2 >/dev/null
  SAT_JSON=$(run_wrk "$URL" "$SAT_SECONDS")
  stop "$CLICKTAP_PID"
  rm -rf "$RUN_DIR/queue-saturation"
  SATURATION=$(awk -v r="$(jnum requests "$SAT_JSON")" -v us="$(jnum duration_us "$SAT_JSON")" \
    'BEGIN { printf "%.0f", r / (us / 1e6) }')
  RATE=$((SATURATION / 2))
  log "saturation: $SATURATION req/s (wrk -t$WRK_THREADS -c$CONNECTIONS, ${SAT_SECONDS}s); soak at $RATE clicks/s"
fi

# ---------------------------------------------------------------- the soak
QDIR=$RUN_DIR/queue
CONF=$RUN_DIR/soak.toml
clicktap_conf "$CONF" "$QDIR" true unbatched
start_clicktap clicktap "$CONF"
RETENTION_S=$(dur_s "$(setting queue.retention '"7d"')")
LOG_RETENTION_S=$(dur_s "$(setting delivery.log_retention '"7d"')")
log "soak: $RATE clicks/s for ${LOAD_S}s, a sample every ${INTERVAL}s (queue.retention ${RETENTION_S}s)"

# The clicks, in pace processes of --chunk seconds back to back: one pace keeps every
# click's task until it ends, so one process for the whole soak would grow by ~1 KiB
# per click. Stopped with the script (cleanup TERMs this job, which TERMs its pace).
# At most --max-in-flight clicks at a time: each connection costs clicktap ~50 KiB, and
# without a cap every stall of the machine opens more of them (see benches/README.md).
pace_all() {
  local left=$LOAD_S chunk p=""
  trap '[[ -n $p ]] && kill -TERM "$p" 2>/dev/null; exit 143' TERM
  while ((left > 0)); do
    chunk=$((left < CHUNK ? left : CHUNK))
    "$TOOLS" pace --no-receiver --url "$URL" --rate "$RATE" --seconds "$chunk" \
      --max-in-flight "$MAX_IN_FLIGHT" >>"$RUN_DIR/pace.jsonl" &
    p=$!
    wait "$p" || { echo "pace failed" >&2; exit 1; }
    left=$((left - chunk))
  done
  touch "$RUN_DIR/paced"
}

SAMPLES=$RUN_DIR/samples.jsonl
: >"$SAMPLES"
# sample PHASE: one line of $SAMPLES, at its time since T0, with the CPU used since the
# previous sample (PREV_*); PHASE is load, or after for the sample after the catch-up.
sample() {
  local phase=$1 wall cpu mach servers pace
  wall=$(now_s)
  cpu=$(ticks "$CLICKTAP_PID") mach=$(machine_ticks) servers=$(ticks "$ORIGIN_PID" "$HOOK_PID")
  # pace's job ends with the clicks: its last reading stands for it after that.
  pace=0
  [[ -n ${PACE_JOB:-} ]] && pace=$(ticks "$PACE_JOB")
  ((pace < PREV_PACE)) && pace=$PREV_PACE
  read_metrics
  local rss du fds
  rss=$(rss_kib "$CLICKTAP_PID") du=$(du -sk "$QDIR" | cut -f1)
  fds=$(find "/proc/$CLICKTAP_PID/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
  awk -v t0="$T0" -v phase="$phase" -v w="$wall" -v w0="$PREV_WALL" -v c="$cpu" -v c0="$PREV_CPU" -v hz="$HZ" \
    -v mc="$mach" -v mc0="$PREV_MACH" -v sv="$servers" -v sv0="$PREV_SERVERS" -v pc="$pace" -v pc0="$PREV_PACE" \
    -v rss="$rss" -v du="$du" -v fds="$fds" \
    -v depth="$(m clicktap_queue_depth)" -v bytes="$(m clicktap_queue_bytes)" \
    -v lag="$(m clicktap_delivery_lag_events)" -v chan="$(m clicktap_capture_channel_depth)" \
    -v req="$(m clicktap_proxy_requests_total)" -v cap="$(m clicktap_capture_clicks_total)" \
    -v app="$(m clicktap_queue_appended_total)" -v del="$(m clicktap_delivery_delivered_total)" \
    -v cdrop="$(m clicktap_capture_dropped_total)" -v qdrop="$(m clicktap_queue_dropped_total)" \
    -v logb="$(m clicktap_delivery_log_bytes)" -v retried="$(m clicktap_delivery_retried_total)" \
    'BEGIN {
      # The first sample has no interval behind it: no CPU figures.
      dt = w - w0; f = (dt < 0.5) ? 0 : 100 / hz / dt
      cpu = (c - c0) * f; mach = (mc - mc0) * f; bench = (sv - sv0 + pc - pc0) * f
      others = mach - cpu - bench; if (others < 0) others = 0
      printf "{\"phase\":\"%s\",\"t_s\":%.1f,\"rss_kib\":%d,\"fds\":%d,\"cpu_pct\":%.1f,", phase, w - t0, rss, fds, cpu
      printf "\"bench_cpu_pct\":%.1f,\"machine_pct\":%.1f,\"others_pct\":%.1f,", bench, mach, others
      printf "\"queue_events\":%d,\"queue_bytes\":%d,\"disk_kib\":%d,\"lag_events\":%d,", depth, bytes, du, lag
      printf "\"channel_depth\":%d,\"requests\":%d,\"captured\":%d,\"stored\":%d,\"delivered\":%d,", chan, req, cap, app, del
      printf "\"retried\":%d,\"capture_dropped\":%d,\"queue_dropped\":%d,\"delivery_log_bytes\":%d}\n", retried, cdrop, qdrop, logb
    }' >>"$SAMPLES"
  PREV_WALL=$wall PREV_CPU=$cpu PREV_MACH=$mach PREV_SERVERS=$servers PREV_PACE=$pace
}

PREV_WALL=$(now_s) PREV_CPU=$(ticks "$CLICKTAP_PID") PREV_MACH=$(machine_ticks)
PREV_SERVERS=$(ticks "$ORIGIN_PID" "$HOOK_PID") PREV_PACE=0
T0=$(now_s)
sample load
pace_all &
PACE_JOB=$!
for ((k = 1; ; k++)); do
  # Sleep to the next tick of the schedule, or until the clicks end.
  due=$(awk -v a="$T0" -v b="$((k * INTERVAL))" 'BEGIN { printf "%.3f", a + b }')
  while ! [[ -e $RUN_DIR/paced ]] && awk -v n="$(now_s)" -v due="$due" 'BEGIN { exit !(n < due) }'; do
    kill -0 "$PACE_JOB" 2>/dev/null || break
    kill -0 "$CLICKTAP_PID" 2>/dev/null || { echo "clicktap exited during the soak; its log:" >&2; cat "$RUN_DIR/clicktap.log" >&2; exit 1; }
    sleep 0.2
  done
  sample load
  [[ -e $RUN_DIR/paced ]] && break
  kill -0 "$PACE_JOB" 2>/dev/null || { wait "$PACE_JOB" || true; echo "the clicks stopped early (pace failed)" >&2; exit 1; }
  log "$(tail -1 "$SAMPLES" | sed -E 's/[{}"]//g; s/,/ /g')"
done
wait "$PACE_JOB"
LOAD_END=$(now_s)
log "clicks done after $(awk -v a="$T0" -v b="$LOAD_END" 'BEGIN { printf "%.1f", b - a }')s; waiting for delivery"

# ---------------------------------------------------------------- catch-up and stop
# Delivery caught up: every captured click enriched and stored, the webhook has read
# them all and delivered as many as were stored.
CAUGHT_UP=false
while :; do
  read_metrics
  if awk -v c="$(m clicktap_capture_clicks_total)" -v e="$(m clicktap_enrich_events_total)" \
       -v lag="$(m clicktap_delivery_lag_events)" -v d="$(m clicktap_delivery_delivered_total)" \
       -v a="$(m clicktap_queue_appended_total)" 'BEGIN { exit !(e >= c && lag == 0 && d >= a) }'; then
    CAUGHT_UP=true; break
  fi
  awk -v a="$LOAD_END" -v b="$(now_s)" -v t="$CATCHUP_TIMEOUT" 'BEGIN { exit !(b - a > t) }' && break
  sleep 0.5
done
CATCHUP_S=$(awk -v a="$LOAD_END" -v b="$(now_s)" 'BEGIN { printf "%.1f", b - a }')
sample after
FINAL=$M
log "delivery caught up: $CAUGHT_UP after ${CATCHUP_S}s"

# A graceful stop, timed: SIGTERM, then at most STOP_BOUND seconds (clicktap's own
# bound for this configuration, docs/operations.md "Stopping and upgrading", plus slack).
STOP_BOUND=$(awk -v g="$(dur_s "$(setting proxy.grace_period '"0s"')")" \
  -v s="$(dur_s "$(setting proxy.shutdown_timeout '"1s"')")" \
  -v d="$(dur_s "$(setting delivery.stop_timeout '"5s"')")" 'BEGIN { printf "%d", g + s + d + 2 + 10 }')
STOP_T0=$(now_s)
kill -TERM "$CLICKTAP_PID"
STOPPED=false
for _ in $(seq $((STOP_BOUND * 10))); do
  kill -0 "$CLICKTAP_PID" 2>/dev/null || { STOPPED=true; break; }
  sleep 0.1
done
STOP_S=$(awk -v a="$STOP_T0" -v b="$(now_s)" 'BEGIN { printf "%.1f", b - a }')
EXIT_CODE=null
if [[ $STOPPED == true ]]; then
  EXIT_CODE=0; wait "$CLICKTAP_PID" || EXIT_CODE=$?
else
  kill -KILL "$CLICKTAP_PID" 2>/dev/null || true; wait "$CLICKTAP_PID" 2>/dev/null || true
fi
KEEP=()
for p in "${PIDS[@]}"; do [[ $p != "$CLICKTAP_PID" ]] && KEEP+=("$p"); done
PIDS=("${KEEP[@]}")
# The queue it leaves opens again (the stop released it and flushed).
REOPENS=false
"$CLICKTAP" events --config "$CONF" --limit 1 >/dev/null 2>"$RUN_DIR/events.err" && REOPENS=true
# clicktap's own errors and any panic fail the soak; the libraries' (Pingora's) are
# listed, as what they mean for visitors shows in the other checks.
LOG_ERRORS=$(grep -cE ' ERROR clicktap|panicked' "$RUN_DIR/clicktap.log" || true)
LOG_WARNS=$(grep -c ' WARN ' "$RUN_DIR/clicktap.log" || true)
DEP_ERRORS=$({ grep ' ERROR ' "$RUN_DIR/clicktap.log" || true; } | { grep -v ' ERROR clicktap' || true; } |
  sed -E 's/^[^ ]+ +ERROR +//; s/(.{90}).*/\1/' | sort | uniq -c | sort -rn | head -3 |
  awk '{ n = $1; $1 = ""; printf "%s%s x%d", (NR > 1 ? "; " : ""), substr($0, 2), n }')
log "stopped in ${STOP_S}s (exit $EXIT_CODE); log: $LOG_ERRORS error(s) of clicktap, $LOG_WARNS warning(s)${DEP_ERRORS:+; libraries: $DEP_ERRORS}"

# ---------------------------------------------------------------- figures and checks
# Thirds of the load by sample time: the first is warm-up and filling (caches, sled's
# file, the queue until retention starts trimming); the middle and the last are
# compared. A sample is taken a moment after its tick, hence the second of slack; the
# sample after the catch-up is in none.
stats() {  # FIELD THIRD(1|2|3) -> "mean max n"
  awk -v f="$1" -v third="$2" -v d="$LOAD_S" '
    /"phase":"after"/ { next }
    { if (!match($0, "\"" f "\":[-0-9.eE+]+")) next
      v = substr($0, RSTART + length(f) + 3, RLENGTH - length(f) - 3) + 0
      match($0, /"t_s":[0-9.]+/); t = substr($0, RSTART + 6, RLENGTH - 6) + 0
      lo = (third - 1) * d / 3 + 1; hi = third == 3 ? 1e18 : third * d / 3 + 1
      if ((third == 1 || t > lo) && t <= hi) { s += v; n++; if (n == 1 || v > mx) mx = v } }
    END { if (n) printf "%.6g %.6g %d", s / n, mx, n; else print "0 0 0" }' "$SAMPLES"
}
field_max() {  # FIELD -> max over every sample
  sed -nE "s/.*\"$1\":([-0-9.eE+]+).*/\1/p" "$SAMPLES" | sort -g | tail -1
}
mean() { read -r a _ _ <<<"$(stats "$1" "$2")"; echo "$a"; }
peak() { read -r _ b _ <<<"$(stats "$1" "$2")"; echo "$b"; }
run_mean() { awk -v a="$(mean "$1" 1)" -v b="$(mean "$1" 2)" -v c="$(mean "$1" 3)" 'BEGIN { printf "%.1f", (a + b + c) / 3 }'; }
# bytes per stored event, per sample, as a field of its own
awk '{ match($0, /"queue_events":[0-9]+/); e = substr($0, RSTART + 15, RLENGTH - 15)
       match($0, /"queue_bytes":[0-9]+/); b = substr($0, RSTART + 14, RLENGTH - 14)
       sub(/}$/, sprintf(",\"bytes_per_event\":%.1f}", e > 0 ? b / e : 0)); print }' "$SAMPLES" >"$SAMPLES.tmp"
mv "$SAMPLES.tmp" "$SAMPLES"

CHECKS=$RUN_DIR/checks.jsonl
: >"$CHECKS"
FAILED=()
# check NAME OK(true|false|skip) DETAIL
check() {
  local result
  case $2 in true) result=pass ;; skip) result="not judged" ;; *) result=FAIL ;; esac
  printf '{"check":%s,"result":"%s","detail":%s}\n' "$(json_str "$1")" "$result" "$(json_str "$3")" >>"$CHECKS"
  [[ $2 == false ]] && FAILED+=("$1: $3")
  return 0
}
# within A B PCT: A <= B * (1 + PCT/100)
within() { awk -v a="$1" -v b="$2" -v p="$3" 'BEGIN { exit !(a <= b * (1 + p / 100)) }' && echo true || echo false; }
cmp_eq() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a == b) }' && echo true || echo false; }

M=$FINAL
count() { printf '%.0f' "$(m "$1")"; }
CAPTURED=$(count clicktap_capture_clicks_total) STORED=$(count clicktap_queue_appended_total)
DELIVERED=$(count clicktap_delivery_delivered_total) REQUESTS=$(count clicktap_proxy_requests_total)
CDROP=$(count clicktap_capture_dropped_total) QDROP=$(count clicktap_queue_dropped_total)
DEAD=$(count clicktap_delivery_dead_total) RETRIED=$(count clicktap_delivery_retried_total)
read -r SENT REDIRECTS ERRORS RP50 RP99 RMAX < <(awk '
  function num(k,   v) { if (!match($0, "\"" k "\":[-0-9.eE+]+")) return 0; return substr($0, RSTART + length(k) + 3, RLENGTH - length(k) - 3) + 0 }
  { s += num("clicks"); r += num("redirects"); e += num("errors")
    if (num("redirect_p50_ms") > p50) p50 = num("redirect_p50_ms")
    if (num("redirect_p99_ms") > p99) p99 = num("redirect_p99_ms")
    if (num("redirect_max_ms") > mx) mx = num("redirect_max_ms") }
  END { printf "%d %d %d %.3f %.3f %.3f\n", s, r, e, p50, p99, mx }' "$RUN_DIR/pace.jsonl")
ACHIEVED=$(awk -v n="$SENT" -v a="$T0" -v b="$LOAD_END" 'BEGIN { printf "%.1f", n / (b - a) }')

# An open loop that fell behind means the machine was short of CPU: the run was not at
# the rate asked, and what it shows is overload (connections pile up), not a soak.
check "clicks sent at the rate" "$(awk -v a="$ACHIEVED" -v r="$RATE" 'BEGIN { exit !(a >= 0.95 * r) }' && echo true || echo false)" \
  "$ACHIEVED clicks/s over the load's wall time against $RATE asked (at least 95%); others' CPU use meanwhile: $(run_mean others_pct)%"
check "every click answered with a redirect" "$(cmp_eq "$ERRORS" 0)" \
  "$SENT clicks sent, $REDIRECTS redirects, $ERRORS errors"
check "every redirect captured" "$(cmp_eq "$CAPTURED" "$REDIRECTS")" \
  "$REDIRECTS redirects, $CAPTURED captured ($REQUESTS requests proxied)"
check "zero capture drops" "$(cmp_eq "$CDROP" 0)" "clicktap_capture_dropped_total = $CDROP"
check "zero queue drops" "$(cmp_eq "$QDROP" 0)" "clicktap_queue_dropped_total = $QDROP (every reason)"
check "every captured click stored" "$(cmp_eq "$STORED" "$CAPTURED")" "$CAPTURED captured, $STORED stored"
check "every stored event delivered" "$([[ $CAUGHT_UP == true ]] && cmp_eq "$DELIVERED" "$STORED" || echo false)" \
  "$STORED stored, $DELIVERED delivered, $DEAD dead, $RETRIED retried; caught up: $CAUGHT_UP after ${CATCHUP_S}s (at most ${CATCHUP_TIMEOUT}s)"
check "graceful stop" "$([[ $EXIT_CODE == 0 ]] && echo true || echo false)" \
  "SIGTERM: exited in ${STOP_S}s with code $EXIT_CODE (bound ${STOP_BOUND}s)"
check "queue opens again after the stop" "$REOPENS" "clicktap events --limit 1$([[ $REOPENS == true ]] || echo ": $(head -c 300 "$RUN_DIR/events.err")")"
check "no errors logged" "$(cmp_eq "$LOG_ERRORS" 0)" \
  "$LOG_ERRORS ERROR line(s) of clicktap or panics, $LOG_WARNS WARN line(s) at log.level warn; libraries' ERROR lines: ${DEP_ERRORS:-none}"

# Flatness: judged on runs long enough to have a steady middle third.
JUDGE=true
[[ $SMOKE == 1 ]] && JUDGE=skip
judged() { [[ $JUDGE == skip ]] && echo skip || echo "$1"; }
THIRD_S=$((LOAD_S / 3))
RSS1=$(mean rss_kib 1) RSS2=$(mean rss_kib 2) RSS3=$(mean rss_kib 3)
LEAK_B=$(awk -v m="$RSS2" -v p="$RSS_TOL" -v r="$RATE" -v s="$THIRD_S" 'BEGIN { printf "%.1f", m * 1024 * p / 100 / (r * s) }')
check "RSS flat" "$(judged "$(within "$RSS3" "$RSS2" "$RSS_TOL")")" \
  "$(printf 'mean of the thirds %.1f / %.1f / %.1f MiB; the last at most %s%% above the middle, which a leak of %s bytes per click at %s clicks/s would exceed' \
    "$(awk -v v="$RSS1" 'BEGIN { print v / 1024 }')" "$(awk -v v="$RSS2" 'BEGIN { print v / 1024 }')" \
    "$(awk -v v="$RSS3" 'BEGIN { print v / 1024 }')" "$RSS_TOL" "$LEAK_B" "$RATE")"
BPE2=$(mean bytes_per_event 2) BPE3=$(mean bytes_per_event 3)
check "queue bytes per event constant" \
  "$(judged "$(awk -v a="$BPE2" -v b="$BPE3" -v p="$SIZE_TOL" 'BEGIN { d = a > b ? a - b : b - a; exit !(d <= a * p / 100) }' && echo true || echo false)")" \
  "$(printf 'mean %.1f bytes per stored event in the middle third, %.1f in the last (within %s%%)' "$BPE2" "$BPE3" "$SIZE_TOL")"
# The queue plateaus once retention trims it (every 10 s, the keeper's period) before
# the middle third starts; the delivery log once it is pruned (every 60 s).
plateau() {  # NAME FIELD RETENTION_S PERIOD_S UNIT_DIVISOR UNIT
  local name=$1 f=$2 ret=$3 period=$4 div=$5 unit=$6 p2 p3 ok
  p2=$(peak "$f" 2) p3=$(peak "$f" 3)
  if [[ -z $ret ]] || awk -v r="$ret" -v p="$period" -v i="$INTERVAL" -v t="$THIRD_S" 'BEGIN { exit !(r + p + i > t) }'; then
    ok=skip
  else
    ok=$(judged "$(within "$p3" "$p2" "$SIZE_TOL")")
  fi
  check "$name plateaus" "$ok" "$(printf 'peak %s %s in the middle third, %s in the last (at most %s%% above); retention %ss' \
    "$(awk -v v="$p2" -v d="$div" 'BEGIN { printf (d == 1 ? "%.0f" : "%.1f"), v / d }')" "$unit" \
    "$(awk -v v="$p3" -v d="$div" 'BEGIN { printf (d == 1 ? "%.0f" : "%.1f"), v / d }')" "$SIZE_TOL" "${ret:-?}")"
}
plateau "queue events" queue_events "$RETENTION_S" 10 1 events
plateau "queue bytes" queue_bytes "$RETENTION_S" 10 1048576 MiB
plateau "queue disk size" disk_kib "$RETENTION_S" 10 1024 MiB
plateau "delivery log" delivery_log_bytes "$LOG_RETENTION_S" 60 1048576 MiB
LAG2=$(mean lag_events 2) LAG3=$(mean lag_events 3)
check "delivery keeps pace" "$(judged "$(awk -v a="$LAG2" -v b="$LAG3" -v r="$RATE" 'BEGIN { exit !(b <= a + r) }' && echo true || echo false)")" \
  "$(printf 'mean lag %.0f events in the middle third, %.0f in the last (at most one second of clicks, %s, more)' "$LAG2" "$LAG3" "$RATE")"

# ---------------------------------------------------------------- report
mkdir -p "$ROOT/bench-results"
NAME=soak-$(date -u +%Y%m%dT%H%M%SZ)${LABEL:+-$LABEL}
OUT=$ROOT/bench-results/$NAME
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
MODEL=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
LAG_MAX=$(field_max lag_events) DISK_MAX=$(field_max disk_kib) BYTES_MAX=$(field_max queue_bytes)
CPU_MEAN=$(awk -v a="$(mean cpu_pct 1)" -v b="$(mean cpu_pct 2)" -v c="$(mean cpu_pct 3)" 'BEGIN { printf "%.1f", (a + b + c) / 3 }')
MACH_MEAN=$(run_mean machine_pct) OTHERS_MEAN=$(run_mean others_pct) BENCH_MEAN=$(run_mean bench_cpu_pct)
RESULT=$([[ ${#FAILED[@]} == 0 ]] && echo passed || echo FAILED)
mib() { awk -v v="$1" -v d="${2:-1024}" 'BEGIN { printf (d == 1 ? "%.0f" : "%.1f"), v / d }'; }
{
  printf '{"name":%s,"date":%s,"commit":%s,' "$(json_str "$NAME")" "$(json_str "$(date -u +%FT%TZ)")" "$(json_str "$COMMIT")"
  printf '"machine":{"nproc":%s,"model":%s,"kernel":%s},' "$(nproc)" "$(json_str "$MODEL")" "$(json_str "$(uname -r)")"
  printf '"settings":{"load_s":%s,"interval_s":%s,"chunk_s":%s,"max_in_flight":%s,"smoke":%s,"origin":%s,' \
    "$LOAD_S" "$INTERVAL" "$CHUNK" "$MAX_IN_FLIGHT" \
    "$([[ $SMOKE == 1 ]] && echo true || echo false)" "$(json_str "$ORIGIN_KIND")"
  printf '"rss_tolerance_pct":%s,"size_tolerance_pct":%s,"catchup_timeout_s":%s,' "$RSS_TOL" "$SIZE_TOL" "$CATCHUP_TIMEOUT"
  printf '"clicktap_sets":%s,"webhook_sets":%s},' "$(json_list "${SETS[@]}")" "$(json_list "${WEBHOOK_SETS[@]}")"
  printf '"saturation":{"requests_per_s":%s,"wrk":%s,"quiet":%s},"rate":%s,"achieved_rate":%s,' \
    "$SATURATION" "$SAT_JSON" "$QUIET" "$RATE" "$ACHIEVED"
  printf '"pace":[%s],' "$(paste -sd, "$RUN_DIR/pace.jsonl")"
  printf '"samples":[%s],' "$(paste -sd, "$SAMPLES")"
  printf '"final_metrics":%s,' "$FINAL"
  printf '"catchup":{"caught_up":%s,"seconds":%s},"stop":{"seconds":%s,"exit_code":%s},' \
    "$CAUGHT_UP" "$CATCHUP_S" "$STOP_S" "$EXIT_CODE"
  printf '"checks":[%s],"passed":%s}\n' "$(paste -sd, "$CHECKS")" "$([[ $RESULT == passed ]] && echo true || echo false)"
} >"$OUT.json"
{
  echo "## clicktap soak $NAME: $RESULT"
  echo
  echo "Machine: $(nproc) CPUs, $MODEL; commit $COMMIT; origin and hook server: $ORIGIN_KIND;" \
    "clicktap settings: ${SETS[*]}${WEBHOOK_SETS[*]:+; webhook: ${WEBHOOK_SETS[*]}}."
  if [[ $SATURATION != null ]]; then
    echo "Saturation: $SATURATION req/s (wrk -t$WRK_THREADS -c$CONNECTIONS, ${SAT_SECONDS}s, full pipeline with a webhook per click);"
  fi
  echo "paced at $RATE clicks/s (achieved $ACHIEVED) for ${LOAD_S}s in an open loop, at most $MAX_IN_FLIGHT in flight; a sample every ${INTERVAL}s."
  echo
  echo "| figure | first third | middle third | last third | whole run |"
  echo "|---|---|---|---|---|"
  printf '| RSS mean MiB | %s | %s | %s | max %s |\n' "$(mib "$RSS1")" "$(mib "$RSS2")" "$(mib "$RSS3")" "$(mib "$(field_max rss_kib)")"
  printf '| queue events, peak | %.0f | %.0f | %.0f | |\n' "$(peak queue_events 1)" "$(peak queue_events 2)" "$(peak queue_events 3)"
  printf '| queue MiB, peak | %s | %s | %s | max %s |\n' "$(mib "$(peak queue_bytes 1)" 1048576)" \
    "$(mib "$(peak queue_bytes 2)" 1048576)" "$(mib "$(peak queue_bytes 3)" 1048576)" "$(mib "$BYTES_MAX" 1048576)"
  printf '| bytes per event, mean | %.1f | %.1f | %.1f | |\n' "$(mean bytes_per_event 1)" "$BPE2" "$BPE3"
  printf '| disk MiB (du), peak | %s | %s | %s | max %s |\n' "$(mib "$(peak disk_kib 1)")" "$(mib "$(peak disk_kib 2)")" \
    "$(mib "$(peak disk_kib 3)")" "$(mib "$DISK_MAX")"
  printf '| delivery log MiB, peak | %s | %s | %s | |\n' "$(mib "$(peak delivery_log_bytes 1)" 1048576)" \
    "$(mib "$(peak delivery_log_bytes 2)" 1048576)" "$(mib "$(peak delivery_log_bytes 3)" 1048576)"
  printf '| delivery lag, mean / max | %.0f / %.0f | %.0f / %.0f | %.0f / %.0f | max %.0f |\n' \
    "$(mean lag_events 1)" "$(peak lag_events 1)" "$LAG2" "$(peak lag_events 2)" "$LAG3" "$(peak lag_events 3)" "$LAG_MAX"
  printf '| clicktap CPU %% | %.1f | %.1f | %.1f | mean %s |\n' "$(mean cpu_pct 1)" "$(mean cpu_pct 2)" "$(mean cpu_pct 3)" "$CPU_MEAN"
  printf '| origin, hook server and pace CPU %% | %.1f | %.1f | %.1f | mean %s |\n' "$(mean bench_cpu_pct 1)" \
    "$(mean bench_cpu_pct 2)" "$(mean bench_cpu_pct 3)" "$BENCH_MEAN"
  printf '| others CPU %% (not the soak) | %.1f | %.1f | %.1f | mean %s |\n' "$(mean others_pct 1)" \
    "$(mean others_pct 2)" "$(mean others_pct 3)" "$OTHERS_MEAN"
  printf '| machine CPU %% | %.1f | %.1f | %.1f | mean %s |\n' "$(mean machine_pct 1)" "$(mean machine_pct 2)" "$(mean machine_pct 3)" "$MACH_MEAN"
  printf '| clicktap open files, max | %.0f | %.0f | %.0f | |\n' "$(peak fds 1)" "$(peak fds 2)" "$(peak fds 3)"
  echo
  echo "Clicks sent $SENT, captured $CAPTURED, stored $STORED, delivered $DELIVERED; capture drops $CDROP, queue drops $QDROP;" \
    "delivery caught up ${CATCHUP_S}s after the load; stopped in ${STOP_S}s. Redirects: worst chunk's p50 $RP50 ms, p99 $RP99 ms, max $RMAX ms."
  echo
  echo "| check | result | detail |"
  echo "|---|---|---|"
  sed -E 's/^\{"check":"([^"]*)","result":"([^"]*)","detail":"(.*)"\}$/| \1 | \2 | \3 |/' "$CHECKS"
  echo
  echo "| t s | RSS MiB | files | CPU % | queue events | queue MiB | disk MiB | lag | captured | stored | delivered | capture drops | queue drops | log MiB | others CPU % |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
  awk 'function num(k) { match($0, "\"" k "\":[-0-9.eE+]+"); return substr($0, RSTART + length(k) + 3, RLENGTH - length(k) - 3) + 0 }
    { printf "| %.0f | %.1f | %d | %.1f | %d | %.2f | %.1f | %d | %d | %d | %d | %d | %d | %.2f | %.1f |\n",
        num("t_s"), num("rss_kib") / 1024, num("fds"), num("cpu_pct"), num("queue_events"), num("queue_bytes") / 1048576,
        num("disk_kib") / 1024, num("lag_events"), num("captured"), num("stored"), num("delivered"),
        num("capture_dropped"), num("queue_dropped"), num("delivery_log_bytes") / 1048576, num("others_pct") }' "$SAMPLES"
} | tee "$OUT.md"
cp "$RUN_DIR/clicktap.log" "$OUT.log"
log "results: $OUT.json, $OUT.md and clicktap's log $OUT.log"
if [[ ${#FAILED[@]} != 0 ]]; then
  for f in "${FAILED[@]}"; do echo "soak FAILED: $f" >&2; done
  exit 1
fi
log "soak passed"
