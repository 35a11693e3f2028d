#!/usr/bin/env bash
# The pieces benches/run.sh and benches/soak.sh share: tools, processes, the origin and
# the hook server, clicktap's configuration. Sourced, not run; it only defines.
#
# The functions read the caller's globals: ROOT, TOOLS, CLICKTAP, LUA, RUN_DIR and
# PIDS (the servers started, stopped on exit by cleanup), SERVER_PREFIX and WRK_PREFIX
# (taskset or empty), ORIGIN_KIND and NGINX, the ports (ORIGIN, ORIGIN_PORT, HOOK,
# HOOK_PORT, PROXY_PORT, ADMIN_PORT, RECEIVER_PORT), SETS and WEBHOOK_SETS (--set and
# --webhook-set), and for run_wrk WRK_THREADS and CONNECTIONS. What it sets (the ports,
# LINK_PATH, ORIGIN_PID, HOOK_PID, HOOK_LOG, CLICKTAP_PID, SYSLOG_NG) is for them too:
# shellcheck disable=SC2034

LOG_TAG=${LOG_TAG:-bench}
log() { printf '[%s %s] %s\n' "$LOG_TAG" "$(date +%H:%M:%S)" "$*" >&2; }
has() { [[ ",$2," == *",$1,"* ]]; }

# ---------------------------------------------------------------- tools and build
as_root() { if [[ $(id -u) == 0 ]]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi; }

# Finds nginx, installs wrk and nginx from Debian's packages when missing, and picks
# the origin's kind (nginx when there is one) unless ORIGIN_KIND is set.
ensure_tools() {
  NGINX=$(command -v nginx || true); [[ -z $NGINX && -x /usr/sbin/nginx ]] && NGINX=/usr/sbin/nginx
  if ! command -v wrk >/dev/null || { [[ -z $NGINX && $ORIGIN_KIND != builtin ]]; }; then
    log "installing wrk and nginx from Debian's packages"
    as_root apt-get update -qq >&2 && as_root apt-get install -y -qq wrk nginx >&2 ||
      log "apt-get failed: continuing with what is installed"
    NGINX=$(command -v nginx || true); [[ -z $NGINX && -x /usr/sbin/nginx ]] && NGINX=/usr/sbin/nginx
  fi
  command -v wrk >/dev/null || { echo "wrk is required and could not be installed" >&2; exit 1; }
  if [[ -z $ORIGIN_KIND ]]; then ORIGIN_KIND=$([[ -n $NGINX ]] && echo nginx || echo builtin); fi
  if [[ $ORIGIN_KIND == nginx && -z $NGINX ]]; then echo "--origin nginx: nginx not found" >&2; exit 1; fi
}

