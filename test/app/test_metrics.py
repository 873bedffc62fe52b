"""Prometheus metrics counted in the app (one process; Gunicorn's replica sum is in test_replica_metrics)."""

import pytest
from prometheus_client import REGISTRY

from mlapi.metrics import route_template
from mlapi_testing import CLASSIFIER_URL, REGRESSOR_URL, SEED_CLASSIFIER_PAYLOAD, SEED_REGRESSOR_PAYLOAD, assert_error, churn
from model_repository import VERSION

CLASSIFIER = {"model": "decision-tree-classifier", "model_version": VERSION}
REGRESSOR = {"model": "decision-tree-regressor", "model_version": VERSION}
PREDICTIONS_ROUTE = "/api/v1/models/<model_name>/predictions"


class Samples:
    """Sample values read now, and how much they grew since."""

    def __init__(self):
        self._before = {}

    def _key(self, name, labels):
        return name, tuple(sorted(labels.items()))

    def __call__(self, name, **labels):
        """The growth of a sample since the first call for it."""
        key = self._key(name, labels)
        value = REGISTRY.get_sample_value(name, labels) or 0.0
        return value - self._before.setdefault(key, value)


@pytest.fixture
def grown():
    return Samples()


SAMPLES = [
    ("mlapi_http_requests_total", {"route": PREDICTIONS_ROUTE, "status": "200"}),
    ("mlapi_http_requests_total", {"route": PREDICTIONS_ROUTE, "status": "400"}),
    ("mlapi_http_requests_total", {"route": PREDICTIONS_ROUTE, "status": "413"}),
    ("mlapi_http_requests_total", {"route": PREDICTIONS_ROUTE, "status": "415"}),
    ("mlapi_http_requests_total", {"route": "unmatched", "status": "404"}),
    ("mlapi_http_requests_total", {"route": PREDICTIONS_ROUTE, "status": "404"}),
    ("mlapi_http_requests_total", {"route": "unmatched", "status": "405"}),
    ("mlapi_http_requests_total", {"route": "/api/health", "status": "200"}),
    ("mlapi_prediction_requests_total", {**CLASSIFIER, "outcome": "ok"}),
    ("mlapi_prediction_requests_total", {**REGRESSOR, "outcome": "ok"}),
    ("mlapi_prediction_requests_total", {**CLASSIFIER, "outcome": "invalid_input"}),
    ("mlapi_prediction_requests_total", {**CLASSIFIER, "outcome": "invalid_json"}),
    ("mlapi_prediction_requests_total", {**CLASSIFIER, "outcome": "payload_too_large"}),
    ("mlapi_prediction_requests_total", {**REGRESSOR, "outcome": "unsupported_media_type"}),
    ("mlapi_prediction_validation_errors_total", {**CLASSIFIER, "field": "customer_age", "code": "out_of_range"}),
    ("mlapi_prediction_validation_errors_total", {**CLASSIFIER, "field": "support_calls", "code": "missing_field"}),
    ("mlapi_prediction_validation_errors_total", {**CLASSIFIER, "field": "_other", "code": "unknown_field"}),
    ("mlapi_prediction_validation_errors_total", {**CLASSIFIER, "field": "_other", "code": "wrong_type"}),
    ("mlapi_prediction_duration_seconds_count", CLASSIFIER),
    ("mlapi_prediction_duration_seconds_bucket", {**CLASSIFIER, "le": "0.1"}),
    ("mlapi_prediction_duration_seconds_count", REGRESSOR),
    ("mlapi_prediction_batch_size_count", CLASSIFIER),
    ("mlapi_prediction_batch_size_sum", CLASSIFIER),
    ("mlapi_prediction_batch_size_bucket", {**CLASSIFIER, "le": "1.0"}),
    ("mlapi_prediction_batch_size_bucket", {**CLASSIFIER, "le": "5.0"}),
    ("mlapi_prediction_batch_size_sum", REGRESSOR),
]


