#!/usr/bin/env bash
# Interleaved A/B throughput of the built-in classifier: an older main (A,
# default 04bc86a, the main before the model-repository work) against
# today's code (B, the checkout this script is in), as the project's issue asks:
# "the built-in classifier's throughput through the stack stays within 5% of
# today's, measured side by side in one interleaved run".
#
# Each side's app runs under its own Gunicorn (that side's app/gunicorn.conf.py,
# both with the same GUNICORN_WORKERS) on one loopback port, in turn. By
# default it is measured through the stack, as the issue asks: today's Nginx
# (the stack's rendered config and TLS, bench/ab-front.ts, the rate limit
# raised) is the front of both sides, so the app is all that differs.
# AB_VIA=direct loads the Gunicorn itself over plain HTTP: the app's own cost
# with nothing around it, the stricter comparison. wrk (bench/post.lua) POSTs {"monthly_fee": 60, "customer_age": 30,
# "support_calls": 1} to /api/v1/models/decision-tree-classifier/predictions
# (the route and body both versions accept; each side is checked to answer
# 200 with a "prediction" before it is measured).
#
#   bash bench/ab-main.sh [REF]          REF: the A side (default 04bc86a)
#
# Environment (all optional):
#   ROUNDS=5          rounds; each runs both sides once, alternating the order
#                     A B, B A, A B, ... (only one side runs at a time: a side's
#                     Gunicorn is started for its run and stopped after it)
#   THREADS=2 CONNECTIONS=16 DURATION=10 WARMUP=3
#                     wrk per run: threads, connections, seconds measured, and
#                     seconds of load thrown away first (per run)
#   AB_CPUS           CPU list both Gunicorns and wrk are pinned to with
#                     taskset (default: every CPU, 0-(nproc-1))
#   AB_WORKERS        GUNICORN_WORKERS of both sides (default: the CPUs in AB_CPUS)
#   AB_VIA=stack      stack (HTTPS through Nginx) or direct (HTTP to Gunicorn)
#   AB_DIR=/tmp       where the set-up lives, reused when present:
#                       $AB_DIR/ab-old          git worktree of REF (removed at the end)
#                       $AB_DIR/ab-venv-old     venv of REF's app/requirements.txt and
#                                               app/requirements-train.txt
#                       $AB_DIR/ab-venv-new     venv of today's app/requirements.txt
#                       $AB_DIR/ab-old-models   REF's models, when REF has no model
#                                               repository (models/) of its own: made as
#                                               its app/Dockerfile's train stage makes them
#                                               (python -m training.train --seed 42, with
#                                               SOURCE_DATE_EPOCH=1767225600)
#   AB_KEEP=1         keep the worktree and the run's logs
#   AB_PYTHON=python3 the Python both venvs are made with
# pip is used as configured; behind a TLS-intercepting network set PIP_CERT
# (for example PIP_CERT=build/build-ca.pem).
#
# Needs wrk (Debian package wrk), git, curl, taskset, and for AB_VIA=stack
# nginx and the project's Node.js (source scripts/node-env.sh; npm ci done). Prints one line per run
# and, at the end, the median req/s of each side and the ratio B/A. Every
# process it starts is stopped by its PID (SIGTERM, SIGKILL after 30 s), on
# success, failure and Ctrl-C. Figures are only as quiet as the machine: run it
# on an otherwise idle machine for numbers worth comparing with a 5% margin.
set -euo pipefail

REF=${1:-04bc86a}
ROUNDS=${ROUNDS:-5}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-16}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-3}
AB_DIR=${AB_DIR:-${TMPDIR:-/tmp}}
AB_PYTHON=${AB_PYTHON:-python3}
AB_VIA=${AB_VIA:-stack}
AB_CPUS=${AB_CPUS:-0-$(($(nproc --all) - 1))}
STOP_TIMEOUT=30
SOURCE_DATE_EPOCH_OF_IMAGES=1767225600
TRAINING_SEED=42

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(git -C "$HERE" rev-parse --show-toplevel)
LUA=$REPO/bench/post.lua
BODY='{"monthly_fee": 60, "customer_age": 30, "support_calls": 1}'
ROUTE=/api/v1/models/decision-tree-classifier/predictions

