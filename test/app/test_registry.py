"""Loading a model repository: every rule of docs/model-repository.md is
checked, and a bad repository is refused naming the model, the file and the
problem. Also the field transforms and fork safety of the loaded sessions."""

import datetime as dt
import json
import os
import shutil
import signal

import pytest
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType

from mlapi.card import check_card
from mlapi.fields import SpecError, field_from_spec
from mlapi.records import RecordSchema
from mlapi.registry import ModelLoadError, load_model, load_models
from model_repository import CLASSIFIER_NAME, PLAN_NAME, REGRESSOR_NAME, write_model

CARD = "model.json"
ONNX = "model.onnx"


def _edit(**changes):
    def change(card):
        card.update(changes)
    return change


def _drop(key):
    def change(card):
        del card[key]
    return change


def _field(index, **changes):
    def change(card):
        card["inputs"][index].update(changes)
        for key, value in changes.items():
            if value is None:
                del card["inputs"][index][key]
    return change


def _onnx(**changes):
    def change(card):
        card["onnx"].update(changes)
    return change


def _outputs(**outputs):
    def change(card):
        card["onnx"]["outputs"] = outputs
    return change


# (model, change to its card, file named, words of the problem)
CARD_RULES = [
    pytest.param(CLASSIFIER_NAME, _edit(format="mlapi.model/2"), CARD, "format must be 'mlapi.model/1'", id="format"),
    pytest.param(CLASSIFIER_NAME, _drop("name"), CARD, "name is missing", id="name-missing"),
    pytest.param(CLASSIFIER_NAME, _edit(name="decision-tree"), CARD,
                 "name 'decision-tree' is not the name of its folder 'decision-tree-classifier'", id="name-not-folder"),
    pytest.param(CLASSIFIER_NAME, _edit(name=7), CARD, "name must be a non-empty string, got 7", id="name-type"),
    pytest.param(CLASSIFIER_NAME, _edit(version="1 0"), CARD, "version must match", id="version-pattern"),
    pytest.param(CLASSIFIER_NAME, _edit(version="v" * 65), CARD, "version must match", id="version-too-long"),
    pytest.param(CLASSIFIER_NAME, _drop("version"), CARD, "version is missing", id="version-missing"),
    pytest.param(CLASSIFIER_NAME, _edit(task="clustering"), CARD, "task must be one of classification, regression",
                 id="task"),
    pytest.param(CLASSIFIER_NAME, _drop("description"), CARD, "description is missing", id="description"),
    pytest.param(CLASSIFIER_NAME, _edit(file="../model.onnx"), CARD, "file must be a plain file name", id="file-up"),
    pytest.param(CLASSIFIER_NAME, _edit(file="sub/model.onnx"), CARD, "file must be a plain file name",
                 id="file-path"),
    pytest.param(CLASSIFIER_NAME, _edit(sha256="ABC"), CARD, "sha256 must be 64 lower-case hex digits", id="sha256"),
    pytest.param(CLASSIFIER_NAME, _edit(result_key="model"), CARD, "result_key must be a string other than",
                 id="result-key"),
    pytest.param(CLASSIFIER_NAME, _edit(input_layout="rows"), CARD, "input_layout must be one of matrix, columns",
                 id="layout"),
    pytest.param(CLASSIFIER_NAME, _edit(inputs=[]), CARD, "inputs must be a non-empty list", id="inputs-empty"),
    pytest.param(CLASSIFIER_NAME, _field(0, name="1fee"), CARD, "field name must match", id="field-name"),
    pytest.param(CLASSIFIER_NAME, _field(1, name="monthly_fee"), CARD, "field name 'monthly_fee' appears twice",
                 id="field-twice"),
    pytest.param(CLASSIFIER_NAME, _field(0, type="text"), CARD,
                 "field 'monthly_fee': type must be one of number, integer, category, date", id="field-type"),
    pytest.param(CLASSIFIER_NAME, _field(0, type=["number"]), CARD, "type must be one of", id="field-type-list"),
    pytest.param(CLASSIFIER_NAME, _field(0, transform="onehot"), CARD,
                 "field 'monthly_fee': transform must be one of number for type number", id="field-transform"),
    pytest.param(CLASSIFIER_NAME, _field(0, maximum=None), CARD, "field 'monthly_fee': maximum is missing",
                 id="field-key-missing"),
    pytest.param(CLASSIFIER_NAME, _field(0, minimum=400), CARD, "field 'monthly_fee': minimum 400 is above maximum",
                 id="field-range"),
    pytest.param(CLASSIFIER_NAME, _field(1, minimum=1.5), CARD,
                 "field 'customer_age': minimum must be a whole number, got 1.5", id="integer-bound"),
    pytest.param(CLASSIFIER_NAME, _field(0, minimum=True), CARD, "minimum must be a finite number, got True",
                 id="bool-bound"),
    pytest.param(CLASSIFIER_NAME, _field(0, example=400), CARD,
                 "field 'monthly_fee': example must be between 0 and 300, got 400", id="field-example"),
    pytest.param(CLASSIFIER_NAME, _field(0, description=5), CARD, "description must be a string", id="field-desc"),
    pytest.param(REGRESSOR_NAME, _field(0, encoding=None), CARD, "field 'CustomerType': encoding is missing",
                 id="label-encoding-missing"),
    pytest.param(REGRESSOR_NAME, _field(0, encoding={"Business": 0, "Individual": 0}), CARD,
                 "field 'CustomerType': encoding must be an object of category: distinct code", id="label-codes"),
    pytest.param(REGRESSOR_NAME, _field(0, transform="onehot", categories=["A", "A"]), CARD,
                 "field 'CustomerType': categories must be a list of distinct strings", id="onehot-categories"),
    pytest.param(REGRESSOR_NAME, _field(0, transform="raw", categories=["Business"]), CARD,
                 "field 'CustomerType': transform raw cannot feed the matrix layout", id="raw-in-matrix"),
    pytest.param(PLAN_NAME, _field(1, transform="onehot"), CARD,
                 "field 'plan': transform onehot cannot feed the columns layout", id="onehot-in-columns"),
    pytest.param(REGRESSOR_NAME, _field(4, minimum="2023-02-30"), CARD,
                 "field 'PaymentDate': minimum must be a date YYYY-MM-DD", id="date-bound"),
    pytest.param(REGRESSOR_NAME, _field(4, minimum="2030-01-01"), CARD,
                 "field 'PaymentDate': minimum 2030-01-01 is after maximum", id="date-range"),
    pytest.param(CLASSIFIER_NAME, _drop("onnx"), CARD, "onnx must be an object", id="onnx-missing"),
    pytest.param(CLASSIFIER_NAME, _onnx(input=None), CARD, "onnx.input must be a non-empty string", id="onnx-input"),
    pytest.param(CLASSIFIER_NAME, _onnx(input_dtype="float16"), CARD,
                 "onnx.input_dtype must be one of float32, float64, int64", id="onnx-dtype"),
    pytest.param(CLASSIFIER_NAME, _onnx(input_dtype="int64"), CARD,
                 "field 'monthly_fee': a number cannot feed an int64 input", id="number-into-int64"),
    pytest.param(CLASSIFIER_NAME, _outputs(probabilities="probabilities"), CARD, "onnx.outputs.label is missing",
                 id="label-output-missing"),
    pytest.param(CLASSIFIER_NAME, _outputs(label="label", scores="probabilities"), CARD,
                 "onnx.outputs: 'scores' is not an output of a classification model", id="unknown-output"),
    pytest.param(REGRESSOR_NAME, _outputs(label="variable"), CARD,
                 "onnx.outputs: 'label' is not an output of a regression model", id="regression-label"),
    pytest.param(CLASSIFIER_NAME, _drop("classes"), CARD, "classes must be a non-empty list", id="classes-missing"),
    pytest.param(CLASSIFIER_NAME, _edit(classes=[0, "1"]), CARD, "classes must be all whole numbers or all strings",
                 id="classes-mixed"),
    pytest.param(CLASSIFIER_NAME, _edit(classes=[1, 1]), CARD, "classes must be distinct", id="classes-twice"),
    pytest.param(CLASSIFIER_NAME, _edit(metrics=[0.9]), CARD, "metrics must be an object", id="metrics"),
    pytest.param(CLASSIFIER_NAME, _edit(source="sklearn"), CARD, "source must be an object", id="source"),
    # What the card says about the ONNX model, checked with ONNX Runtime.
    pytest.param(CLASSIFIER_NAME, _onnx(input="features"), ONNX,
                 "the ONNX inputs ['X'] are not the card's one input 'features'", id="onnx-input-name"),
    pytest.param(CLASSIFIER_NAME, _onnx(input_dtype="float64"), ONNX,
                 "ONNX input 'X' is tensor(float), the card says float64", id="onnx-input-type"),
    pytest.param(CLASSIFIER_NAME, lambda card: card["inputs"].pop(), ONNX,
                 "ONNX input 'X' has 3 columns, the fields' feature count is 2", id="feature-count"),
    pytest.param(REGRESSOR_NAME, _field(0, transform="onehot", categories=["Business", "Individual"]), ONNX,
                 "ONNX input 'X' has 8 columns, the fields' feature count is 9", id="onehot-widens"),
    pytest.param(CLASSIFIER_NAME, _outputs(label="output_label"), ONNX,
                 "onnx.outputs.label: the model has no output 'output_label' (outputs: label, probabilities)",
                 id="output-name"),
    pytest.param(CLASSIFIER_NAME, _outputs(label="probabilities"), ONNX,
                 "ONNX output 'probabilities' (label) is tensor(float), expected tensor(int64)", id="label-type"),
    pytest.param(CLASSIFIER_NAME, _edit(classes=["no", "yes"]), ONNX,
                 "ONNX output 'label' (label) is tensor(int64), expected tensor(string)", id="string-classes"),
    pytest.param(CLASSIFIER_NAME, _edit(classes=[0, 1, 2]), ONNX,
                 "ONNX output 'probabilities' has 2 columns, the number of classes is 3", id="class-count"),
    pytest.param(CLASSIFIER_NAME, _edit(classes=[5, 6]), ONNX,
                 "the model predicts [0] for one record, not one of classes", id="unknown-class"),
    pytest.param(CLASSIFIER_NAME, _edit(task="regression", classes=None, onnx={
        "input": "X", "input_dtype": "float32", "outputs": {"value": "label"}}), ONNX,
                 "ONNX output 'label' (value) is tensor(int64), expected tensor(float) or tensor(double)",
                 id="regression-of-a-classifier"),
    pytest.param(PLAN_NAME, _field(0, name="fee"), ONNX,
                 "the ONNX inputs ['monthly_fee', 'plan', 'support_calls'] are not the card's fields "
                 "['fee', 'plan', 'support_calls']", id="columns-names"),
    pytest.param(PLAN_NAME, _field(2, type="number"), ONNX,
                 "ONNX input 'support_calls' is tensor(int64); field 'support_calls' needs tensor(float) or "
                 "tensor(double)", id="number-into-int64-column"),
    pytest.param(PLAN_NAME, _field(1, transform="label", encoding={"basic": 0, "plus": 1, "pro": 2}), ONNX,
                 "ONNX input 'plan' is tensor(string); field 'plan' needs tensor(float) or tensor(double) or "
                 "tensor(int64)", id="codes-into-string-column"),
]


