#!/usr/bin/env bash
# What each syslog-ng setting costs contender h's log shipper, side by side: syslog-ng
# alone (no nginx, no wrk) following a file and POSTing each line to the bench's hook
# server, as in benches/conf/syslog-ng-clicks.conf; the bench appends LINES click lines
# (the shape of h's access log) to the file at once and reads syslog-ng's CPU
# (/proc/<pid>/stat) from the append until the hook server has received every line.
# Variants alternate round by round, so that drift in the machine hits them alike.
#
#   bash benches/syslog_ng.sh [--lines N] [--rounds N] [--variants LIST] [--label NAME]
#
# Variants (default: all): bench (the bench's file as it is: 4 workers, a 200,000-line
# window and queue, so the reader never waits for the destination), workers-1,
# workers-2, workers-8, fetch-1000 (the source reads up to 1,000 lines a turn instead
# of 10), stats-0 (no per-source and per-destination counters), window-10k (a
# 10,000-line window and queue, the bench's before 2026-12-08).
# Writes bench-results/<date>-syslog-ng[-label].{json,md}. See benches/README.md,
# "Contender h: nginx + access log + syslog-ng".
set -euo pipefail

LINES=50000 ROUNDS=3 LABEL="" ORIGIN_KIND=""
VARIANTS=bench,workers-1,workers-2,workers-8,fetch-1000,stats-0,window-10k
while [[ $# -gt 0 ]]; do
  case "$1" in
    --lines) LINES=$2; shift ;;
    --rounds) ROUNDS=$2; shift ;;
    --variants) VARIANTS=$2; shift ;;
    --label) LABEL=$2; shift ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
TOOLS=$TARGET/release/examples/bench-tools
SERVER_PREFIX="" PIDS=()
LOG_TAG=syslog-ng
# shellcheck source=benches/lib.sh
. "$ROOT/benches/lib.sh"
[[ -x $TOOLS ]] || cargo build --release --example bench-tools >&2
ensure_tools
ensure_syslog_ng
[[ -n $SYSLOG_NG ]] || { echo "$SYSLOG_NG_MISSING: install syslog-ng-core and syslog-ng-mod-http" >&2; exit 1; }

RUN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/clicktap-syslog-ng.XXXXXX")
trap cleanup EXIT
trap 'exit 130' INT TERM
pick_ports
start_hook
TICK=$(getconf CLK_TCK)

# The lines appended: one click each, as h's nginx logs them.
awk -v n="$LINES" 'BEGIN { for (i = 0; i < n; i++) printf "{\"time\":\"2026-12-08T00:00:00+00:00\",\"ip\":\"203.0.113.%d\",\"method\":\"GET\",\"host\":\"sho.rt\",\"uri\":\"/r/spring-sale?utm_source=newsletter&n=%d\",\"status\":302,\"location\":\"https://example.com/dest/r/spring-sale\",\"user_agent\":\"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36\",\"referer\":\"https://mail.example.org/inbox/message/123\"}\n", i % 250, i }' \
  >"$RUN_DIR/lines"

