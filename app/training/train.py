"""Train the two built-in decision trees and write them as a model repository.

    python -m training.train --out DIR [--seed 42]      (run from app/)

Writes DIR/decision-tree-classifier/{model.json,model.onnx} and
DIR/decision-tree-regressor/{model.json,model.onnx} (docs/model-repository.md):
the trees converted to ONNX by skl2onnx, matrix layout, one float32 input
"X". Before writing, ONNX Runtime's predictions are compared with
scikit-learn's on the held-out rows and on a grid over every input's domain
(class labels exactly, regression values within float32 rounding); any
difference stops training, writing nothing. The training date is
SOURCE_DATE_EPOCH when set, else now; with the same seed and
SOURCE_DATE_EPOCH the output is byte-identical. The committed built-in
repository models/ is `python -m training.train --out ../models` with
SOURCE_DATE_EPOCH=1767225600 (2026-01-01).
"""

import argparse
import hashlib
import os
import sys
from dataclasses import dataclass

import numpy as np
import onnxruntime
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType
from sklearn.metrics import accuracy_score, mean_absolute_error, r2_score
from sklearn.model_selection import train_test_split
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from .generate_data import generate_all
from .repository import (
    CARD_FORMAT,
    TARGET_OPSET,
    RepositoryError,
    VerificationError,
    canonical_onnx_bytes,
    compare_predictions,
    feature_matrix,
    input_grid,
    library_versions,
    n_features,
    onnx_feeds,
    rounded,
    run_onnx,
    training_timestamp,
    tree_thresholds,
    write_entry,
)

# Bumped by hand when a model's inputs or meaning change; the ONNX file's
# hash is appended, so any retrained tree gets a new version.
MODEL_VERSION = "1.0.0"
TEST_SHARE = 0.25
ONNX_INPUT = "X"
LIBRARIES = ("scikit-learn", "numpy", "skl2onnx", "onnx", "onnxruntime")

__all__ = ["CLASSIFIER", "REGRESSOR", "fit", "train_all", "train_model", "training_timestamp", "VerificationError"]


@dataclass(frozen=True)
class ModelPlan:
    name: str
    description: str
    result_key: str
    target: dict
    estimator_class: type
    params: dict


CLASSIFIER = ModelPlan(
    name="decision-tree-classifier",
    description="Customer churn: 1 if the customer is predicted to leave, 0 to stay.",
    result_key="Predicted Class = ",
    target={"name": "churn", "classes": [0, 1], "description": "1 = churns, 0 = stays"},
    estimator_class=DecisionTreeClassifier,
    params={"max_depth": 6, "min_samples_leaf": 20},
)
REGRESSOR = ModelPlan(
    name="decision-tree-regressor",
    description="Percentage profit per unit of a sale.",
    result_key="Predicted Percentage Profit per Unit = ",
    target={"name": "PercentageProfitPerUnit", "unit": "percent"},
    estimator_class=DecisionTreeRegressor,
    params={"max_depth": 10, "min_samples_leaf": 20},
)


def card_inputs(dataset):
    """The data set's field specs as card fields: categories label-encoded, dates split into parts."""
    fields = []
    for spec in dataset.inputs:
        field = dict(spec)
        if spec["type"] == "category":
            field["transform"] = "label"
        elif spec["type"] == "date":
            field["transform"] = "date-parts"
        fields.append(field)
    return fields


@dataclass(frozen=True)
class FittedModel:
    plan: ModelPlan
    inputs: list  # card fields
    estimator: object
    test_rows: np.ndarray  # indices of the held-out records in the data set
    X_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    y_train: np.ndarray


def fit(plan, dataset, seed):
    """Split the data set and fit the plan's estimator on the training part."""
    inputs = card_inputs(dataset)
    X = feature_matrix(inputs, dataset.columns)
    y = np.array(dataset.target)
    is_classifier = plan.estimator_class is DecisionTreeClassifier
    train_rows, test_rows = train_test_split(
        np.arange(len(y)), test_size=TEST_SHARE, random_state=seed, stratify=y if is_classifier else None
    )
    estimator = plan.estimator_class(random_state=seed, **plan.params).fit(X[train_rows], y[train_rows])
    return FittedModel(plan, inputs, estimator, test_rows, X[train_rows], X[test_rows], y[test_rows], y[train_rows])


def to_onnx(fitted):
    """The fitted tree as canonical ONNX bytes and the card's onnx section."""
    estimator = fitted.estimator
    n_columns = sum(n_features(spec) for spec in fitted.inputs)
    is_classifier = isinstance(estimator, DecisionTreeClassifier)
    model = convert_sklearn(
        estimator,
        initial_types=[(ONNX_INPUT, FloatTensorType([None, n_columns]))],
        options={id(estimator): {"zipmap": False}} if is_classifier else None,
        target_opset=TARGET_OPSET,
    )
    outputs = [output.name for output in model.graph.output]
    section = {"input": ONNX_INPUT, "input_dtype": "float32"}
    section["outputs"] = {"label": outputs[0], "probabilities": outputs[1]} if is_classifier else {"value": outputs[0]}
    return canonical_onnx_bytes(model, fitted.plan.name), section


