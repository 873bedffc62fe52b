"""The Open Inference Protocol (KServe V2) REST API under /v2, through the Flask test client.

The same API with a real client (tritonclient) against Gunicorn is in test_gunicorn.
"""

import json

import pytest

from mlapi.app import create_app
from mlapi_testing import SEED_CLASSIFIER_PAYLOAD, SEED_REGRESSOR_PAYLOAD
from model_repository import CLASSIFIER_NAME, PLAN_NAME, REGRESSOR_NAME, VERSION

CLASSIFIER_INFER = f"/v2/models/{CLASSIFIER_NAME}/infer"


def tensors(records, datatypes):
    """The input tensors (shape [N, 1], nested data) of records."""
    return [
        {"name": name, "shape": [len(records), 1], "datatype": datatype, "data": [[record[name]] for record in records]}
        for name, datatype in datatypes.items()
    ]


CHURN_TYPES = {"monthly_fee": "FP64", "customer_age": "INT64", "support_calls": "INT64"}
SALES_TYPES = {"CustomerType": "BYTES", "BranchSubCounty": "BYTES", "ProductCategoryName": "BYTES",
               "QuantityOrdered": "INT64", "PaymentDate": "BYTES"}
PLAN_TYPES = {"monthly_fee": "FP64", "plan": "BYTES", "support_calls": "INT64"}


def assert_protocol_error(response, status, *words):
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert list(body) == ["error"] and isinstance(body["error"], str)
    for word in words:
        assert word in body["error"]
    return body["error"]


def test_server_metadata_and_health(client):
    assert client.get("/v2").get_json() == {"name": "mlapi", "version": "1.0.0", "extensions": []}
    live = client.get("/v2/health/live")
    assert live.status_code == 200 and live.get_json() == {"live": True}
    ready = client.get("/v2/health/ready")
    assert ready.status_code == 200 and ready.get_json() == {"ready": True}


def test_model_metadata(client):
    for path in (f"/v2/models/{CLASSIFIER_NAME}", f"/v2/models/{CLASSIFIER_NAME}/versions/{VERSION}"):
        assert client.get(path).get_json() == {
            "name": CLASSIFIER_NAME,
            "versions": [VERSION],
            "platform": "onnxruntime_onnx",
            "inputs": [
                {"name": "monthly_fee", "datatype": "FP64", "shape": [-1, 1]},
                {"name": "customer_age", "datatype": "INT64", "shape": [-1, 1]},
                {"name": "support_calls", "datatype": "INT64", "shape": [-1, 1]},
            ],
            "outputs": [
                {"name": "label", "datatype": "INT64", "shape": [-1]},
                {"name": "probabilities", "datatype": "FP32", "shape": [-1, 2]},
            ],
        }
    regressor = client.get(f"/v2/models/{REGRESSOR_NAME}").get_json()
    assert [tensor["datatype"] for tensor in regressor["inputs"]] == list(SALES_TYPES.values())
    assert regressor["outputs"] == [{"name": "prediction", "datatype": "FP64", "shape": [-1]}]
    plans = client.get(f"/v2/models/{PLAN_NAME}").get_json()
    assert plans["outputs"][0] == {"name": "label", "datatype": "BYTES", "shape": [-1]}


def test_model_ready(client):
    for path in (f"/v2/models/{REGRESSOR_NAME}/ready", f"/v2/models/{REGRESSOR_NAME}/versions/{VERSION}/ready"):
        response = client.get(path)
        assert response.status_code == 200 and response.get_json() == {"name": REGRESSOR_NAME, "ready": True}


@pytest.mark.parametrize("path", [
    "/v2/models/random-forest", "/v2/models/random-forest/ready", f"/v2/models/{CLASSIFIER_NAME}/versions/2",
    f"/v2/models/{CLASSIFIER_NAME}/versions/2/ready", "/v2/nowhere",
])
def test_unknown_model_version_or_path_is_a_404(client, path):
    assert_protocol_error(client.get(path), 404)


def test_unknown_model_or_version_named_in_the_error(client):
    assert_protocol_error(client.post("/v2/models/random-forest/infer", json={"inputs": []}), 404, "random-forest")
    error = assert_protocol_error(
        client.post(f"/v2/models/{CLASSIFIER_NAME}/versions/0.9/infer", json={"inputs": []}), 404, "'0.9'")
    assert VERSION in error


