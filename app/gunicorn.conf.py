"""Gunicorn settings of the API (the one place they live).

Environment: GUNICORN_BIND (default 0.0.0.0:8000), GUNICORN_WORKERS (default:
one per CPU the container may use, at least 2), GUNICORN_THREADS (default 4).
Anything else can still be overridden with Gunicorn's own GUNICORN_CMD_ARGS.
"""

import math
import os


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


def _int_from_env(name, default):
    value = os.environ.get(name)
    return int(value) if value else default


bind = [os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")]

# Requests are short CPU-bound tree walks: one process per usable CPU gets
# past the GIL; threads overlap the socket I/O. At least two processes, so a
# worker being restarted never leaves the replica without one.
workers = _int_from_env("GUNICORN_WORKERS", max(2, available_cpus()))
worker_class = "gthread"
threads = _int_from_env("GUNICORN_THREADS", 4)

# Nginx keeps idle upstream connections for 60 s (keepalive_timeout); the
# server side must hold them longer, or Nginx may reuse a socket just as
# Gunicorn closes it and the request fails.
keepalive = 75

# Load the models once in the master; workers share them after fork.
preload_app = True

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
access_log_format = '%(h)s %(t)s "%(r)s" %(s)s %(b)s %(M)sms request_id=%({x-request-id}i)s'
