"""The tutorial's API, reproduced as the benchmark's baseline (never part of the project's image).

Served as the tutorial serves it: ``gunicorn -w 5 -b 0.0.0.0:8000 api:app``
(5 sync workers, no preload, so every worker imports pandas and
scikit-learn and unpickles the models itself). The request path is the
tutorial's: the JSON body becomes a one-row pandas DataFrame, the
regressor's categoricals go through the pickled LabelEncoders and its date
is split with pandas, and the pickled scikit-learn estimator predicts (with
its input checks: feature names, dtype, finiteness). No validation beyond
what pandas and scikit-learn do, as in the original.

The models come from bench/tutorial/train_models.py (joblib files in
TUTORIAL_MODEL_DIR, default ./models beside this file, as in the image).
"""

import os

import joblib
import pandas as pd
from flask import Flask, jsonify, request

MODEL_DIR = os.environ.get("TUTORIAL_MODEL_DIR") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "models")

app = Flask(__name__)

classifier = joblib.load(os.path.join(MODEL_DIR, "classifier.joblib"))
regressor = joblib.load(os.path.join(MODEL_DIR, "regressor.joblib"))
encoders = joblib.load(os.path.join(MODEL_DIR, "encoders.joblib"))

CLASSIFIER_FEATURES = ["monthly_fee", "customer_age", "support_calls"]
REGRESSOR_FEATURES = [
    "CustomerType",
    "BranchSubCounty",
    "ProductCategoryName",
    "QuantityOrdered",
    "PaymentYear",
    "PaymentMonth",
    "PaymentDay",
    "PaymentDayOfWeek",
]


@app.route("/api/v1/models/decision-tree-classifier/predictions", methods=["POST"])
def predict_churn():
    data = request.get_json()
    df = pd.DataFrame([data])
    prediction = classifier.predict(df[CLASSIFIER_FEATURES])
    return jsonify({"Predicted Class = ": int(prediction[0])})


@app.route("/api/v1/models/decision-tree-regressor/predictions", methods=["POST"])
def predict_profit():
    data = request.get_json()
    df = pd.DataFrame([data])
    for column, encoder in encoders.items():
        df[column] = encoder.transform(df[column])
    payment_date = pd.to_datetime(df["PaymentDate"])
    df["PaymentYear"] = payment_date.dt.year
    df["PaymentMonth"] = payment_date.dt.month
    df["PaymentDay"] = payment_date.dt.day
    df["PaymentDayOfWeek"] = payment_date.dt.dayofweek
    prediction = regressor.predict(df[REGRESSOR_FEATURES])
    return jsonify({"Predicted Percentage Profit per Unit = ": float(prediction[0])})
