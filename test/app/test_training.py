"""Training: the built-in repository models/ is exactly what the code writes,
its ONNX models predict exactly as scikit-learn does, and the models are useful."""

import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime
import pytest
from sklearn.tree import DecisionTreeClassifier

from mlapi_testing import APP_DIR, SEED, SOURCE_DATE_EPOCH
from training.generate_data import generate_all
from training.generate_data import main as generate_data_main
from training.repository import (
    NAME_PATTERN,
    VerificationError,
    compare_predictions,
    feature_matrix,
    input_grid,
    onnx_feeds,
    tree_thresholds,
)
from training.train import CLASSIFIER, REGRESSOR, fit, train_all, training_timestamp

MODELS = APP_DIR.parent / "models"
PLANS = {"decision-tree-classifier": (CLASSIFIER, 0), "decision-tree-regressor": (REGRESSOR, 1)}
ELEMENT_TYPES = {"float32": onnx.TensorProto.FLOAT, "float64": onnx.TensorProto.DOUBLE, "int64": onnx.TensorProto.INT64}


@pytest.fixture(scope="module")
def datasets():
    return generate_all(SEED)


@pytest.fixture(scope="module")
def fitted(datasets):
    """The estimators as training fits them, refitted here with the same seed."""
    return {name: fit(plan, datasets[index], SEED) for name, (plan, index) in PLANS.items()}


@pytest.fixture(scope="module")
def cards():
    return {name: json.loads((MODELS / name / "model.json").read_text()) for name in PLANS}


def session(name):
    return onnxruntime.InferenceSession(str(MODELS / name / "model.onnx"), providers=["CPUExecutionProvider"])


def test_cli_training_writes_the_committed_repository_byte_for_byte(tmp_path):
    env = dict(os.environ, SOURCE_DATE_EPOCH=SOURCE_DATE_EPOCH)
    subprocess.run(
        [sys.executable, "-m", "training.train", "--out", str(tmp_path), "--seed", str(SEED)],
        cwd=APP_DIR, env=env, check=True, capture_output=True,
    )
    written = sorted(str(path.relative_to(tmp_path)) for path in tmp_path.rglob("*") if path.is_file())
    committed = sorted(str(path.relative_to(MODELS)) for path in MODELS.rglob("*") if path.is_file())
    assert written == committed == [
        "decision-tree-classifier/model.json", "decision-tree-classifier/model.onnx",
        "decision-tree-regressor/model.json", "decision-tree-regressor/model.onnx",
    ]  # and no pickle
    for name in written:
        assert (tmp_path / name).read_bytes() == (MODELS / name).read_bytes(), name


def test_cards_follow_the_repository_format(cards):
    for name, card in cards.items():
        assert card["format"] == "mlapi.model/1"
        assert card["name"] == name and NAME_PATTERN.fullmatch(name)
        assert card["file"] == "model.onnx"
        onnx_bytes = (MODELS / name / card["file"]).read_bytes()
        assert card["sha256"] == hashlib.sha256(onnx_bytes).hexdigest()
        assert card["version"] == "1.0.0+" + card["sha256"][:12]
        assert card["input_layout"] == "matrix"
        model = onnx.load_from_string(onnx_bytes)
        [graph_input] = model.graph.input
        assert graph_input.name == card["onnx"]["input"] == "X"
        assert graph_input.type.tensor_type.elem_type == ELEMENT_TYPES[card["onnx"]["input_dtype"]]
        width = 4 * sum(spec["type"] == "date" for spec in card["inputs"]) + sum(
            spec["type"] != "date" for spec in card["inputs"])
        assert graph_input.type.tensor_type.shape.dim[1].dim_value == width
        assert set(card["onnx"]["outputs"].values()) <= {output.name for output in model.graph.output}
        assert card["source"]["trained_at"] == "2026-01-01T00:00:00Z"
        assert set(card["source"]["library_versions"]) >= {"scikit-learn", "skl2onnx", "onnxruntime", "numpy"}
    classifier, regressor = cards["decision-tree-classifier"], cards["decision-tree-regressor"]
    assert classifier["task"] == "classification" and classifier["classes"] == [0, 1]
    assert classifier["result_key"] == "Predicted Class = "
    assert classifier["onnx"]["outputs"] == {"label": "label", "probabilities": "probabilities"}
    assert regressor["task"] == "regression" and regressor["onnx"]["outputs"] == {"value": "variable"}
    assert regressor["result_key"] == "Predicted Percentage Profit per Unit = "
    fields = {spec["name"]: spec for spec in regressor["inputs"]}
    assert list(fields) == ["CustomerType", "BranchSubCounty", "ProductCategoryName", "QuantityOrdered", "PaymentDate"]
    assert fields["CustomerType"]["transform"] == "label"
    assert fields["CustomerType"]["encoding"] == {"Business": 0, "Individual": 1, "Institution": 2, "Wholesale": 3}
    assert fields["PaymentDate"]["transform"] == "date-parts"
    assert [spec["name"] for spec in classifier["inputs"]] == ["monthly_fee", "customer_age", "support_calls"]


