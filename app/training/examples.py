"""An example repository of imported models, built the way a user builds one.

    python -m training.examples --out DIR [--seed 42]      (run from app/)

Trains six models on data generated here, saves each as a user would (joblib
pickles, label encoders, a sample CSV, a field description), and imports each
through the import command's own code path (training.import_model.main):

    decision-tree-classifier  DecisionTreeClassifier over a DataFrame (monthly_fee,
                              customer_age, support_calls), classes 0/1: the tutorial's
                              decisiontree_classifier_baseline.pkl
    decision-tree-regressor   DecisionTreeRegressor over CustomerType, BranchSubCounty,
                              ProductCategoryName (a dict of LabelEncoder: 2, 20 and 11
                              classes), QuantityOrdered and PaymentDate_year/_month/_day/
                              _dayofweek: the tutorial's decisiontree_regressor_optimum.pkl
                              with label_encoders_1b.pkl
    churn-pipeline            Pipeline(ColumnTransformer(StandardScaler on the numbers,
                              OneHotEncoder on "plan"), LogisticRegression): columns layout
    churn-random-forest       RandomForestClassifier over the churn numbers
    churn-xgboost             XGBClassifier over the churn numbers
    profit-lightgbm           LGBMRegressor over the sales codes and date parts

The stack's deployment tests deploy this repository.
"""

import argparse
import datetime as dt
import json
import os
import sys
import tempfile

import numpy as np

from . import import_model

# The tutorial's label encoders' classes (label_encoders_1b.pkl): 2, 20 and 11.
CUSTOMER_TYPES = ["Business", "Individual"]
BRANCHES = [
    "Dagoretti", "Embakasi", "Githurai", "Kamukunji", "Kangemi", "Kasarani", "Kesses", "Kibra", "Kilimani",
    "Kisumu Central", "Langata", "Makadara", "Mathare", "Nakuru Town East", "Nyali", "Nyeri Central",
    "Roy Sambu", "Ruaraka", "Starehe", "Westlands",
]
CATEGORIES = [
    "African Cultural Specials", "Combination Plates", "Fish Dishes", "Fried Dishes", "Legume-Based Dishes",
    "Meat-Based Dishes", "Rice Dishes", "Soup/Stew Dishes", "Staple Foods", "Sweet Snacks/Desserts",
    "Vegetable-Based Dishes",
]
PLANS = ["basic", "family", "premium"]
DATE_PARTS = ["PaymentDate_year", "PaymentDate_month", "PaymentDate_day", "PaymentDate_dayofweek"]
FIRST_DATE = dt.date(2023, 1, 1)
LAST_DATE = dt.date(2028, 12, 31)

CHURN_INPUTS = {
    "monthly_fee": {"type": "number", "minimum": 0, "maximum": 300, "description": "Monthly subscription fee.",
                    "example": 60},
    "customer_age": {"type": "integer", "minimum": 18, "maximum": 100, "description": "Age in years.",
                     "example": 30},
    "support_calls": {"type": "integer", "minimum": 0, "maximum": 20,
                      "description": "Calls to customer support in the last period.", "example": 1},
}
SALES_INPUTS = {
    "QuantityOrdered": {"type": "integer", "minimum": 1, "maximum": 50, "example": 8},
    "PaymentDate": {"type": "date", "minimum": FIRST_DATE.isoformat(), "maximum": LAST_DATE.isoformat(),
                    "example": "2027-11-13"},
}


def churn_frame(rng, rows):
    import pandas as pd

    fee = np.round(rng.uniform(0.0, 300.0, rows), 2)
    age = rng.integers(18, 101, rows)
    calls = np.minimum(rng.poisson(2.0, rows), 20)
    plan = np.array(PLANS)[rng.integers(0, len(PLANS), rows)]
    score = 0.035 * (fee - 140.0) + 0.9 * (calls - 2) - 0.06 * (age - 45) + (plan == "premium") * -1.0
    churn = (score + rng.logistic(0.0, 0.75, rows) > 0).astype(np.int64)
    return pd.DataFrame({"monthly_fee": fee, "customer_age": age, "support_calls": calls, "plan": plan,
                         "churn": churn})


