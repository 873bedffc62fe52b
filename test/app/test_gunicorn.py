"""Gunicorn settings, and the app served by a real Gunicorn (keep-alive, chunked bodies, logs)."""

import http.client
import json
import os
import re
import runpy
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import tritonclient.http as oip
from gunicorn.workers import ggevent
from gunicorn.workers.ggevent import GeventWorker

from tritonclient.utils import InferenceServerException

from mlapi import healthcheck
from mlapi_testing import APP_DIR, CLASSIFIER_URL, SEED_CLASSIFIER_PAYLOAD, free_port, wait_until_ready
from model_repository import CLASSIFIER_NAME, PLAN_NAME, REGRESSOR_NAME, VERSION

CONF = APP_DIR / "gunicorn.conf.py"


def _settings(monkeypatch, **env):
    for name in ("GUNICORN_BIND", "GUNICORN_WORKERS", "GUNICORN_REPLICAS", "MLAPI_METRICS_PORT", "MLAPI_METRICS_DIR", "MLAPI_STOP_DELAY_SECONDS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(CONF))


def test_defaults(monkeypatch):
    settings = _settings(monkeypatch)
    assert settings["bind"] == ["0.0.0.0:8000"]
    assert issubclass(settings["worker_class"], GeventWorker)
    assert settings["workers"] == settings["available_cpus"]()  # one replica: the whole host
    assert settings["keepalive"] > 60  # longer than Nginx's upstream keepalive_timeout
    assert settings["preload_app"] is True
    assert settings["worker_tmp_dir"] == "/dev/shm"
    assert settings["control_socket_disable"] is True
    assert settings["accesslog"] == "-" and settings["errorlog"] == "-"
    assert settings["logger_class"] is settings["AccessLogger"]
    assert settings["metrics_port"] == 9000
    assert settings["raw_env"] == ["PROMETHEUS_MULTIPROC_DIR=/tmp/mlapi-metrics"]  # on the container's tmpfs
    assert settings["stop_delay"] == 0


def test_environment_overrides(monkeypatch):
    settings = _settings(
        monkeypatch, GUNICORN_BIND="127.0.0.1:9000", GUNICORN_WORKERS="3", GUNICORN_REPLICAS="8",
        MLAPI_METRICS_PORT="9100", MLAPI_METRICS_DIR="/tmp/elsewhere",
    )
    assert settings["bind"] == ["127.0.0.1:9000"]
    assert settings["workers"] == 3  # an explicit count wins over the share
    assert settings["metrics_port"] == 9100
    assert settings["raw_env"] == ["PROMETHEUS_MULTIPROC_DIR=/tmp/elsewhere"]


def test_metrics_port_0_turns_metrics_off(monkeypatch):
    settings = _settings(monkeypatch, MLAPI_METRICS_PORT="0")
    assert settings["metrics_port"] == 0
    assert settings["raw_env"] == []  # prometheus_client stays in single-process mode, never used


@pytest.mark.parametrize("value", ["-1", "65536", "nine"])
def test_bad_metrics_port_stops_the_start(monkeypatch, value):
    with pytest.raises(ValueError, match="MLAPI_METRICS_PORT"):
        _settings(monkeypatch, MLAPI_METRICS_PORT=value)


def test_replicas_share_the_cpus(monkeypatch):
    settings = _settings(monkeypatch, GUNICORN_REPLICAS="2")
    assert settings["workers"] == settings["default_workers"](settings["available_cpus"](), 2)


@pytest.mark.parametrize(
    "cpus, replicas, workers",
    [(2, 1, 2), (2, 2, 1), (2, 4, 1), (8, 2, 4), (8, 3, 2), (16, 4, 4), (1, 1, 1), (4, 0, 4)],
)
def test_default_workers_never_exceed_the_replica_share(monkeypatch, cpus, replicas, workers):
    assert _settings(monkeypatch)["default_workers"](cpus, replicas) == workers


@pytest.mark.parametrize(
    "cpu_max, expected",
    [("max 100000\n", None), ("150000 100000\n", 2), ("50000 100000\n", 1), ("100000 100000\n", 1), (None, None)],
)
def test_available_cpus_honours_the_cgroup_quota(monkeypatch, tmp_path, cpu_max, expected):
    available_cpus = _settings(monkeypatch)["available_cpus"]
    path = tmp_path / "cpu.max"
    if cpu_max is not None:
        path.write_text(cpu_max)
    affinity = len(os.sched_getaffinity(0))
    assert available_cpus(str(path)) == (affinity if expected is None else min(affinity, expected))


@pytest.mark.parametrize("gunicorn_sets, accepted_per_pass", [(1, 8), (100, 100)])
def test_gevent_servers_accept_a_batch_of_connections_per_pass(monkeypatch, gunicorn_sets, accepted_per_pass):
    server_class = _settings(monkeypatch)["BatchAcceptServer"]
    assert ggevent.StreamServer is server_class  # what Gunicorn's gevent worker builds its servers from
    server = server_class(("127.0.0.1", 0), handle=lambda *connection: None)
    server.max_accept = gunicorn_sets  # 1 when a replica has several workers
    server.start()
    try:
        assert server.max_accept == accepted_per_pass
    finally:
        server.stop()


@pytest.mark.parametrize(
    "bind, url",
    [
        ("", "http://127.0.0.1:8000/api/health"),
        ("0.0.0.0:9100", "http://127.0.0.1:9100/api/health"),
        ("[::]:9200", "http://127.0.0.1:9200/api/health"),
        ("unix:/run/app.sock", "http://127.0.0.1:8000/api/health"),
    ],
)
def test_healthcheck_url_follows_the_bind(bind, url):
    assert healthcheck.health_url({"GUNICORN_BIND": bind}) == url


@pytest.fixture(scope="module")
def server(model_dir, tmp_path_factory):
    """A Gunicorn serving the app with the real config; yields (port, path of its stdout)."""
    port = free_port()
    env = dict(
        os.environ,
        GUNICORN_BIND=f"127.0.0.1:{port}",
        GUNICORN_WORKERS="1",
        MLAPI_MODEL_DIR=str(model_dir),
        MLAPI_REPLICA_NAME="gunicorn-test",
        MLAPI_METRICS_PORT=str(free_port()),
        MLAPI_METRICS_DIR=str(tmp_path_factory.mktemp("metrics")),
        PYTHONPATH=str(APP_DIR),
    )
    logs = tmp_path_factory.mktemp("gunicorn")
    with open(logs / "stdout", "w") as stdout, open(logs / "stderr", "w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(CONF), "mlapi.wsgi:app"],
            env=env, stdout=stdout, stderr=stderr,
        )
    try:
        wait_until_ready(port, process, logs / "stderr")
        yield port, logs / "stdout"
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_keep_alive_connection_serves_several_requests(server):
    port = server[0]
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    for request_id in ("req-1", "req-2"):
        connection.request(
            "POST", CLASSIFIER_URL, body=json.dumps(SEED_CLASSIFIER_PAYLOAD),
            headers={"Content-Type": "application/json", "X-Request-ID": request_id},
        )
        response = connection.getresponse()
        assert response.status == 200
        assert "Predicted Class = " in json.loads(response.read())
        assert response.getheader("X-Request-ID") == request_id
    connection.request("GET", "/api/health")
    health = connection.getresponse()
    assert health.status == 200 and json.loads(health.read())["replica"] == "gunicorn-test"
    connection.close()


def test_access_log_has_the_request_id_and_no_body(server):
    port, stdout = server
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    connection.request(
        "POST", CLASSIFIER_URL, body=json.dumps(SEED_CLASSIFIER_PAYLOAD),
        headers={"Content-Type": "application/json", "X-Request-ID": "log-check-42"},
    )
    connection.getresponse().read()
    connection.close()
    time.sleep(0.2)
    line = next(line for line in stdout.read_text().splitlines() if "log-check-42" in line)
    assert re.fullmatch(
        rf'127\.0\.0\.1 \[\d\d/\w{{3}}/\d{{4}}:\d\d:\d\d:\d\d [+-]\d{{4}}\] "POST {re.escape(CLASSIFIER_URL)} HTTP/1\.1" '
        r"200 \d+ \d+ms request_id=log-check-42",
        line,
    ), line
    assert "monthly_fee" not in stdout.read_text()


def test_access_log_leaves_out_odd_request_ids(server):
    port, stdout = server
    odd = "x" * 129 + "-odd-id"
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    connection.request("GET", "/api/health/live?odd-id-check", headers={"X-Request-ID": odd})
    connection.getresponse().read()
    connection.close()
    time.sleep(0.2)
    line = next(line for line in stdout.read_text().splitlines() if "odd-id-check" in line)
    assert line.endswith(" request_id=-") and odd not in line


@pytest.mark.parametrize("size, status", [(65536, 400), (65537, 413), (200_000, 413)])
def test_chunked_body_limit(server, size, status):
    port = server[0]
    body = b"[" + b" " * (size - 2) + b"]"  # an empty batch: 400 once it is read whole
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(
            f"POST {CLASSIFIER_URL} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n".encode()
            + b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n"
        )
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, payload = answer.partition(b"\r\n\r\n")
    assert head.split()[1] == str(status).encode()
    assert json.loads(payload)["error"] == ("empty_batch" if status == 400 else "payload_too_large")


def test_healthcheck_probe(server, monkeypatch):
    port = server[0]
    monkeypatch.setenv("GUNICORN_BIND", f"127.0.0.1:{port}")
    assert healthcheck.main() == 0
    monkeypatch.setenv("GUNICORN_BIND", f"127.0.0.1:{free_port()}")
    assert healthcheck.main() == 1


def test_workers_exit_cleanly(model_dir, tmp_path):
    port = free_port()
    env = dict(
        os.environ, GUNICORN_BIND=f"127.0.0.1:{port}", GUNICORN_WORKERS="1",
        MLAPI_MODEL_DIR=str(model_dir), PYTHONPATH=str(APP_DIR),
        MLAPI_METRICS_PORT=str(free_port()), MLAPI_METRICS_DIR=str(tmp_path / "metrics"),
    )
    with open(tmp_path / "stderr", "w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(CONF), "mlapi.wsgi:app"],
            env=env, stdout=subprocess.DEVNULL, stderr=stderr,
        )
    try:
        wait_until_ready(port, process, tmp_path / "stderr")  # the one worker has booted
    finally:
        process.terminate()
        assert process.wait(timeout=30) == 0
    log = (tmp_path / "stderr").read_text()
    assert log.count("Worker exiting") == 1
    assert "Traceback" not in log and "Exception ignored" not in log, log


def test_stop_delay_keeps_serving_then_stops_gracefully(model_dir, tmp_path):
    """With MLAPI_STOP_DELAY_SECONDS, SIGTERM leaves the server answering new connections that long, then it stops and exits 0."""
    port = free_port()
    env = dict(
        os.environ, GUNICORN_BIND=f"127.0.0.1:{port}", GUNICORN_WORKERS="1", MLAPI_STOP_DELAY_SECONDS="3",
        MLAPI_MODEL_DIR=str(model_dir), PYTHONPATH=str(APP_DIR), MLAPI_METRICS_PORT="0",
    )
    with open(tmp_path / "stderr", "w") as stderr:
        process = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", str(CONF), "mlapi.wsgi:app"], env=env, stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        wait_until_ready(port, process, tmp_path / "stderr")
        stopped_at = time.monotonic()
        process.terminate()
        process.terminate()  # a second SIGTERM does not restart the delay, nor stop at once
        answered = 0
        while time.monotonic() - stopped_at < 2.0:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)  # a new connection each time
            connection.request("GET", "/api/health")
            assert connection.getresponse().status == 200
            connection.close()
            answered += 1
            time.sleep(0.1)
        assert answered >= 10
        assert process.wait(timeout=30) == 0
        assert 3.0 <= time.monotonic() - stopped_at < 10
    finally:
        if process.poll() is None:
            process.kill()
    log = (tmp_path / "stderr").read_text()
    assert log.count("Stopping in 3 s") == 1, log
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2)


