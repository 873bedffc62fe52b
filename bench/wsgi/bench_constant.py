"""Bench-only WSGI entry point: the real app plus a trivial constant-JSON endpoint.

    gunicorn -c app/gunicorn.conf.py bench_constant:app   (PYTHONPATH=app:bench/wsgi)

``POST|GET /api/bench/constant`` answers a fixed JSON object of the same
shape and size as a classifier prediction, through the very same Flask
application object (its after_request hook, error handlers, Gunicorn
settings and Nginx location), but without reading the body, validating or
walking a tree. Its throughput is the framework-plus-proxy limit the
prediction endpoint is compared with.

This module lives under bench/ and is put on PYTHONPATH only by bench/run.ts:
no image contains it, so production never serves the route.
"""

from flask import jsonify

from mlapi.wsgi import app

_model = app.extensions["mlapi"].models["decision-tree-classifier"]
CONSTANT = {_model.result_key: 0, "prediction": 0, "model": _model.name, "model_version": _model.version}


def constant():
    return jsonify(CONSTANT)


app.add_url_rule("/api/bench/constant", "bench_constant", constant, methods=["GET", "POST"])
