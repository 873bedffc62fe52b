"""Gunicorn settings of the API (the one place they live).

Environment:
  GUNICORN_BIND      address to listen on (default 0.0.0.0:8000)
  GUNICORN_WORKERS   worker processes (default: this replica's share of the
                     CPUs, see default_workers)
  GUNICORN_REPLICAS  how many replicas share this host's CPUs (default 1);
                     the stack sets it to its replica count
  MLAPI_METRICS_PORT port of the replica's Prometheus metrics, on all
                     addresses (default 9000; 0: no metrics)
  MLAPI_METRICS_DIR  where the workers keep their metrics files (default
                     /tmp/mlapi-metrics; emptied when the master starts)
Anything else can still be overridden with Gunicorn's own GUNICORN_CMD_ARGS.

Measurements behind these choices are in BENCHMARKS.md.
"""

import gc
import logging
import math
import os
import signal
import sys
import time

import gevent
from gunicorn import util
from gunicorn.glogging import Logger
from gunicorn.workers import ggevent
from mlapi.config import integer_setting, settings_from_env
from mlapi.request_ids import repeatable_request_id


def available_cpus(cpu_max_path="/sys/fs/cgroup/cpu.max"):
    """CPUs this process may use: its affinity mask, capped by a cgroup v2 CPU quota.

    os.cpu_count() would report the host's CPUs even when the container is
    limited (docker run --cpus=1.5 writes "150000 100000" to cpu.max).
    """
    cpus = len(os.sched_getaffinity(0))
    try:
        with open(cpu_max_path, encoding="ascii") as file:
            quota, period = file.read().split()[:2]
        if quota != "max":
            cpus = min(cpus, math.ceil(int(quota) / int(period)))
    except (OSError, ValueError):
        pass  # no cgroup v2 CPU controller visible: the affinity mask is the limit
    return max(1, cpus)