def test_infer_classifier_batch_equals_api_v1(client):
    records = [SEED_CLASSIFIER_PAYLOAD, {"monthly_fee": 280, "customer_age": 20, "support_calls": 12}]
    response = client.post(CLASSIFIER_INFER, json={"id": "req-1", "inputs": tensors(records, CHURN_TYPES)})
    assert response.status_code == 200
    body = response.get_json()
    v1 = client.post(f"/api/v1/models/{CLASSIFIER_NAME}/predictions", json=records).get_json()
    assert list(body) == ["model_name", "model_version", "id", "outputs"]
    assert body["model_name"] == CLASSIFIER_NAME and body["model_version"] == VERSION and body["id"] == "req-1"
    label, probabilities = body["outputs"]
    assert label == {"name": "label", "shape": [2], "datatype": "INT64", "data": [a["prediction"] for a in v1]}
    assert probabilities["name"] == "probabilities" and probabilities["datatype"] == "FP32"
    assert probabilities["shape"] == [2, 2]
    assert probabilities["data"] == [p for a in v1 for p in a["probabilities"].values()]


def test_infer_regressor_flat_data_and_chosen_outputs(client, trained):
    records = trained[REGRESSOR_NAME].records[:5]
    inputs = [dict(tensor, shape=[5], data=[row[0] for row in tensor["data"]])
              for tensor in tensors(records, SALES_TYPES)]
    body = client.post(f"/v2/models/{REGRESSOR_NAME}/versions/{VERSION}/infer",
                       json={"inputs": inputs, "outputs": [{"name": "prediction"}], "parameters": {}}).get_json()
    v1 = client.post(f"/api/v1/models/{REGRESSOR_NAME}/predictions", json=records).get_json()
    assert "id" not in body
    assert body["outputs"] == [{"name": "prediction", "shape": [5], "datatype": "FP64",
                                "data": [a["prediction"] for a in v1]}]


def test_infer_string_labels_and_one_output(client):
    records = [{"monthly_fee": 10, "plan": "pro", "support_calls": 0}, {"monthly_fee": 290, "plan": "basic",
                                                                          "support_calls": 15}]
    body = client.post(f"/v2/models/{PLAN_NAME}/infer",
                       json={"inputs": tensors(records, PLAN_TYPES), "outputs": [{"name": "label"}]}).get_json()
    assert body["outputs"] == [{"name": "label", "shape": [2], "datatype": "BYTES", "data": ["stay", "leave"]}]


def test_tensors_may_come_in_any_order(client):
    inputs = tensors([SEED_REGRESSOR_PAYLOAD], SALES_TYPES)[::-1]
    assert client.post(f"/v2/models/{REGRESSOR_NAME}/infer", json={"inputs": inputs}).status_code == 200


def _churn_request(**changes):
    """One-record classifier request with the monthly_fee tensor changed (None removes a key)."""
    inputs = tensors([SEED_CLASSIFIER_PAYLOAD], CHURN_TYPES)
    inputs[0].update(changes)
    inputs[0] = {key: value for key, value in inputs[0].items() if value is not None}
    return {"inputs": inputs}


