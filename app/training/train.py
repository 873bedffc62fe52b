"""Train the served decision trees and write the model directory.

    python -m training.train --out DIR [--seed 42]      (run from app/)

Writes DIR/classifier.json and DIR/regressor.json (the exported trees) and
DIR/metadata.json (versions, training date, data hash, input domains, label
encodings, held-out metrics, sizes). The training date is SOURCE_DATE_EPOCH
when set, else now; with the same seed and SOURCE_DATE_EPOCH the output is
byte-identical. Exits non-zero, writing nothing, if an exported tree does
not predict exactly as scikit-learn does.
"""

import argparse
import datetime as dt
import hashlib
import json
import os
import sys
from dataclasses import dataclass

import numpy as np
import sklearn
from sklearn.metrics import accuracy_score, mean_absolute_error, r2_score
from sklearn.model_selection import train_test_split
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from mlapi.fields import field_from_spec
from mlapi.records import RecordSchema
from mlapi.registry import METADATA_FILE, METADATA_FORMAT
from mlapi.tree import DecisionTree

from .export import export_tree, tree_json_bytes
from .generate_data import generate_all
from .verify import VerificationError, assert_identical, input_grid

# Bumped by hand when a model's inputs or meaning change; the artifact hash
# is appended, so any retrained tree gets a new version.
MODEL_VERSION = "1.0.0"
TEST_SHARE = 0.25


@dataclass(frozen=True)
class ModelPlan:
    name: str
    artifact: str
    description: str
    target: dict
    estimator_class: type
    params: dict


CLASSIFIER = ModelPlan(
    name="decision-tree-classifier",
    artifact="classifier.json",
    description="Customer churn: 1 if the customer is predicted to leave, 0 to stay.",
    target={"name": "churn", "classes": [0, 1], "description": "1 = churns, 0 = stays"},
    estimator_class=DecisionTreeClassifier,
    params={"max_depth": 6, "min_samples_leaf": 20},
)
REGRESSOR = ModelPlan(
    name="decision-tree-regressor",
    artifact="regressor.json",
    description="Percentage profit per unit of a sale.",
    target={"name": "PercentageProfitPerUnit", "unit": "percent"},
    estimator_class=DecisionTreeRegressor,
    params={"max_depth": 10, "min_samples_leaf": 20},
)


def training_timestamp(environ):
    """SOURCE_DATE_EPOCH (reproducible builds) if set, else the current time; UTC, ISO 8601."""
    epoch = environ.get("SOURCE_DATE_EPOCH")
    moment = dt.datetime.fromtimestamp(int(epoch), dt.UTC) if epoch else dt.datetime.now(dt.UTC)
    return moment.replace(microsecond=0).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class FittedModel:
    plan: ModelPlan
    schema: RecordSchema
    feature_names: list
    estimator: object
    test_rows: np.ndarray  # indices of the held-out records in the data set
    X_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    y_train: np.ndarray


def fit(plan, dataset, seed):
    """Split the data set and fit the plan's estimator on the training part."""
    schema = RecordSchema(field_from_spec(spec) for spec in dataset.inputs)
    feature_names = [name for field in schema.fields for name in field.feature_names()]
    # Features are built by the API's own code, so serving cannot drift from training.
    X, problems = schema.features_of_records(dataset.records(), is_batch=True)
    if problems:
        raise VerificationError(f"{dataset.name}: generated rows outside the documented domain: {problems[:3]}")
    X = np.array(X, dtype=np.float64)
    y = np.array(dataset.target)
    is_classifier = plan.estimator_class is DecisionTreeClassifier
    train_rows, test_rows = train_test_split(
        np.arange(len(y)), test_size=TEST_SHARE, random_state=seed, stratify=y if is_classifier else None
    )
    estimator = plan.estimator_class(random_state=seed, **plan.params).fit(X[train_rows], y[train_rows])
    return FittedModel(
        plan, schema, feature_names, estimator, test_rows,
        X[train_rows], X[test_rows], y[test_rows], y[train_rows],
    )


