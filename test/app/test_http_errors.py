"""HTTP-level errors (404, 405, 413, 415, 500) are JSON in the same shape."""

import io
import json

import pytest

from mlapi_testing import CLASSIFIER_URL, SEED_CLASSIFIER_PAYLOAD, assert_error


@pytest.mark.parametrize(
    "path",
    ["/", "/api", "/api/v2/models", "/api/v1/models/", "/api/v1/models/a/b", "/v1/models"],
)
def test_unknown_paths_are_json_404(client, path):
    assert_error(client.get(path), 404, "not_found")


def test_unknown_model_is_404(client):
    assert_error(client.post("/api/v1/models/random-forest/predictions", json={}), 404, "not_found")
    assert_error(client.get("/api/v1/models/random-forest"), 404, "not_found")
    # The route exists for any name: another method is a 405, for a served model or not.
    assert_error(client.get("/api/v1/models/random-forest/predictions"), 405, "method_not_allowed")


@pytest.mark.parametrize(
    "method, path, allowed",
    [
        ("GET", CLASSIFIER_URL, {"POST"}),
        ("PUT", CLASSIFIER_URL, {"POST"}),
        ("OPTIONS", CLASSIFIER_URL, {"POST"}),
        ("POST", "/api/health", {"GET", "HEAD"}),
        ("DELETE", "/api/v1/models", {"GET", "HEAD"}),
        ("PATCH", "/api/v1/openapi.json", {"GET", "HEAD"}),
    ],
)
def test_wrong_method_is_json_405_with_allow(client, method, path, allowed):
    response = client.open(path, method=method)
    assert_error(response, 405, "method_not_allowed")
    assert set(response.headers["Allow"].replace(" ", "").split(",")) == allowed


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/vnd.api+json",
        "application/json; charset=latin-1",
    ],
)
def test_non_json_content_type_is_415(client, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    response = client.post(CLASSIFIER_URL, data=json.dumps(SEED_CLASSIFIER_PAYLOAD), headers=headers)
    assert_error(response, 415, "unsupported_media_type")


def test_body_over_the_limit_is_json_413(make_app):
    client = make_app(MLAPI_MAX_BODY_BYTES=100).test_client()
    padded = json.dumps(SEED_CLASSIFIER_PAYLOAD) + " " * 100
    body = assert_error(
        client.post(CLASSIFIER_URL, data=padded, content_type="application/json"), 413, "payload_too_large"
    )
    assert "100 bytes" in body["message"]
    assert client.post(CLASSIFIER_URL, json=SEED_CLASSIFIER_PAYLOAD).status_code == 200


def test_chunked_body_over_the_limit_is_json_413(make_app):
    # A chunked request has no Content-Length; the limit must hold while reading.
    client = make_app(MLAPI_MAX_BODY_BYTES=100).test_client()
    response = client.post(
        CLASSIFIER_URL,
        input_stream=io.BytesIO(b"[" + b" " * 1000 + b"]"),
        headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert_error(response, 413, "payload_too_large")


def test_unexpected_exception_is_json_500_without_traceback(make_app):
    app = make_app()

    def fail():
        raise RuntimeError("secret internals")

    app.add_url_rule("/api/fail", view_func=fail)
    response = app.test_client().get("/api/fail")
    body = assert_error(response, 500, "internal_error")
    assert "secret internals" not in response.get_data(as_text=True)
    assert body["message"] == "The server failed to handle the request."


def test_error_responses_are_not_cached(client):
    assert client.get("/nowhere").headers["Cache-Control"] == "no-store"
