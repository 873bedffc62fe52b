"""The OpenAPI document is valid and states exactly what the API does."""

import json

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

from mlapi_testing import (
    CLASSIFIER_URL,
    INVALID_RECORDS,
    REGRESSOR_URL,
    SEED_CLASSIFIER_PAYLOAD,
    SEED_REGRESSOR_PAYLOAD,
    VALID_RECORDS,
)
from model_repository import PLAN_NAME


def _validator(openapi, schema):
    # Component references resolve against the document's components.
    return Draft202012Validator({**schema, "components": openapi["components"]})


def _request_schema(openapi, url):
    return openapi["paths"][url]["post"]["requestBody"]["content"]["application/json"]["schema"]


def _response_schema(openapi, path, method, status):
    response = openapi["paths"][path][method]["responses"][str(status)]
    if "$ref" in response:
        response = openapi["components"]["responses"][response["$ref"].rsplit("/", 1)[-1]]
    return response["content"]["application/json"]["schema"]


def _assert_documented(openapi, path, method, response):
    schema = _response_schema(openapi, path, method, response.status_code)
    assert response.mimetype == "application/json"
    errors = list(_validator(openapi, schema).iter_errors(response.get_json()))
    assert not errors, errors[0].message


def test_document_is_valid_openapi_3_1(openapi):
    assert openapi["openapi"].startswith("3.1")
    validate(openapi)


def test_every_served_route_and_method_is_documented(app, openapi):
    served = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/v2"):
            continue  # the Open Inference Protocol has a specification of its own
        if "model_name" not in rule.arguments:
            paths = [rule.rule]
        elif rule.rule.endswith("/predictions"):
            paths = [model.endpoint for model in app.extensions["mlapi"].models.values()]
        else:
            paths = ["/api/v1/models/{model_name}"]
        served.update((path, method.lower()) for path in paths for method in rule.methods)
    documented = {(path, method) for path, item in openapi["paths"].items() for method in item}
    assert served == documented


@pytest.mark.parametrize("url, record, field, code", INVALID_RECORDS)
def test_schema_rejects_what_the_api_rejects(openapi, url, record, field, code):
    assert not _validator(openapi, _request_schema(openapi, url)).is_valid(record)
    assert not _validator(openapi, _request_schema(openapi, url)).is_valid([record])


@pytest.mark.parametrize("url, record", VALID_RECORDS)
def test_schema_accepts_what_the_api_accepts(openapi, url, record):
    assert _validator(openapi, _request_schema(openapi, url)).is_valid(record)
    assert _validator(openapi, _request_schema(openapi, url)).is_valid([record, record])


def test_schema_bounds_the_batch(app, openapi):
    validator = _validator(openapi, _request_schema(openapi, CLASSIFIER_URL))
    max_batch = app.config["MLAPI_MAX_BATCH"]
    assert not validator.is_valid([])
    assert validator.is_valid([SEED_CLASSIFIER_PAYLOAD] * max_batch)
    assert not validator.is_valid([SEED_CLASSIFIER_PAYLOAD] * (max_batch + 1))


@pytest.mark.parametrize("url", [CLASSIFIER_URL, REGRESSOR_URL, f"/api/v1/models/{PLAN_NAME}/predictions"])
def test_examples_are_valid_and_accepted(client, openapi, url):
    media = openapi["paths"][url]["post"]["requestBody"]["content"]["application/json"]
    for example in media["examples"].values():
        assert _validator(openapi, media["schema"]).is_valid(example["value"])
        response = client.post(url, json=example["value"])
        assert response.status_code == 200
        _assert_documented(openapi, url, "post", response)


@pytest.mark.parametrize(
    "url, kwargs",
    [
        (CLASSIFIER_URL, {"json": SEED_CLASSIFIER_PAYLOAD}),
        (REGRESSOR_URL, {"json": [SEED_REGRESSOR_PAYLOAD] * 3}),
        (f"/api/v1/models/{PLAN_NAME}/predictions", {"json": {"monthly_fee": 1, "plan": "basic", "support_calls": 0}}),
        (CLASSIFIER_URL, {"json": {"monthly_fee": "x"}}),
        (CLASSIFIER_URL, {"json": []}),
        (CLASSIFIER_URL, {"data": "{", "content_type": "application/json"}),
        (CLASSIFIER_URL, {"data": json.dumps(SEED_CLASSIFIER_PAYLOAD), "content_type": "text/plain"}),
        (CLASSIFIER_URL, {"data": " " * 70000, "content_type": "application/json"}),
    ],
)
def test_prediction_responses_match_the_documented_schemas(client, openapi, url, kwargs):
    _assert_documented(openapi, url, "post", client.post(url, **kwargs))


@pytest.mark.parametrize(
    "path, documented_path",
    [
        ("/api/health", "/api/health"),
        ("/api/health/live", "/api/health/live"),
        ("/api/v1/models", "/api/v1/models"),
        ("/api/v1/models/decision-tree-regressor", "/api/v1/models/{model_name}"),
        ("/api/v1/models/gradient-boosting", "/api/v1/models/{model_name}"),
    ],
)
def test_read_responses_match_the_documented_schemas(client, openapi, path, documented_path):
    _assert_documented(openapi, documented_path, "get", client.get(path))


def test_documented_405_and_error_components(client, openapi):
    response = client.get(CLASSIFIER_URL)
    schema = openapi["components"]["responses"]["MethodNotAllowed"]["content"]["application/json"]["schema"]
    assert _validator(openapi, schema).is_valid(response.get_json())


def test_unavailable_responses_match_the_documented_schemas(tmp_path, openapi):
    from mlapi.app import create_app

    client = create_app({"MLAPI_MODEL_DIR": str(tmp_path)}).test_client()
    _assert_documented(openapi, "/api/health", "get", client.get("/api/health"))
    _assert_documented(openapi, CLASSIFIER_URL, "post", client.post(CLASSIFIER_URL, json=SEED_CLASSIFIER_PAYLOAD))