OLD_TREE=$AB_DIR/ab-old
OLD_VENV=$AB_DIR/ab-venv-old
NEW_VENV=$AB_DIR/ab-venv-new
OLD_MODELS=$AB_DIR/ab-old-models

log() { printf '%s\n' "$*" >&2; }
die() { log "ab-main: $*"; exit 1; }

for tool in wrk git curl taskset "$AB_PYTHON"; do
    command -v "$tool" >/dev/null || die "$tool is missing (wrk: apt-get install wrk)"
done
case $AB_VIA in
    stack)
        command -v nginx >/dev/null || die "nginx is missing (AB_VIA=stack; apt-get install nginx, or AB_VIA=direct)"
        command -v node >/dev/null || die "node is missing (AB_VIA=stack: source scripts/node-env.sh)"
        [ -x "$REPO/node_modules/.bin/tsx" ] || die "no $REPO/node_modules/.bin/tsx (AB_VIA=stack: npm ci first)"
        ;;
    direct) ;;
    *) die "AB_VIA must be stack or direct, got $AB_VIA" ;;
esac
# Workers: the CPUs of the set (taskset's own parser counts them).
AB_WORKERS=${AB_WORKERS:-$(taskset -c "$AB_CPUS" "$AB_PYTHON" -c 'import os; print(len(os.sched_getaffinity(0)))')}

OLD_COMMIT=$(git -C "$REPO" rev-parse --verify "$REF^{commit}") || die "no commit $REF"
NEW_COMMIT=$(git -C "$REPO" rev-parse HEAD)
RUN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/ab-main-run.XXXXXX")

SERVER_PID=""
FRONT_PID=""
CREATED_WORKTREE=0