def train_model(plan, dataset, seed, trained_at):
    """Fit, verify and describe one model. Returns (artifact bytes, metadata entry)."""
    fitted = fit(plan, dataset, seed)
    estimator, X_test, y_test, y_train = fitted.estimator, fitted.X_test, fitted.y_test, fitted.y_train
    artifact = tree_json_bytes(export_tree(estimator, fitted.feature_names))
    exported = DecisionTree(json.loads(artifact))
    held_out_rows = assert_identical(estimator, exported, X_test, f"{plan.name} held-out rows")
    grid_rows = assert_identical(estimator, exported, input_grid(fitted.schema, exported), f"{plan.name} input grid")

    artifact_sha256 = hashlib.sha256(artifact).hexdigest()
    metadata = {
        "name": plan.name,
        "version": f"{MODEL_VERSION}+{artifact_sha256[:12]}",
        "task": exported.task,
        "description": plan.description,
        "trained_at": trained_at,
        "artifact": {"file": plan.artifact, "sha256": artifact_sha256, "bytes": len(artifact)},
        "inputs": list(dataset.inputs),
        "model_features": fitted.feature_names,
        "target": plan.target,
        "metrics": _metrics(exported.task, estimator.predict(X_test), y_test, y_train),
        "data": {
            "name": dataset.name,
            "generator": "training.generate_data",
            "seed": seed,
            "sha256": dataset.sha256(),
            "rows": len(dataset),
            "train_rows": len(y_train),
            "test_rows": len(y_test),
        },
        "tree": {
            "estimator": f"sklearn.tree.{plan.estimator_class.__name__}",
            "params": {**plan.params, "random_state": seed},
            "nodes": int(estimator.tree_.node_count),
            "leaves": int(estimator.get_n_leaves()),
            "depth": int(estimator.get_depth()),
        },
        "verification": {"identical_on_held_out_rows": held_out_rows, "identical_on_grid_rows": grid_rows},
        "libraries": {"scikit-learn": sklearn.__version__, "numpy": np.__version__},
    }
    return artifact, metadata


def _metrics(task, predicted, y_test, y_train):
    if task == "classification":
        majority = np.bincount(y_train).argmax()
        return {
            "accuracy": round(float(accuracy_score(y_test, predicted)), 6),
            "baseline_accuracy": round(float(np.mean(y_test == majority)), 6),
        }
    return {
        "r2": round(float(r2_score(y_test, predicted)), 6),
        "mae": round(float(mean_absolute_error(y_test, predicted)), 6),
        "baseline_mae": round(float(np.mean(np.abs(y_test - y_train.mean()))), 6),
    }


def train_all(out_dir, seed, trained_at):
    """Train both models and write the model directory; returns the metadata."""
    churn, sales = generate_all(seed)
    artifacts = {}
    models = {}
    for plan, dataset in ((CLASSIFIER, churn), (REGRESSOR, sales)):
        artifacts[plan.artifact], models[plan.name] = train_model(plan, dataset, seed, trained_at)
    metadata = {"format": METADATA_FORMAT, "models": models}
    os.makedirs(out_dir, exist_ok=True)
    for file_name, content in artifacts.items():
        _write(os.path.join(out_dir, file_name), content)
    _write(
        os.path.join(out_dir, METADATA_FILE),
        (json.dumps(metadata, indent=2, sort_keys=True, allow_nan=False) + "\n").encode("utf-8"),
    )
    return metadata


def _write(path, content):
    with open(path, "wb") as file:
        file.write(content)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Train the served decision trees.")
    parser.add_argument("--out", required=True, help="model directory to write")
    parser.add_argument("--seed", type=int, default=42, help="seed of the data, the split and the trees")
    args = parser.parse_args(argv)
    try:
        metadata = train_all(args.out, args.seed, training_timestamp(os.environ))
    except VerificationError as error:
        print(f"training failed: {error}", file=sys.stderr)
        return 1
    for model in metadata["models"].values():
        print(
            f"{model['name']} {model['version']}: {model['metrics']}, {model['tree']['nodes']} nodes, "
            f"identical to scikit-learn on {model['verification']['identical_on_held_out_rows']} held-out "
            f"and {model['verification']['identical_on_grid_rows']} grid rows",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