def sales_frame(rng, rows):
    import pandas as pd

    offsets = rng.integers(0, (LAST_DATE - FIRST_DATE).days + 1, rows)
    dates = [FIRST_DATE + dt.timedelta(days=int(o)) for o in offsets]
    frame = pd.DataFrame({
        "CustomerType": np.array(CUSTOMER_TYPES)[rng.integers(0, 2, rows)],
        "BranchSubCounty": np.array(BRANCHES)[rng.integers(0, len(BRANCHES), rows)],
        "ProductCategoryName": np.array(CATEGORIES)[rng.integers(0, len(CATEGORIES), rows)],
        "QuantityOrdered": rng.integers(1, 51, rows),
        "PaymentDate": [d.isoformat() for d in dates],
    })
    weekday = np.array([d.weekday() for d in dates])
    margin = np.array([10.0 + 2.5 * i for i in range(len(CATEGORIES))])
    category_index = np.searchsorted(CATEGORIES, frame["ProductCategoryName"])
    frame["PercentageProfitPerUnit"] = np.round(
        margin[category_index] + 3.0 * (frame["CustomerType"] == "Individual")
        - 0.15 * frame["QuantityOrdered"] + 2.0 * (weekday >= 4) + rng.normal(0.0, 1.5, rows), 2)
    return frame


def sales_features(frame, encoders):
    """The tutorial's regressor features: label codes, quantity, PaymentDate_year/_month/_day/_dayofweek."""
    import pandas as pd

    features = pd.DataFrame({
        name: encoders[name].transform(frame[name]) for name in ("CustomerType", "BranchSubCounty",
                                                                 "ProductCategoryName")
    })
    features["QuantityOrdered"] = frame["QuantityOrdered"].to_numpy()
    dates = pd.to_datetime(frame["PaymentDate"])
    features["PaymentDate_year"] = dates.dt.year.to_numpy()
    features["PaymentDate_month"] = dates.dt.month.to_numpy()
    features["PaymentDate_day"] = dates.dt.day.to_numpy()
    features["PaymentDate_dayofweek"] = dates.dt.day_of_week.to_numpy()
    return features


def label_encoders():
    from sklearn.preprocessing import LabelEncoder

    return {name: LabelEncoder().fit(values) for name, values in
            (("CustomerType", CUSTOMER_TYPES), ("BranchSubCounty", BRANCHES), ("ProductCategoryName", CATEGORIES))}


NUMBERS = ["monthly_fee", "customer_age", "support_calls"]