@pytest.fixture
def repository(tmp_path, trained):
    """A copy of the test repository to break; returns (path, write(name, card, onnx bytes))."""
    def write(name, card=None, onnx_bytes=None):
        model = trained[name]
        write_model(tmp_path / name, card or model.card, model.onnx_bytes if onnx_bytes is None else onnx_bytes)
        return tmp_path / name

    for name in trained:
        write(name)
    return tmp_path, write


def _refused(path, name, file, problem):
    with pytest.raises(ModelLoadError) as refusal:
        load_models(str(path))
    assert f"model {name}: {file}: " in str(refusal.value)
    assert problem in str(refusal.value)
    return str(refusal.value)


@pytest.mark.parametrize("name, change, file, problem", CARD_RULES)
def test_a_card_that_breaks_a_rule_is_refused(repository, trained, name, change, file, problem):
    path, write = repository
    card = json.loads(json.dumps(trained[name].card))
    change(card)
    write(name, card)
    _refused(path, name, file, problem)


def test_the_repository_as_built_loads_in_name_order(model_dir):
    assert list(load_models(str(model_dir))) == [CLASSIFIER_NAME, REGRESSOR_NAME, PLAN_NAME]


def test_plain_files_and_hidden_folders_are_not_models(repository):
    path, _ = repository
    (path / "README.md").write_text("models")
    (path / ".git").mkdir()
    assert list(load_models(str(path))) == [CLASSIFIER_NAME, REGRESSOR_NAME, PLAN_NAME]