stop_server() {
    # Stops the running Gunicorn by its master's PID: SIGTERM (a graceful
    # stop), SIGKILL to the master and its workers after STOP_TIMEOUT s.
    # STOP_SECONDS: how long the stop took.
    STOP_SECONDS=""
    [ -n "$SERVER_PID" ] || return 0
    local pid=$SERVER_PID workers start waited=0
    workers=$(ps -o pid= --ppid "$pid" 2>/dev/null | tr '\n' ' ' || true)
    start=$(date +%s.%N)
    kill -TERM "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null && [ "$waited" -lt $((STOP_TIMEOUT * 10)) ]; do
        sleep 0.1
        waited=$((waited + 1))
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "ab-main: Gunicorn $pid still running after ${STOP_TIMEOUT} s: SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
    for worker in $workers; do kill -KILL "$worker" 2>/dev/null || true; done
    SERVER_PID=""
    STOP_SECONDS=$("$AB_PYTHON" -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$start" "$(date +%s.%N)")
}

stop_front() {
    # The front (its own process group, setsid): SIGTERM makes it stop its
    # Nginx gracefully and exit; SIGKILL to the group after STOP_TIMEOUT s.
    [ -n "$FRONT_PID" ] || return 0
    local waited=0
    kill -TERM "$FRONT_PID" 2>/dev/null || true
    while kill -0 "$FRONT_PID" 2>/dev/null && [ "$waited" -lt $((STOP_TIMEOUT * 10)) ]; do
        sleep 0.1
        waited=$((waited + 1))
    done
    kill -KILL -- "-$FRONT_PID" 2>/dev/null || true
    wait "$FRONT_PID" 2>/dev/null || true
    FRONT_PID=""
}

cleanup() {
    local status=$?
    stop_server || true
    stop_front || true
    if [ "${AB_KEEP:-0}" != 1 ]; then
        if [ "$CREATED_WORKTREE" = 1 ] || [ -d "$OLD_TREE" ]; then
            git -C "$REPO" worktree remove --force "$OLD_TREE" 2>/dev/null || true
        fi
        rm -rf "$RUN_DIR"
    else
        log "ab-main: kept $OLD_TREE and the logs in $RUN_DIR"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- set-up

# A side's source: a worktree of REF (reused when it is at that commit).
if [ -d "$OLD_TREE" ] && [ "$(git -C "$OLD_TREE" rev-parse HEAD 2>/dev/null)" = "$OLD_COMMIT" ]; then
    log "reusing the worktree $OLD_TREE at $OLD_COMMIT"
else
    if [ -e "$OLD_TREE" ]; then git -C "$REPO" worktree remove --force "$OLD_TREE" 2>/dev/null || rm -rf "$OLD_TREE"; fi
    git -C "$REPO" worktree prune
    git -C "$REPO" worktree add --detach "$OLD_TREE" "$OLD_COMMIT" >&2
    CREATED_WORKTREE=1
fi

ensure_venv() {
    # ensure_venv DIR REQUIREMENTS...: a venv holding exactly those pins,
    # remade when the requirement files change (their hash is kept in it).
    local venv=$1
    shift
    local stamp
    stamp=$(cat "$@" | sha256sum | cut -d' ' -f1)
    if [ -x "$venv/bin/gunicorn" ] && [ "$(cat "$venv/.ab-requirements" 2>/dev/null)" = "$stamp" ]; then
        log "reusing the venv $venv"
        return
    fi
    log "making the venv $venv from $*"
    rm -rf "$venv"
    "$AB_PYTHON" -m venv "$venv"
    local args=()
    for file in "$@"; do args+=(-r "$file"); done
    "$venv/bin/pip" install --quiet --only-binary=:all: "${args[@]}" >&2
    echo "$stamp" >"$venv/.ab-requirements"
}

OLD_REQUIREMENTS=("$OLD_TREE/app/requirements.txt")
[ -f "$OLD_TREE/app/requirements-train.txt" ] && OLD_REQUIREMENTS+=("$OLD_TREE/app/requirements-train.txt")
ensure_venv "$OLD_VENV" "${OLD_REQUIREMENTS[@]}"
ensure_venv "$NEW_VENV" "$REPO/app/requirements.txt"

# A side's models: its own model repository when it has one, else trained
# as its image's train stage does (app/Dockerfile of the old main).
if [ -f "$OLD_TREE/models/decision-tree-classifier/model.json" ]; then
    OLD_MODEL_DIR=$OLD_TREE/models
else
    OLD_MODEL_DIR=$OLD_MODELS
    if [ "$(cat "$OLD_MODELS/.ab-commit" 2>/dev/null)" = "$OLD_COMMIT" ]; then
        log "reusing the models in $OLD_MODELS"
    else
        [ -f "$OLD_TREE/app/training/train.py" ] || die "$REF has neither models/ nor app/training/train.py"
        log "training $REF's models into $OLD_MODELS (its Dockerfile's train stage)"
        rm -rf "$OLD_MODELS"
        (cd "$OLD_TREE/app" && SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH_OF_IMAGES \
            "$OLD_VENV/bin/python" -m training.train --seed "$TRAINING_SEED" --out "$OLD_MODELS" >&2)
        echo "$OLD_COMMIT" >"$OLD_MODELS/.ab-commit"
    fi
fi
NEW_MODEL_DIR=$REPO/models

free_port() {
    "$AB_PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
PORT=$(free_port)
METRICS_PORT=$(free_port)
CURL_TRUST=()
if [ "$AB_VIA" = stack ]; then
    # One front for the whole run, pinned as the rest; both sides sit behind it in turn.
    setsid taskset -c "$AB_CPUS" "$REPO/node_modules/.bin/tsx" "$REPO/bench/ab-front.ts" "127.0.0.1:$PORT" "$RUN_DIR/front" \
        >"$RUN_DIR/front.out" 2>"$RUN_DIR/front.err" &
    FRONT_PID=$!
    tries=0
    until [ -s "$RUN_DIR/front.out" ]; do
        kill -0 "$FRONT_PID" 2>/dev/null || { cat "$RUN_DIR/front.err" >&2; die "the Nginx front exited"; }
        tries=$((tries + 1))
        [ "$tries" -lt 600 ] || die "the Nginx front did not serve within 60 s"
        sleep 0.1
    done
    read -r FRONT_URL FRONT_TRUST <"$RUN_DIR/front.out"
    URL=${FRONT_URL%/}$ROUTE
    CURL_TRUST=(--cacert "$FRONT_TRUST")
else
    URL=http://127.0.0.1:$PORT$ROUTE
fi

start_server() {
    # start_server SIDE: that side's Gunicorn (its own gunicorn.conf.py, app
    # and venv), pinned to AB_CPUS, metrics on as in the stack; waits for
    # /api/health.
    local side=$1 app venv models
    if [ "$side" = A ]; then app=$OLD_TREE/app venv=$OLD_VENV models=$OLD_MODEL_DIR; else app=$REPO/app venv=$NEW_VENV models=$NEW_MODEL_DIR; fi
    rm -rf "$RUN_DIR/metrics-$side"
    # env and taskset exec Gunicorn: $! is its master.
    env PATH="$venv/bin:$PATH" PYTHONPATH="$app" PYTHONDONTWRITEBYTECODE=1 \
        GUNICORN_BIND="127.0.0.1:$PORT" GUNICORN_WORKERS="$AB_WORKERS" \
        MLAPI_MODEL_DIR="$models" MLAPI_REPLICA_NAME="ab-$side" \
        MLAPI_METRICS_PORT="$METRICS_PORT" MLAPI_METRICS_DIR="$RUN_DIR/metrics-$side" \
        taskset -c "$AB_CPUS" "$venv/bin/gunicorn" -c "$app/gunicorn.conf.py" --chdir "$RUN_DIR" mlapi.wsgi:app \
        >>"$RUN_DIR/gunicorn-$side.log" 2>&1 &
    SERVER_PID=$!
    local tries=0
    until curl -sf -o /dev/null "http://127.0.0.1:$PORT/api/health"; do
        kill -0 "$SERVER_PID" 2>/dev/null || { tail -20 "$RUN_DIR/gunicorn-$side.log" >&2; die "side $side's Gunicorn exited"; }
        tries=$((tries + 1))
        [ "$tries" -lt 300 ] || die "side $side not healthy after 30 s"
        sleep 0.1
    done
}

check_answer() {
    # The side answers the classifier's request with 200 and a prediction.
    local side=$1 answer
    answer=$(curl -s "${CURL_TRUST[@]}" -w '\n%{http_code}' -H 'Content-Type: application/json' -d "$BODY" "$URL")
    "$AB_PYTHON" - "$side" "$answer" <<'EOF' || die "side $1 does not answer the classifier's request: $answer"
import json, sys
side, answer = sys.argv[1], sys.argv[2]
body, status = answer.rsplit("\n", 1)
body = body.strip()
assert status == "200", status
assert "prediction" in json.loads(body)
print(f"side {side} answers 200: {body}", file=sys.stderr)
EOF
}

run_wrk() {
    # run_wrk SECONDS: one wrk run; prints its BENCH_JSON line.
    BENCH_BODY=$BODY taskset -c "$AB_CPUS" wrk -t "$THREADS" -c "$CONNECTIONS" -d "${1}s" --latency --timeout 5s -s "$LUA" "$URL" \
        | sed -n 's/^BENCH_JSON //p'
}

# ---------------------------------------------------------------- run

OLD_LINE=$(git -C "$REPO" log -1 --format='%h %s' "$OLD_COMMIT" | cut -c1-100)
NEW_LINE=$(git -C "$REPO" log -1 --format='%h %s' "$NEW_COMMIT" | cut -c1-100)
DIRTY=$(git -C "$REPO" status --porcelain -- app models | sed 's/^ *//' | paste -sd, - | sed 's/,/, /g')
if [ "$AB_VIA" = stack ]; then
    echo "ab-main: built-in classifier through the stack: HTTPS to today's Nginx (rendered config, TLS), then each side's app under Gunicorn"
else
    echo "ab-main: built-in classifier, app under Gunicorn, direct HTTP on loopback (no Nginx/TLS)"
fi
echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)  host: $(nproc --all) CPUs, $(uname -r), $("$AB_PYTHON" --version 2>&1), $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2)"
echo "A (old): $OLD_LINE"
echo "B (new): $NEW_LINE (the checkout's app/ and models/${DIRTY:+, uncommitted changes: $DIRTY})"
echo "A models: $OLD_MODEL_DIR; B models: $NEW_MODEL_DIR"
echo "Gunicorn: each side's app/gunicorn.conf.py, GUNICORN_WORKERS=$AB_WORKERS, metrics on; Gunicorn, wrk${FRONT_PID:+ and Nginx} pinned to CPUs $AB_CPUS; one side runs at a time"
echo "wrk: -t $THREADS -c $CONNECTIONS -d ${DURATION}s --latency after ${WARMUP}s warm-up per run; POST $ROUTE $BODY"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "errors: wrk's (connect, read, write, timeout, non-2xx); stop s: seconds from SIGTERM to the Gunicorn master's exit"
echo

RESULTS=$RUN_DIR/results.tsv
: >"$RESULTS"
printf '%-5s %-4s %-4s %10s %9s %9s %7s %8s\n' round side ref "req/s" "p50 ms" "p99 ms" errors "stop s"
for ((round = 1; round <= ROUNDS; round++)); do
    if ((round % 2)); then order="A B"; else order="B A"; fi
    for side in $order; do
        start_server "$side"
        check_answer "$side"
        run_wrk "$WARMUP" >/dev/null
        json=$(run_wrk "$DURATION")
        stop_server
        stopped=$STOP_SECONDS
        [ -n "$json" ] || die "wrk printed no figures (round $round, side $side)"
        read -r rps p50 p99 errors < <("$AB_PYTHON" -c '
import json, sys
r = json.loads(sys.argv[1])
latency = r["latency_us"]
print("%.1f %.2f %.2f %d" % (r["requests"] / (r["duration_us"] / 1e6), latency["p50"] / 1000,
                             latency["p99"] / 1000, sum(r["errors"].values())))' "$json")
        name=$([ "$side" = A ] && echo old || echo new)
        printf '%-5s %-4s %-4s %10s %9s %9s %7s %8s\n' "$round" "$side" "$name" "$rps" "$p50" "$p99" "$errors" "$stopped"
        printf '%s\t%s\t%s\t%s\n' "$side" "$rps" "$p99" "$errors" >>"$RESULTS"
    done
done

echo
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
"$AB_PYTHON" - "$RESULTS" <<'EOF'
import statistics, sys
rows = [line.split("\t") for line in open(sys.argv[1]).read().splitlines()]
figures = {}
for side in ("A", "B"):
    rps = [float(r[1]) for r in rows if r[0] == side]
    p99 = [float(r[2]) for r in rows if r[0] == side]
    errors = sum(int(r[3]) for r in rows if r[0] == side)
    figures[side] = statistics.median(rps)
    name = "old" if side == "A" else "new"
    print(f"{side} ({name}): median {statistics.median(rps):.1f} req/s (min {min(rps):.1f}, max {max(rps):.1f}, "
          f"{len(rps)} runs), median p99 {statistics.median(p99):.2f} ms, {errors} errors")
ratio = figures["B"] / figures["A"]
verdict = "within 5% of old (or faster)" if ratio >= 0.95 else "MORE than 5% below old"
print(f"ratio new/old of the medians: {ratio:.3f} -> new is {verdict}")
EOF
