#!/usr/bin/env bash
# Two questions about a TCP forwarder in front of the TLS Nginx (Nginx's
# stream module, as swarm mode's port forwarder), answered with Debian's
# Nginx on loopback only, a throwaway certificate, and every answer made by
# Nginx itself (`return 200`), so that only the forwarder differs:
#
#   bash bench/forwarder.sh drain     what an Nginx change costs a client that
#                                     never retries, and a way to make it cost
#                                     nothing (about 3 minutes)
#   bash bench/forwarder.sh cost      what the forwarder's hop costs per
#                                     request (about 2 minutes)
#
# drain: CHANGES changes (default 3) under 4 kept-alive HTTPS connections at
# 20 requests/s of Python's http.client and of requests with its defaults
# (test/clients/paced_load.py, no retry), four ways:
#
#   reload          a TLS Nginx on the port, reloaded (SIGHUP): what the
#                   Docker platform's proxy does for every change today
#   forwarder       the same behind the forwarder, the TLS Nginx reloaded
#   swap            behind the forwarder, a second TLS Nginx is started with
#                   the new config, the forwarder is pointed at it (its
#                   reload keeps the open connections), the old one is told
#                   to quit (SIGQUIT) 2 s later
#   swap+drain      the same, with keepalive_time KEEPALIVE_TIME s (default
#                   2) on the TLS Nginx, and the old one told to quit
#                   KEEPALIVE_TIME + 2 s after the swap
#
# Nginx closes idle kept-alive connections at once when a reload or quit
# retires its workers; a client that sends on such a connection loses the
# request. keepalive_time closes each connection after a response
# ("Connection: close", or GOAWAY on HTTP/2) once it is that old, so by the
# time the old Nginx quits it holds no connection a client still uses.
#
# cost: wrk (ROUNDS interleaved rounds, default 5, of DURATION s, default
# 10; 16 kept-alive connections, 1 thread) against the TLS Nginx directly,
# through the forwarder (which opens each connection with a PROXY protocol
# header, as in swarm mode), and as the proxy container runs it (its front:
# the forwarder to the site's Unix socket, the site with keepalive_time 4 s,
# see nginx/bin/mlapi-proxy); per way the median requests/s and p99, and the
# CPU time per request of each Nginx (master and workers, /proc).
set -euo pipefail
cd "$(dirname "$0")/.."
WHAT="${1:-}"
[ "$WHAT" = drain ] || [ "$WHAT" = cost ] || { echo "usage: bash bench/forwarder.sh drain|cost" >&2; exit 2; }
CHANGES="${CHANGES:-3}"
KEEPALIVE_TIME="${KEEPALIVE_TIME:-2}"
ROUNDS="${ROUNDS:-5}"
DURATION="${DURATION:-10}"
STREAM_MODULE=/usr/lib/nginx/modules/ngx_stream_module.so
[ -f "$STREAM_MODULE" ] || { echo "forwarder.sh: needs Nginx's stream module (libnginx-mod-stream)" >&2; exit 1; }

