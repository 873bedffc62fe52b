"""Readiness, liveness, model listing, and behaviour while models are missing."""

import hashlib
import json
import os
import shutil
import socket

import pytest

from mlapi.app import create_app
from mlapi_testing import CLASSIFIER_URL, REPLICA, SEED_CLASSIFIER_PAYLOAD, assert_error


def test_readiness_reports_replica_models_and_pid(client, metadata):
    response = client.get("/api/health")

    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert response.get_json() == {
        "status": "ok",
        "replica": REPLICA,
        "pid": os.getpid(),
        "models": {name: model["version"] for name, model in metadata["models"].items()},
    }


def test_head_and_liveness(client):
    head = client.head("/api/health")
    assert head.status_code == 200 and head.data == b""
    live = client.get("/api/health/live")
    assert live.status_code == 200
    assert live.get_json() == {"status": "alive", "replica": REPLICA, "pid": os.getpid()}


def test_replica_name_comes_from_the_environment(model_dir, monkeypatch):
    monkeypatch.setenv("MLAPI_REPLICA_NAME", "api-2")
    app = create_app({"MLAPI_MODEL_DIR": str(model_dir)})
    assert app.test_client().get("/api/health").get_json()["replica"] == "api-2"

    monkeypatch.delenv("MLAPI_REPLICA_NAME")
    app = create_app({"MLAPI_MODEL_DIR": str(model_dir)})
    assert app.test_client().get("/api/health").get_json()["replica"] == socket.gethostname()


def test_settings_come_from_the_environment(model_dir, monkeypatch):
    monkeypatch.setenv("MLAPI_MODEL_DIR", str(model_dir))
    monkeypatch.setenv("MLAPI_MAX_BATCH", "2")
    client = create_app().test_client()
    assert client.get("/api/health").status_code == 200
    assert_error(client.post(CLASSIFIER_URL, json=[SEED_CLASSIFIER_PAYLOAD] * 3), 400, "batch_too_large")


@pytest.mark.parametrize("name", ["MLAPI_MAX_BATCH", "MLAPI_MAX_BODY_BYTES"])
@pytest.mark.parametrize("value", ["0", "-5", "ten", "1.5"])
def test_bad_settings_stop_the_start(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=name):
        create_app()


def test_model_listing(client, metadata):
    models = client.get("/api/v1/models").get_json()["models"]
    assert [model["name"] for model in models] == ["decision-tree-classifier", "decision-tree-regressor"]
    classifier = models[0]
    assert classifier["endpoint"] == CLASSIFIER_URL
    assert classifier["version"] == metadata["models"]["decision-tree-classifier"]["version"]
    assert classifier["metrics"]["accuracy"] > 0.8
    assert classifier["input_schema"]["required"] == ["monthly_fee", "customer_age", "support_calls"]
    assert client.get("/api/v1/models/decision-tree-classifier").get_json() == classifier


def _broken_app(path):
    return create_app({"MLAPI_MODEL_DIR": str(path), "MLAPI_REPLICA_NAME": REPLICA})


def _assert_not_ready(app):
    client = app.test_client()
    health = client.get("/api/health")
    assert health.status_code == 503
    assert health.get_json()["status"] == "unavailable"
    assert health.get_json()["models"] == {}
    assert client.get("/api/health/live").status_code == 200
    assert_error(client.post(CLASSIFIER_URL, json=SEED_CLASSIFIER_PAYLOAD), 503, "model_unavailable")
    assert_error(client.get("/api/v1/models"), 503, "model_unavailable")
    assert_error(client.get("/api/v1/openapi.json"), 503, "model_unavailable")


def test_missing_model_directory_serves_503(tmp_path, caplog):
    _assert_not_ready(_broken_app(tmp_path / "absent"))
    assert "models not loaded" in caplog.text


def test_tampered_artifact_serves_503(tmp_path, model_dir):
    broken = shutil.copytree(model_dir, tmp_path / "models")
    artifact = broken / "regressor.json"
    artifact.write_bytes(artifact.read_bytes().replace(b'"threshold":[', b'"threshold":[1.5,', 1))
    _assert_not_ready(_broken_app(broken))


def test_cyclic_tree_serves_503_even_with_a_matching_hash(tmp_path, model_dir):
    broken = shutil.copytree(model_dir, tmp_path / "models")
    tree = json.loads((broken / "classifier.json").read_text())
    tree["nodes"]["children_left"][1] = 0  # node 1 would loop back to the root
    content = json.dumps(tree).encode()
    (broken / "classifier.json").write_bytes(content)
    metadata = json.loads((broken / "metadata.json").read_text())
    metadata["models"]["decision-tree-classifier"]["artifact"]["sha256"] = hashlib.sha256(content).hexdigest()
    (broken / "metadata.json").write_text(json.dumps(metadata))
    _assert_not_ready(_broken_app(broken))
