"""The built-in decision tree classifier as an MLServer model (scikit-learn runtime, joblib).

    .venv/bin/python bench/mlserver_model.py --out DIR

Fits the tree with the project's own training code (app/training: same data,
split, hyper-parameters and seed as models/decision-tree-classifier), checks
that it is that very model (its ONNX export has the card's SHA-256, and it
answers every held-out record as mlapi does), and writes the folder MLServer
serves:

    DIR/model.joblib            the scikit-learn estimator, fitted on a NumPy matrix
                                (monthly_fee, customer_age, support_calls)
    DIR/model-settings.json     name decision-tree-classifier, mlserver_sklearn.SKLearnModel

The estimator is fitted on a plain matrix, as the training code fits it, so
scikit-learn makes no feature-name checks: MLServer's cheapest request is one
FP64 tensor of shape [1, 3] (NumpyCodec).
"""

import argparse
import hashlib
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
PROJECT_ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(PROJECT_ROOT, "app"))

import joblib  # noqa: E402

from mlapi.registry import load_models  # noqa: E402
from training.generate_data import generate_all  # noqa: E402
from training.train import CLASSIFIER, fit, to_onnx  # noqa: E402

NAME = "decision-tree-classifier"
SEED = 42


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)

    churn, _ = generate_all(SEED)
    fitted = fit(CLASSIFIER, churn, SEED)
    model = load_models(os.path.join(PROJECT_ROOT, "models"))[NAME]
    onnx_bytes, _ = to_onnx(fitted)
    if hashlib.sha256(onnx_bytes).hexdigest() != model.card.sha256:
        raise SystemExit("the refitted tree's ONNX export is not the built-in model's (SHA-256 differs)")
    records = churn.records()
    held_out = [records[int(i)] for i in fitted.test_rows]
    rows, problems = model.schema.parse_records(held_out, True)
    if problems:
        raise SystemExit(f"held-out records rejected by mlapi: {problems[:3]}")
    ours = [answer["prediction"] for answer in model.results(rows)]
    theirs = fitted.estimator.predict(fitted.X_test).tolist()
    if ours != theirs:
        raise SystemExit("the estimator and mlapi disagree on held-out records")

    os.makedirs(args.out, exist_ok=True)
    joblib.dump(fitted.estimator, os.path.join(args.out, "model.joblib"))
    with open(os.path.join(args.out, "model-settings.json"), "w", encoding="utf-8") as file:
        json.dump({
            "name": NAME,
            "implementation": "mlserver_sklearn.SKLearnModel",
            "parameters": {"uri": "./model.joblib", "version": model.version},
        }, file, indent=2)
    print(f"{args.out}: {NAME} (ONNX export SHA-256 = the card's; {len(ours)} held-out records answered alike)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