dir="$(mktemp -d /tmp/mlapi-forwarder-XXXXXX)"
# Nginx's workers (nobody, when this runs as root) reach the slot's socket in it.
chmod 755 "$dir"
load_pid=""
cleanup() {
    [ -n "$load_pid" ] && kill "$load_pid" 2>/dev/null || true
    for pid_file in "$dir"/*.pid; do [ -f "$pid_file" ] && kill -TERM "$(cat "$pid_file")" 2>/dev/null || true; done
    rm -rf "$dir"
}
trap cleanup EXIT
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$dir/key.pem" -out "$dir/cert.pem" -days 1 \
    -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 2>/dev/null
PORT=18443 # what clients connect to

# site NAME PORT KEEPALIVE_TIME [proxy]: a TLS Nginx answering every request
# itself; with "proxy" its listener takes a PROXY protocol header first.
# PORT "unix" listens on the Unix socket $dir/NAME.sock instead.
site() {
    cat > "$dir/$1.conf" <<EOF
worker_processes 1;
pid $dir/$1.pid;
error_log $dir/$1.err warn;
events { worker_connections 256; }
http {
    access_log off;
    keepalive_timeout 30s;
    $([ "$3" = 0 ] || echo "keepalive_time ${3}s;")
    server {
        listen $([ "$2" = unix ] && echo "unix:$dir/$1.sock" || echo "127.0.0.1:$2") ssl$([ "${4:-}" = proxy ] && echo " proxy_protocol");
        ssl_certificate $dir/cert.pem;
        ssl_certificate_key $dir/key.pem;
        location / { default_type application/json; return 200 '{"Predicted Class = ":1}'; }
    }
}
EOF
    nginx -c "$dir/$1.conf"
}

# forwarder UPSTREAM_PORT LISTEN_PORT [proxy [NAME]]: with "proxy" it opens
# each connection with a PROXY protocol header; UPSTREAM_PORT "unix:PATH" is
# a Unix socket. NAME (default forwarder) names its config and pid file.
forwarder() {
    local name="${4:-forwarder}"
    case "$1" in unix:*) echo "server $1;" ;; *) echo "server 127.0.0.1:$1;" ;; esac > "$dir/$name-upstream.conf"
    cat > "$dir/$name.conf" <<EOF
load_module $STREAM_MODULE;
worker_processes 1;
pid $dir/$name.pid;
error_log $dir/$name.err warn;
events { worker_connections 256; }
stream {
    upstream site { include $dir/$name-upstream.conf; }
    server { listen 127.0.0.1:$2; proxy_pass site; $([ "${3:-}" = proxy ] && echo "proxy_protocol on;") }
}
EOF
    nginx -c "$dir/$name.conf"
}

stop_all() {
    for pid_file in "$dir"/*.pid; do
        [ -f "$pid_file" ] || continue
        pid="$(cat "$pid_file")"
        kill -QUIT "$pid" 2>/dev/null || true
        while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    done
}

# drain_run WAY CLIENT: prints one table row.
drain_run() {
    local way="$1" client="$2" keepalive=0 current=blue next port
    [ "$way" = swap+drain ] && keepalive="$KEEPALIVE_TIME"
    case "$way" in
        reload) site blue "$PORT" 0 ;;
        *) site blue 18501 "$keepalive"; forwarder 18501 "$PORT" ;;
    esac
    sleep 0.5
    python3 test/clients/paced_load.py "https://127.0.0.1:$PORT/" "$dir/cert.pem" "$client" 4 20 600 > "$dir/load.json" &
    load_pid=$!
    sleep 3
    for _ in $(seq 1 "$CHANGES"); do
        case "$way" in
            reload | forwarder) kill -HUP "$(cat "$dir/blue.pid")" ;;
            *)
                if [ "$current" = blue ]; then next=green port=18502; else next=blue port=18501; fi
                site "$next" "$port" "$keepalive"
                sleep 0.3
                echo "server 127.0.0.1:$port;" > "$dir/forwarder-upstream.conf"
                kill -HUP "$(cat "$dir/forwarder.pid")"
                sleep $((keepalive + 2))
                kill -QUIT "$(cat "$dir/$current.pid")"
                current="$next" ;;
        esac
        sleep 4
    done
    kill -TERM "$load_pid"; wait "$load_pid" || true; load_pid=""
    stop_all
    python3 - "$way" "$client" "$dir/load.json" <<'EOF'
import json, sys
way, client, path = sys.argv[1:]
r = json.load(open(path))
kinds = ", ".join(f"{k} {n}" for k, n in sorted(r["failures"].items())) or "-"
print(f"| {way} | {client} | {r['failed']} of {r['requests']} | {kinds} | {r['longestGapSeconds']:.2f} |")
EOF
}

# ticks PID_FILE: CPU clock ticks used so far by that Nginx's master and workers.
ticks() {
    local master
    master="$(cat "$1")"
    for stat in /proc/[0-9]*/stat; do cat "$stat" 2>/dev/null || true; echo; done \
        | awk -v m="$master" '$1 == m || $4 == m { t += $14 + $15 } END { print t + 0 }'
}

