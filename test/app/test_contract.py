"""The API contract of the original stack, kept byte for byte, and answers
equal to scikit-learn's."""

import numpy as np
import pytest

from mlapi_testing import (
    CLASSIFIER_URL,
    REGRESSOR_URL,
    SEED_CLASSIFIER_PAYLOAD,
    SEED_REGRESSOR_PAYLOAD,
)
from model_repository import CLASSIFIER_NAME, PLAN_NAME, REGRESSOR_NAME, VERSION


def test_classifier_answers_the_seed_payload_with_the_seed_key(client):
    response = client.post(CLASSIFIER_URL, json=SEED_CLASSIFIER_PAYLOAD)

    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert b'"Predicted Class = ":' in response.data
    body = response.get_json()
    assert type(body["Predicted Class = "]) is int
    assert body["Predicted Class = "] in (0, 1)
    assert body["prediction"] == body["Predicted Class = "]
    assert body["model"] == "decision-tree-classifier"
    assert body["model_version"] == VERSION
    assert list(body) == ["Predicted Class = ", "prediction", "probabilities", "model", "model_version"]
    assert list(body["probabilities"]) == ["0", "1"]
    assert sum(body["probabilities"].values()) == pytest.approx(1, abs=1e-6)
    assert body["probabilities"][str(body["prediction"])] >= 0.5


def test_regressor_answers_the_seed_payload_with_the_seed_key(client):
    response = client.post(REGRESSOR_URL, json=SEED_REGRESSOR_PAYLOAD)

    assert response.status_code == 200
    assert b'"Predicted Percentage Profit per Unit = ":' in response.data
    body = response.get_json()
    assert isinstance(body["Predicted Percentage Profit per Unit = "], float)
    assert body["prediction"] == body["Predicted Percentage Profit per Unit = "]
    assert body["model"] == "decision-tree-regressor"
    assert body["model_version"] == VERSION
    assert list(body) == ["Predicted Percentage Profit per Unit = ", "prediction", "model", "model_version"]


def test_a_card_without_result_key_answers_prediction_only(client):
    body = client.post(f"/api/v1/models/{PLAN_NAME}/predictions",
                       json={"monthly_fee": 60, "plan": "pro", "support_calls": 1}).get_json()
    assert list(body) == ["prediction", "probabilities", "model", "model_version"]
    assert body["prediction"] in ("leave", "stay")
    assert set(body["probabilities"]) == {"leave", "stay"}


@pytest.mark.parametrize("name", [CLASSIFIER_NAME, REGRESSOR_NAME, PLAN_NAME])
def test_answers_equal_scikit_learn_on_held_out_records(make_app, trained, name):
    model = trained[name]
    client = make_app(MLAPI_MAX_BODY_BYTES=1 << 20).test_client()
    response = client.post(f"/api/v1/models/{name}/predictions", json=model.records)
    assert response.status_code == 200
    predictions = [answer["prediction"] for answer in response.get_json()]
    if name == REGRESSOR_NAME:
        # ONNX trees compute in float32: equal to sklearn's float64 leaf values up to float32 rounding.
        assert all(type(value) is float for value in predictions)
        np.testing.assert_allclose(predictions, model.expected, rtol=2**-23, atol=0)
    else:
        assert predictions == model.expected.tolist()


def test_the_tutorial_curl_call_works_as_sent(client):
    # curl -H "Content-Type: application/json" -d '{...}' sends this exact body.
    response = client.post(
        CLASSIFIER_URL,
        data='{"monthly_fee": 60, "customer_age": 30, "support_calls": 1}',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 200
    assert "Predicted Class = " in response.get_json()


def test_predictions_follow_the_documented_data_relationships(client):
    # Churn rises with support calls and fee, falls with age.
    loyal = {"monthly_fee": 20, "customer_age": 80, "support_calls": 0}
    unhappy = {"monthly_fee": 280, "customer_age": 20, "support_calls": 12}
    assert client.post(CLASSIFIER_URL, json=loyal).get_json()["prediction"] == 0
    assert client.post(CLASSIFIER_URL, json=unhappy).get_json()["prediction"] == 1

    # Beverages carry a far higher margin than seafood.
    drinks = dict(SEED_REGRESSOR_PAYLOAD, ProductCategoryName="Beverages")
    seafood = dict(SEED_REGRESSOR_PAYLOAD, ProductCategoryName="Seafood Dishes")
    assert (
        client.post(REGRESSOR_URL, json=drinks).get_json()["prediction"]
        > client.post(REGRESSOR_URL, json=seafood).get_json()["prediction"] + 10
    )


def test_prediction_responses_must_not_be_cached(client):
    response = client.post(CLASSIFIER_URL, json=SEED_CLASSIFIER_PAYLOAD)
    assert response.headers["Cache-Control"] == "no-store"


def test_request_id_is_echoed_when_well_formed(client):
    response = client.post(
        CLASSIFIER_URL, json=SEED_CLASSIFIER_PAYLOAD, headers={"X-Request-ID": "3f2a9c0e5b1d4e6f"}
    )
    assert response.headers["X-Request-ID"] == "3f2a9c0e5b1d4e6f"

    odd = client.post(CLASSIFIER_URL, json=SEED_CLASSIFIER_PAYLOAD, headers={"X-Request-ID": "a b"})
    assert "X-Request-ID" not in odd.headers