def verify(fitted, dataset, onnx_bytes, onnx_section):
    """Compare ONNX Runtime with scikit-learn on the held-out rows and the input grid."""
    session = onnxruntime.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    task = "classification" if isinstance(fitted.estimator, DecisionTreeClassifier) else "regression"
    held_out = {name: [values[i] for i in fitted.test_rows] for name, values in dataset.columns.items()}
    counts = {}
    for what, columns in (
        ("held_out_rows", held_out),
        ("grid_rows", input_grid(fitted.inputs, tree_thresholds(fitted.estimator, fitted.inputs))[0]),
    ):
        feeds = onnx_feeds(session, "matrix", fitted.inputs, columns, onnx_section["input"])
        expected = fitted.estimator.predict(feature_matrix(fitted.inputs, columns))
        actual = run_onnx(session, feeds, onnx_section["outputs"])
        counts[what], largest = compare_predictions(task, expected, actual, f"{fitted.plan.name} {what}")
        if task == "regression":
            counts[f"{what}_largest_difference"] = float(f"{largest:.3g}")
    return task, counts


def train_model(plan, dataset, seed, trained_at):
    """Fit, convert, verify and describe one model. Returns (ONNX bytes, card without file/sha256)."""
    fitted = fit(plan, dataset, seed)
    onnx_bytes, onnx_section = to_onnx(fitted)
    task, verification = verify(fitted, dataset, onnx_bytes, onnx_section)
    estimator = fitted.estimator
    card = {
        "format": CARD_FORMAT,
        "name": plan.name,
        "version": f"{MODEL_VERSION}+{hashlib.sha256(onnx_bytes).hexdigest()[:12]}",
        "task": task,
        "description": plan.description,
        "result_key": plan.result_key,
        "input_layout": "matrix",
        "inputs": fitted.inputs,
        "onnx": onnx_section,
        "metrics": _metrics(task, estimator.predict(fitted.X_test), fitted.y_test, fitted.y_train),
        "source": {
            "estimator": f"sklearn.tree.{plan.estimator_class.__name__}",
            "params": {**plan.params, "random_state": seed},
            "trained_at": trained_at,
            "target": plan.target,
            "library_versions": library_versions(*LIBRARIES),
            "data": {
                "name": dataset.name,
                "generator": "training.generate_data",
                "seed": seed,
                "sha256": dataset.sha256(),
                "rows": len(dataset),
                "train_rows": len(fitted.y_train),
                "test_rows": len(fitted.y_test),
            },
            "tree": {
                "nodes": int(estimator.tree_.node_count),
                "leaves": int(estimator.get_n_leaves()),
                "depth": int(estimator.get_depth()),
            },
            "verification": verification,
        },
    }
    if task == "classification":
        card["classes"] = estimator.classes_.tolist()
    return onnx_bytes, card


def _metrics(task, predicted, y_test, y_train):
    if task == "classification":
        majority = np.bincount(y_train).argmax()
        return {
            "accuracy": rounded(accuracy_score(y_test, predicted)),
            "baseline_accuracy": rounded(np.mean(y_test == majority)),
        }
    return {
        "r2": rounded(r2_score(y_test, predicted)),
        "mae": rounded(mean_absolute_error(y_test, predicted)),
        "baseline_mae": rounded(np.mean(np.abs(y_test - y_train.mean()))),
    }


def train_all(out_dir, seed, trained_at):
    """Train both models and write the repository; returns {name: card}. Nothing is
    written unless both models pass verification."""
    churn, sales = generate_all(seed)
    entries = [train_model(plan, dataset, seed, trained_at) for plan, dataset in ((CLASSIFIER, churn), (REGRESSOR, sales))]
    cards = {}
    for onnx_bytes, card in entries:
        _, cards[card["name"]] = write_entry(out_dir, card, onnx_bytes, force=True)
    return cards


def main(argv=None):
    parser = argparse.ArgumentParser(description="Train the built-in decision trees into a model repository.")
    parser.add_argument("--out", required=True, help="model repository to write (one folder per model)")
    parser.add_argument("--seed", type=int, default=42, help="seed of the data, the split and the trees")
    args = parser.parse_args(argv)
    try:
        cards = train_all(args.out, args.seed, training_timestamp(os.environ))
    except RepositoryError as error:
        print(f"training failed: {error}", file=sys.stderr)
        return 1
    for card in cards.values():
        checked = card["source"]["verification"]
        print(
            f"{card['name']} {card['version']}: {card['metrics']}, {card['source']['tree']['nodes']} nodes; "
            f"ONNX Runtime agrees with scikit-learn on {checked['held_out_rows']} held-out "
            f"and {checked['grid_rows']} grid rows",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