# cost_run WAY PORT [FORWARDER]: one wrk run; prints "req/s p99_ms site_us
# forwarder_us" (CPU per request), FORWARDER (default forwarder) the one in front.
cost_run() {
    local before_site before_fwd out fwd="${3:-forwarder}"
    before_site="$(ticks "$dir/$1.pid")"; before_fwd="$(ticks "$dir/$fwd.pid")"
    out="$(wrk -t1 -c16 -d"${DURATION}s" --latency "https://127.0.0.1:$2/")"
    python3 - "$out" "$before_site" "$(ticks "$dir/$1.pid")" "$before_fwd" "$(ticks "$dir/$fwd.pid")" <<'EOF'
import re, sys
out = sys.argv[1]
s0, s1, f0, f1 = map(float, sys.argv[2:6])
if re.search(r"Non-2xx|Socket errors", out):
    sys.exit(f"forwarder.sh: wrk saw errors:\n{out}")
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
value, unit = re.search(r"99%\s+([\d.]+)(us|ms|s)", out).groups()
p99 = float(value) * {"us": 0.001, "ms": 1, "s": 1000}[unit]
requests = float(re.search(r"(\d+) requests in", out).group(1))
per_request = lambda ticks: ticks * 10_000 / requests  # 100 ticks a second, in microseconds
print(rps, p99, per_request(s1 - s0), per_request(f1 - f0))
EOF
}

if [ "$WHAT" = drain ]; then
    echo "Nginx $(nginx -v 2>&1 | sed 's|.*/||'), $CHANGES changes per run, keepalive_time $KEEPALIVE_TIME s for swap+drain, $(date -u +%FT%TZ)"
    echo
    echo "| way | client | failed | failures | longest gap s |"
    echo "| --- | --- | ---: | --- | ---: |"
    for way in reload forwarder swap swap+drain; do
        for client in http.client requests; do drain_run "$way" "$client"; done
    done
    exit 0
fi

command -v wrk >/dev/null || { echo "forwarder.sh: needs wrk" >&2; exit 1; }
site direct "$PORT" 0
site behind 18501 0 proxy
forwarder 18501 18444 proxy
site slot unix 4 proxy
forwarder "unix:$dir/slot.sock" 18445 proxy front
sleep 0.5
: > "$dir/direct.runs"; : > "$dir/behind.runs"; : > "$dir/slot.runs"
for round in $(seq 1 "$ROUNDS"); do
    # Rotate the order, so that no way always runs first.
    case $((round % 3)) in 1) order="direct behind slot" ;; 2) order="behind slot direct" ;; *) order="slot direct behind" ;; esac
    for way in $order; do
        case "$way" in
            direct) cost_run direct "$PORT" ;;
            behind) cost_run behind 18444 ;;
            slot) cost_run slot 18445 front ;;
        esac >> "$dir/$way.runs"
    done
done
stop_all
echo "Nginx $(nginx -v 2>&1 | sed 's|.*/||'), $ROUNDS interleaved rounds of $DURATION s, wrk -t1 -c16 over HTTPS, $(nproc) CPUs, $(date -u +%FT%TZ)"
echo
python3 - "$dir/direct.runs" "$dir/behind.runs" "$dir/slot.runs" <<'EOF'
import statistics, sys
rows = {}
for way, path in zip(("direct", "through the forwarder", "the proxy container's front and slot"), sys.argv[1:]):
    runs = [list(map(float, line.split())) for line in open(path) if line.strip()]
    medians = [statistics.median(column) for column in zip(*runs)]
    rows[way] = medians + [min(r[0] for r in runs), max(r[0] for r in runs)]
print("| way | median req/s (min-max) | median p99 ms | TLS Nginx CPU us/request | forwarder CPU us/request |")
print("| --- | ---: | ---: | ---: | ---: |")
for way, (rps, p99, site, fwd, low, high) in rows.items():
    print(f"| {way} | {rps:.0f} ({low:.0f}-{high:.0f}) | {p99:.1f} | {site:.0f} | {fwd if way != 'direct' else 0:.0f} |")
print()
for way in ("through the forwarder", "the proxy container's front and slot"):
    print(f"{way} / direct, median req/s: {rows[way][0] / rows['direct'][0]:.3f}")
EOF
