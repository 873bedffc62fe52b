"""Model repositories for the app tests (docs/model-repository.md): small
scikit-learn models trained here on seeded synthetic data, converted to ONNX
with skl2onnx, and their model cards.

    decision-tree-classifier  matrix float32: monthly_fee, customer_age, support_calls; classes 0/1
    decision-tree-regressor   matrix float32: three label-coded categories, QuantityOrdered, PaymentDate parts
    plan-classifier           columns: a Pipeline (StandardScaler + OneHotEncoder, LogisticRegression);
                              string classes "leave"/"stay"
"""

import datetime as dt
import hashlib
import json

import numpy as np
import pandas as pd
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType, Int64TensorType, StringTensorType
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

CLASSIFIER_NAME = "decision-tree-classifier"
REGRESSOR_NAME = "decision-tree-regressor"
PLAN_NAME = "plan-classifier"
VERSION = "1.0.0"

CUSTOMER_TYPES = {"Business": 0.0, "Individual": 3.0, "Institution": -3.0, "Wholesale": -6.0}
BRANCHES = {
    "Embakasi East": -2.0, "Kasarani": -0.5, "Kilimani": 2.0, "Langata": 1.0,
    "Makadara": -1.5, "Roysambu": 0.0, "Starehe": -1.0, "Westlands": 2.5,
}
CATEGORY_MARGINS = {
    "Beverages": 42.0, "Desserts": 36.0, "Fast Food": 30.0, "Meat-Based Dishes": 20.0,
    "Seafood Dishes": 16.0, "Traditional Dishes": 26.0, "Vegetarian Dishes": 28.0,
}
FIRST_DATE, LAST_DATE = dt.date(2023, 1, 1), dt.date(2028, 12, 31)
PLANS = ["basic", "plus", "pro"]


def label_encoding(values):
    return {value: code for code, value in enumerate(sorted(values))}


CHURN_INPUTS = [
    {"name": "monthly_fee", "type": "number", "minimum": 0, "maximum": 300,
     "description": "Monthly subscription fee.", "example": 60},
    {"name": "customer_age", "type": "integer", "minimum": 18, "maximum": 100,
     "description": "Age of the customer in years.", "example": 30},
    {"name": "support_calls", "type": "integer", "minimum": 0, "maximum": 20,
     "description": "Calls to customer support in the last period.", "example": 1},
]
SALES_INPUTS = [
    {"name": "CustomerType", "type": "category", "transform": "label", "encoding": label_encoding(CUSTOMER_TYPES),
     "description": "Kind of customer.", "example": "Business"},
    {"name": "BranchSubCounty", "type": "category", "encoding": label_encoding(BRANCHES),
     "description": "Nairobi sub-county of the selling branch.", "example": "Kilimani"},
    {"name": "ProductCategoryName", "type": "category", "encoding": label_encoding(CATEGORY_MARGINS),
     "description": "Food category of the product.", "example": "Meat-Based Dishes"},
    {"name": "QuantityOrdered", "type": "integer", "minimum": 1, "maximum": 50,
     "description": "Units ordered.", "example": 8},
    {"name": "PaymentDate", "type": "date", "minimum": FIRST_DATE.isoformat(), "maximum": LAST_DATE.isoformat(),
     "transform": "date-parts", "description": "Date of payment.", "example": "2027-11-13"},
]
PLAN_INPUTS = [
    {"name": "monthly_fee", "type": "number", "minimum": 0, "maximum": 300, "example": 60},
    {"name": "plan", "type": "category", "transform": "raw", "categories": PLANS, "example": "plus"},
    {"name": "support_calls", "type": "integer", "minimum": 0, "maximum": 20, "example": 1},
]


def churn_records(rng, rows):
    fee = np.round(rng.uniform(0.0, 300.0, rows), 2)
    age = rng.integers(18, 101, rows)
    calls = np.minimum(rng.poisson(2.0, rows), 20)
    score = 0.035 * (fee - 140.0) + 0.9 * (calls - 2) - 0.06 * (age - 45)
    churn = (score + rng.logistic(0.0, 0.75, rows) > 0).astype(np.int64)
    records = [
        {"monthly_fee": float(f), "customer_age": int(a), "support_calls": int(c)}
        for f, a, c in zip(fee, age, calls, strict=True)
    ]
    return records, churn


def sales_records(rng, rows):
    types, branches, categories = list(CUSTOMER_TYPES), list(BRANCHES), list(CATEGORY_MARGINS)
    records, profit = [], []
    for _ in range(rows):
        record = {
            "CustomerType": types[rng.integers(len(types))],
            "BranchSubCounty": branches[rng.integers(len(branches))],
            "ProductCategoryName": categories[rng.integers(len(categories))],
            "QuantityOrdered": int(rng.integers(1, 51)),
            "PaymentDate": (FIRST_DATE + dt.timedelta(days=int(rng.integers((LAST_DATE - FIRST_DATE).days + 1)))),
        }
        date = record["PaymentDate"]
        profit.append(
            CATEGORY_MARGINS[record["ProductCategoryName"]] + CUSTOMER_TYPES[record["CustomerType"]]
            + BRANCHES[record["BranchSubCounty"]] - 0.15 * record["QuantityOrdered"]
            + (3.0 if date.weekday() in (4, 5) else 0.0) - 0.4 * (date.year - 2023) + rng.normal(0.0, 1.5)
        )
        record["PaymentDate"] = date.isoformat()
        records.append(record)
    return records, np.array(profit)