# variant_conf NAME FILE: the bench's configuration with NAME's change; sets WORKERS.
variant_conf() {
  local name=$1 file=$2 workers=4 edit=""
  case $name in
    bench) ;;
    workers-*) workers=${name#workers-} ;;
    fetch-1000) edit='s/log-iw-size(200000))/log-iw-size(200000) log-fetch-limit(1000))/' ;;
    stats-0) edit='s/stats-level(1);/stats-level(0);/' ;;
    window-10k) edit='s/log-iw-size(200000)/log-iw-size(10000)/; s/log-fifo-size(200000)/log-fifo-size(10000)/' ;;
    *) echo "unknown variant: $name" >&2; exit 2 ;;
  esac
  sed "$edit" "$ROOT/benches/conf/syslog-ng-clicks.conf" >"$file"
  [[ -z $edit ]] || ! cmp -s "$file" "$ROOT/benches/conf/syslog-ng-clicks.conf" ||
    { echo "variant $name: benches/conf/syslog-ng-clicks.conf no longer has what it changes" >&2; exit 1; }
  WORKERS=$workers
}

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# measure NAME ROUND: one run of variant NAME; appends a JSON line to RAW.
RAW=$RUN_DIR/raw.jsonl
measure() {
  local name=$1 round=$2 dir=$RUN_DIR/$1-$2 workers pid
  mkdir -p "$dir"
  variant_conf "$name" "$dir/syslog-ng.conf"; workers=$WORKERS
  : >"$dir/clicks.log"
  CLICKS_LOG=$dir/clicks.log HOOK_URL="http://$HOOK/hook" SYSLOG_NG_WORKERS=$workers \
    start "syslog-ng-$name-$round" "$SYSLOG_NG" -F --no-caps -e -f "$dir/syslog-ng.conf" \
    -R "$dir/persist" -p "$dir/pid" -c "$dir/ctl"
  pid=$STARTED
  local ready=0
  for _ in $(seq 200); do
    if "$SYSLOG_NG_CTL_BIN" stats -c "$dir/ctl" >/dev/null 2>&1; then ready=1; break; fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  [[ $ready == 1 ]] || { echo "syslog-ng ($name) did not start; its log:" >&2; cat "$RUN_DIR/syslog-ng-$name-$round.log" >&2; exit 1; }
  local base c0 t0 got=0 c1 t1
  base=$(hook_lines)
  c0=$(cpu_ticks "$pid") t0=$(date +%s%N)
  cat "$RUN_DIR/lines" >>"$dir/clicks.log"
  # Bounded: 300 s at most, however slow the variant.
  for _ in $(seq 15000); do
    got=$(( $(hook_lines) - base ))
    [[ $got -ge $LINES ]] && break
    sleep 0.02
  done
  c1=$(cpu_ticks "$pid") t1=$(date +%s%N)
  stop "$pid"
  [[ $got -ge $LINES ]] || { echo "$name: $got of $LINES lines delivered within 300 s" >&2; exit 1; }
  local us secs
  us=$(awk -v c=$((c1 - c0)) -v t="$TICK" -v n="$LINES" 'BEGIN { printf "%.1f", c / t * 1e6 / n }')
  secs=$(awk -v d=$((t1 - t0)) 'BEGIN { printf "%.2f", d / 1e9 }')
  log "$name round $round: $us µs of CPU per line, $LINES lines in $secs s"
  printf '{"variant":"%s","round":%d,"workers":%d,"lines":%d,"cpu_us_per_line":%s,"seconds":%s}\n' \
    "$name" "$round" "$workers" "$LINES" "$us" "$secs" >>"$RAW"
}

IFS=, read -r -a NAMES <<<"$VARIANTS"
for round in $(seq "$ROUNDS"); do
  # Each round starts one variant further on.
  n=${#NAMES[@]}
  for i in $(seq 0 $((n - 1))); do measure "${NAMES[$(( (i + round - 1) % n ))]}" "$round"; done
done

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT=$ROOT/bench-results/$STAMP-syslog-ng${LABEL:+-$LABEL}
mkdir -p "$ROOT/bench-results"
CPU_NAME=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
python3 - "$RAW" "$OUT" "$VARIANTS" "$CPU_NAME" "$("$SYSLOG_NG" --version | head -1)" <<'PY'
import json, statistics, sys
raw, out, variants, cpu, version = sys.argv[1:]
runs = [json.loads(l) for l in open(raw)]
rows = []
for name in variants.split(","):
    mine = [r for r in runs if r["variant"] == name]
    us = [r["cpu_us_per_line"] for r in mine]
    rate = [r["lines"] / r["seconds"] for r in mine]
    rows.append({"variant": name, "rounds": len(mine), "workers": mine[0]["workers"],
                 "cpu_us_per_line": statistics.median(us), "min": min(us), "max": max(us),
                 "lines_per_s": statistics.median(rate)})
json.dump({"cpu": cpu, "syslog_ng": version, "runs": runs, "variants": rows}, open(out + ".json", "w"), indent=1)
md = [f"## syslog-ng settings for contender h ({out.rsplit('/', 1)[1]})", "",
      f"{cpu}; {version}; {runs[0]['lines']} lines appended at once per run, "
      "CPU from the append until the hook server had every line.", "",
      "| variant | workers | rounds | CPU µs per line (median) | rounds' range | lines/s delivered |",
      "|---|---:|---:|---:|---|---:|"]
for r in rows:
    md.append(f"| {r['variant']} | {r['workers']} | {r['rounds']} | {r['cpu_us_per_line']:.1f} | "
              f"{r['min']:.1f} - {r['max']:.1f} | {r['lines_per_s']:.0f} |")
open(out + ".md", "w").write("\n".join(md) + "\n")
print("\n".join(md))
PY
log "wrote $OUT.json and $OUT.md"
