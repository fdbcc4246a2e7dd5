#!/bin/bash
# tests/bench/run.sh - wharf against uWSGI, gunicorn and nginx, side by side.
#
#   tests/bench/run.sh            (or: make bench)
#
# Every server gets ONE worker process pinned to CPU $BENCH_SERVER_CPU (0)
# with taskset; the load generator (wrk, one thread) is pinned to CPU
# $BENCH_LOAD_CPU (1).  Every server of a scenario runs at the same time
# and the measurements are interleaved: round 1 measures each server once,
# then round 2, ...; the table shows the median of the rounds, so a burst
# of noise from something else on the machine hits every server alike.
# Each measurement is a warm-up run ($BENCH_WARMUP s, discarded) and a
# measured run ($BENCH_SECONDS s) with $BENCH_CONNECTIONS connections.
#
# Fairness (see tests/bench/RESULTS.md): the same app file run by Debian's
# /usr/bin/python3 everywhere, one worker everywhere, keep-alive on where
# the server supports it, access logs off everywhere, the same listen
# backlog (1024), and each peer configured as a careful operator would.
# Servers that close after each response (uWSGI --http-socket, gunicorn
# sync) are measured as they are: wrk's req/s then includes reconnecting,
# which is what a client talking to them without a proxy in front pays.
#
# Environment:
#   BENCH_SECONDS=10 BENCH_WARMUP=2 BENCH_CONNECTIONS=64 BENCH_ROUNDS=3
#   BENCH_IDLE=1000                idle keep-alive connections (scenario 6)
#   BENCH_SCENARIOS="hello flask static route post idle"
#   BENCH_SERVER_CPU=0 BENCH_LOAD_CPU=1 BENCH_PORT=18400
#   WHARF_BUILDDIR                 where ./wharf and plugins/ are (default: cwd)
#   BENCH_NO_INSTALL=1             do not apt-get install missing peers
#   BENCH_KEEP=1                   keep the temporary directory (logs, configs)
set -euo pipefail

SRCDIR=$(cd "$(dirname "$0")/../.." && pwd)
BUILDDIR=$(cd "${WHARF_BUILDDIR:-.}" && pwd)
APPS=$SRCDIR/tests/bench/apps
PY=/usr/bin/python3

DURATION=${BENCH_SECONDS:-10}
WARMUP=${BENCH_WARMUP:-2}
CONNS=${BENCH_CONNECTIONS:-64}
ROUNDS=${BENCH_ROUNDS:-3}
IDLE=${BENCH_IDLE:-1000}
SCENARIOS=${BENCH_SCENARIOS:-"hello flask static route post idle"}
SERVER_CPU=${BENCH_SERVER_CPU:-0}
LOAD_CPU=${BENCH_LOAD_CPU:-1}
PORT=${BENCH_PORT:-18400}

die() { echo "bench: $*" >&2; exit 1; }
log() { echo "bench: $*" >&2; }

[ -x "$BUILDDIR/wharf" ] || die "no wharf binary in $BUILDDIR (build first, or set WHARF_BUILDDIR)"
[ -f "$BUILDDIR/plugins/python_plugin.so" ] || die "no python plugin in $BUILDDIR/plugins"
[ "$(nproc)" -ge 2 ] || log "warning: fewer than 2 CPUs: server and wrk share a core"

# ------------------------------------------------------------ peers