def test_cards_record_provenance(cards, tmp_path):
    generate_data_main(["--out", str(tmp_path), "--seed", str(SEED)])
    csv_files = {"decision-tree-classifier": "churn.csv", "decision-tree-regressor": "sales.csv"}
    for name, card in cards.items():
        data = card["source"]["data"]
        assert data["sha256"] == hashlib.sha256((tmp_path / csv_files[name]).read_bytes()).hexdigest()
        assert data["train_rows"] + data["test_rows"] == data["rows"]
        assert card["source"]["verification"]["held_out_rows"] == data["test_rows"]


def test_card_json_is_canonical(cards):
    for name, card in cards.items():
        text = (MODELS / name / "model.json").read_text()
        assert text == json.dumps(card, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def test_onnx_predicts_exactly_as_sklearn_on_held_out_rows_and_a_grid(fitted, datasets, cards):
    for name, model in fitted.items():
        card = cards[name]
        runtime = session(name)
        output = card["onnx"]["outputs"].get("label", card["onnx"]["outputs"].get("value"))
        records = datasets[PLANS[name][1]].columns
        held_out = {field: [values[i] for i in model.test_rows] for field, values in records.items()}
        grid, rows, full = input_grid(model.inputs, tree_thresholds(model.estimator, model.inputs))
        assert full and rows > 200_000
        for columns in (held_out, grid):
            expected = model.estimator.predict(feature_matrix(model.inputs, columns))
            actual = runtime.run([output], onnx_feeds(runtime, "matrix", model.inputs, columns, "X"))[0].ravel()
            if card["task"] == "classification":
                assert actual.tolist() == expected.tolist()
            else:
                assert np.all(np.abs(actual - expected) <= 1e-6 * np.maximum(1, np.abs(expected)))


def test_probabilities_are_the_leaf_fractions(fitted, cards):
    model = fitted["decision-tree-classifier"]
    runtime = session("decision-tree-classifier")
    probabilities = runtime.run(["probabilities"], {"X": model.X_test.astype(np.float32)})[0]
    assert np.abs(probabilities - model.estimator.predict_proba(model.X_test)).max() < 1e-6


def test_the_tutorial_payloads_are_inside_the_training_domain(cards):
    classifier = {spec["name"]: spec for spec in cards["decision-tree-classifier"]["inputs"]}
    for name, value in {"monthly_fee": 60, "customer_age": 30, "support_calls": 1}.items():
        assert classifier[name]["minimum"] <= value <= classifier[name]["maximum"]
    regressor = {spec["name"]: spec for spec in cards["decision-tree-regressor"]["inputs"]}
    assert "Kilimani" in regressor["BranchSubCounty"]["encoding"]
    assert "Meat-Based Dishes" in regressor["ProductCategoryName"]["encoding"]
    assert "Business" in regressor["CustomerType"]["encoding"]
    assert regressor["PaymentDate"]["minimum"] <= "2027-11-13" <= regressor["PaymentDate"]["maximum"]


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


def _shift_root_threshold(onnx_bytes):
    """The model with its root split moved up by one float32 step."""
    model = onnx.load_from_string(onnx_bytes)
    node = next(n for n in model.graph.node if n.op_type.startswith("TreeEnsemble"))
    attribute = next(a for a in node.attribute if a.name == "nodes_values")
    attribute.floats[0] = float(np.nextafter(np.float32(attribute.floats[0]), np.float32(np.inf)))
    return model.SerializeToString()


def test_verification_catches_a_tree_that_differs(fitted):
    model = fitted["decision-tree-classifier"]
    runtime = onnxruntime.InferenceSession(
        _shift_root_threshold((MODELS / "decision-tree-classifier" / "model.onnx").read_bytes()))
    grid, _, _ = input_grid(model.inputs, tree_thresholds(model.estimator, model.inputs))
    actual = runtime.run(["label"], onnx_feeds(runtime, "matrix", model.inputs, grid, "X"))[0]
    with pytest.raises(VerificationError, match="class labels differ"):
        compare_predictions("classification", model.estimator.predict(feature_matrix(model.inputs, grid)), actual, "grid")


def test_regression_check_allows_float32_rounding_only():
    expected = np.array([12.345678901234, 0.1, -250.0])
    assert compare_predictions("regression", expected, expected.astype(np.float32), "rows")[0] == 3
    with pytest.raises(VerificationError, match=r"largest difference 0\.001 at row 1"):
        compare_predictions("regression", expected, expected + [0, 1e-3, 1e-5], "rows")


def test_training_writes_nothing_when_verification_fails(tmp_path, monkeypatch):
    import training.train as train

    def refuse(*args, **kwargs):
        raise VerificationError("differs")

    monkeypatch.setattr(train, "compare_predictions", refuse)
    with pytest.raises(VerificationError):
        train_all(str(tmp_path / "repo"), SEED, training_timestamp({"SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH}))
    assert not (tmp_path / "repo").exists()


def test_held_out_quality_floors(cards):
    classifier = cards["decision-tree-classifier"]["metrics"]
    assert classifier["accuracy"] >= 0.80
    assert classifier["accuracy"] >= classifier["baseline_accuracy"] + 0.2
    regressor = cards["decision-tree-regressor"]["metrics"]
    assert regressor["r2"] >= 0.85
    assert regressor["mae"] <= regressor["baseline_mae"] / 3


def test_the_floor_fails_a_model_that_learned_nothing(fitted):
    model = fitted["decision-tree-classifier"]
    shuffled = np.random.default_rng(0).permutation(model.y_train)
    blind = DecisionTreeClassifier(random_state=SEED, **CLASSIFIER.params).fit(model.X_train, shuffled)
    assert (blind.predict(model.X_test) == model.y_test).mean() < 0.80


def test_an_ensemble_may_differ_by_one_float32_rounding_per_summed_tree():
    expected = np.array([100.0, 1.0])
    actual = np.array([100.0, 1.0 + 5e-6])  # partial sums near 100 round at ~7.6e-6
    with pytest.raises(VerificationError, match="largest difference 5e-06 at row 1"):
        compare_predictions("regression", expected, actual, "rows")
    assert compare_predictions("regression", expected, actual, "rows", summed_terms=40)[0] == 2
    with pytest.raises(VerificationError):
        compare_predictions("regression", expected, actual + [0, 1e-3], "rows", summed_terms=40)


def test_onnx_bytes_do_not_depend_on_the_converters_opset_order():
    from training.repository import canonical_onnx_bytes

    model = onnx.load(str(MODELS / "decision-tree-classifier" / "model.onnx"))
    reordered = onnx.load(str(MODELS / "decision-tree-classifier" / "model.onnx"))
    opsets = [(o.domain, o.version) for o in reordered.opset_import]
    del reordered.opset_import[:]
    for domain, version in reversed(opsets + [("", 17)]):  # reversed, and one listed twice
        reordered.opset_import.add(domain=domain, version=version)
    reordered.graph.name = "a1b2c3d4e5f6"  # skl2onnx's are random
    assert canonical_onnx_bytes(reordered, "decision-tree-classifier") == canonical_onnx_bytes(
        model, "decision-tree-classifier") == (MODELS / "decision-tree-classifier" / "model.onnx").read_bytes()