def test_open_inference_protocol_client(server, trained):
    """tritonclient, a real Open Inference Protocol client, against the workers (JSON tensors: no binary extension)."""

    client = oip.InferenceServerClient(f"127.0.0.1:{server[0]}")
    assert client.is_server_live() and client.is_server_ready()
    assert client.get_server_metadata() == {"name": "mlapi", "version": "1.0.0", "extensions": []}
    assert client.is_model_ready(PLAN_NAME) and client.is_model_ready(PLAN_NAME, VERSION)
    assert not client.is_model_ready(PLAN_NAME, "0")
    metadata = client.get_model_metadata(REGRESSOR_NAME)
    assert metadata["platform"] == "onnxruntime_onnx" and metadata["versions"] == [VERSION]

    for name in (REGRESSOR_NAME, PLAN_NAME):
        model = trained[name]
        records = model.records[:20]
        inputs = []
        for tensor in client.get_model_metadata(name)["inputs"]:
            dtype = {"FP64": np.float64, "INT64": np.int64, "BYTES": np.object_}[tensor["datatype"]]
            values = np.array([[record[tensor["name"]]] for record in records], dtype=dtype)
            inputs.append(oip.InferInput(tensor["name"], list(values.shape), tensor["datatype"]))
            inputs[-1].set_data_from_numpy(values, binary_data=False)
        output = "prediction" if name == REGRESSOR_NAME else "label"
        result = client.infer(name, inputs, request_id="oip-1",
                              outputs=[oip.InferRequestedOutput(output, binary_data=False)])
        assert result.get_response()["id"] == "oip-1"
        assert result.get_response()["model_version"] == VERSION
        answer = result.as_numpy(output)
        if name == REGRESSOR_NAME:
            np.testing.assert_allclose(answer, model.expected[:20], rtol=2**-23, atol=0)
        else:
            assert answer.tolist() == model.expected[:20].tolist()

    bad = oip.InferInput("monthly_fee", [1, 1], "FP64")
    bad.set_data_from_numpy(np.array([[-5.0]]), binary_data=False)
    with pytest.raises(InferenceServerException) as refusal:
        client.infer(CLASSIFIER_NAME, [bad])
    assert "input 'monthly_fee'[0] must be between 0 and 300, got -5.0" in refusal.value.message()
    assert refusal.value.status() == "400"
    client.close()
