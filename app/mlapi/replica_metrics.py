"""The replica's metrics endpoint, served by the Gunicorn master (gunicorn.conf.py).

The workers count in prometheus_client's multiprocess files (mlapi.metrics);
a thread of the master answers on the metrics port with their sum, so the
figures are the replica's, whichever worker served a request, and it
answers while workers are busy or being re-forked. A dead worker's files
stay: counters keep what it counted. The master adds what only it knows:
the CPU and memory of all its processes (read from /proc), the worker
count and the loaded models.

Importing this module imports prometheus_client, which picks its
multiprocess mode from PROMETHEUS_MULTIPROC_DIR then: set it first.
"""

import glob
import os

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")
_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


def clear_directory(path):
    """Create the multiprocess directory, or delete the files of an earlier run from it."""
    os.makedirs(path, exist_ok=True)
    for name in glob.glob(os.path.join(path, "*.db")):
        os.remove(name)


def serve(arbiter, port, path):
    """Start answering on port (all addresses); returns the ReplicaMetrics and the HTTP server."""
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path)
    replica = ReplicaMetrics(arbiter)
    registry.register(replica)
    httpd, _ = start_http_server(port, addr="0.0.0.0", registry=registry)
    return replica, httpd


class ReplicaMetrics:
    """A collector of the master's figures; the master calls worker_exited from child_exit."""

    def __init__(self, arbiter):
        self._arbiter = arbiter
        self._worker_exits = 0
        self._cpu_seconds = 0.0

    def worker_exited(self, pid):
        self._worker_exits += 1
        # Drops the dead worker's live* gauge files; the workers write no
        # gauges today, but one added later would otherwise keep its value.
        mark_process_dead(pid)

    def collect(self):
        models = self._arbiter.app.wsgi().extensions["mlapi"].models or {}
        info = GaugeMetricFamily("mlapi_model_info", "The models this replica serves (value 1).",
                                 labels=["model", "version", "task"])
        for model in models.values():
            info.add_metric([model.name, model.version, model.task], 1)
        yield info

        workers = list(self._arbiter.WORKERS)
        yield GaugeMetricFamily("mlapi_workers", "Worker processes running.", value=len(workers))
        yield CounterMetricFamily("mlapi_worker_exits", "Worker processes that ended (crashed, killed or restarted).",
                                  value=self._worker_exits)

        master = _process_stat(self._arbiter.pid)
        stats = [master] + [stat for stat in map(_process_stat, workers) if stat]
        # The master's own CPU, that of the workers it has reaped (the
        # kernel adds it to the master's children times) and that of the
        # running ones. A worker reaped between two reads would be missed or
        # counted twice for one scrape: the counter never goes down.
        cpu = (master.cpu_ticks + master.children_cpu_ticks + sum(stat.cpu_ticks for stat in stats[1:]))
        self._cpu_seconds = max(self._cpu_seconds, cpu / _TICKS_PER_SECOND)
        yield CounterMetricFamily("mlapi_process_cpu_seconds", "CPU time (user and system) of the master and"
                                  " all its workers, the ended ones included.", value=self._cpu_seconds)
        yield GaugeMetricFamily("mlapi_process_resident_memory_bytes", "Resident memory of the master and its"
                                " workers, added up: pages they share count once per process.",
                                value=sum(stat.rss_pages for stat in stats) * _PAGE_BYTES)
        pss = [_proportional_bytes(pid) for pid in [self._arbiter.pid] + workers]
        yield GaugeMetricFamily("mlapi_process_proportional_memory_bytes", "Proportional set size of the master"
                                " and its workers, added up: what they occupy together, shared pages once.",
                                value=sum(size for size in pss if size))


class _Stat:
    __slots__ = ("cpu_ticks", "children_cpu_ticks", "rss_pages")

    def __init__(self, fields):
        # Fields 14-17 (utime, stime, cutime, cstime) and 24 (rss) of proc(5),
        # counted from the state, the first field after the command name.
        self.cpu_ticks = int(fields[11]) + int(fields[12])
        self.children_cpu_ticks = int(fields[13]) + int(fields[14])
        self.rss_pages = int(fields[21])


def _process_stat(pid):
    """The /proc/PID/stat figures of a process, or None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as file:
            text = file.read()
    except OSError:
        return None
    # The command name, in parentheses, may itself hold spaces and parentheses.
    return _Stat(text[text.rindex(")") + 2:].split())


def _proportional_bytes(pid):
    """The Pss line of /proc/PID/smaps_rollup in bytes, or None (process gone, kernel before 4.14)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as file:
            for line in file:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None