def plan_records(rng, rows):
    fee = np.round(rng.uniform(0.0, 300.0, rows), 2)
    plan = rng.choice(PLANS, rows)
    calls = rng.integers(0, 21, rows)
    score = 0.02 * (fee - 150) + 0.5 * (calls - 5) - 1.5 * (plan == "pro") + rng.logistic(0, 1, rows)
    labels = np.where(score > 0, "leave", "stay")
    records = [
        {"monthly_fee": float(f), "plan": str(p), "support_calls": int(c)}
        for f, p, c in zip(fee, plan, calls, strict=True)
    ]
    return records, labels


def date_parts(text):
    date = dt.date.fromisoformat(text)
    return [date.year, date.month, date.day, date.weekday()]


def churn_matrix(records):
    return np.array([[r["monthly_fee"], r["customer_age"], r["support_calls"]] for r in records], dtype=np.float32)


def sales_matrix(records):
    codes = {spec["name"]: spec["encoding"] for spec in SALES_INPUTS[:3]}
    return np.array(
        [
            [codes[name][r[name]] for name in codes] + [r["QuantityOrdered"]] + date_parts(r["PaymentDate"])
            for r in records
        ],
        dtype=np.float32,
    )


def plan_frame(records):
    return pd.DataFrame(records)[["monthly_fee", "plan", "support_calls"]]


def card(name, task, onnx_bytes, inputs, onnx, **extra):
    return {
        "format": "mlapi.model/1",
        "name": name,
        "version": VERSION,
        "task": task,
        "description": f"The test model {name}.",
        "file": "model.onnx",
        "sha256": hashlib.sha256(onnx_bytes).hexdigest(),
        "inputs": inputs,
        "onnx": onnx,
        **extra,
    }


def write_model(folder, model_card, onnx_bytes):
    """Write a model folder: the card (any dict) and the ONNX bytes as model.onnx."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.onnx").write_bytes(onnx_bytes)
    (folder / "model.json").write_text(json.dumps(model_card, indent=2))
    return folder


class Trained:
    """A fitted estimator, its ONNX bytes and card, and held-out records with sklearn's predictions."""

    def __init__(self, estimator, onnx_bytes, model_card, records, expected):
        self.estimator = estimator
        self.onnx_bytes = onnx_bytes
        self.card = model_card
        self.records = records
        self.expected = expected


def train_models(seed):
    """The three test models, each trained on its own seeded data."""
    churn_rng, sales_rng, plan_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3))

    records, y = churn_records(churn_rng, 4000)
    X = churn_matrix(records)
    classifier = DecisionTreeClassifier(max_depth=6, min_samples_leaf=20, random_state=seed).fit(X[:3000], y[:3000])
    onnx_bytes = _onnx(classifier, [("X", FloatTensorType([None, 3]))])
    churn = Trained(
        classifier, onnx_bytes,
        card(CLASSIFIER_NAME, "classification", onnx_bytes, CHURN_INPUTS,
             {"input": "X", "input_dtype": "float32", "outputs": {"label": "label", "probabilities": "probabilities"}},
             result_key="Predicted Class = ", input_layout="matrix", classes=[0, 1],
             metrics={"accuracy": float((classifier.predict(X[3000:]) == y[3000:]).mean())},
             source={"estimator": "sklearn.tree.DecisionTreeClassifier"}),
        records[3000:], classifier.predict(X[3000:]),
    )

    records, y = sales_records(sales_rng, 6000)
    X = sales_matrix(records)
    regressor = DecisionTreeRegressor(max_depth=10, min_samples_leaf=20, random_state=seed).fit(X[:5000], y[:5000])
    onnx_bytes = _onnx(regressor, [("X", FloatTensorType([None, 8]))])
    sales = Trained(
        regressor, onnx_bytes,
        card(REGRESSOR_NAME, "regression", onnx_bytes, SALES_INPUTS,
             {"input": "X", "input_dtype": "float32", "outputs": {"value": "variable"}},
             result_key="Predicted Percentage Profit per Unit = ", input_layout="matrix",
             metrics={"mae": float(np.abs(regressor.predict(X[5000:]) - y[5000:]).mean())}),
        records[5000:], regressor.predict(X[5000:]),
    )

    records, y = plan_records(plan_rng, 2000)
    frame = plan_frame(records)
    pipeline = Pipeline([
        ("prepare", ColumnTransformer([
            ("numbers", StandardScaler(), ["monthly_fee", "support_calls"]),
            ("plan", OneHotEncoder(), ["plan"]),
        ])),
        ("classify", LogisticRegression()),
    ]).fit(frame[:1500], y[:1500])
    onnx_bytes = _onnx(pipeline, [
        ("monthly_fee", FloatTensorType([None, 1])),
        ("plan", StringTensorType([None, 1])),
        ("support_calls", Int64TensorType([None, 1])),
    ])
    plans = Trained(
        pipeline, onnx_bytes,
        card(PLAN_NAME, "classification", onnx_bytes, PLAN_INPUTS,
             {"outputs": {"label": "label", "probabilities": "probabilities"}},
             input_layout="columns", classes=pipeline.classes_.tolist()),
        records[1500:], pipeline.predict(frame[1500:]),
    )
    return {CLASSIFIER_NAME: churn, REGRESSOR_NAME: sales, PLAN_NAME: plans}


def _onnx(estimator, initial_types):
    options = {DecisionTreeClassifier: {"zipmap": False}, LogisticRegression: {"zipmap": False}}
    model = convert_sklearn(estimator, initial_types=initial_types, options=options)
    return model.SerializeToString()


def write_repository(path, models):
    for name, trained in models.items():
        write_model(path / name, trained.card, trained.onnx_bytes)
    return path
