"""Batches: a JSON array of records answered by an array in the same order."""

import pytest

from mlapi_testing import CLASSIFIER_URL, REGRESSOR_URL, SEED_REGRESSOR_PAYLOAD, assert_error


def _varied_churn_records(count):
    return [
        {"monthly_fee": (i * 37) % 300 + 0.5, "customer_age": 18 + (i * 13) % 83, "support_calls": i % 9}
        for i in range(count)
    ]


def test_batch_answers_in_request_order(client):
    records = _varied_churn_records(40)
    response = client.post(CLASSIFIER_URL, json=records)

    assert response.status_code == 200
    batch = response.get_json()
    singles = [client.post(CLASSIFIER_URL, json=record).get_json() for record in records]
    assert batch == singles
    assert len({result["prediction"] for result in batch}) == 2  # the order is observable


def test_regressor_batch_matches_single_predictions(client):
    records = [
        dict(SEED_REGRESSOR_PAYLOAD, QuantityOrdered=quantity, PaymentDate=f"2024-0{month}-1{month}")
        for quantity, month in zip((1, 12, 30, 50), (1, 4, 6, 9), strict=True)
    ]
    batch = client.post(REGRESSOR_URL, json=records).get_json()
    assert batch == [client.post(REGRESSOR_URL, json=record).get_json() for record in records]


def test_batch_of_one_is_an_array(client):
    response = client.post(REGRESSOR_URL, json=[SEED_REGRESSOR_PAYLOAD])
    assert response.status_code == 200
    assert isinstance(response.get_json(), list) and len(response.get_json()) == 1


def test_empty_batch_is_rejected(client):
    assert_error(client.post(CLASSIFIER_URL, json=[]), 400, "empty_batch")


def test_batch_size_limit(make_app):
    client = make_app(MLAPI_MAX_BATCH=3).test_client()
    assert client.post(CLASSIFIER_URL, json=_varied_churn_records(3)).status_code == 200
    body = assert_error(client.post(CLASSIFIER_URL, json=_varied_churn_records(4)), 400, "batch_too_large")
    assert "3" in body["message"]


def test_full_default_batch_is_served(make_app):
    client = make_app(MLAPI_MAX_BODY_BYTES=1 << 20).test_client()
    response = client.post(CLASSIFIER_URL, json=_varied_churn_records(1000))
    assert response.status_code == 200 and len(response.get_json()) == 1000
    assert_error(client.post(CLASSIFIER_URL, json=_varied_churn_records(1001)), 400, "batch_too_large")


@pytest.mark.parametrize(
    "batch, field, code",
    [
        ([{"monthly_fee": 1, "customer_age": 30, "support_calls": 1}, "x"], "[1]", "wrong_type"),
        ([{"monthly_fee": 1, "customer_age": 30, "support_calls": 1}, [1, 2]], "[1]", "wrong_type"),
        (
            [{"monthly_fee": 1, "customer_age": 30, "support_calls": 1}] * 3
            + [{"monthly_fee": "1", "customer_age": 30, "support_calls": 1}],
            "[3].monthly_fee",
            "wrong_type",
        ),
    ],
)
def test_batch_errors_name_the_item(client, batch, field, code):
    body = assert_error(client.post(CLASSIFIER_URL, json=batch), 400, "invalid_input", field)
    assert body["details"][0]["code"] == code


def test_every_invalid_item_is_reported_and_the_report_is_bounded(client):
    bad = {"monthly_fee": -1, "customer_age": 30, "support_calls": 1}
    body = assert_error(client.post(CLASSIFIER_URL, json=[bad] * 3), 400, "invalid_input", "[0].monthly_fee")
    assert [d["field"] for d in body["details"]] == ["[0].monthly_fee", "[1].monthly_fee", "[2].monthly_fee"]
    assert body["message"] == "[0].monthly_fee must be between 0 and 300, got -1 (details list 2 more)"

    many = assert_error(client.post(CLASSIFIER_URL, json=[bad] * 200), 400, "invalid_input", "[0].monthly_fee")
    assert len(many["details"]) == 50


class _CountingSession:
    """An ONNX Runtime session that counts its runs."""

    def __init__(self, session):
        self._session = session
        self.runs = []

    def run(self, output_names, feeds, run_options=None):
        self.runs.append({name: array.shape for name, array in feeds.items()})
        return self._session.run(output_names, feeds, run_options)


@pytest.mark.parametrize("url, name, record", [
    (CLASSIFIER_URL, "decision-tree-classifier", {"monthly_fee": 1.5, "customer_age": 30, "support_calls": 1}),
    ("/api/v1/models/plan-classifier/predictions", "plan-classifier",
     {"monthly_fee": 1.5, "plan": "pro", "support_calls": 1}),
])
def test_a_batch_is_one_session_run(make_app, url, name, record):
    app = make_app()
    model = app.extensions["mlapi"].models[name]
    model.session = counting = _CountingSession(model.session)
    client = app.test_client()
    assert client.post(url, json=[record] * 40).status_code == 200
    assert client.post("/v2/models/" + name + "/infer", json={"inputs": [
        {"name": key, "shape": [3], "datatype": {str: "BYTES", int: "INT64", float: "FP64"}[type(value)], "data": [value] * 3}
        for key, value in record.items()
    ]}).status_code == 200
    if name == "plan-classifier":  # columns: one [N, 1] input per field
        assert counting.runs == [{key: (40, 1) for key in record}, {key: (3, 1) for key in record}]
    else:  # matrix: one [N, F] input
        assert counting.runs == [{"X": (40, 3)}, {"X": (3, 3)}]
