"""Measure the in-process cost of one prediction with the seed payloads.

    cd app && python -m training.train --out /tmp/models
    python tools/time_prediction.py --model-dir /tmp/models

Prints microseconds per call (best of 5 runs) for validation + tree walk,
and for a whole request through Flask's test client (JSON parsing, routing,
response serialisation; no network, no Gunicorn).
"""

import argparse
import json
import os
import sys
import timeit

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mlapi.app import create_app

SEED_PAYLOADS = {
    "decision-tree-classifier": {"monthly_fee": 60, "customer_age": 30, "support_calls": 1},
    "decision-tree-regressor": {
        "CustomerType": "Business",
        "BranchSubCounty": "Kilimani",
        "ProductCategoryName": "Meat-Based Dishes",
        "QuantityOrdered": 8,
        "PaymentDate": "2027-11-13",
    },
}


def microseconds_per_call(function, number):
    return min(timeit.repeat(function, number=number, repeat=5)) / number * 1e6


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", default="/opt/mlapi/models")
    parser.add_argument("--number", type=int, default=20000, help="calls per timing run")
    args = parser.parse_args(argv)

    app = create_app({"MLAPI_MODEL_DIR": args.model_dir})
    models = app.extensions["mlapi"].models
    if models is None:
        sys.exit(f"no models in {args.model_dir}")
    client = app.test_client()
    for name, payload in SEED_PAYLOADS.items():
        print(time_model(client, models[name], payload, args.number))


def time_model(client, model, payload, number):
    body = json.dumps(payload).encode()
    features = model.schema.features_of_records([payload], False)[0][0]

    def validate_and_predict():
        rows, _ = model.schema.features_of_records([payload], False)
        return model.result(rows[0])

    def request():
        return client.post(model.endpoint, data=body, content_type="application/json")

    return (
        f"{model.name}: validate+predict {microseconds_per_call(validate_and_predict, number):.1f} us"
        f" (tree walk {microseconds_per_call(lambda: model.tree.predict(features), number):.1f} us),"
        f" Flask request {microseconds_per_call(request, number // 20):.0f} us"
    )


if __name__ == "__main__":
    main()
