"""Train the tutorial baseline's models: scikit-learn estimators pickled with joblib.

    python bench/tutorial/train_models.py --out DIR [--model-dir models]

The tutorial serves pickled scikit-learn models (joblib) and label encoders.
This script trains them with the project's own training code (same synthetic
data, same split, same hyper-parameters and seed), but fits each estimator on
a pandas DataFrame with named columns, as a notebook would, so that
scikit-learn checks the feature names on every prediction. It then proves
the baseline answers what the project's API answers: every held-out record
goes through the baseline's request path (api.py) and through the project's
model repository (mlapi, ONNX Runtime), and the two must agree: the class
exactly, the regressor's value within float32 rounding (the ONNX trees
compute in float32, as the project's training checks them).

Runs from anywhere; needs app/ on sys.path (added here) and pandas.
"""

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
PROJECT_ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(PROJECT_ROOT, "app"))
sys.path.insert(0, HERE)

import joblib  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.preprocessing import LabelEncoder  # noqa: E402

from mlapi.registry import load_models  # noqa: E402
from training.generate_data import generate_all  # noqa: E402
from training.repository import VerificationError, compare_predictions  # noqa: E402
from training.train import CLASSIFIER, REGRESSOR, fit  # noqa: E402

CLASSIFIER_COLUMNS = ["monthly_fee", "customer_age", "support_calls"]
CATEGORICAL_COLUMNS = ["CustomerType", "BranchSubCounty", "ProductCategoryName"]
REGRESSOR_COLUMNS = [*CATEGORICAL_COLUMNS, "QuantityOrdered", "PaymentYear", "PaymentMonth", "PaymentDay", "PaymentDayOfWeek"]


def train(out_dir, seed):
    churn, sales = generate_all(seed)
    classifier_fit = fit(CLASSIFIER, churn, seed)
    regressor_fit = fit(REGRESSOR, sales, seed)

    # LabelEncoder sorts the labels: the same codes the project's metadata records.
    encoders = {column: LabelEncoder().fit(sales.columns[column]) for column in CATEGORICAL_COLUMNS}

    classifier = CLASSIFIER.estimator_class(random_state=seed, **CLASSIFIER.params)
    classifier.fit(pd.DataFrame(classifier_fit.X_train, columns=CLASSIFIER_COLUMNS), classifier_fit.y_train)
    regressor = REGRESSOR.estimator_class(random_state=seed, **REGRESSOR.params)
    regressor.fit(pd.DataFrame(regressor_fit.X_train, columns=REGRESSOR_COLUMNS), regressor_fit.y_train)

    os.makedirs(out_dir, exist_ok=True)
    joblib.dump(classifier, os.path.join(out_dir, "classifier.joblib"))
    joblib.dump(regressor, os.path.join(out_dir, "regressor.joblib"))
    joblib.dump(encoders, os.path.join(out_dir, "encoders.joblib"))
    return (churn, classifier_fit), (sales, regressor_fit)


def verify(out_dir, model_dir, trained, limit):
    """Every held-out record must get the same answer from the baseline and from mlapi."""
    os.environ["TUTORIAL_MODEL_DIR"] = out_dir
    import api  # the baseline's Flask module; loads the models just written

    ours = load_models(model_dir)
    client = api.app.test_client()
    checked = 0
    for (dataset, fitted), name in zip(trained, ("decision-tree-classifier", "decision-tree-regressor"), strict=True):
        model = ours[name]
        records = dataset.records()
        for index in fitted.test_rows[:limit]:
            record = records[int(index)]
            answer = client.post(f"/api/v1/models/{name}/predictions", json=record).get_json()
            rows, problems = model.schema.parse_records([record], False)
            if problems:
                raise SystemExit(f"{name}: held-out record {record} rejected by mlapi: {problems}")
            expected = model.results(rows)[0][model.result_key]
            if set(answer) != {model.result_key}:
                raise SystemExit(f"{name}: baseline answered {answer} for {record}, mlapi {expected!r}")
            try:
                compare_predictions(model.task, [answer[model.result_key]], [expected], name)
            except VerificationError:
                raise SystemExit(f"{name}: baseline answered {answer} for {record}, mlapi {expected!r}") from None
            checked += 1
    return checked


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="directory for the joblib files")
    parser.add_argument("--model-dir", default=os.path.join(PROJECT_ROOT, "models"), help="mlapi model repository to compare with")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--verify-records", type=int, default=300, help="held-out records checked per model")
    args = parser.parse_args(argv)
    trained = train(args.out, args.seed)
    checked = verify(args.out, args.model_dir, trained, args.verify_records)
    print(f"tutorial models in {args.out}: baseline and mlapi agree on {checked} held-out records", file=sys.stderr)


if __name__ == "__main__":
    main()
