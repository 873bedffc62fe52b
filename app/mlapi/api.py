"""The HTTP endpoints, all under /api."""

import os
import time

from flask import Blueprint, current_app, jsonify

from . import metrics
from .errors import ApiError, invalid_input
from .payload import read_json_body, records_of

blueprint = Blueprint("api", __name__, url_prefix="/api")


def _state():
    return current_app.extensions["mlapi"]


def _loaded_models():
    models = _state().models
    if models is None:
        raise ApiError(503, "model_unavailable", "The models are not loaded; try another replica.")
    return models


def loaded_model(name):
    """The served model called name, or raise the 503 (nothing loaded) or a 404 naming it."""
    models = _loaded_models()
    if name not in models:
        raise ApiError(404, "not_found", f"No model is called {name!r}; served: {', '.join(models)}.")
    return models[name]


@blueprint.get("/health")
def readiness():
    models = _state().models
    body = {
        "status": "ok" if models is not None else "unavailable",
        "replica": current_app.config["MLAPI_REPLICA_NAME"],
        "pid": os.getpid(),
        "models": {name: model.version for name, model in (models or {}).items()},
    }
    if models is None:
        body["message"] = "The models are not loaded; the service log says why."
        return jsonify(body), 503
    return jsonify(body)


@blueprint.get("/health/live")
def liveness():
    return jsonify(status="alive", replica=current_app.config["MLAPI_REPLICA_NAME"], pid=os.getpid())


@blueprint.get("/v1/models")
def list_models():
    return jsonify(models=[model.describe() for model in _loaded_models().values()])


@blueprint.get("/v1/models/<model_name>")
def show_model(model_name):
    return jsonify(loaded_model(model_name).describe())


@blueprint.post("/v1/models/<model_name>/predictions")
def predict(model_name):
    started = time.perf_counter()
    model = loaded_model(model_name)
    records, is_batch = records_of(read_json_body(), current_app.config["MLAPI_MAX_BATCH"])
    rows, problems = model.schema.parse_records(records, is_batch)
    if problems:
        if current_app.config["MLAPI_METRICS_PORT"]:
            metrics.count_problems(model, problems)
        raise invalid_input(problems)
    results = model.results(rows)  # one session run for the whole batch
    response = jsonify(results if is_batch else results[0])
    if current_app.config["MLAPI_METRICS_PORT"]:
        metrics.observe_prediction(model, len(rows), is_batch, time.perf_counter() - started)
    return response


@blueprint.get("/v1/openapi.json")
def openapi_document():
    _loaded_models()
    return jsonify(_state().openapi)