@pytest.mark.parametrize("body, words", [
    pytest.param(_churn_request(data=[[-1]]), ["monthly_fee", "[0] must be between 0 and 300, got -1"],
                 id="out-of-range"),
    pytest.param(_churn_request(data=[["60"]]), ["monthly_fee", "must be a number, got string"], id="string-number"),
    pytest.param(_churn_request(data=[[True]]), ["monthly_fee", "must be a number, got boolean"], id="bool"),
    pytest.param(_churn_request(data=[[None]]), ["monthly_fee", "got null"], id="null"),
    pytest.param(_churn_request(datatype="FP32"), ["monthly_fee", "must have datatype FP64, got 'FP32'"],
                 id="datatype"),
    pytest.param(_churn_request(datatype=None), ["monthly_fee", "datatype FP64"], id="no-datatype"),
    pytest.param(_churn_request(shape=[1, 2]), ["monthly_fee", "shape [N] or [N, 1], got [1, 2]"], id="shape-wide"),
    pytest.param(_churn_request(shape=[1, 1, 1]), ["monthly_fee", "shape [N] or [N, 1]"], id="shape-rank"),
    pytest.param(_churn_request(shape=[-1, 1]), ["monthly_fee", "shape"], id="shape-negative"),
    pytest.param(_churn_request(shape="1"), ["monthly_fee", "shape"], id="shape-string"),
    pytest.param(_churn_request(shape=[2, 1]), ["monthly_fee", "has 1 values for shape [2, 1]"], id="shape-count"),
    pytest.param(_churn_request(data=60), ["monthly_fee", "data must be a list, got number"], id="data-scalar"),
    pytest.param(_churn_request(data=[[[60]]]), ["monthly_fee", "got array"], id="data-too-deep"),
    pytest.param(_churn_request(name="monthly_fees"), ["'monthly_fees' is not an input of"], id="unknown-input"),
    pytest.param(_churn_request(name=None), ["None is not an input of"], id="no-name"),
    pytest.param(_churn_request(name={"a": 1}), ["{'a': 1} is not an input of"], id="object-name"),
    pytest.param(_churn_request() | {"outputs": [{"name": ["label"]}]}, ["['label'] is not an output"],
                 id="list-output-name"),
    pytest.param({"inputs": tensors([SEED_CLASSIFIER_PAYLOAD], CHURN_TYPES)[1:]}, ["input 'monthly_fee' is missing"],
                 id="missing-input"),
    pytest.param({"inputs": tensors([SEED_CLASSIFIER_PAYLOAD], CHURN_TYPES) * 2}, ["given twice"], id="twice"),
    pytest.param({"inputs": tensors([SEED_CLASSIFIER_PAYLOAD], CHURN_TYPES)[:2]
                  + tensors([SEED_CLASSIFIER_PAYLOAD] * 2, CHURN_TYPES)[2:]}, ["different numbers of rows"],
                 id="ragged"),
    pytest.param({"inputs": tensors([], CHURN_TYPES)}, ["0 rows"], id="no-rows"),
    pytest.param(_churn_request() | {"outputs": [{"name": "scores"}]}, ["'scores' is not an output"],
                 id="unknown-output"),
    pytest.param(_churn_request() | {"outputs": "label"}, ["outputs must be a list"], id="outputs-type"),
    pytest.param(_churn_request() | {"outputs": [{"name": "label"}] * 2}, ["requested twice"], id="output-twice"),
    pytest.param(_churn_request() | {"id": 7}, ["id must be a string"], id="id-type"),
    pytest.param(_churn_request() | {"parameters": []}, ["parameters must be an object"], id="parameters-type"),
    pytest.param({"inputs": []}, ["inputs must be a non-empty list"], id="no-inputs"),
    pytest.param({"inputs": {"monthly_fee": 60}}, ["inputs must be a non-empty list"], id="inputs-object"),
    pytest.param({"inputs": [60]}, ["each tensor must be an object, got number"], id="tensor-scalar"),
    pytest.param([1, 2], ["must be a JSON object, got array"], id="body-array"),
])
def test_bad_requests_are_400_naming_the_problem(client, body, words):
    assert_protocol_error(client.post(CLASSIFIER_INFER, json=body), 400, *words)


@pytest.mark.parametrize("values, words", [
    (["Business", "Kilimani", "Meat-Based Dishes", 8, 20271113], ["PaymentDate", "must be a date string"]),
    (["Business", "Kilimani", "Meat-Based Dishes", 8, "2027-02-30"], ["PaymentDate", "is not a calendar date"]),
    (["Corporate", "Kilimani", "Meat-Based Dishes", 8, "2027-11-13"], ["CustomerType", "must be one of"]),
    ([1, "Kilimani", "Meat-Based Dishes", 8, "2027-11-13"], ["CustomerType", "must be a string, got number"]),
    (["Business", "Kilimani", "Meat-Based Dishes", 8.0, "2027-11-13"], ["QuantityOrdered", "INT64"]),
    (["Business", "Kilimani", "Meat-Based Dishes", 51, "2027-11-13"], ["QuantityOrdered", "between 1 and 50"]),
])
def test_bad_values_of_the_regressor(client, values, words):
    inputs = [{"name": name, "shape": [1], "datatype": datatype, "data": [value]}
              for (name, datatype), value in zip(SALES_TYPES.items(), values, strict=True)]
    assert_protocol_error(client.post(f"/v2/models/{REGRESSOR_NAME}/infer", json={"inputs": inputs}), 400, *words)