def send_traffic(client, good=5, bad=3):
    """good + 3 classifier and 2 regressor predictions, bad x 8 failures of several kinds; returns the growth expected."""
    for _ in range(good):
        assert client.post(CLASSIFIER_URL, json=SEED_CLASSIFIER_PAYLOAD).status_code == 200
    assert client.post(CLASSIFIER_URL, json=[SEED_CLASSIFIER_PAYLOAD] * 3).status_code == 200
    for _ in range(2):
        assert client.post(REGRESSOR_URL, json=SEED_REGRESSOR_PAYLOAD).status_code == 200
    for _ in range(bad):
        assert_error(client.post(CLASSIFIER_URL, json=churn(customer_age=17)), 400, "invalid_input", "customer_age")
        # A batch: one record misses a field and has a key of the client's, one is not an object.
        batch = [SEED_CLASSIFIER_PAYLOAD, {"monthly_fee": 1, "customer_age": 30, "evil} label": 1}, 7]
        assert_error(client.post(CLASSIFIER_URL, json=batch), 400, "invalid_input", "[1].support_calls")
        assert_error(client.post(CLASSIFIER_URL, data="{", content_type="application/json"), 400, "invalid_json")
        big = b"[" + b" " * 70000 + b"]"
        assert_error(client.post(CLASSIFIER_URL, data=big, content_type="application/json"), 413, "payload_too_large")
        assert_error(client.post(REGRESSOR_URL, data="x", content_type="text/plain"), 415, "unsupported_media_type")
        assert_error(client.post("/api/v1/models/random-forest/predictions?x=1", json={}), 404, "not_found")
        assert_error(client.get("/metrics"), 404, "not_found")
        assert_error(client.get(CLASSIFIER_URL), 405, "method_not_allowed")
    assert client.get("/api/health").status_code == 200
    return [
        0, 0, 0, 0, bad, bad, bad, 1,  # responses: predictions' of served models count in the next counter
        good + 1, 2, 2 * bad, bad, bad, bad,  # prediction outcomes
        bad, bad, bad, bad,  # validation problems
        good + 1, good + 1, 2,  # durations: one record or three answer well within 100 ms
        1, 3, 0, 1, 0,  # batch sizes: only the batch of 3
    ]


def test_metrics_count_what_happens(client, grown):
    for name, labels in SAMPLES:
        grown(name, **labels)
    grown("mlapi_prediction_duration_seconds_sum", **CLASSIFIER)
    expected = send_traffic(client, good=5, bad=3)
    assert [grown(name, **labels) for name, labels in SAMPLES] == expected
    assert 0 < grown("mlapi_prediction_duration_seconds_sum", **CLASSIFIER) < 1


def test_labels_never_hold_client_text(client):
    send_traffic(client, good=1, bad=1)
    label_values = {
        value
        for family in REGISTRY.collect() if family.name.startswith("mlapi_")
        for sample in family.samples for value in sample.labels.values()
    }
    assert not any("evil" in value or "random-forest" in value or "?" in value or "[" in value for value in label_values)
    assert {"unmatched", "/api/health", CLASSIFIER["model"], VERSION, "customer_age", "_other"} <= label_values


def test_metrics_port_0_counts_nothing(make_app, grown):
    client = make_app(MLAPI_METRICS_PORT=0).test_client()
    for name, labels in SAMPLES:
        grown(name, **labels)
    send_traffic(client, good=2, bad=1)
    assert [grown(name, **labels) for name, labels in SAMPLES] == [0] * len(SAMPLES)


@pytest.mark.parametrize("path", ["/metrics", "/api/metrics", "/api/v1/metrics"])
def test_the_api_does_not_serve_metrics(client, path):
    assert_error(client.get(path), 404, "not_found")


@pytest.mark.parametrize("value", ["-1", "65536", "nine", "1.5"])
def test_bad_metrics_port_stops_the_start(make_app, value):
    with pytest.raises(ValueError, match="MLAPI_METRICS_PORT"):
        make_app(MLAPI_METRICS_PORT=value)


@pytest.mark.parametrize(
    "rule, template",
    [
        ('/api/v1/models/<any("a", "b"):model_name>/predictions', "/api/v1/models/<model_name>/predictions"),
        ("/api/items/<int:item_id>/parts/<name>", "/api/items/<item_id>/parts/<name>"),
        ("/api/health", "/api/health"),
    ],
)
def test_route_template(rule, template):
    assert route_template(rule) == template