install_peers() {
    local missing=()
    command -v wrk >/dev/null || missing+=(wrk)
    command -v uwsgi >/dev/null || missing+=(uwsgi-core)
    [ -e /usr/lib/uwsgi/plugins/python3_plugin.so ] || missing+=(uwsgi-plugin-python3)
    $PY -c 'import gunicorn' 2>/dev/null || missing+=(gunicorn)
    command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
    $PY -c 'import flask' 2>/dev/null || missing+=(python3-flask)
    [ ${#missing[@]} -eq 0 ] && return 0
    [ -z "${BENCH_NO_INSTALL:-}" ] || die "missing: ${missing[*]} (BENCH_NO_INSTALL is set)"
    [ "$(id -u)" -eq 0 ] || die "missing: ${missing[*]}; run as root or: apt-get install ${missing[*]}"
    log "installing ${missing[*]} from Debian"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2 ||
        { apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2; }
    # nginx-light's package starts the system nginx on port 80: not ours to keep
    if [[ " ${missing[*]} " == *" nginx-light "* ]] && command -v systemctl >/dev/null; then
        systemctl stop nginx 2>/dev/null || true
    fi
}
install_peers
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

# Enough descriptors for the idle connections (servers inherit it).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || ulimit -n 65536 2>/dev/null || true

T=$(mktemp -d /tmp/wharf-bench.XXXXXX)
chmod 755 "$T"
RES=$T/results.tsv
: >"$RES"
declare -A PIDS=() URLBASE=()

cleanup() {
    local rc=$?
    for name in "${!PIDS[@]}"; do stop_server "$name"; done
    if [ -n "${BENCH_KEEP:-}" ] || [ "$rc" != 0 ]; then log "kept $T (logs, configs, wrk output)"; else rm -rf "$T"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------ servers

next_port() {
    PORT=$((PORT + 1))
    while (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; do PORT=$((PORT + 1)); done
}

# start_server NAME READY_PATH CMD... : own process group, pinned, logged
start_server() {
    local name=$1 ready=$2
    shift 2
    setsid taskset -c "$SERVER_CPU" "$@" >"$T/$name.log" 2>&1 </dev/null &
    PIDS[$name]=$!
    local url=${URLBASE[$name]}$ready i
    for i in $(seq 1 300); do
        if ! kill -0 "${PIDS[$name]}" 2>/dev/null; then
            cat "$T/$name.log" >&2
            die "$name exited at startup"
        fi
        [ "$(curl -s -o /dev/null -w '%{http_code}' "$url" 2>/dev/null)" = 200 ] && return 0
        sleep 0.1
    done
    cat "$T/$name.log" >&2
    die "$name: $url did not answer 200 within 30 s"
}

stop_server() {
    local name=$1 pid=${PIDS[$1]:-} i
    [ -n "$pid" ] || return 0
    unset "PIDS[$name]"
    kill -TERM -- "-$pid" 2>/dev/null || return 0
    for i in $(seq 1 100); do
        kill -0 -- "-$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -KILL -- "-$pid" 2>/dev/null || true
}

# The one worker process of a server (the process that serves requests).
worker_pid() {
    local master=${PIDS[$1]} c i
    for i in $(seq 1 50); do
        for c in $(pgrep -P "$master" || true); do
            case $(cat "/proc/$c/comm" 2>/dev/null) in
            wharf-worker*|uwsgi|nginx|gunicorn*|python3*) echo "$c"; return 0 ;;
            esac
        done
        # a worker being replaced: wait for the new one
        sleep 0.1
    done
    tail -20 "$T/$1.log" >&2
    die "$1 (master $master) has no worker process"
}

# CPU time a process has run (all its threads), in ns, from the
# scheduler's own accounting (/proc/PID/task/*/schedstat): precise, and
# unlike utime/stime it includes the kernel's TCP work done in softirq on
# the process's behalf.  CPU time per request is the table's noise-proof
# column: on a shared machine req/s depends on the CPU share a server gets,
# its cost per request does not.
cpu_ns() {
    cat "/proc/$1"/task/*/schedstat 2>/dev/null | awk '{s += $1} END {printf "%.0f\n", s}'
}

rss_kib() {
    awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0
}

wharf_ini() { # wharf_ini NAME PORT EXTRA-LINES
    cat >"$T/$1.ini" <<EOF
[wharf]
http-socket = 127.0.0.1:$2
processes = 1
threads = 1
listen = 1024
disable-logging = true
plugins-dir = $BUILDDIR/plugins
chdir = $APPS
$3
EOF
}

# add_wharf NAME EXTRA-INI : a wharf server
add_wharf() {
    next_port
    URLBASE[$1]=http://127.0.0.1:$PORT
    wharf_ini "$1" "$PORT" "$2"
    start_server "$1" "${READY:-/}" "$BUILDDIR/wharf" --ini "$T/$1.ini"
}

# add_uwsgi NAME SOCKET-OPTION MODULE [more uWSGI options]
add_uwsgi() {
    local name=$1 sock=$2 module=$3
    shift 3
    next_port
    URLBASE[$name]=http://127.0.0.1:$PORT
    start_server "$name" "${READY:-/}" uwsgi --plugin python3 "$sock" "127.0.0.1:$PORT" \
        --master --processes 1 --listen 1024 --chdir "$APPS" --module "$module" \
        --disable-logging --die-on-term --need-app "$@"
}

# add_gunicorn NAME WORKER-CLASS MODULE [more gunicorn options]
add_gunicorn() {
    local name=$1 class=$2 module=$3
    shift 3
    next_port
    URLBASE[$name]=http://127.0.0.1:$PORT
    # --worker-tmp-dir /dev/shm: the worker's heartbeat file on tmpfs, as
    # gunicorn's docs advise
    start_server "$name" "${READY:-/}" $PY -m gunicorn --workers 1 --worker-class "$class" \
        --bind "127.0.0.1:$PORT" --backlog 1024 --worker-tmp-dir /dev/shm --chdir "$APPS" "$@" "$module"
}

add_nginx() {
    local name=$1
    next_port
    URLBASE[$name]=http://127.0.0.1:$PORT
    mkdir -p "$T/nginx-tmp"
    cat >"$T/$name.conf" <<EOF
worker_processes 1;
daemon off;
master_process on;
pid $T/$name.pid;
error_log stderr warn;
events { worker_connections 4096; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 65;
    keepalive_requests 1000000;
    open_file_cache max=1000 inactive=60s;
    open_file_cache_valid 60s;
    client_body_temp_path $T/nginx-tmp;
    types { application/octet-stream bin; }
    default_type application/octet-stream;
    server {
        listen 127.0.0.1:$PORT backlog=1024;
        location /static/ { alias $T/static/; }
        location = /ping { default_type text/plain; return 200; }
        location = /healthz/live { default_type application/json; return 200 '{"status":"ok"}\n'; }
    }
}
EOF
    start_server "$name" "${READY:-/ping}" "$NGINX" -c "$T/$name.conf"
}

# ------------------------------------------------------------ load

# measure SCENARIO SERVER PATH ROUND [wrk args]: one row of results.tsv
measure() {
    local scen=$1 name=$2 path=$3 round=$4
    shift 4
    local url=${URLBASE[$name]}$path out pid t0 t1
    taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" -d"${WARMUP}s" --timeout 10s "$@" "$url" >/dev/null 2>&1 || true
    pid=$(worker_pid "$name")
    t0=$(cpu_ns "$pid")
    out=$(taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" -d"${DURATION}s" --timeout 10s --latency "$@" "$url" 2>&1) ||
        { echo "$out" >&2; die "wrk failed against $name"; }
    t1=$(cpu_ns "$pid")
    echo "$out" >"$T/wrk-$scen-$name-$round.txt"
    echo "$out" | awk -v scen="$scen" -v name="$name" -v round="$round" -v cpu_ns="$((t1 - t0))" '
        function ms(v) {
            if (v ~ /us$/) return v / 1000;
            if (v ~ /ms$/) return v + 0;
            if (v ~ /s$/) return v * 1000;
            if (v ~ /m$/) return v * 60000;
            return v + 0;
        }
        /^ +50%/ { p50 = ms($2) }
        /^ +99%/ { p99 = ms($2) }
        /^Requests\/sec:/ { rps = $2 }
        / requests in / { n = $1 }
        /Non-2xx or 3xx responses:/ { bad += $NF }
        /Socket errors:/ { gsub(",", ""); bad += $4 + $8 + $10 }
        END { printf "%s\t%s\t%s\t%.1f\t%.3f\t%.3f\t%d\t%.1f\n", scen, name, round, rps, p50, p99, bad, n ? cpu_ns / n / 1000 : 0 }
    ' >>"$RES"
    tail -1 "$RES" | awk -F'\t' '{printf "bench:   %-16s %-16s round %s: %8.0f req/s  p50 %7.2f ms  p99 %7.2f ms  CPU %7.1f us/req\n", $1, $2, $3, $4, $5, $6, $8}' >&2
}

record_rss() { # record_rss SCENARIO SERVER
    local pid
    pid=$(worker_pid "$2")
    printf "%s\t%s\trss\t%s\n" "$1" "$2" "$(rss_kib "$pid")" >>"$RES"
}

stop_all() {
    for name in "${!PIDS[@]}"; do stop_server "$name"; done
}

# run_rounds SCENARIO PATH "servers..." [wrk args]
run_rounds() {
    local scen=$1 path=$2 servers=$3 r s
    shift 3
    for r in $(seq 1 "$ROUNDS"); do
        for s in $servers; do measure "$scen" "$s" "$path" "$r" "$@"; done
    done
}

# ------------------------------------------------------------ scenarios

APP_PEERS="uwsgi-http uwsgi-http11 gunicorn-sync gunicorn-gthread"

start_app_servers() { # MODULE PATH
    READY=$2 add_wharf wharf "module = $1"
    READY=$2 add_uwsgi uwsgi-http --http-socket "$1"
    # http11-socket holds a keep-alive connection on a thread for the
    # connection's whole life: with fewer threads than client connections
    # the others are never served (and wrk shows a tiny p99 for the few
    # that are), so one thread per wrk connection
    READY=$2 add_uwsgi uwsgi-http11 --http11-socket "$1" --threads "$CONNS"
    READY=$2 add_gunicorn gunicorn-sync sync "$1"
    # gthread: keep-alive connections wait in the worker's poller; 4 threads
    # (measured faster here than 1 or 8 on this app and core)
    READY=$2 add_gunicorn gunicorn-gthread gthread "$1" --threads 4 --keep-alive 5
}

scenario_hello() {
    log "scenario 1: hello-world WSGI"
    start_app_servers hello:application /
    run_rounds hello / "wharf $APP_PEERS"
    for s in wharf $APP_PEERS; do record_rss hello "$s"; done
    stop_all
}

scenario_flask() {
    log "scenario 2: Flask JSON endpoint"
    start_app_servers flaskjson:app /json
    run_rounds flask /json "wharf $APP_PEERS"
    for s in wharf $APP_PEERS; do record_rss flask "$s"; done
    stop_all
}

scenario_static() {
    log "scenario 3: static files"
    mkdir -p "$T/static"
    head -c 65536 /dev/urandom >"$T/static/64k.bin"
    head -c 1048576 /dev/urandom >"$T/static/1m.bin"
    chmod 644 "$T/static"/*.bin
    chmod 755 "$T/static"
    READY=/static/64k.bin add_wharf wharf "module = hello:application
static-map = /static=$T/static"
    READY=/static/64k.bin add_nginx nginx
    # uWSGI as a careful operator serves files: keep-alive socket, offload
    # thread doing the sendfile
    READY=/static/64k.bin add_uwsgi uwsgi-static --http11-socket hello:application \
        --static-map "/static=$T/static" --offload-threads 1
    local r s f
    for r in $(seq 1 "$ROUNDS"); do
        for f in 64k 1m; do
            for s in wharf nginx uwsgi-static; do
                measure "static-$f" "$s" "/static/$f.bin" "$r"
            done
        done
    done
    for s in wharf nginx uwsgi-static; do record_rss static-1m "$s"; done
    stop_all
}

scenario_route() {
    log "scenario 4: route break:200 and /healthz/live"
    READY=/ping add_wharf wharf "module = hello:application
route = ^/ping break:200
healthz = /healthz"
    READY=/ping add_nginx nginx
    local r s
    for r in $(seq 1 "$ROUNDS"); do
        for s in wharf nginx; do measure break200 "$s" /ping "$r"; done
        for s in wharf nginx; do measure healthz-live "$s" /healthz/live "$r"; done
    done
    for s in wharf nginx; do record_rss break200 "$s"; done
    stop_all
}

scenario_post() {
    log "scenario 5: 1 MB POST read by the app"
    cat >"$T/post.lua" <<'EOF'
wrk.method = "POST"
wrk.body = string.rep("x", 1048576)
wrk.headers["Content-Type"] = "application/octet-stream"
EOF
    start_app_servers upload:application /
    run_rounds post / "wharf $APP_PEERS" -s "$T/post.lua"
    for s in wharf $APP_PEERS; do record_rss post "$s"; done
    stop_all
}

scenario_idle() {
    log "scenario 6: hello-world with and without $IDLE idle keep-alive connections"
    # the idle connections must outlive the run: a long keep-alive timeout
    # (the same setting for both measurements)
    add_wharf wharf "module = hello:application
http-keepalive = 300"
    local r pid held
    pid=$(worker_pid wharf)
    for r in $(seq 1 "$ROUNDS"); do
        measure hello-idle0 wharf / "$r"
        [ "$r" = 1 ] && record_rss hello-idle0 wharf
        coproc IDLER { taskset -c "$LOAD_CPU" $PY "$SRCDIR/tests/bench/idle_conns.py" 127.0.0.1 "${URLBASE[wharf]##*:}" "$IDLE"; }
        read -r held <&"${IDLER[0]}" || die "idle_conns.py failed"
        log "  $held idle connections held"
        measure "hello-idle$IDLE" wharf / "$r"
        record_rss "hello-idle$IDLE" wharf
        local wfd=${IDLER[1]}
        exec {wfd}>&-
        read -r held <&"${IDLER[0]}" || held="?"
        wait "$IDLER_PID" 2>/dev/null || true
        log "  after the run: $held idle connections still open"
        printf "hello-idle%s\twharf\theld\t%s\n" "$IDLE" "$held" >>"$RES"
    done
    stop_all
}

log "results in $T; $ROUNDS round(s) of ${WARMUP}s warm-up + ${DURATION}s, $CONNS connections"
for s in $SCENARIOS; do
    case $s in
    hello|flask|static|route|post|idle) "scenario_$s" ;;
    *) die "unknown scenario '$s'" ;;
    esac
done

# ------------------------------------------------------------ table

$PY - "$RES" "$IDLE" "$CONNS" <<'EOF'
import statistics, sys
from collections import OrderedDict

path, idle, conns = sys.argv[1], sys.argv[2], sys.argv[3]
runs, rss, held = OrderedDict(), {}, {}
for line in open(path):
    f = line.rstrip("\n").split("\t")
    if f[2] == "rss":
        rss[(f[0], f[1])] = int(f[3] or 0)
    elif f[2] == "held":
        held.setdefault(f[0], []).append(f[3])
    else:
        runs.setdefault((f[0], f[1]), []).append((float(f[3]), float(f[4]), float(f[5]), float(f[7]), int(f[6])))

titles = {
    "hello": "1 hello-world WSGI", "flask": "2 Flask JSON", "static-64k": "3 static 64 KiB",
    "static-1m": "3 static 1 MiB", "break200": "4 route break:200", "healthz-live": "4 /healthz/live",
    "post": "5 1 MB POST", "hello-idle0": "6 hello, no idle conns",
    "hello-idle" + idle: "6 hello + %s idle conns" % idle,
}
names = {
    "wharf": "wharf", "uwsgi-http": "uWSGI --http-socket", "uwsgi-http11": "uWSGI --http11-socket (%s threads)" % conns,
    "gunicorn-sync": "gunicorn sync", "gunicorn-gthread": "gunicorn gthread (4 threads)",
    "nginx": "nginx", "uwsgi-static": "uWSGI --static-map",
}
# RSS of the static and route servers was sampled once per server
rss_alias = {"static-64k": "static-1m", "healthz-live": "break200"}

med = {k: tuple(statistics.median(x[i] for x in v) for i in range(4)) + (sum(x[4] for x in v),)
       for k, v in runs.items()}
print("| scenario | server | req/s | p50 ms | p99 ms | CPU us/req | worker RSS MiB | wharf / this req/s | this / wharf CPU per req |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
for (scen, srv), (rps, p50, p99, cpu, bad) in med.items():
    if scen.startswith("hello-idle"):
        ref = med.get(("hello-idle0", "wharf"))
    else:
        ref = med.get((scen, "wharf"))
    if scen == "hello-idle" + idle:
        ratio = "%.2f (vs no idle)" % (rps / ref[0]) if ref and ref[0] else "-"
        cratio = "%.2f (vs no idle)" % (cpu / ref[3]) if ref and ref[3] else "-"
    elif srv == "wharf" or not ref or not rps:
        ratio = cratio = ""
    else:
        ratio = "%.2fx" % (ref[0] / rps)
        cratio = "%.2fx" % (cpu / ref[3]) if ref[3] else "-"
    r = rss.get((scen, srv)) or rss.get((rss_alias.get(scen, ""), srv))
    note = " (%d errors)" % bad if bad else ""
    print("| %s | %s%s | %.0f | %.2f | %.2f | %.1f | %s | %s | %s |" % (
        titles.get(scen, scen), names.get(srv, srv), note, rps, p50, p99, cpu,
        "%.1f" % (r / 1024) if r else "", ratio, cratio))
k0, k1 = ("hello-idle0", "wharf"), ("hello-idle" + idle, "wharf")
if k0 in rss and k1 in rss:
    extra = (rss[k1] - rss[k0]) / 1024
    print()
    print("Idle keep-alive connections: %s held (still open after each run: %s); "
          "extra worker RSS %.2f MiB; throughput with them %.1f%% of without." % (
              idle, ", ".join(held.get(k1[0], [])), extra,
              100 * med[k1][0] / med[k0][0] if med.get(k0) and med[k0][0] else 0))
EOF
