"""The import command: saved scikit-learn / XGBoost / LightGBM models become
repository entries whose ONNX model predicts what the saved model predicts,
and every refusal exits 2 naming the problem."""

import hashlib
import json
import os
import subprocess
import sys

import joblib
import numpy as np
import onnx
import onnxruntime
import pytest

from mlapi_testing import APP_DIR, SOURCE_DATE_EPOCH
from training import examples, import_model
from training.import_model import sample_columns
from training.repository import onnx_feeds

SEED = 7
ENV = {"SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH}
ROOT = APP_DIR.parent


@pytest.fixture(scope="module")
def models():
    return examples.build_models(SEED, rows=2000)


@pytest.fixture(scope="module")
def saved(models, tmp_path_factory):
    """Each model pickled as a user would, with its import arguments (no repository yet)."""
    workdir = tmp_path_factory.mktemp("saved")
    return {
        name: examples.import_arguments(name, model, extra, None, str(workdir), "REPOSITORY")
        for name, (model, extra, _, _) in models.items()
    }


@pytest.fixture(scope="module")
def held_out_samples(models, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("samples")
    paths = {}
    for name, (_, _, _, held_out) in models.items():
        paths[name] = str(workdir / f"{name}.csv")
        held_out.iloc[:200].to_csv(paths[name], index=False)
    return paths


def run(argv, repository, capsys=None):
    argv = [str(repository) if arg == "REPOSITORY" else arg for arg in argv]
    status = import_model.main(argv, ENV)
    return status


@pytest.fixture(scope="module")
def repository(saved, held_out_samples, tmp_path_factory):
    """Every model imported once (the held-out sample for the first 200 held-out rows)."""
    out = tmp_path_factory.mktemp("repository")
    for name, argv in saved.items():
        assert run(argv + ["--sample", held_out_samples[name]], out) == 0, name
    return out


def source_predictions(name, model, frame, encoders):
    """What the saved model predicts for records, computed the way its author would."""
    if name in ("decision-tree-regressor", "profit-lightgbm"):
        return model.predict(examples.sales_features(frame, encoders))
    if name == "churn-pipeline":
        return model.predict(frame[examples.NUMBERS + ["plan"]])
    return model.predict(frame[examples.NUMBERS])


def onnx_predictions(folder, frame):
    card = json.loads((folder / "model.json").read_text())
    session = onnxruntime.InferenceSession(str(folder / card["file"]), providers=["CPUExecutionProvider"])
    columns = sample_columns(frame, card["inputs"])
    feeds = onnx_feeds(session, card["input_layout"], card["inputs"], columns, card["onnx"].get("input"))
    output = card["onnx"]["outputs"].get("label", card["onnx"]["outputs"].get("value"))
    return card, session.run([output], feeds)[0].ravel()


@pytest.mark.parametrize("name", [
    "decision-tree-classifier", "decision-tree-regressor", "churn-pipeline", "churn-random-forest",
    "churn-xgboost", "profit-lightgbm",
])
def test_imported_onnx_gives_the_saved_models_predictions_on_held_out_rows(name, models, repository):
    model, extra, _, held_out = models[name]
    card, actual = onnx_predictions(repository / name, held_out)
    expected = source_predictions(name, model, held_out, extra.get("label_encoders"))
    if card["task"] == "classification":
        assert actual.tolist() == expected.tolist()
        assert card["classes"] == [0, 1]
    else:
        within = np.abs(actual - expected) <= 1e-6 * np.maximum(1, np.abs(expected))
        assert np.all(within | (actual == expected.astype(np.float32)))
    assert card["sha256"] == hashlib.sha256((repository / name / "model.onnx").read_bytes()).hexdigest()
    assert card["source"]["verification"]["sample_rows"] == 200
    assert card["source"]["verification"]["grid_rows"] > 10_000


def test_cards_of_the_tutorial_like_models(repository):
    classifier = json.loads((repository / "decision-tree-classifier" / "model.json").read_text())
    assert classifier["input_layout"] == "matrix"
    assert classifier["onnx"] == {"input": "X", "input_dtype": "float32",
                                  "outputs": {"label": "label", "probabilities": "probabilities"}}
    assert classifier["result_key"] == "Predicted Class = "
    assert [(f["name"], f["type"]) for f in classifier["inputs"]] == [
        ("monthly_fee", "number"), ("customer_age", "integer"), ("support_calls", "integer")]
    assert classifier["version"] == "1"
    assert classifier["source"]["estimator"] == "sklearn.tree.DecisionTreeClassifier"
    assert classifier["source"]["imported_at"] == "2026-01-01T00:00:00Z"

    regressor = json.loads((repository / "decision-tree-regressor" / "model.json").read_text())
    fields = {f["name"]: f for f in regressor["inputs"]}
    assert list(fields) == ["CustomerType", "BranchSubCounty", "ProductCategoryName", "QuantityOrdered", "PaymentDate"]
    assert [len(fields[n]["encoding"]) for n in ("CustomerType", "BranchSubCounty", "ProductCategoryName")] == [2, 20, 11]
    assert fields["BranchSubCounty"]["encoding"]["Kilimani"] == examples.BRANCHES.index("Kilimani")
    assert fields["CustomerType"]["transform"] == "label"
    assert fields["PaymentDate"]["transform"] == "date-parts"
    assert regressor["onnx"]["outputs"] == {"value": "variable"}
    model = onnx.load(str(repository / "decision-tree-regressor" / "model.onnx"))
    assert model.graph.input[0].type.tensor_type.shape.dim[1].dim_value == 8


def test_a_pipeline_with_a_column_transformer_takes_one_input_per_field(repository):
    card = json.loads((repository / "churn-pipeline" / "model.json").read_text())
    assert card["input_layout"] == "columns"
    assert "input" not in card["onnx"]
    plan = next(f for f in card["inputs"] if f["name"] == "plan")
    assert plan == {"name": "plan", "type": "category", "transform": "raw",
                    "categories": ["basic", "family", "premium"], "example": plan["example"]}
    model = onnx.load(str(repository / "churn-pipeline" / "model.onnx"))
    assert [i.name for i in model.graph.input] == ["monthly_fee", "customer_age", "support_calls", "plan"]
    assert card["source"]["pipeline"][-1] == "classify: sklearn.linear_model.LogisticRegression"


def test_ranges_and_categories_are_drafted_from_the_sample(saved, held_out_samples, models, tmp_path):
    model, _, _, held_out = models["churn-pipeline"]
    argv = [a for a in saved["churn-pipeline"]]
    at = argv.index("--inputs")
    del argv[at: at + 2]  # no field descriptions: all from the sample
    assert run(argv + ["--sample", held_out_samples["churn-pipeline"]], tmp_path) == 0
    card = json.loads((tmp_path / "churn-pipeline" / "model.json").read_text())
    fields = {f["name"]: f for f in card["inputs"]}
    sample = held_out.iloc[:200]
    assert fields["customer_age"]["type"] == "integer"
    assert fields["customer_age"]["minimum"] == int(sample["customer_age"].min())
    assert fields["monthly_fee"]["type"] == "number"
    assert fields["monthly_fee"]["maximum"] == float(sample["monthly_fee"].max())


def test_the_output_names_what_was_written_and_warns_about_unpickling(saved, tmp_path, capsys):
    assert run(saved["decision-tree-classifier"], tmp_path) == 0
    out, err = capsys.readouterr()
    assert f"wrote {tmp_path}/decision-tree-classifier/" in out
    assert "ONNX input X (float32, 3 features) -> label=label, probabilities=probabilities" in out
    assert "verified: ONNX Runtime gives the original model's predictions on" in out
    warnings = [line for line in err.splitlines() if "warning: unpickling" in line]
    assert len(warnings) == 1 and "trust" in warnings[0]


def test_the_wrapper_script_runs_the_command_with_the_venv(saved, tmp_path):
    argv = [str(tmp_path) if a == "REPOSITORY" else a for a in saved["decision-tree-classifier"]]
    result = subprocess.run(["bash", str(ROOT / "scripts" / "import-model.sh"), *argv], cwd=tmp_path,
                            capture_output=True, text=True, env=dict(os.environ, **ENV))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "decision-tree-classifier" / "model.onnx").is_file()


# --- refusals ----------------------------------------------------------------

def refused(argv, repository, capsys, match):
    status = run(argv, repository)
    err = capsys.readouterr().err
    assert status == 2, err
    assert "import-model: refused:" in err and match in err, err
    return err


def test_refuses_an_unsupported_estimator(tmp_path, capsys, models):
    from sklearn.cluster import KMeans

    _, _, train, _ = models["decision-tree-classifier"]
    path = tmp_path / "kmeans.pkl"
    joblib.dump(KMeans(n_clusters=2, n_init=1, random_state=0).fit(train[examples.NUMBERS]), path)
    refused(["--model", str(path), "--name", "k", "--repository", str(tmp_path / "r")], tmp_path, capsys,
            "unsupported estimator sklearn.cluster.KMeans")
    assert not (tmp_path / "r").exists()


def test_refuses_an_estimator_skl2onnx_cannot_convert(tmp_path, capsys, models):
    from sklearn.neural_network import BernoulliRBM
    from sklearn.pipeline import Pipeline
    from sklearn.tree import DecisionTreeClassifier

    _, _, train, _ = models["decision-tree-classifier"]
    pipeline = Pipeline([("rbm", BernoulliRBM(n_components=2, random_state=0)),
                         ("tree", DecisionTreeClassifier(max_depth=2))]).fit(train[examples.NUMBERS] / 300, train["churn"])
    path = tmp_path / "rbm.pkl"
    joblib.dump(pipeline, path)
    refused(["--model", str(path), "--name", "rbm", "--repository", str(tmp_path)], tmp_path, capsys,
            "unsupported estimator sklearn.neural_network.BernoulliRBM")


def test_refuses_feature_names_that_do_not_match_the_inputs(saved, tmp_path, capsys):
    inputs = tmp_path / "inputs.json"
    inputs.write_text(json.dumps({"monthly_fees": {"type": "number", "minimum": 0, "maximum": 9}}))
    argv = saved["decision-tree-classifier"] + ["--inputs", str(inputs)]
    refused(argv, tmp_path, capsys, "feature names do not match the inputs: ['monthly_fees']")


def test_refuses_a_date_field_the_model_does_not_take(saved, tmp_path, capsys):
    refused(saved["decision-tree-classifier"] + ["--date", "signup"], tmp_path, capsys,
            "feature names do not match --date signup")


def test_refuses_label_encoders_for_columns_the_model_lacks(saved, tmp_path, capsys):
    encoders = tmp_path / "encoders.pkl"
    joblib.dump(examples.label_encoders(), encoders)
    refused(saved["decision-tree-classifier"] + ["--label-encoders", str(encoders)], tmp_path, capsys,
            "feature names do not match the inputs: ['CustomerType', 'BranchSubCounty', 'ProductCategoryName']")


def test_refuses_a_text_field_of_a_matrix_model_without_its_codes(saved, tmp_path, capsys):
    argv = list(saved["decision-tree-regressor"])
    at = argv.index("--label-encoders")
    del argv[at: at + 2]
    refused(argv, tmp_path, capsys, "no type; describe it in --inputs or give a --sample")


def test_refuses_a_number_without_a_range(saved, tmp_path, capsys):
    argv = list(saved["decision-tree-classifier"])
    inputs = tmp_path / "inputs.json"
    inputs.write_text(json.dumps({"monthly_fee": {"type": "number"}, "customer_age": {"type": "integer"},
                                  "support_calls": {"type": "integer"}}))
    argv[argv.index("--inputs") + 1] = str(inputs)
    refused(argv, tmp_path, capsys, "field 'monthly_fee': no range")


@pytest.mark.parametrize("name", ["Churn", "churn_model", "-churn", "churn-", "a" * 64, ""])
def test_refuses_a_name_that_is_not_allowed(saved, tmp_path, capsys, name):
    argv = list(saved["decision-tree-classifier"])
    at = argv.index("--name")
    argv[at: at + 2] = [f"--name={name}"]  # "=": a name starting with "-" is still the value
    refused(argv, tmp_path, capsys, f"model name {name!r} is not allowed")


def test_refuses_a_version_that_is_not_allowed(saved, tmp_path, capsys):
    refused(saved["decision-tree-classifier"] + ["--version", "1 beta"], tmp_path, capsys,
            "version '1 beta' is not allowed")


def test_refuses_an_existing_folder_without_force(saved, tmp_path, capsys):
    argv = saved["decision-tree-classifier"]
    assert run(argv, tmp_path) == 0
    before = (tmp_path / "decision-tree-classifier" / "model.json").read_bytes()
    refused(argv, tmp_path, capsys, "decision-tree-classifier already exists; pass --force")
    assert run(argv + ["--force", "--description", "Replaced."], tmp_path) == 0
    after = json.loads((tmp_path / "decision-tree-classifier" / "model.json").read_text())
    assert after["description"] == "Replaced." and before != json.dumps(after)


def test_refuses_a_prediction_mismatch(saved, tmp_path, capsys, monkeypatch, models):
    from sklearn.tree import DecisionTreeClassifier
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    _, _, train, _ = models["decision-tree-classifier"]
    other = DecisionTreeClassifier(max_depth=2, random_state=1).fit(train[examples.NUMBERS].to_numpy(), train["churn"])
    wrong = convert_sklearn(other, initial_types=[("X", FloatTensorType([None, 3]))],
                            options={id(other): {"zipmap": False}}, target_opset={"": 18, "ai.onnx.ml": 3})
    original = import_model.convert

    def convert_to_another_tree(*args):
        _, section = original(*args)
        return wrong.SerializeToString(), section

    monkeypatch.setattr(import_model, "convert", convert_to_another_tree)
    err = refused(saved["decision-tree-classifier"], tmp_path, capsys, "prediction mismatch: grid rows:")
    assert "ONNX class labels differ from the original model's; first at row" in err
    assert not (tmp_path / "decision-tree-classifier").exists()


def test_refuses_a_regression_mismatch_naming_the_largest_difference(saved, tmp_path, capsys, monkeypatch):
    original = import_model.run_onnx

    def off_by_a_little(session, feeds, outputs):
        values = original(session, feeds, outputs).astype(np.float64)
        values[3] += 0.25
        return values

    monkeypatch.setattr(import_model, "run_onnx", off_by_a_little)
    refused(saved["decision-tree-regressor"], tmp_path, capsys, "largest difference 0.25 at row 3")


def test_refuses_a_file_that_is_not_a_model(tmp_path, capsys):
    path = tmp_path / "notes.pkl"
    path.write_bytes(b"not a pickle")
    refused(["--model", str(path), "--name", "x", "--repository", str(tmp_path)], tmp_path, capsys, "cannot load")


def test_refuses_label_encoders_that_are_not_a_dict(saved, tmp_path, capsys):
    path = tmp_path / "encoders.pkl"
    joblib.dump([1, 2], path)
    argv = list(saved["decision-tree-regressor"])
    argv[argv.index("--label-encoders") + 1] = str(path)
    refused(argv, tmp_path, capsys, "expected a dict of column -> fitted LabelEncoder")


def test_the_example_repository_command_is_reproducible(tmp_path):
    for out in ("a", "b"):
        result = subprocess.run([sys.executable, "-m", "training.examples", "--out", str(tmp_path / out)],
                                cwd=APP_DIR, capture_output=True, text=True, env=dict(os.environ, **ENV))
        assert result.returncode == 0, result.stderr
        assert result.stdout.count("verified: ONNX Runtime gives the original model's predictions") == 6
    written = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert written == sorted(["decision-tree-classifier", "decision-tree-regressor", "churn-pipeline",
                              "churn-random-forest", "churn-xgboost", "profit-lightgbm"])
    for name in written:
        assert sorted(p.name for p in (tmp_path / "a" / name).iterdir()) == ["model.json", "model.onnx"]
        for file_name in ("model.json", "model.onnx"):
            assert (tmp_path / "a" / name / file_name).read_bytes() == (tmp_path / "b" / name / file_name).read_bytes()


def test_a_plain_pickle_imports_too(models, held_out_samples, tmp_path):
    import pickle

    model = models["churn-random-forest"][0]
    path = tmp_path / "forest.pickle"
    path.write_bytes(pickle.dumps(model))
    argv = ["--model", str(path), "--name", "forest", "--repository", str(tmp_path), "--sample",
            held_out_samples["churn-random-forest"]]
    assert run(argv, tmp_path) == 0
    card, actual = onnx_predictions(tmp_path / "forest", models["churn-random-forest"][3])
    assert actual.tolist() == model.predict(models["churn-random-forest"][3][examples.NUMBERS]).tolist()


def _boosting_cases(train):
    from lightgbm import LGBMClassifier
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder
    from xgboost import XGBRegressor

    numbers = train[examples.NUMBERS]
    return {
        "xgboost-regressor": (XGBRegressor(n_estimators=40, max_depth=4, n_jobs=1, random_state=0)
                              .fit(numbers, train["monthly_fee"] * 0.3 + train["support_calls"]), examples.NUMBERS),
        "lightgbm-pipeline": (Pipeline([
            ("prepare", ColumnTransformer([("keep", "passthrough", examples.NUMBERS),
                                           ("onehot", OneHotEncoder(), ["plan"])])),
            ("boost", LGBMClassifier(n_estimators=30, n_jobs=1, verbose=-1, random_state=0)),
        ]).fit(train[examples.NUMBERS + ["plan"]], train["churn"]), examples.NUMBERS + ["plan"]),
    }


def test_xgboost_regressor_and_lightgbm_as_a_pipeline_step(models, held_out_samples, tmp_path, capsys):
    _, _, train, held_out = models["churn-pipeline"]
    for name, (model, columns) in _boosting_cases(train).items():
        path = tmp_path / f"{name}.pkl"
        joblib.dump(model, path)
        argv = ["--model", str(path), "--name", name, "--repository", str(tmp_path / "repo"),
                "--sample", held_out_samples["churn-pipeline"]]
        assert run(argv, tmp_path) == 0, capsys.readouterr().err
        card, actual = onnx_predictions(tmp_path / "repo" / name, held_out)
        expected = model.predict(held_out[columns])
        if card["task"] == "classification":
            assert card["input_layout"] == "columns"
            assert actual.tolist() == expected.tolist()
        else:
            assert card["onnx"]["input_dtype"] == "float32"
            assert np.abs(actual - expected).max() <= 40 * 2.0**-23 * max(1, np.abs(expected).max())
            assert card["source"]["verification"]["grid_rows"] > 10_000


def test_refuses_a_boosting_model_behind_a_scaler_it_cannot_reproduce(models, held_out_samples, tmp_path, capsys):
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from xgboost import XGBClassifier

    _, _, train, _ = models["churn-pipeline"]
    model = Pipeline([("scale", StandardScaler()), ("boost", XGBClassifier(n_estimators=20, n_jobs=1))])
    path = tmp_path / "scaled.pkl"
    joblib.dump(model.fit(train[examples.NUMBERS], train["churn"]), path)
    # The scaler runs in float64 in scikit-learn and in float32 before the ONNX trees:
    # inputs next to a split land on the other side, and the check says so.
    refused(["--model", str(path), "--name", "scaled", "--repository", str(tmp_path),
             "--sample", held_out_samples["churn-pipeline"]], tmp_path, capsys, "prediction mismatch")
