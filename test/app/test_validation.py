"""Every kind of bad input is a 400 in the one JSON error shape, naming the field."""

import json

import pytest

from mlapi_testing import (
    CLASSIFIER_URL,
    INVALID_RECORDS,
    REGRESSOR_URL,
    SEED_CLASSIFIER_PAYLOAD,
    VALID_RECORDS,
    assert_error,
)


@pytest.mark.parametrize("url, record, field, code", INVALID_RECORDS)
def test_invalid_record_is_rejected_naming_the_field(client, url, record, field, code):
    body = assert_error(client.post(url, json=record), 400, "invalid_input", field)
    assert body["details"][0] == {"field": field, "code": code, "problem": body["details"][0]["problem"]}
    assert body["message"].startswith(field)


@pytest.mark.parametrize("url, record, field, code", INVALID_RECORDS)
def test_invalid_record_in_a_batch_is_named_by_index(client, url, record, field, code):
    assert_error(client.post(url, json=[record]), 400, "invalid_input", f"[0].{field}")


@pytest.mark.parametrize("url, record", VALID_RECORDS)
def test_edge_values_of_the_domain_are_accepted(client, url, record):
    assert client.post(url, json=record).status_code == 200


def test_integral_float_predicts_like_the_integer(client):
    as_int = client.post(CLASSIFIER_URL, json={"monthly_fee": 150, "customer_age": 40, "support_calls": 3})
    as_float = client.post(CLASSIFIER_URL, json={"monthly_fee": 150, "customer_age": 40.0, "support_calls": 3.0})
    assert as_int.get_json() == as_float.get_json()


def test_unknown_category_message_lists_the_allowed_values(client):
    body = client.post(
        REGRESSOR_URL,
        json={
            "CustomerType": "Corporate",
            "BranchSubCounty": "Kilimani",
            "ProductCategoryName": "Meat-Based Dishes",
            "QuantityOrdered": 8,
            "PaymentDate": "2027-11-13",
        },
    ).get_json()
    for allowed in ("Business", "Individual", "Institution", "Wholesale"):
        assert allowed in body["message"]


def test_all_problems_of_a_record_are_listed(client):
    body = assert_error(
        client.post(CLASSIFIER_URL, json={"monthly_fees": 60, "customer_age": "30"}),
        400,
        "invalid_input",
        "monthly_fee",
    )
    assert [(d["field"], d["code"]) for d in body["details"]] == [
        ("monthly_fee", "missing_field"),
        ("customer_age", "wrong_type"),
        ("support_calls", "missing_field"),
        ("monthly_fees", "unknown_field"),
    ]


def _post_raw(client, data, content_type="application/json"):
    return client.post(CLASSIFIER_URL, data=data, headers={"Content-Type": content_type})


@pytest.mark.parametrize(
    "data, error",
    [
        pytest.param(b"", "empty_body", id="empty"),
        pytest.param(b"{", "invalid_json", id="truncated"),
        pytest.param(b"{'monthly_fee': 60}", "invalid_json", id="single-quotes"),
        pytest.param(b"   ", "invalid_json", id="whitespace"),
        pytest.param(b'{"monthly_fee": NaN, "customer_age": 30}', "invalid_json", id="nan"),
        pytest.param(b'{"monthly_fee": Infinity, "customer_age": 30}', "invalid_json", id="infinity"),
        pytest.param(b'{"monthly_fee": -Infinity, "customer_age": 30}', "invalid_json", id="minus-infinity"),
        pytest.param(b'{"monthly_fee": 60} x', "invalid_json", id="trailing-garbage"),
        pytest.param(b'{"monthly_fee": "\xff"}', "invalid_json", id="invalid-utf8"),
        pytest.param("\ufeff{}".encode(), "invalid_json", id="utf8-bom"),
        pytest.param('{"a": 1}'.encode("utf-16"), "invalid_json", id="utf16"),
        pytest.param(b"[" * 30000 + b"]" * 30000, "invalid_json", id="deep-nesting"),
        pytest.param(b'{"customer_age": ' + b"9" * 5000 + b"}", "invalid_json", id="huge-integer-literal"),
        pytest.param(b"42", "invalid_body", id="number"),
        pytest.param(b'"text"', "invalid_body", id="string"),
        pytest.param(b"null", "invalid_body", id="null"),
        pytest.param(b"true", "invalid_body", id="boolean"),
    ],
)
def test_bodies_that_are_not_a_record_or_batch(client, data, error):
    assert_error(_post_raw(client, data), 400, error)


def test_overflowing_number_is_not_finite(client):
    body = assert_error(
        _post_raw(client, b'{"monthly_fee": 1e400, "customer_age": 30, "support_calls": 1}'),
        400,
        "invalid_input",
        "monthly_fee",
    )
    assert body["details"][0]["code"] == "not_finite"


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "application/json; charset=utf-8", "application/json;charset=UTF-8", "Application/JSON"],
)
def test_json_content_types_are_accepted(client, content_type):
    assert _post_raw(client, json.dumps(SEED_CLASSIFIER_PAYLOAD), content_type).status_code == 200
