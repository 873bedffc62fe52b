#!/usr/bin/env bash
# What an Nginx change costs a client that never retries (Python's
# http.client, requests with its defaults: test/clients/paced_load.py), and a
# way to make it cost nothing. Debian's Nginx on loopback only, with a
# throwaway certificate; every answer comes from Nginx itself (`return 200`),
# so only the change differs. Four ways, each with CHANGES changes under
# 4 kept-alive HTTPS connections at 20 requests/s:
#
#   reload          a TLS Nginx on the port, reloaded (SIGHUP): what the
#                   Docker platform's proxy does for every change today
#   forwarder       the same behind a TCP forwarder (Nginx's stream module,
#                   as the swarm's), the TLS Nginx reloaded
#   swap            behind the forwarder, a second TLS Nginx is started with
#                   the new config, the forwarder is pointed at it (its
#                   reload keeps the open connections), the old one is told
#                   to quit (SIGQUIT) 2 s later
#   swap+drain      the same, with keepalive_time KEEPALIVE_TIME s on the TLS
#                   Nginx, and the old one told to quit KEEPALIVE_TIME + 2 s
#                   after the swap
#
# Nginx closes idle kept-alive connections at once when a reload or quit
# retires its workers; a client that sends on such a connection loses the
# request. keepalive_time closes each connection after a response
# ("Connection: close", or GOAWAY on HTTP/2) once it is that old, so by the
# time the old Nginx quits it holds no connection a client still uses.
#
#   bash bench/reload-drain.sh        CHANGES=3 KEEPALIVE_TIME=2 (optional)
set -euo pipefail
cd "$(dirname "$0")/.."
CHANGES="${CHANGES:-3}"
KEEPALIVE_TIME="${KEEPALIVE_TIME:-2}"
STREAM_MODULE=/usr/lib/nginx/modules/ngx_stream_module.so
[ -f "$STREAM_MODULE" ] || { echo "reload-drain: needs Nginx's stream module (libnginx-mod-stream)" >&2; exit 1; }

dir="$(mktemp -d /tmp/mlapi-reload-drain-XXXXXX)"
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

# site NAME PORT KEEPALIVE_TIME: a TLS Nginx answering every request itself.
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
        listen 127.0.0.1:$2 ssl;
        ssl_certificate $dir/cert.pem;
        ssl_certificate_key $dir/key.pem;
        location / { default_type application/json; return 200 '{"Predicted Class = ":1}'; }
    }
}
EOF
    nginx -c "$dir/$1.conf"
}
forwarder() {
    echo "server 127.0.0.1:$1;" > "$dir/upstream.conf"
    cat > "$dir/forwarder.conf" <<EOF
load_module $STREAM_MODULE;
worker_processes 1;
pid $dir/forwarder.pid;
error_log $dir/forwarder.err warn;
events { worker_connections 256; }
stream {
    upstream site { include $dir/upstream.conf; }
    server { listen 127.0.0.1:$PORT; proxy_pass site; }
}
EOF
    nginx -c "$dir/forwarder.conf"
}
stop_all() {
    for pid_file in "$dir"/*.pid; do
        [ -f "$pid_file" ] || continue
        pid="$(cat "$pid_file")"
        kill -QUIT "$pid" 2>/dev/null || true
        while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    done
}

# run WAY CLIENT: prints one table row.
run() {
    local way="$1" client="$2" keepalive=0 current=blue next port
    [ "$way" = swap+drain ] && keepalive="$KEEPALIVE_TIME"
    case "$way" in
        reload) site blue "$PORT" 0 ;;
        *) site blue 18501 "$keepalive"; forwarder 18501 ;;
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
                echo "server 127.0.0.1:$port;" > "$dir/upstream.conf"
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

echo "Nginx $(nginx -v 2>&1 | sed 's|.*/||'), $CHANGES changes per run, keepalive_time $KEEPALIVE_TIME s for swap+drain, $(date -u +%FT%TZ)"
echo
echo "| way | client | failed | failures | longest gap s |"
echo "| --- | --- | ---: | --- | ---: |"
for way in reload forwarder swap swap+drain; do
    for client in http.client requests; do run "$way" "$client"; done
done