def test_missing_card(repository):
    path, _ = repository
    (path / "extra-model").mkdir()
    _refused(path, "extra-model", CARD, "cannot be read: No such file or directory")


@pytest.mark.parametrize("content, problem", [(b"{", "is not valid JSON"), (b"[]", "must be a JSON object, got array")])
def test_unreadable_card(repository, content, problem):
    path, _ = repository
    (path / CLASSIFIER_NAME / CARD).write_bytes(content)
    _refused(path, CLASSIFIER_NAME, CARD, problem)


def test_folder_name_must_be_a_model_name(repository, trained):
    path, write = repository
    card = dict(trained[CLASSIFIER_NAME].card, name="Churn_Model")
    write(CLASSIFIER_NAME, card).rename(path / "Churn_Model")
    _refused(path, "Churn_Model", CARD, "name must match ^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


def test_missing_model_file(repository):
    path, _ = repository
    (path / REGRESSOR_NAME / ONNX).unlink()
    _refused(path, REGRESSOR_NAME, ONNX, "cannot be read: No such file or directory")


def test_model_file_that_is_a_symbolic_link(repository):
    path, _ = repository
    target = path / REGRESSOR_NAME / ONNX
    outside = path.parent / "elsewhere.onnx"
    shutil.move(target, outside)
    target.symlink_to(outside)
    _refused(path, REGRESSOR_NAME, ONNX, "is not a regular file")


def test_bytes_that_differ_from_the_sha256(repository, trained):
    path, write = repository
    write(PLAN_NAME, onnx_bytes=trained[PLAN_NAME].onnx_bytes[:-1])
    _refused(path, PLAN_NAME, ONNX, "its SHA-256 is not the card's")


def test_a_file_that_is_not_onnx(repository, trained):
    path, write = repository
    garbage = b"not a model"
    card = dict(trained[CLASSIFIER_NAME].card, sha256=__import__("hashlib").sha256(garbage).hexdigest())
    write(CLASSIFIER_NAME, card, garbage)
    _refused(path, CLASSIFIER_NAME, ONNX, "is not an ONNX model ONNX Runtime can load")


def test_a_zipmap_output_is_refused(repository, trained):
    path, write = repository
    model = trained[CLASSIFIER_NAME]
    onnx_bytes = convert_sklearn(model.estimator, initial_types=[("X", FloatTensorType([None, 3]))]).SerializeToString()
    card = dict(model.card, sha256=__import__("hashlib").sha256(onnx_bytes).hexdigest())
    card["onnx"] = dict(card["onnx"], outputs={"label": "output_label", "probabilities": "output_probability"})
    write(CLASSIFIER_NAME, card, onnx_bytes)
    _refused(path, CLASSIFIER_NAME, ONNX, "is seq(map(int64,tensor(float))), expected tensor(float) or tensor(double) "
             "(convert without a ZipMap)")


def test_the_first_bad_model_is_named_and_loading_stops(repository, trained):
    path, write = repository
    write(REGRESSOR_NAME, dict(trained[REGRESSOR_NAME].card, version="?"))
    write(PLAN_NAME, dict(trained[PLAN_NAME].card, version="?"))
    assert "plan-classifier" not in _refused(path, REGRESSOR_NAME, CARD, "version must match")


def test_check_card_alone_needs_no_onnx_file(trained):
    card = check_card(trained[REGRESSOR_NAME].card, REGRESSOR_NAME)
    assert card.schema.n_features == 8
    assert card.outputs == {"value": "variable"} and card.classes is None
    assert card.result_key == "Predicted Percentage Profit per Unit = "
    plans = check_card(trained[PLAN_NAME].card, PLAN_NAME)
    assert plans.result_key == "prediction" and plans.onnx_input is None and plans.classes == ("leave", "stay")


def test_load_model_of_one_folder(model_dir):
    model = load_model(str(model_dir / PLAN_NAME))
    assert model.name == PLAN_NAME and model.card.layout == "columns"


# Field transforms: what a record becomes in each layout.

def test_matrix_features_of_every_transform():
    schema = RecordSchema(field_from_spec(spec) for spec in [
        {"name": "fee", "type": "number", "minimum": 0, "maximum": 10},
        {"name": "calls", "type": "integer", "minimum": 0, "maximum": 10},
        {"name": "kind", "type": "category", "encoding": {"b": 1, "a": 0}},
        {"name": "Shipping Mode", "type": "category", "transform": "onehot", "categories": ["Air", "Road", "Ship"]},
        {"name": "day", "type": "date", "minimum": "2020-01-01", "maximum": "2030-12-31"},
    ])
    assert schema.n_features == 1 + 1 + 1 + 3 + 4
    rows, problems = schema.parse_records(
        [{"fee": 2.5, "calls": 3.0, "kind": "b", "Shipping Mode": "Road", "day": "2027-11-13"}], is_batch=False)
    assert problems == []
    assert rows == [(2.5, 3, "b", "Road", dt.date(2027, 11, 13))]
    assert schema.feature_row(rows[0]) == [2.5, 3, 1, 0, 1, 0, 2027, 11, 13, 5]
    names = [name for field in schema.fields for name in field.feature_names()]
    assert names[3:6] == ["Shipping Mode=Air", "Shipping Mode=Road", "Shipping Mode=Ship"]
    assert names[6:] == ["day.year", "day.month", "day.day", "day.day_of_week"]


def test_column_values_and_allowed_categories():
    label = field_from_spec({"name": "kind", "type": "category", "encoding": {"b": 1, "a": 0}})
    raw = field_from_spec({"name": "plan", "type": "category", "transform": "raw", "categories": ["pro", "basic"]})
    assert (label.column_value("b"), raw.column_value("pro")) == (1, "pro")
    assert label.json_schema()["enum"] == ["a", "b"]  # in code order
    assert raw.json_schema()["enum"] == ["pro", "basic"]  # in the card's order
    assert raw.layouts == ("columns",) and label.layouts == ("matrix", "columns")


def test_field_spec_must_be_an_object():
    with pytest.raises(SpecError, match="a field must be an object, got array"):
        field_from_spec([])


def test_sessions_loaded_before_a_fork_predict_in_the_child(model_dir, trained):
    """Gunicorn forks its workers from the master that loaded the sessions (preload_app)."""
    models = load_models(str(model_dir))
    rows = {name: models[name].schema.parse_records(trained[name].records[:50], True)[0] for name in models}
    expected = {name: models[name].run(rows[name]) for name in models}
    for _ in range(20):
        pid = os.fork()
        if pid == 0:  # the child: exit 0 only if every model answers as in the parent
            signal.alarm(10)
            os._exit(0 if all(models[name].run(rows[name]) == expected[name] for name in models) else 1)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