def default_workers(cpus, replicas):
    """One process per CPU of this replica's share of the host, at least one.

    A prediction is a short CPU-bound model run: more processes than CPUs
    only queue behind each other, and with every replica sizing itself to
    the whole host the tail latency grew sevenfold. A worker that dies is
    re-forked from the preloaded master in milliseconds; meanwhile Nginx
    retries on another replica.
    """
    return max(1, cpus // max(1, replicas))


class GeventWorker(ggevent.GeventWorker):
    """Gunicorn's gevent worker, fair between connections and closing them gracefully.

    Fair: a greenlet whose client sends its next request at once would read
    it without ever yielding, and serve that one connection while the
    others wait (direct p99 was 160-360 ms at 16 connections, 6 ms with
    the yield after each request; through Nginx 52 ms at 64, 30 with it).

    Graceful close: when the server ends a connection after a response (a
    413 that left the body unread, "Connection: close"), it half-closes
    and drains as Gunicorn's gthread worker does (RFC 9112 section 9.6);
    a plain close with unread data makes the kernel send a reset, which
    can destroy the response before the client reads it.
    """

    def handle_request(self, listener_name, req, sock, addr):
        try:
            super().handle_request(listener_name, req, sock, addr)
        except StopIteration:  # the response is out and the connection must end
            util.close_graceful(sock)
            raise
        gevent.sleep(0)


class BatchAcceptServer(ggevent.StreamServer):
    """gevent's server, accepting up to 8 waiting connections per loop pass.

    When a replica has several workers, Gunicorn's gevent worker sets
    max_accept to 1 so that one worker does not take every new connection.
    But a busy worker's loop pass serves all its ready connections (about
    6 ms at 32), so a burst of new connections (a client's pool, Nginx
    opening upstream connections as load grows) waited dozens of passes:
    p99 158-373 ms at 64 connections on 2 workers; 17-36 ms with 8 per
    pass. 100 per pass let one worker take them all (half the throughput).
    """

    def start(self):
        self.max_accept = max(self.max_accept, 8)
        super().start()


# Gunicorn's gevent worker builds its servers from this module's name and
# has no setting for max_accept.
ggevent.StreamServer = BatchAcceptServer

class AccessLogger(Logger):
    """Gunicorn's logger with a cheap access line on stdout.

    Gunicorn's own access() builds a dict of every header and environ
    variable and a logging record per request: 23% of a worker's CPU in the
    profile. This writes one preformatted line instead:

        REMOTE_ADDR [time] "METHOD URI PROTOCOL" STATUS BYTES DURATIONms request_id=ID

    ID is X-Request-ID when the app would repeat it (mlapi.request_ids),
    else "-". An
    access log sent anywhere but stdout ("-") goes through Gunicorn's
    logging as usual.
    """

    _second = None
    _stamp = ""

    def access(self, resp, req, environ, request_time):
        if self.cfg.accesslog != "-":
            return super().access(resp, req, environ, request_time)
        now = int(time.time())
        if now != self._second:
            self._stamp = time.strftime("[%d/%b/%Y:%H:%M:%S %z]", time.localtime(now))
            self._second = now
        request_id = repeatable_request_id(environ.get("HTTP_X_REQUEST_ID")) or "-"
        sent = resp.sent if resp.sent is not None else "-"
        milliseconds = request_time.seconds * 1000 + request_time.microseconds // 1000
        status = resp.status.split(None, 1)[0] if isinstance(resp.status, str) else resp.status
        sys.stdout.write(
            f'{environ.get("REMOTE_ADDR", "-")} {self._stamp} "{environ["REQUEST_METHOD"]} '
            f'{environ["RAW_URI"]} {environ["SERVER_PROTOCOL"]}" {status} {sent} {milliseconds}ms '
            f"request_id={request_id}\n"
        )
        sys.stdout.flush()


def _int_from_env(name, default):
    value = os.environ.get(name)
    return int(value) if value else default


bind = [os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")]

workers = _int_from_env("GUNICORN_WORKERS", default_workers(available_cpus(), _int_from_env("GUNICORN_REPLICAS", 1)))
# Greenlets, one event loop per process: no thread hand-off per request
# (gthread's poller-to-thread-pool round trip cost more CPU than the
# prediction itself), and Nginx's upstream connections stay alive.
worker_class = GeventWorker
worker_connections = 1000

# Nginx keeps idle upstream connections for 60 s (keepalive_timeout); the
# server side must hold them longer, or Nginx may reuse a socket just as
# Gunicorn closes it and the request fails.
keepalive = 75

# Load the model repository once in the master; workers share the models and
# their ONNX Runtime sessions after fork. A session with one intra-op and one
# inter-op thread (mlapi.registry) has no thread pool a fork could cut off:
# 500 forks of a process that kept running its sessions predicted right in
# every child, none hung (test_registry forks too).
preload_app = True


def pre_fork(server, worker):
    # Everything loaded so far (Flask, the models) lives as long as the
    # process: frozen, the garbage collector no longer walks it (its full
    # collections paused a worker 17 ms, 4 ms frozen) nor writes to its
    # pages, which stay shared with the master.
    gc.freeze()


# Prometheus metrics: the workers count in files of their own, the master
# serves their sum (mlapi.replica_metrics) on a port of its own, never the
# API's. prometheus_client picks its multiprocess mode when first imported,
# by the preloaded app: Gunicorn sets raw_env before loading it, and the
# hooks import mlapi.replica_metrics only then, not at the top of this file.
# The port is read as the app reads it, so both agree on whether to count.
metrics_port = integer_setting(settings_from_env(os.environ), "MLAPI_METRICS_PORT")
metrics_dir = os.environ.get("MLAPI_METRICS_DIR") or "/tmp/mlapi-metrics"
raw_env = [f"PROMETHEUS_MULTIPROC_DIR={metrics_dir}"] if metrics_port else []


def on_starting(server):
    if metrics_port:
        from mlapi import replica_metrics

        # Files of an earlier run would add its counts to this one's. The
        # preloaded app has written none: it only counts when serving.
        replica_metrics.clear_directory(metrics_dir)


# A stop (SIGTERM) first keeps serving this many seconds, then stops as
# Gunicorn does (no new connection, requests in flight finish): after a change
# the proxy's replaced slot (nginx/bin/mlapi-proxy) still sends its clients'
# requests to the replicas its config named until it quits, and a replica the
# change removes must answer them. SIGINT and SIGQUIT still stop at once.
stop_delay = _int_from_env("MLAPI_STOP_DELAY_SECONDS", 0)


def when_ready(server):
    if metrics_port:
        from mlapi import replica_metrics

        server.mlapi_metrics, server.mlapi_metrics_httpd = replica_metrics.serve(server, metrics_port, metrics_dir)
        server.log.info("Serving metrics at: http://0.0.0.0:%s/metrics", metrics_port)
    if stop_delay:
        # The arbiter's own handler queues the signal; an alarm queues it later.
        def delay_stop(signum, frame):
            if not signal.getitimer(signal.ITIMER_REAL)[0]:
                server.log.info("Stopping in %s s: the proxy may still send requests here until then", stop_delay)
                signal.alarm(stop_delay)

        signal.signal(signal.SIGALRM, lambda signum, frame: server.signal(signal.SIGTERM, frame))
        signal.signal(signal.SIGTERM, delay_stop)


def post_fork(server, worker):
    if metrics_port:
        # The master's metrics socket: a worker must not hold it open.
        server.mlapi_metrics_httpd.socket.close()


def child_exit(server, worker):
    if metrics_port:
        server.mlapi_metrics.worker_exited(worker.pid)


def worker_exit(server, worker):
    # The last hook of a worker. Python would flush and close the logging
    # handlers at exit, but a handler still registered when the interpreter
    # tears down gevent's modules prints "TypeError: 'NoneType' object is not
    # callable" on every worker exit (gevent issue 2148). So: flush and close
    # them now, while every module works, and forget the weak references
    # whose clean-up would fail later.
    logging.shutdown()
    del logging._handlerList[:]
    # Then leave at once: ONNX Runtime's exit handlers hang in a forked
    # worker until the master kills it at graceful_timeout (measured: every
    # stop took 20 s). The master cleans up after its workers (child_exit).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)

timeout = 30
graceful_timeout = 20

# The heartbeat files must live on a writable filesystem: the root filesystem
# is read-only in the container; /dev/shm is memory-backed.
if os.path.isdir("/dev/shm"):
    worker_tmp_dir = "/dev/shm"

# No control socket: nothing administers the server at runtime, and it would
# need a writable $HOME.
control_socket_disable = True

# Access log on stdout, errors on stderr. Never the request body; the request
# id is the X-Request-ID header Nginx sets, so a line joins up with Nginx's.
accesslog = "-"
errorlog = "-"
loglevel = "info"
logger_class = AccessLogger