def build_models(seed=42, rows=3000):
    """{name: (fitted model, extra import arguments as a dict, train frame, held-out frame)}."""
    from lightgbm import LGBMRegressor
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor
    from xgboost import XGBClassifier

    churn_seed, sales_seed = np.random.SeedSequence(seed).spawn(2)
    churn = churn_frame(np.random.default_rng(churn_seed), rows)
    sales = sales_frame(np.random.default_rng(sales_seed), rows)
    churn_train, churn_test = churn.iloc[: rows * 3 // 4], churn.iloc[rows * 3 // 4:]
    sales_train, sales_test = sales.iloc[: rows * 3 // 4], sales.iloc[rows * 3 // 4:]
    encoders = label_encoders()
    sales_X = sales_features(sales_train, encoders)
    y_churn, y_sales = churn_train["churn"], sales_train["PercentageProfitPerUnit"]

    pipeline = Pipeline([
        ("prepare", ColumnTransformer([
            ("scale", StandardScaler(), NUMBERS),
            ("onehot", OneHotEncoder(), ["plan"]),
        ])),
        ("classify", LogisticRegression(max_iter=1000)),
    ])
    return {
        "decision-tree-classifier": (
            DecisionTreeClassifier(max_depth=4, random_state=seed).fit(churn_train[NUMBERS], y_churn),
            {"result_key": "Predicted Class = ", "inputs": CHURN_INPUTS,
             "description": "Customer churn (1 leaves, 0 stays): a decision tree, imported like the tutorial's."},
            churn_train, churn_test),
        "decision-tree-regressor": (
            DecisionTreeRegressor(max_depth=6, random_state=seed).fit(sales_X, y_sales),
            {"result_key": "Predicted Percentage Profit per Unit = ", "inputs": SALES_INPUTS,
             "label_encoders": encoders, "date": "PaymentDate",
             "description": "Percentage profit per unit: a decision tree over label codes and date parts, "
                            "imported like the tutorial's."}, sales_train, sales_test),
        "churn-pipeline": (
            pipeline.fit(churn_train[NUMBERS + ["plan"]], y_churn),
            {"inputs": CHURN_INPUTS, "description": "Customer churn: scaled numbers and a one-hot plan into a "
                                                    "logistic regression (a Pipeline, one ONNX input per field)."},
            churn_train, churn_test),
        "churn-random-forest": (
            RandomForestClassifier(n_estimators=25, max_depth=6, random_state=seed).fit(churn_train[NUMBERS], y_churn),
            {"inputs": CHURN_INPUTS, "description": "Customer churn: a random forest of 25 trees."},
            churn_train, churn_test),
        "churn-xgboost": (
            XGBClassifier(n_estimators=30, max_depth=4, random_state=seed, n_jobs=1).fit(churn_train[NUMBERS], y_churn),
            {"inputs": CHURN_INPUTS, "description": "Customer churn: XGBoost, 30 boosted trees."},
            churn_train, churn_test),
        "profit-lightgbm": (
            LGBMRegressor(n_estimators=40, num_leaves=15, random_state=seed, n_jobs=1, verbose=-1)
            .fit(sales_X, y_sales),
            {"inputs": SALES_INPUTS, "label_encoders": encoders, "date": "PaymentDate",
             "description": "Percentage profit per unit: LightGBM, 40 boosted trees."}, sales_train, sales_test),
    }


def import_arguments(name, model, extra, sample, workdir, repository):
    """Save the model as a user would and return the import command's arguments."""
    import joblib

    model_file = os.path.join(workdir, f"{name}.pkl")
    joblib.dump(model, model_file)
    argv = ["--model", model_file, "--name", name, "--repository", repository]
    if "inputs" in extra:
        inputs_file = os.path.join(workdir, f"{name}-inputs.json")
        with open(inputs_file, "w", encoding="utf-8") as file:
            json.dump(extra["inputs"], file)
        argv += ["--inputs", inputs_file]
    if "label_encoders" in extra:
        encoders_file = os.path.join(workdir, f"{name}-label-encoders.pkl")
        joblib.dump(extra["label_encoders"], encoders_file)
        argv += ["--label-encoders", encoders_file]
    if "date" in extra:
        argv += ["--date", extra["date"]]
    if "description" in extra:
        argv += ["--description", extra["description"]]
    if "result_key" in extra:
        argv += ["--result-key", extra["result_key"]]
    if sample is not None:
        sample_file = os.path.join(workdir, f"{name}-sample.csv")
        sample.to_csv(sample_file, index=False)
        argv += ["--sample", sample_file]
        target = "churn" if "churn" in sample.columns else "PercentageProfitPerUnit"
        argv += ["--target", target]
    return argv


def build_repository(out, seed=42, force=False, environ=os.environ):
    """Build the example repository; returns {name: exit status}."""
    statuses = {}
    with tempfile.TemporaryDirectory(prefix="mlapi-examples-") as workdir:
        for name, (model, extra, _, held_out) in build_models(seed).items():
            argv = import_arguments(name, model, extra, held_out, workdir, out)
            statuses[name] = import_model.main(argv + (["--force"] if force else []), environ)
    return statuses


def main(argv=None):
    parser = argparse.ArgumentParser(description="Build the example repository of imported models.")
    parser.add_argument("--out", required=True, help="the repository to write")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--force", action="store_true", help="replace models already in --out")
    args = parser.parse_args(argv)
    statuses = build_repository(args.out, args.seed, args.force)
    failed = [name for name, status in statuses.items() if status != 0]
    if failed:
        print(f"examples: the import of {', '.join(failed)} failed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