# Finds syslog-ng with its http() module, installing Debian's packages when missing;
# sets SYSLOG_NG and SYSLOG_NG_CTL_BIN (syslog-ng-ctl; both in /usr/sbin, which a user's
# PATH may lack), or SYSLOG_NG empty with the reason in SYSLOG_NG_MISSING.
syslog_ng_http() { compgen -G '/usr/lib/syslog-ng/*/libhttp.so' >/dev/null; }
find_syslog_ng() {
  SYSLOG_NG=$(command -v syslog-ng || true)
  [[ -z $SYSLOG_NG && -x /usr/sbin/syslog-ng ]] && SYSLOG_NG=/usr/sbin/syslog-ng
  SYSLOG_NG_CTL_BIN=${SYSLOG_NG%/*}/syslog-ng-ctl
}
ensure_syslog_ng() {
  find_syslog_ng
  SYSLOG_NG_MISSING=""
  if [[ -z $SYSLOG_NG ]] || ! syslog_ng_http; then
    log "installing syslog-ng-core and syslog-ng-mod-http from Debian's packages"
    local before p
    before=" $(pgrep -x syslog-ng | paste -sd' ' - || true) "
    if ! as_root apt-get install -y -qq syslog-ng-core syslog-ng-mod-http >&2; then
      if ! { as_root apt-get update -qq && as_root apt-get install -y -qq syslog-ng-core syslog-ng-mod-http; } >&2; then
        log "apt-get failed: continuing with what is installed"
      fi
    fi
    # The package starts the system's syslog-ng where an init system lets it; the
    # bench runs its own, so it stops one the install started (not one that ran before).
    for p in $(pgrep -x syslog-ng || true); do
      [[ $before == *" $p "* ]] && continue
      log "stopping the syslog-ng service the install started (pid $p)"
      as_root systemctl disable --now syslog-ng >/dev/null 2>&1 ||
        as_root service syslog-ng stop >/dev/null 2>&1 || as_root kill -TERM "$p" 2>/dev/null || true
    done
    find_syslog_ng
  fi
  if [[ -z $SYSLOG_NG ]]; then
    SYSLOG_NG_MISSING="syslog-ng is not installed and could not be"
  elif ! syslog_ng_http; then
    SYSLOG_NG="" SYSLOG_NG_MISSING="syslog-ng's http() module (syslog-ng-mod-http) is not installed and could not be"
  fi
}

# Finds nats-server (the publish part's JetStream server), installing Debian's package
# when missing; sets NATS_SERVER, or leaves it empty with the reason in NATS_MISSING.
ensure_nats_server() {
  NATS_SERVER=$(command -v nats-server || true)
  [[ -z $NATS_SERVER && -x /usr/sbin/nats-server ]] && NATS_SERVER=/usr/sbin/nats-server
  if [[ -z $NATS_SERVER ]]; then
    log "installing nats-server from Debian's packages"
    as_root apt-get install -y -qq nats-server >&2 ||
      { as_root apt-get update -qq && as_root apt-get install -y -qq nats-server; } >&2 ||
      log "apt-get failed: continuing with what is installed"
    NATS_SERVER=$(command -v nats-server || true)
    [[ -z $NATS_SERVER && -x /usr/sbin/nats-server ]] && NATS_SERVER=/usr/sbin/nats-server
  fi
  NATS_MISSING=""
  [[ -n $NATS_SERVER ]] || NATS_MISSING="nats-server is not installed and could not be"
}

# ---------------------------------------------------------------- processes
cleanup() {
  local pid
  # Servers, and the background jobs of a run cut short (wrk, samplers, pace).
  for pid in "${PIDS[@]}" $(jobs -p); do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  rm -rf "$RUN_DIR"
}

on_cpus() { if [[ -n $1 ]]; then echo "taskset -c $1"; fi; }

# Starts a server in the background, logging to $RUN_DIR/<name>.log; sets STARTED.
start() {
  local name=$1; shift
  # shellcheck disable=SC2086
  $SERVER_PREFIX "$@" >"$RUN_DIR/$name.log" 2>&1 &
  STARTED=$!
  PIDS+=("$STARTED")
}

stop() {
  local pid=$1
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  local keep=() p
  for p in "${PIDS[@]}"; do [[ $p != "$pid" ]] && keep+=("$p"); done
  PIDS=("${keep[@]}")
}

wait_port() {
  local port=$1 pid=$2 name=$3
  for _ in $(seq 200); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    kill -0 "$pid" 2>/dev/null || { echo "$name exited; its log:" >&2; cat "$RUN_DIR/$name.log" >&2; exit 1; }
    sleep 0.05
  done
  echo "$name did not listen on $port; its log:" >&2; cat "$RUN_DIR/$name.log" >&2; exit 1
}

# Free loopback ports for every server either script starts.
pick_ports() {
  mapfile -t PORTS < <("$TOOLS" ports 8)
  ORIGIN_PORT=${PORTS[0]} PROXY_PORT=${PORTS[1]} ADMIN_PORT=${PORTS[2]}
  RECEIVER_PORT=${PORTS[3]} NGINX_PROXY_PORT=${PORTS[4]} HOOK_PORT=${PORTS[5]}
  NATS_PORT=${PORTS[6]} RELAY_ADMIN_PORT=${PORTS[7]}
  ORIGIN=127.0.0.1:$ORIGIN_PORT HOOK=127.0.0.1:$HOOK_PORT
}
LINK_PATH="/r/spring-sale?utm_source=newsletter&utm_medium=email&utm_campaign=bench"

# ---------------------------------------------------------------- nginx configs
nginx_conf() {  # name workers server-block
  local dir=$RUN_DIR/nginx-$1
  mkdir -p "$dir/logs"
  cat >"$dir/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes $2;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $dir/body;
  proxy_temp_path $dir/proxy;
  fastcgi_temp_path $dir/fastcgi;
  uwsgi_temp_path $dir/uwsgi;
  scgi_temp_path $dir/scgi;
  keepalive_requests 10000000;
  keepalive_timeout 300s;
  $3
}
EOF
  echo "$dir"
}

# start_nginx_proxy NAME [HTTP [SERVER]]: nginx proxy_pass as a careful user sets it up
# (NGINX_WORKERS workers, upstream keep-alive, the forwarding headers clicktap sets) on
# NGINX_PROXY_PORT, with HTTP and SERVER added at those levels (h's access log).
start_nginx_proxy() {
  local dir
  dir=$(nginx_conf "$1" "$NGINX_WORKERS" "upstream origin { server $ORIGIN; keepalive 64; }
  ${2:-}
  server {
    listen 127.0.0.1:$NGINX_PROXY_PORT;
    ${3:-}
    location / {
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection \"\";
      proxy_set_header Host \$host;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto \$scheme;
    }
  }")
  start "$1" "$NGINX" -p "$dir" -c "$dir/nginx.conf" -e "$dir/logs/error.log"
  wait_port "$NGINX_PROXY_PORT" "$STARTED" "$1"
}

# serve NAME ADDR PORT LOCATIONS [HTTP [ORIGIN_ARGS]]: a server of the bench's own,
# nginx (1 worker, with LOCATIONS, and HTTP at the http level) or, without nginx,
# bench-tools origin (302 for every path, 204 for /hook; ORIGIN_ARGS added).
serve() {
  local name=$1 addr=$2 port=$3 locations=$4 http=${5:-}
  if [[ $ORIGIN_KIND == nginx ]]; then
    local dir
    dir=$(nginx_conf "$name" 1 "$http
  server {
    listen $addr;
    $locations
  }")
    start "$name" "$NGINX" -p "$dir" -c "$dir/nginx.conf" -e "$dir/logs/error.log"
  else
    # shellcheck disable=SC2086
    start "$name" "$TOOLS" origin --listen "$addr" --threads 1 ${6:-}
  fi
  wait_port "$port" "$STARTED" "$name"
}

start_origin() {
  serve origin "$ORIGIN" "$ORIGIN_PORT" 'location / { return 302 https://example.com/dest$request_uri; }'
  ORIGIN_PID=$STARTED
}

# d's webhook receiver (and h's, and the delivery part's): a server of its own, as a
# customer's endpoint is never the shortener itself. It writes a short line per
# /hook request to HOOK_LOG, unbuffered, so that the bench can count the webhooks
# that arrived (hook_lines); nginx's stub_status would count the polls too.
start_hook() {
  HOOK_LOG=$RUN_DIR/hook.log
  serve hook "$HOOK" "$HOOK_PORT" "location /hook { access_log $HOOK_LOG hook; return 204; }" \
    "log_format hook '\$msec';" "--hook-log $HOOK_LOG"
  HOOK_PID=$STARTED
}
hook_lines() { if [[ -f $HOOK_LOG ]]; then wc -l <"$HOOK_LOG"; else echo 0; fi; }

# ---------------------------------------------------------------- clicktap configs
GEO_DB=$ROOT/geo/test/clicktap-test-city.mmdb
setting() {  # the value of a clicktap setting after --set, or a default
  local key=$1 def=$2 s
  for s in "${SETS[@]}"; do [[ ${s%%=*} == "$key" ]] && def=${s#*=}; done
  echo "$def"
}

# clicktap_conf FILE QUEUE_DIR CAPTURE WEBHOOK (none|disabled|unbatched|batched|receiver) [FORWARDING]
clicktap_conf() {
  local file=$1 qdir=$2 capture=$3 webhook=$4 forwarding=${5:-lean}
  declare -A kv=(
    [proxy.listen]="\"127.0.0.1:$PROXY_PORT\"" [proxy.upstream]="\"$ORIGIN\""
    [proxy.forwarding]="\"$forwarding\""
    [proxy.capture]=$capture [proxy.grace_period]='"0s"' [proxy.shutdown_timeout]='"1s"'
    [queue.path]="\"$qdir\"" [log.level]='"warn"'
    [admin.listen]="\"127.0.0.1:$ADMIN_PORT\"" [admin.metrics_public]=true
    [delivery.allow_private_targets]=true [delivery.allow_http]=true
  )
  if [[ -f $GEO_DB ]]; then kv[geoip.database]="\"$GEO_DB\"" kv[geoip.optional]=true; fi
  local s
  for s in "${SETS[@]}"; do kv[${s%%=*}]=${s#*=}; done
  {
    local section key
    for section in proxy enrich geoip queue delivery log admin; do
      echo "[$section]"
      for key in "${!kv[@]}"; do
        [[ ${key%%.*} == "$section" ]] && echo "${key#*.} = ${kv[$key]}"
      done
    done
    if [[ $webhook != none ]]; then
      local url="http://$HOOK/hook"
      [[ $webhook == receiver ]] && url="http://127.0.0.1:$RECEIVER_PORT/hook"
      echo "[[webhooks]]"
      echo 'id = "bench"'
      echo "url = \"$url\""
      echo 'format = "native"'
      echo 'secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"'
      [[ $webhook == disabled ]] && echo 'enabled = false'
      for s in "${WEBHOOK_SETS[@]}"; do echo "${s%%=*} = ${s#*=}"; done
      if [[ $webhook == batched ]]; then echo '[webhooks.batch]'; echo 'max_events = 100'; fi
    fi
  } >"$file"
  check_conf "$file"
}

# relay_conf FILE: the relay part's `clicktap relay` file: the bench webhook (as
# clicktap_conf's `receiver` one, WEBHOOK_SETS too) from the publish part's stream.
relay_conf() {
  {
    echo '[relay]'
    echo "urls = [\"nats://127.0.0.1:$NATS_PORT\"]"
    echo 'stream = "CLICKS"'
    echo '[delivery]'
    echo 'allow_private_targets = true'
    echo 'allow_http = true'
    echo '[admin]'
    echo "listen = \"127.0.0.1:$RELAY_ADMIN_PORT\""
    echo 'metrics_public = true'
    echo '[log]'
    echo 'level = "warn"'
    echo '[[webhooks]]'
    echo 'id = "bench"'
    echo "url = \"http://127.0.0.1:$RECEIVER_PORT/hook\""
    echo 'format = "native"'
    echo 'secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"'
    local s
    for s in "${WEBHOOK_SETS[@]}"; do echo "${s%%=*} = ${s#*=}"; done
  } >"$1"
  check_conf "$1"
}

check_conf() { "$CLICKTAP" check --config "$1" >/dev/null || { cat "$1" >&2; exit 1; }; }

# sink_conf FILE ENABLED: adds the publish part's NATS sink to a clicktap config (a
# disabled one keeps its cursor at the queue's start, so a filled queue waits for it).
sink_conf() {
  cat >>"$1" <<EOF
[[sinks]]
id = "bench"
type = "nats"
enabled = $2
urls = ["nats://127.0.0.1:$NATS_PORT"]
subject = "clicks.{link.host}"
[sinks.stream]
name = "CLICKS"
subjects = ["clicks.>"]
EOF
  check_conf "$1"
}

start_clicktap() {  # name config
  start "$1" "$CLICKTAP" run --config "$2"
  CLICKTAP_PID=$STARTED
  wait_port "$PROXY_PORT" "$CLICKTAP_PID" "$1"
  wait_port "$ADMIN_PORT" "$CLICKTAP_PID" "$1"
}

# ---------------------------------------------------------------- measuring
run_wrk() {  # url seconds -> the WRKJSON object
  local out
  # shellcheck disable=SC2086
  out=$($WRK_PREFIX wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"${2}s" --latency -s "$LUA" "$1" 2>&1) ||
    { echo "$out" >&2; return 1; }
  grep '^WRKJSON ' <<<"$out" | sed 's/^WRKJSON //'
}

# jnum KEY JSON: a number field of a flat JSON object.
jnum() { sed -nE "s/.*\"$1\":([0-9.eE+-]+).*/\1/p" <<<"$2"; }

json_str() { local s=${1//\\/\\\\}; s=${s//\"/\\\"}; printf '"%s"' "$s"; }
json_list() { local out="" x; for x in "$@"; do out+="${out:+,}$(json_str "$x")"; done; printf '[%s]' "$out"; }
