"""The Flask application factory."""

import json
import os
from dataclasses import dataclass

from flask import Flask, request
from flask.json.provider import DefaultJSONProvider

from . import api, inference, metrics
from .config import normalize_settings, settings_from_env
from .errors import register_error_handlers
from .openapi import build_openapi
from .registry import ModelLoadError, load_models
from .request_ids import repeatable_request_id


class JsonProvider(DefaultJSONProvider):
    """Flask's JSON, compact and in insertion order, with one encoder made once:
    json.dumps with options builds a new encoder for every response."""

    sort_keys = False
    compact = True
    _COMPACT = {"separators": (",", ":")}

    def __init__(self, app):
        super().__init__(app)
        self._encoder = json.JSONEncoder(
            default=self.default, ensure_ascii=self.ensure_ascii, sort_keys=False, separators=(",", ":")
        )

    def dumps(self, obj, **kwargs):
        if kwargs and kwargs != self._COMPACT:
            return super().dumps(obj, **kwargs)
        return self._encoder.encode(obj)


@dataclass(frozen=True)
class ServingState:
    models: dict | None  # name -> registry.Model; None if the repository failed to load
    openapi: dict | None


def create_app(config=None):
    """Create the API. Settings come from MLAPI_* environment variables, then ``config``.

    The model repository is loaded here, once: under Gunicorn's preload_app
    every worker shares the models and their ONNX Runtime sessions. A
    repository that cannot be loaded does not stop the process; it serves
    503s (readiness fails) and logs the reason.
    """
    app = Flask(__name__, static_folder=None)
    app.config.from_mapping(settings_from_env(os.environ))
    if config:
        app.config.from_mapping(config)
    normalize_settings(app.config)
    # One byte over the limit, so that payload.read_json_body can tell a cut-off chunked body.
    app.config["MAX_CONTENT_LENGTH"] = app.config["MLAPI_MAX_BODY_BYTES"] + 1
    # No implicit OPTIONS answers: every method not documented gets a 405.
    app.config["PROVIDE_AUTOMATIC_OPTIONS"] = False
    app.json = JsonProvider(app)

    app.extensions["mlapi"] = _load_state(app)
    register_error_handlers(app)
    app.register_blueprint(api.blueprint)
    app.register_blueprint(inference.blueprint)
    app.after_request(_add_response_headers)
    # No metrics port, no counting: nothing would read the samples.
    if app.config["MLAPI_METRICS_PORT"]:
        app.after_request(metrics.count_response)
    return app


def _load_state(app):
    try:
        models = load_models(app.config["MLAPI_MODEL_DIR"])
    except ModelLoadError as error:
        app.logger.error("models not loaded, serving 503: %s", error)
        return ServingState(models=None, openapi=None)
    document = build_openapi(models, app.config["MLAPI_MAX_BATCH"], app.config["MLAPI_MAX_BODY_BYTES"])
    return ServingState(models=models, openapi=document)


def _add_response_headers(response):
    # Predictions depend on the request body and health on the moment:
    # neither may be stored by a cache on the way.
    response.headers["Cache-Control"] = "no-store"
    request_id = repeatable_request_id(request.headers.get("X-Request-ID"))
    if request_id:
        response.headers["X-Request-ID"] = request_id
    return response
