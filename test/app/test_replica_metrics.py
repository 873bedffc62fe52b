"""The replica's metrics, served by a real Gunicorn master for its 2 workers on a port of its own."""

import http.client
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from mlapi_testing import (
    APP_DIR, CLASSIFIER_URL, REGRESSOR_URL, SEED_CLASSIFIER_PAYLOAD, SEED_REGRESSOR_PAYLOAD, churn, free_port,
    wait_until_ready,
)
from model_repository import VERSION

CONF = APP_DIR / "gunicorn.conf.py"
CLASSIFIER = "decision-tree-classifier"
REGRESSOR = "decision-tree-regressor"
PREDICTIONS_ROUTE = "/api/v1/models/<model_name>/predictions"

# What an earlier run left in the metrics directory, counted by a process of its own.
_STALE_RUN = """
from prometheus_client import Counter
Counter("mlapi_http_requests_total", "", ["route", "status"]).labels("/stale", "200").inc(1000)
Counter("mlapi_prediction_requests_total", "", ["model", "model_version", "outcome"]).labels("%s", "%s", "ok").inc(1000)
""" % (CLASSIFIER, VERSION)


class Replica:
    def __init__(self, api_port, metrics_port, metrics_dir, stale_file):
        self.api_port = api_port
        self.metrics_port = metrics_port
        self.metrics_dir = metrics_dir
        self.stale_file = stale_file

    def connect(self):
        return http.client.HTTPConnection("127.0.0.1", self.api_port, timeout=5)

    def request(self, method, path, body=None, content_type="application/json", connection=None):
        """The status of a request, on a new connection unless one is given (so both workers serve)."""
        own = connection is None
        connection = connection or self.connect()
        headers = {"Content-Type": content_type} if body is not None else {}
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        if own:
            connection.close()
        return response.status

    def predict(self, url, payload, **options):
        return self.request("POST", url, json.dumps(payload), **options)

    def scrape(self):
        """{(name, labels as sorted tuple): value} from the metrics port."""
        connection = http.client.HTTPConnection("127.0.0.1", self.metrics_port, timeout=5)
        connection.request("GET", "/metrics")
        response = connection.getresponse()
        assert response.status == 200
        text = response.read().decode()
        connection.close()
        return {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture(scope="module")
def replica(model_dir, tmp_path_factory):
    metrics_dir = tmp_path_factory.mktemp("metrics")
    subprocess.run(
        [sys.executable, "-c", _STALE_RUN], env=dict(os.environ, PROMETHEUS_MULTIPROC_DIR=str(metrics_dir)), check=True,
    )
    (stale_file,) = metrics_dir.glob("counter_*.db")
    api_port, metrics_port = free_port(), free_port()
    env = dict(
        os.environ,
        GUNICORN_BIND=f"127.0.0.1:{api_port}",
        GUNICORN_WORKERS="2",
        MLAPI_MODEL_DIR=str(model_dir),
        MLAPI_METRICS_PORT=str(metrics_port),
        MLAPI_METRICS_DIR=str(metrics_dir),
        PYTHONPATH=str(APP_DIR),
    )
    logs = tmp_path_factory.mktemp("replica")
    with open(logs / "stderr", "w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(CONF), "mlapi.wsgi:app"],
            env=env, stdout=subprocess.DEVNULL, stderr=stderr,
        )
    try:
        wait_until_ready(api_port, process, logs / "stderr")
        yield Replica(api_port, metrics_port, metrics_dir, stale_file)
    finally:
        process.terminate()
        assert process.wait(timeout=30) == 0
    assert "Traceback" not in (logs / "stderr").read_text()


def test_stale_files_of_an_earlier_run_are_wiped(replica):
    assert not replica.stale_file.exists()
    samples = replica.scrape()
    assert not any(("route", "/stale") in labels for _, labels in samples)
    assert value(samples, "mlapi_prediction_requests_total", model=CLASSIFIER, model_version=VERSION, outcome="ok") < 1000


def test_replica_figures(replica, trained):
    assert replica.predict(CLASSIFIER_URL, [SEED_CLASSIFIER_PAYLOAD] * 2) == 200
    samples = replica.scrape()
    info = {labels: v for (name, labels), v in samples.items() if name == "mlapi_model_info"}
    assert info == {
        (("model", name), ("task", model.card["task"]), ("version", VERSION)): 1.0
        for name, model in trained.items()
    }
    assert value(samples, "mlapi_workers") == 2
    assert ("mlapi_worker_exits_total", ()) in samples
    assert value(samples, "mlapi_process_cpu_seconds_total") > 0
    # Preloaded workers share most of their pages with the master: counted once, they weigh less.
    assert 0 < value(samples, "mlapi_process_proportional_memory_bytes") < value(samples, "mlapi_process_resident_memory_bytes")
    names = {name for name, _ in samples}
    assert {
        "mlapi_http_requests_total", "mlapi_prediction_requests_total", "mlapi_prediction_duration_seconds_bucket",
        "mlapi_prediction_duration_seconds_sum", "mlapi_prediction_duration_seconds_count",
        "mlapi_prediction_batch_size_bucket", "mlapi_prediction_batch_size_sum",
    } <= names


def test_the_api_port_does_not_serve_metrics(replica):
    for path in ("/metrics", "/api/metrics"):
        connection = replica.connect()
        connection.request("GET", path)
        response = connection.getresponse()
        assert response.status == 404
        assert json.loads(response.read())["error"] == "not_found"
        connection.close()


def test_counts_are_the_replica_s(replica):
    good, bad = 20, 3
    before = replica.scrape()
    for _ in range(good):
        assert replica.predict(CLASSIFIER_URL, SEED_CLASSIFIER_PAYLOAD) == 200
    assert replica.predict(REGRESSOR_URL, [SEED_REGRESSOR_PAYLOAD] * 4) == 200
    for _ in range(bad):
        assert replica.predict(CLASSIFIER_URL, churn(customer_age=17)) == 400
        assert replica.request("POST", CLASSIFIER_URL, "{") == 400
        assert replica.request("POST", REGRESSOR_URL, b"[" + b" " * 70000 + b"]") == 413
        assert replica.request("POST", "/api/v1/models/random-forest/predictions", "{}") == 404
        assert replica.request("GET", "/metrics") == 404
    after = replica.scrape()

    def grown(name, **labels):
        if "model" in labels:
            labels["model_version"] = VERSION
        return value(after, name, **labels) - value(before, name, **labels)

    assert grown("mlapi_prediction_requests_total", model=CLASSIFIER, outcome="ok") == good
    assert grown("mlapi_prediction_requests_total", model=REGRESSOR, outcome="ok") == 1
    assert grown("mlapi_prediction_requests_total", model=CLASSIFIER, outcome="invalid_input") == bad
    assert grown("mlapi_prediction_requests_total", model=CLASSIFIER, outcome="invalid_json") == bad
    assert grown("mlapi_prediction_requests_total", model=REGRESSOR, outcome="payload_too_large") == bad
    assert grown("mlapi_prediction_validation_errors_total", model=CLASSIFIER, field="customer_age", code="out_of_range") == bad
    assert grown("mlapi_http_requests_total", route=PREDICTIONS_ROUTE, status="200") == 0  # counted above
    assert grown("mlapi_http_requests_total", route="unmatched", status="404") == bad
    assert grown("mlapi_http_requests_total", route=PREDICTIONS_ROUTE, status="404") == bad  # no model: no model label
    assert grown("mlapi_prediction_duration_seconds_count", model=CLASSIFIER) == good
    assert grown("mlapi_prediction_duration_seconds_bucket", model=CLASSIFIER, le="+Inf") == good
    assert grown("mlapi_prediction_batch_size_sum", model=REGRESSOR) == 4
    assert grown("mlapi_prediction_batch_size_bucket", model=REGRESSOR, le="2.0") == 0
    assert grown("mlapi_prediction_batch_size_bucket", model=REGRESSOR, le="5.0") == 1


def _worker_pid(connection):
    connection.request("GET", "/api/health/live")
    return json.loads(connection.getresponse().read())["pid"]


def _wait_for_restart(replica, exits):
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        samples = replica.scrape()
        if value(samples, "mlapi_worker_exits_total") == exits and value(samples, "mlapi_workers") == 2:
            return samples
        time.sleep(0.1)
    pytest.fail("the killed worker was not replaced")


def test_counts_survive_a_killed_worker(replica):
    before = replica.scrape()
    # One keep-alive connection: the worker that says its pid counts these predictions.
    connection = replica.connect()
    victim = _worker_pid(connection)
    for _ in range(10):
        assert replica.predict(CLASSIFIER_URL, SEED_CLASSIFIER_PAYLOAD, connection=connection) == 200
    connection.close()
    assert (replica.metrics_dir / f"counter_{victim}.db").exists()

    os.kill(victim, signal.SIGKILL)
    restarted = _wait_for_restart(replica, value(before, "mlapi_worker_exits_total") + 1)
    ok = ("mlapi_prediction_requests_total", CLASSIFIER, "ok")

    def grown(samples, name, model, outcome):
        labels = {"model": model, "model_version": VERSION, "outcome": outcome}
        return value(samples, name, **labels) - value(before, name, **labels)

    assert grown(restarted, *ok) == 10  # the dead worker's counts stay
    for _ in range(5):
        assert replica.predict(CLASSIFIER_URL, SEED_CLASSIFIER_PAYLOAD) == 200
    after = replica.scrape()
    assert grown(after, *ok) == 15  # and the replica goes on counting
    labels = {"model": CLASSIFIER, "model_version": VERSION}
    assert value(after, "mlapi_prediction_duration_seconds_count", **labels) - value(
        before, "mlapi_prediction_duration_seconds_count", **labels) == 15
    # The gauges describe the replica now, once: no dead worker in them.
    assert [v for (name, _), v in after.items() if name == "mlapi_model_info"] == [1.0, 1.0, 1.0]
    assert value(after, "mlapi_workers") == 2
    assert value(after, "mlapi_process_cpu_seconds_total") >= value(before, "mlapi_process_cpu_seconds_total")
