"""Prometheus metrics counted by the API in each process that serves it.

Under Gunicorn, prometheus_client runs in multiprocess mode (gunicorn.conf.py
sets PROMETHEUS_MULTIPROC_DIR): every worker writes its samples to files of
its own, and the master serves their sum on the metrics port
(mlapi.replica_metrics). Outside Gunicorn the samples stay in the process,
on prometheus_client's default registry.

Label values come from the code or the model repository, never from the
client: names and versions of loaded models, route templates, status codes,
error and problem codes, and input names of the model. A request for a model
that is not loaded is counted by its route only.
"""

import functools
import re

from flask import current_app, g, request
from prometheus_client import Counter, Histogram

# A model run takes tens of microseconds for one record and a few
# milliseconds for a batch of 1000; beyond 1 s something else is wrong.
DURATION_BUCKETS = (25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 100e-3, 1.0)
BATCH_SIZE_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)

# The field label of a problem that names no input of the model: an unknown
# key (the client's text) or a record that is not an object.
OTHER_FIELD = "_other"
UNMATCHED_ROUTE = "unmatched"

HTTP_REQUESTS = Counter(
    "mlapi_http_requests_total",
    "Responses other than predictions' (mlapi_prediction_requests_total counts those), by route"
    " template (unmatched: no route, a 404 or 405) and status code.",
    ["route", "status"],
)
PREDICTION_REQUESTS = Counter(
    "mlapi_prediction_requests_total",
    "Prediction requests by model, its version and outcome: ok, or the error code of the response.",
    ["model", "model_version", "outcome"],
)
VALIDATION_ERRORS = Counter(
    "mlapi_prediction_validation_errors_total",
    "Problems reported for prediction records, by model, input field (_other: an unknown key"
    " or a record that is not an object) and problem code; at most 50 per request.",
    ["model", "model_version", "field", "code"],
)
PREDICTION_DURATION = Histogram(
    "mlapi_prediction_duration_seconds",
    "Time the app took to answer a successful prediction request, from routing to the JSON"
    " response: reading and validating the body, the model run, serialising. Gunicorn's HTTP"
    " handling and any queueing come on top.",
    ["model", "model_version"],
    buckets=DURATION_BUCKETS,
)
BATCH_SIZE = Histogram(
    "mlapi_prediction_batch_size",
    "Records per successful batch request (a JSON array body; a single-record body is not"
    " observed, to keep to one histogram observation per request).",
    ["model", "model_version"],
    buckets=BATCH_SIZE_BUCKETS,
)

# Binding a label set costs as much as counting: bind each set once per process.
_http_requests = functools.cache(HTTP_REQUESTS.labels)
_prediction_requests = functools.cache(PREDICTION_REQUESTS.labels)
_validation_errors = functools.cache(VALIDATION_ERRORS.labels)
_prediction_duration = functools.cache(PREDICTION_DURATION.labels)
_batch_size = functools.cache(BATCH_SIZE.labels)


@functools.cache
def route_template(rule):
    """A URL rule without its converters: /api/v1/models/<model_name>/predictions."""
    return re.sub(r"<[^>]*?(\w+)>", r"<\1>", rule)


def count_response(response):
    """After every request: count the response once, a prediction's by its outcome."""
    current = request._get_current_object()  # one context look-up, not one per attribute
    rule = current.url_rule
    status = response.status_code
    if rule is None:
        _http_requests(UNMATCHED_ROUTE, status).inc()
    elif rule.endpoint == "api.predict" and (model := _loaded_model(current.view_args["model_name"])):
        # Every error response carries a code (errors.error_response).
        outcome = "ok" if status == 200 else g.error_code
        _prediction_requests(model.name, model.version, outcome).inc()
    else:
        _http_requests(route_template(rule.rule), status).inc()
    return response


def _loaded_model(name):
    return (current_app.extensions["mlapi"].models or {}).get(name)


def observe_prediction(model, records, is_batch, seconds):
    _prediction_duration(model.name, model.version).observe(seconds)
    if is_batch:
        _batch_size(model.name, model.version).observe(records)


def count_problems(model, problems):
    for problem in problems:
        _validation_errors(model.name, model.version, _problem_field(model, problem), problem.code).inc()


def _problem_field(model, problem):
    # The field path is "name", "[3].name", or the record itself ("", "[3]");
    # an unknown key is the client's text and never becomes a label.
    if problem.code != "unknown_field":
        name = problem.field.rpartition(".")[2]
        if name in model.schema.names:
            return name
    return OTHER_FIELD
