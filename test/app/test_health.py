"""Readiness, liveness, model listing, and behaviour while models are missing."""

import os
import shutil
import socket

import pytest

from mlapi.app import create_app
from mlapi_testing import CLASSIFIER_URL, REPLICA, SEED_CLASSIFIER_PAYLOAD, assert_error
from model_repository import CLASSIFIER_NAME, PLAN_NAME, REGRESSOR_NAME, VERSION


def test_readiness_reports_replica_models_and_pid(client):
    response = client.get("/api/health")

    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert response.get_json() == {
        "status": "ok",
        "replica": REPLICA,
        "pid": os.getpid(),
        "models": {CLASSIFIER_NAME: VERSION, REGRESSOR_NAME: VERSION, PLAN_NAME: VERSION},
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


def test_model_listing(client, trained):
    models = client.get("/api/v1/models").get_json()["models"]
    assert [model["name"] for model in models] == [CLASSIFIER_NAME, REGRESSOR_NAME, PLAN_NAME]
    classifier = models[0]
    card = trained[CLASSIFIER_NAME].card
    assert classifier == {
        "name": CLASSIFIER_NAME,
        "version": VERSION,
        "task": "classification",
        "description": card["description"],
        "endpoint": CLASSIFIER_URL,
        "input_schema": classifier["input_schema"],
        "inputs": card["inputs"],
        "classes": [0, 1],
        "result_key": "Predicted Class = ",
        "metrics": card["metrics"],
        "source": card["source"],
    }
    assert classifier["metrics"]["accuracy"] > 0.8
    assert classifier["input_schema"]["required"] == ["monthly_fee", "customer_age", "support_calls"]
    assert client.get(f"/api/v1/models/{CLASSIFIER_NAME}").get_json() == classifier
    regressor, plans = models[1], models[2]
    assert regressor["classes"] is None and regressor["source"] is None
    assert plans["classes"] == ["leave", "stay"] and plans["result_key"] == "prediction"
    assert plans["endpoint"] == f"/api/v1/models/{PLAN_NAME}/predictions"


def test_unknown_model_is_a_404_naming_it(client):
    for response in (client.get("/api/v1/models/random-forest"),
                     client.post("/api/v1/models/random-forest/predictions", json={})):
        body = assert_error(response, 404, "not_found")
        assert "random-forest" in body["message"] and CLASSIFIER_NAME in body["message"]


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


def test_tampered_model_file_serves_503_and_logs_why(tmp_path, model_dir, caplog):
    broken = shutil.copytree(model_dir, tmp_path / "models")
    onnx = broken / REGRESSOR_NAME / "model.onnx"
    onnx.write_bytes(onnx.read_bytes() + b"\0")
    _assert_not_ready(_broken_app(broken))
    assert f"model {REGRESSOR_NAME}: model.onnx: its SHA-256 is not the card's" in caplog.text


def test_empty_repository_serves_503(tmp_path, caplog):
    _assert_not_ready(_broken_app(tmp_path))
    assert "holds no model folder" in caplog.text
