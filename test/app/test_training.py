"""Training: reproducible, exported trees identical to scikit-learn, useful models."""

import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from sklearn.tree import DecisionTreeClassifier

from mlapi.registry import load_models
from mlapi.tree import DecisionTree
from mlapi_testing import APP_DIR, CLASSIFIER_URL, REGRESSOR_URL, SEED, SOURCE_DATE_EPOCH
from training.export import export_tree, tree_json_bytes
from training.generate_data import generate_all
from training.generate_data import main as generate_data_main
from training.train import CLASSIFIER, REGRESSOR, fit
from training.verify import VerificationError, assert_identical, input_grid

PLANS = {"decision-tree-classifier": (CLASSIFIER, 0), "decision-tree-regressor": (REGRESSOR, 1)}


@pytest.fixture(scope="module")
def datasets():
    return generate_all(SEED)


@pytest.fixture(scope="module")
def fitted(datasets):
    """The estimators as training fits them, refitted here with the same seed."""
    return {name: fit(plan, datasets[index], SEED) for name, (plan, index) in PLANS.items()}


def test_cli_training_is_byte_identical_for_the_same_seed_and_date(tmp_path, model_dir):
    env = dict(os.environ, SOURCE_DATE_EPOCH=SOURCE_DATE_EPOCH)
    subprocess.run(
        [sys.executable, "-m", "training.train", "--out", str(tmp_path), "--seed", str(SEED)],
        cwd=APP_DIR, env=env, check=True, capture_output=True,
    )
    written = sorted(path.name for path in tmp_path.iterdir())
    assert written == ["classifier.json", "metadata.json", "regressor.json"]  # and no pickle
    for name in written:
        assert (tmp_path / name).read_bytes() == (model_dir / name).read_bytes(), name


def test_metadata_records_provenance(metadata, model_dir, tmp_path):
    generate_data_main(["--out", str(tmp_path), "--seed", str(SEED)])
    csv_files = {"decision-tree-classifier": "churn.csv", "decision-tree-regressor": "sales.csv"}
    for name, model in metadata["models"].items():
        assert model["trained_at"] == "2026-01-01T00:00:00Z"
        artifact = (model_dir / model["artifact"]["file"]).read_bytes()
        assert model["artifact"]["sha256"] == hashlib.sha256(artifact).hexdigest()
        assert model["version"].endswith("+" + model["artifact"]["sha256"][:12])
        data_csv = (tmp_path / csv_files[name]).read_bytes()
        assert model["data"]["sha256"] == hashlib.sha256(data_csv).hexdigest()
        assert model["data"]["train_rows"] + model["data"]["test_rows"] == model["data"]["rows"]
    regressor = metadata["models"]["decision-tree-regressor"]
    assert regressor["model_features"] == [
        "CustomerType", "BranchSubCounty", "ProductCategoryName", "QuantityOrdered",
        "PaymentDate.year", "PaymentDate.month", "PaymentDate.day", "PaymentDate.day_of_week",
    ]
    encodings = {spec["name"]: spec.get("encoding") for spec in regressor["inputs"]}
    assert encodings["CustomerType"] == {"Business": 0, "Individual": 1, "Institution": 2, "Wholesale": 3}


def test_seed_payload_values_are_inside_the_training_domain(datasets):
    _, sales = datasets
    assert "Kilimani" in sales.columns["BranchSubCounty"]
    assert "Meat-Based Dishes" in sales.columns["ProductCategoryName"]
    assert "Business" in sales.columns["CustomerType"]
    assert min(sales.columns["PaymentDate"]) <= "2027-11-13" <= max(sales.columns["PaymentDate"])


def test_generated_data_has_the_documented_relationships(datasets):
    churn, sales = datasets
    calls = np.array(churn.columns["support_calls"])
    fee = np.array(churn.columns["monthly_fee"])
    age = np.array(churn.columns["customer_age"])
    churned = np.array(churn.target)
    assert churned[calls >= 4].mean() > churned[calls <= 1].mean() + 0.2
    assert churned[fee > 200].mean() > churned[fee < 100].mean() + 0.3
    assert churned[age > 70].mean() < churned[age < 35].mean() - 0.2

    profit = np.array(sales.target)
    quantity = np.array(sales.columns["QuantityOrdered"])
    assert profit[quantity >= 25].mean() < profit[quantity < 10].mean() - 5
    assert generate_all(SEED + 1)[0].target != churn.target


def test_served_artifacts_are_the_seeded_fits(fitted, model_dir, metadata):
    for name, model in fitted.items():
        artifact = tree_json_bytes(export_tree(model.estimator, model.feature_names))
        assert artifact == (model_dir / metadata["models"][name]["artifact"]["file"]).read_bytes()


def test_exported_trees_equal_sklearn_on_held_out_rows_and_a_grid(fitted, model_dir):
    served = load_models(str(model_dir))
    for name, model in fitted.items():
        tree = served[name].tree
        assert assert_identical(model.estimator, tree, model.X_test, "held-out") == len(model.y_test)
        assert assert_identical(model.estimator, tree, input_grid(model.schema, tree), "grid") > 200_000


def test_api_predicts_exactly_as_sklearn_on_held_out_records(fitted, datasets, make_app):
    client = make_app(MLAPI_MAX_BODY_BYTES=1 << 22, MLAPI_MAX_BATCH=10_000).test_client()
    for (name, model), url in zip(fitted.items(), (CLASSIFIER_URL, REGRESSOR_URL), strict=True):
        records = datasets[PLANS[name][1]].records()
        held_out = [records[row] for row in model.test_rows]
        answers = client.post(url, json=held_out).get_json()
        assert [answer["prediction"] for answer in answers] == model.estimator.predict(model.X_test).tolist()


def test_verification_catches_a_tree_that_differs(fitted, model_dir):
    model = fitted["decision-tree-classifier"]
    document = json.loads((model_dir / "classifier.json").read_text())
    # Move the root split up by one float32 step: only inputs right at the
    # threshold change branch, and the grid must contain them.
    root_threshold = document["nodes"]["threshold"][0]
    document["nodes"]["threshold"][0] = float(np.nextafter(np.float32(root_threshold), np.float32(np.inf)))
    shifted = DecisionTree(document)
    with pytest.raises(VerificationError, match="differ"):
        assert_identical(model.estimator, shifted, input_grid(model.schema, shifted), "grid")


def test_held_out_quality_floors(metadata):
    classifier = metadata["models"]["decision-tree-classifier"]["metrics"]
    assert classifier["accuracy"] >= 0.80
    assert classifier["accuracy"] >= classifier["baseline_accuracy"] + 0.2
    regressor = metadata["models"]["decision-tree-regressor"]["metrics"]
    assert regressor["r2"] >= 0.85
    assert regressor["mae"] <= regressor["baseline_mae"] / 3


def test_the_floor_fails_a_model_that_learned_nothing(fitted):
    model = fitted["decision-tree-classifier"]
    shuffled = np.random.default_rng(0).permutation(model.y_train)
    blind = DecisionTreeClassifier(random_state=SEED, **CLASSIFIER.params).fit(model.X_train, shuffled)
    assert (blind.predict(model.X_test) == model.y_test).mean() < 0.80
