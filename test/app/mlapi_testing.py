"""Constants, payloads and assertions shared by the app tests."""

import http.client
import socket
import time
from pathlib import Path

import pytest

APP_DIR = Path(__file__).resolve().parents[2] / "app"

SEED = 42
SOURCE_DATE_EPOCH = "1767225600"  # 2026-01-01T00:00:00Z
REPLICA = "test-replica"

CLASSIFIER_URL = "/api/v1/models/decision-tree-classifier/predictions"
REGRESSOR_URL = "/api/v1/models/decision-tree-regressor/predictions"

# The sample payloads of the original tutorial.
SEED_CLASSIFIER_PAYLOAD = {"monthly_fee": 60, "customer_age": 30, "support_calls": 1}
SEED_REGRESSOR_PAYLOAD = {
    "CustomerType": "Business",
    "BranchSubCounty": "Kilimani",
    "ProductCategoryName": "Meat-Based Dishes",
    "QuantityOrdered": 8,
    "PaymentDate": "2027-11-13",
}

ERROR_KEYS = {"error", "message", "field", "details"}


def assert_error(response, status, error, field=None):
    """The response is the one JSON error shape, with no traceback."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == ERROR_KEYS
    assert body["error"] == error
    assert body["field"] == field
    assert isinstance(body["message"], str) and body["message"]
    assert all(set(detail) == {"field", "code", "problem"} for detail in body["details"])
    assert "Traceback" not in response.get_data(as_text=True)
    return body


def churn(**changes):
    """The seed classifier payload with fields changed (a value of DROP removes the field)."""
    return _changed(SEED_CLASSIFIER_PAYLOAD, changes)


def sale(**changes):
    """The seed regressor payload with fields changed (a value of DROP removes the field)."""
    return _changed(SEED_REGRESSOR_PAYLOAD, changes)


DROP = object()


def _changed(record, changes):
    changed = {**record, **changes}
    return {key: value for key, value in changed.items() if value is not DROP}


CLASSIFIER, REGRESSOR = CLASSIFIER_URL, REGRESSOR_URL
ARABIC_INDIC_DATE = "\u0662\u0660\u0662\u0667-11-13"  # digits that regex \d matches, [0-9] does not

# (url, record, field named in the error, detail code): records the API
# rejects field by field; the OpenAPI request schema must reject them too.
INVALID_RECORDS = [
    pytest.param(CLASSIFIER, churn(support_calls=DROP), "support_calls", "missing_field", id="missing"),
    pytest.param(CLASSIFIER, churn(monthly_fee="60"), "monthly_fee", "wrong_type", id="string-for-number"),
    pytest.param(CLASSIFIER, churn(monthly_fee=True), "monthly_fee", "wrong_type", id="bool-for-number"),
    pytest.param(CLASSIFIER, churn(customer_age=False), "customer_age", "wrong_type", id="bool-for-integer"),
    pytest.param(CLASSIFIER, churn(customer_age=None), "customer_age", "wrong_type", id="null"),
    pytest.param(CLASSIFIER, churn(support_calls={"n": 1}), "support_calls", "wrong_type", id="object"),
    pytest.param(CLASSIFIER, churn(support_calls=[1]), "support_calls", "wrong_type", id="array"),
    pytest.param(CLASSIFIER, churn(monthly_fee=-0.01), "monthly_fee", "out_of_range", id="below-minimum"),
    pytest.param(CLASSIFIER, churn(monthly_fee=300.01), "monthly_fee", "out_of_range", id="above-maximum"),
    pytest.param(CLASSIFIER, churn(customer_age=17), "customer_age", "out_of_range", id="age-too-low"),
    pytest.param(CLASSIFIER, churn(customer_age=10**30), "customer_age", "out_of_range", id="huge-integer"),
    pytest.param(CLASSIFIER, churn(support_calls=2.5), "support_calls", "not_integer", id="fraction-for-integer"),
    pytest.param(CLASSIFIER, churn(support_calls=21), "support_calls", "out_of_range", id="calls-too-many"),
    pytest.param(CLASSIFIER, churn(monthly_fees=60), "monthly_fees", "unknown_field", id="unknown-field"),
    pytest.param(REGRESSOR, sale(CustomerType="business"), "CustomerType", "unknown_category", id="category-case"),
    pytest.param(REGRESSOR, sale(BranchSubCounty="Thika"), "BranchSubCounty", "unknown_category", id="unknown-branch"),
    pytest.param(REGRESSOR, sale(ProductCategoryName=3), "ProductCategoryName", "wrong_type", id="number-for-category"),
    pytest.param(REGRESSOR, sale(QuantityOrdered=0), "QuantityOrdered", "out_of_range", id="zero-quantity"),
    pytest.param(REGRESSOR, sale(QuantityOrdered="8"), "QuantityOrdered", "wrong_type", id="string-quantity"),
    pytest.param(REGRESSOR, sale(PaymentDate="2027/11/13"), "PaymentDate", "invalid_date", id="date-slashes"),
    pytest.param(REGRESSOR, sale(PaymentDate="13-11-2027"), "PaymentDate", "invalid_date", id="date-day-first"),
    pytest.param(REGRESSOR, sale(PaymentDate="2027-11-13T10:00:00"), "PaymentDate", "invalid_date", id="datetime"),
    pytest.param(REGRESSOR, sale(PaymentDate="20271113"), "PaymentDate", "invalid_date", id="date-basic-format"),
    pytest.param(REGRESSOR, sale(PaymentDate="2027-11-13\n"), "PaymentDate", "invalid_date", id="date-newline"),
    pytest.param(REGRESSOR, sale(PaymentDate=ARABIC_INDIC_DATE), "PaymentDate", "invalid_date", id="arabic-digits"),
    pytest.param(REGRESSOR, sale(PaymentDate="2027-02-30"), "PaymentDate", "invalid_date", id="impossible-date"),
    pytest.param(REGRESSOR, sale(PaymentDate="2027-02-29"), "PaymentDate", "invalid_date", id="not-a-leap-year"),
    pytest.param(REGRESSOR, sale(PaymentDate="2022-12-31"), "PaymentDate", "out_of_range", id="date-before-range"),
    pytest.param(REGRESSOR, sale(PaymentDate="2029-01-01"), "PaymentDate", "out_of_range", id="date-after-range"),
    pytest.param(REGRESSOR, sale(PaymentDate=20271113), "PaymentDate", "wrong_type", id="number-for-date"),
]

# Records at the edges of the documented domain, all accepted.
VALID_RECORDS = [
    pytest.param(CLASSIFIER, SEED_CLASSIFIER_PAYLOAD, id="seed-classifier"),
    pytest.param(CLASSIFIER, {"monthly_fee": 0, "customer_age": 18, "support_calls": 0}, id="minimums"),
    pytest.param(CLASSIFIER, {"monthly_fee": 300.0, "customer_age": 100, "support_calls": 20}, id="maximums"),
    pytest.param(CLASSIFIER, {"monthly_fee": 59.99, "customer_age": 30.0, "support_calls": 1e1}, id="integral-floats"),
    pytest.param(REGRESSOR, SEED_REGRESSOR_PAYLOAD, id="seed-regressor"),
    pytest.param(REGRESSOR, sale(PaymentDate="2024-02-29"), id="leap-day"),
    pytest.param(REGRESSOR, sale(PaymentDate="2023-01-01"), id="first-date"),
    pytest.param(REGRESSOR, sale(PaymentDate="2028-12-31"), id="last-date"),
]


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_ready(port, process, stderr_path):
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"gunicorn exited: {stderr_path.read_text()}")
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
        try:
            connection.request("GET", "/api/health")
            if connection.getresponse().status == 200:
                return
        except OSError:
            pass  # not listening yet
        finally:
            connection.close()
        time.sleep(0.1)
    pytest.fail("gunicorn did not become ready")