@pytest.mark.parametrize("data, content_type", [
    (b"{", "application/json"), (b"", "application/json"), (b"[" * 30000, "application/json"),
    (b'{"inputs": NaN}', "application/json"), (b"\xff", None),
])
def test_malformed_json_is_a_400(client, data, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    assert_protocol_error(client.post(CLASSIFIER_INFER, data=data, headers=headers), 400)


@pytest.mark.parametrize("content_type", [None, "application/json", "application/x-www-form-urlencoded", "text/plain"])
def test_json_is_read_whatever_the_content_type(client, content_type):
    # tritonclient sends no Content-Type, curl -d a form's.
    headers = {"Content-Type": content_type} if content_type else {}
    assert client.post(CLASSIFIER_INFER, data=json.dumps(_churn_request()), headers=headers).status_code == 200


def test_binary_tensor_data_is_refused(client):
    response = client.post(CLASSIFIER_INFER, data=json.dumps(_churn_request()),
                           headers={"Inference-Header-Content-Length": "10"})
    assert_protocol_error(response, 400, "Binary tensor data is not supported")


def test_batch_and_body_limits(make_app):
    client = make_app(MLAPI_MAX_BATCH=2, MLAPI_MAX_BODY_BYTES=2000).test_client()
    assert_protocol_error(
        client.post(CLASSIFIER_INFER, json={"inputs": tensors([SEED_CLASSIFIER_PAYLOAD] * 3, CHURN_TYPES)}),
        400, "3 rows; send 1 to 2")
    assert_protocol_error(client.post(CLASSIFIER_INFER, data=b" " * 3000, content_type="application/json"), 413)


def test_wrong_method_is_a_405_in_the_protocol_shape(client):
    response = client.get(CLASSIFIER_INFER)
    assert_protocol_error(response, 405)
    assert response.headers["Allow"] == "POST"


def test_unexpected_failure_is_a_500_without_traceback(make_app):
    app = make_app()
    app.extensions["mlapi"].models[CLASSIFIER_NAME].session = None  # run() fails
    response = app.test_client().post(CLASSIFIER_INFER, json=_churn_request())
    assert_protocol_error(response, 500, "The server failed to handle the request.")
    assert "Traceback" not in response.get_data(as_text=True)


def test_without_models_the_server_is_live_not_ready(tmp_path):
    client = create_app({"MLAPI_MODEL_DIR": str(tmp_path / "absent")}).test_client()
    assert client.get("/v2/health/live").status_code == 200
    assert_protocol_error(client.get("/v2/health/ready"), 503, "not loaded")
    assert_protocol_error(client.get(f"/v2/models/{CLASSIFIER_NAME}"), 503)
    assert_protocol_error(client.post(CLASSIFIER_INFER, json=_churn_request()), 503)
    assert client.get("/v2").status_code == 200


ODD_VALUES = [None, True, 0, -1, 1.5, 10**30, 1e308, "", "x", "2027-11-13", [], [[]], [[1, 2]], {}, {"name": 1}]


def _paths(value, path=()):
    """Every place in a decoded JSON document, as a path of keys and indexes."""
    yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*path, index))


def _replaced(document, path, value):
    if not path:
        return value
    copy = json.loads(json.dumps(document))
    target = copy
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return copy


@pytest.mark.parametrize("name, records, datatypes", [
    (CLASSIFIER_NAME, [SEED_CLASSIFIER_PAYLOAD], CHURN_TYPES),
    (REGRESSOR_NAME, [SEED_REGRESSOR_PAYLOAD] * 2, SALES_TYPES),
])
def test_any_odd_value_anywhere_is_a_400_never_a_500(client, name, records, datatypes):
    request = {"id": "x", "inputs": tensors(records, datatypes), "outputs": [{"name": "prediction" if name ==
                                                                               REGRESSOR_NAME else "label"}]}
    statuses = set()
    for path in list(_paths(request)):
        for value in ODD_VALUES:
            response = client.post(f"/v2/models/{name}/infer", json=_replaced(request, path, value))
            assert response.status_code in (200, 400), (path, value, response.get_data(as_text=True))
            keys = set(response.get_json())
            assert keys == {"error"} if response.status_code == 400 else {"model_name", "outputs"} <= keys
            statuses.add(response.status_code)
    assert statuses == {200, 400}
