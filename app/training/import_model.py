"""Import a saved scikit-learn, XGBoost or LightGBM model into a model repository.

    python -m training.import_model --model FILE.pkl --name NAME --repository DIR
        [--version 1] [--description TEXT] [--result-key KEY]
        [--inputs FIELDS.json] [--label-encoders ENCODERS.pkl] [--date FIELD]
        [--sample SAMPLE.csv] [--target COLUMN] [--force]
    (run from app/; scripts/import-model.sh runs it with the project's venv)

Reads an estimator or Pipeline saved with joblib or pickle, drafts the model
card from what the model knows (feature_names_in_, classes_), the label
encoders, the sample and the user's field descriptions, converts the model to
ONNX (skl2onnx; XGBoost and LightGBM through onnxmltools' converters), checks
with ONNX Runtime that the ONNX model predicts what the original does on a
grid over the input domain and on the sample, and writes DIR/NAME/model.json
and DIR/NAME/model.onnx (docs/model-repository.md, docs/import.md).

Unpickling runs code from the file: this command is the only place a pickle
is ever opened, and only the user's own files. The stack serves the ONNX file.

Exit status: 0 written; 2 refused (a message names the problem: unsupported
estimator, feature names that do not match the inputs, a name that is not
allowed, an existing folder without --force, a prediction mismatch, ...).
"""

import argparse
import copy
import hashlib
import json
import os
import sys
import warnings

import numpy as np

from .repository import (
    CARD_FORMAT,
    TARGET_OPSET,
    RepositoryError,
    canonical_onnx_bytes,
    check_field,
    check_name,
    check_version,
    compare_predictions,
    feature_matrix,
    input_grid,
    library_versions,
    n_features,
    onnx_feeds,
    rounded,
    run_onnx,
    training_timestamp,
    transform_of,
    tree_thresholds,
    write_entry,
)

PROG = "import-model"
LIBRARIES = ("scikit-learn", "numpy", "skl2onnx", "onnx", "onnxruntime", "onnxmltools", "xgboost-cpu",
             "xgboost", "lightgbm")
# The grid an import is checked on: the full product of every field's grid
# values up to this many rows, else this many random combinations.
IMPORT_GRID_ROWS = 100_000
ONNX_INPUT = "X"
# file -> the scikit-learn version that pickled it, when it is not the one loading it
PICKLED_WITH = {}


class Refused(RepositoryError):
    """The import is refused; the message says why (exit status 2)."""


# --- the model -----------------------------------------------------------------

def register_boosting_converters():
    """Register onnxmltools' XGBoost and LightGBM converters with skl2onnx (those installed)."""
    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import (
        calculate_linear_classifier_output_shapes,
        calculate_linear_regressor_output_shapes,
    )

    classifier_options = {"nocl": [True, False], "zipmap": [True, False, "columns"]}
    try:
        from onnxmltools.convert.xgboost.operator_converters.XGBoost import convert_xgboost
        from xgboost import XGBClassifier, XGBRegressor
    except ImportError:
        pass
    else:
        update_registered_converter(XGBClassifier, "XGBoostXGBClassifier", calculate_linear_classifier_output_shapes,
                                    convert_xgboost, options=classifier_options)
        update_registered_converter(XGBRegressor, "XGBoostXGBRegressor", calculate_linear_regressor_output_shapes,
                                    convert_xgboost)
    try:
        from lightgbm import LGBMClassifier, LGBMRegressor
        from onnxmltools.convert.lightgbm.operator_converters.LightGbm import convert_lightgbm
    except ImportError:
        pass
    else:
        update_registered_converter(LGBMClassifier, "LightGbmLGBMClassifier", calculate_linear_classifier_output_shapes,
                                    convert_lightgbm, options=classifier_options)
        update_registered_converter(LGBMRegressor, "LightGbmLGBMRegressor", calculate_linear_regressor_output_shapes,
                                    convert_lightgbm, options={"split": None})


def class_path(obj):
    cls = type(obj)
    return f"{cls.__module__.split('._')[0]}.{cls.__name__}"


def summed_trees(estimator):
    """How many trees' float32 outputs a regression prediction adds up (1 for other models)."""
    try:
        if hasattr(estimator, "get_booster"):  # XGBoost
            return max(1, int(estimator.get_booster().num_boosted_rounds()) * int(estimator.get_params().get("num_parallel_tree") or 1))
        if hasattr(estimator, "booster_"):  # LightGBM
            return max(1, int(estimator.booster_.num_trees()))
        if hasattr(estimator, "estimators_"):
            return max(1, int(np.size(estimator.estimators_)))
    except Exception:
        pass
    return 1


def is_tree_based(estimator):
    """Models whose splits compare float32 features (scikit-learn trees, XGBoost) or that
    split on bins of the training values (LightGBM): float32 input loses nothing."""
    module = type(estimator).__module__
    return module.startswith(("sklearn.tree", "sklearn.ensemble", "xgboost", "lightgbm"))


def describe_model(model):
    """(pipeline steps or None, final estimator, task); Refused if unsupported."""
    from sklearn.base import is_classifier, is_regressor
    from sklearn.pipeline import Pipeline
    from skl2onnx._supported_operators import sklearn_operator_name_map

    steps = None
    final = model
    if isinstance(model, Pipeline):
        steps = model.steps
        final = steps[-1][1]
    if is_classifier(final):
        task = "classification"
    elif is_regressor(final):
        task = "regression"
    else:
        raise Refused(f"unsupported estimator {class_path(final)}: not a classifier or regressor")
    for part in [step for _, step in steps] if steps else [model]:
        if part in ("passthrough", None):
            continue
        if type(part) not in sklearn_operator_name_map and type(part).__name__ not in ("ColumnTransformer",):
            raise Refused(
                f"unsupported estimator {class_path(part)}: skl2onnx has no converter for it "
                "(scikit-learn estimators skl2onnx converts, XGBClassifier/XGBRegressor and "
                "LGBMClassifier/LGBMRegressor are supported)"
            )
    if not hasattr(model, "n_features_in_") and not hasattr(final, "n_features_in_"):
        raise Refused(f"{class_path(final)} is not fitted")
    return steps, final, task


def column_transformer(model):
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    if isinstance(model, Pipeline) and isinstance(model.steps[0][1], ColumnTransformer):
        return model.steps[0][1]
    return None


def onehot_categories(transformer):
    """{column: categories} of the OneHotEncoders inside a ColumnTransformer."""
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    found = {}
    for _, part, columns in getattr(transformer, "transformers_", []):
        encoder = part
        if isinstance(part, Pipeline):
            encoder = next((s for _, s in part.steps if isinstance(s, OneHotEncoder)), None)
        if isinstance(encoder, OneHotEncoder) and isinstance(columns, (list, tuple)):
            for column, categories in zip(columns, encoder.categories_, strict=False):
                found[column] = [str(c) for c in categories.tolist()]
    return found


# --- the fields ------------------------------------------------------------------

def read_inputs(path):
    """The user's field descriptions: {name: spec} or [spec with name, ...] -> ordered list of specs."""
    try:
        with open(path, encoding="utf-8") as file:
            document = json.load(file)
    except (OSError, ValueError) as error:
        raise Refused(f"cannot read --inputs {path}: {error}") from None
    if isinstance(document, dict):
        specs = [dict(spec, name=name) for name, spec in document.items()]
    elif isinstance(document, list):
        specs = [dict(spec) for spec in document]
    else:
        raise Refused(f"--inputs {path}: expected an object {{name: field}} or a list of fields")
    for spec in specs:
        if not isinstance(spec.get("name"), str):
            raise Refused(f"--inputs {path}: a field without a name: {spec}")
    return specs


def read_sample(path):
    import pandas as pd

    try:
        return pd.read_csv(path)
    except (OSError, ValueError) as error:
        raise Refused(f"cannot read --sample {path}: {error}") from None


def field_names(model, user_specs, date_field):
    """The record's field names in feature order, and the model's own feature names."""
    names_in = getattr(model, "feature_names_in_", None)
    if names_in is None:
        final = model.steps[-1][1] if hasattr(model, "steps") else model
        names_in = getattr(final, "feature_names_in_", None)
    if names_in is None:
        if not user_specs:
            raise Refused("the model has no feature names (fitted on an array): give --inputs as a list of "
                          "fields in feature order")
        return [spec["name"] for spec in user_specs], None
    names_in = [str(name) for name in names_in]
    if date_field is None:
        return list(names_in), names_in
    parts = [i for i, name in enumerate(names_in) if name.startswith(date_field) and name != date_field]
    if len(parts) != 4 or parts != list(range(parts[0], parts[0] + 4)):
        raise Refused(
            f"feature names do not match --date {date_field}: the model's features {names_in} need four "
            f"consecutive ones named {date_field}* (year, month, day, day of week, in that order)"
        )
    return names_in[: parts[0]] + [date_field] + names_in[parts[0] + 4:], names_in


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    return value


def draft_fields(names, layout, user_specs, encoders, date_field, sample, model):
    """The card's fields, in order: the user's descriptions first, then what the
    label encoders, --date, the fitted encoders and the sample say."""
    user = {spec["name"]: spec for spec in user_specs}
    unknown = [name for name in list(user) + list(encoders) if name not in names]
    if unknown:
        raise Refused(f"feature names do not match the inputs: {unknown} are not features of the model "
                      f"(its fields: {names})")
    if date_field is not None and date_field not in names:
        raise Refused(f"--date {date_field} is not a field of the model (its fields: {names})")
    if sample is not None:
        missing = [name for name in names if name not in sample.columns]
        if missing:
            raise Refused(f"--sample lacks the columns {missing} (its columns: {list(sample.columns)})")
    transformer = column_transformer(model)
    fitted_categories = onehot_categories(transformer) if transformer is not None else {}
    fields = []
    for name in names:
        spec = dict(user.get(name, {}))
        spec["name"] = name
        column = sample[name] if sample is not None else None
        if name in encoders:
            spec["type"] = "category"
            spec["transform"] = "label"
            spec.setdefault("encoding", {str(c): i for i, c in enumerate(encoders[name].classes_.tolist())})
        elif name == date_field:
            spec["type"] = "date"
            spec["transform"] = "date-parts"
            if column is not None:
                import pandas as pd

                dates = pd.to_datetime(column)
                spec.setdefault("minimum", dates.min().date().isoformat())
                spec.setdefault("maximum", dates.max().date().isoformat())
        elif "type" not in spec:
            if column is None:
                raise Refused(f"field {name!r}: no type; describe it in --inputs or give a --sample with that column")
            if column.dtype.kind in "iub" or (column.dtype.kind == "f" and bool(np.all(np.mod(column, 1) == 0))):
                spec["type"] = "integer"
            elif column.dtype.kind == "f":
                spec["type"] = "number"
            else:
                spec["type"] = "category"
        if spec["type"] == "category" and "encoding" not in spec and "categories" not in spec:
            if layout == "matrix":
                raise Refused(f"field {name!r} is text: a model over a numeric matrix needs its codes; give "
                              "--label-encoders, or an encoding in --inputs")
            spec.setdefault("transform", "raw")
            if name in fitted_categories:
                spec["categories"] = fitted_categories[name]
            elif column is not None:
                spec["categories"] = sorted({str(v) for v in column.tolist()})
        if spec["type"] in ("number", "integer") and column is not None:
            cast = int if spec["type"] == "integer" else float
            spec.setdefault("minimum", cast(column.min()))
            spec.setdefault("maximum", cast(column.max()))
        if "example" not in spec and column is not None and len(column):
            example = _plain(column.iloc[0])
            if spec["type"] == "date":
                import pandas as pd

                example = pd.to_datetime(example).date().isoformat()
            elif spec["type"] == "category":
                example = str(example)
            elif spec["type"] == "integer":
                example = int(example)
            spec["example"] = example
        try:
            check_field(spec, layout)
        except RepositoryError as error:
            raise Refused(str(error)) from None
        fields.append(spec)
    return fields


def sample_columns(sample, fields):
    """The sample's rows as record columns (JSON-like values)."""
    import pandas as pd

    columns = {}
    for spec in fields:
        column = sample[spec["name"]]
        if spec["type"] == "date":
            columns[spec["name"]] = [d.date().isoformat() for d in pd.to_datetime(column)]
        elif spec["type"] == "category":
            columns[spec["name"]] = [str(v) for v in column.tolist()]
        elif spec["type"] == "integer":
            columns[spec["name"]] = [int(v) for v in column.tolist()]
        else:
            columns[spec["name"]] = [float(v) for v in column.tolist()]
    return columns


def reference_input(layout, fields, columns, names_in):
    """What the original model predicts from: a DataFrame named as it was fitted, else an array."""
    import pandas as pd

    if layout == "matrix":
        matrix = feature_matrix(fields, columns)
        return pd.DataFrame(matrix, columns=names_in) if names_in is not None else matrix
    data = {}
    for spec in fields:
        values = columns[spec["name"]]
        if transform_of(spec) == "label":
            values = [spec["encoding"][v] for v in values]
        elif spec["type"] == "number":
            values = np.array(values, dtype=np.float64)
        elif spec["type"] == "integer":
            values = np.array(values, dtype=np.int64)
        else:
            values = np.array(values, dtype=object)
        data[spec["name"]] = values
    return pd.DataFrame(data)


# --- converting --------------------------------------------------------------------

def convert(model, final, task, layout, fields, name):
    """The model as canonical ONNX bytes and the card's onnx section."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType, Int64TensorType, StringTensorType

    # float32 only where the original model itself compares float32 features:
    # a tree model fed directly. Anything computed before it (a scaler) or
    # instead of it runs in float64 in scikit-learn, so in ONNX too.
    # (onnxmltools' XGBoost and LightGBM converters take float32 only: after a
    # scaler they may then disagree with the original, which the check reports.)
    tree_fed_directly = is_tree_based(final) and (final is model or all(
        step in ("passthrough", None) for _, step in model.steps[:-1]))
    boosting = type(final).__module__.startswith(("xgboost", "lightgbm"))
    use_float32 = tree_fed_directly or boosting
    float_type, dtype = (FloatTensorType, "float32") if use_float32 else (DoubleTensorType, "float64")
    if layout == "matrix":
        initial_types = [(ONNX_INPUT, float_type([None, sum(n_features(spec) for spec in fields)]))]
    else:
        initial_types = []
        for spec in fields:
            if spec["type"] == "category":
                kind = Int64TensorType if transform_of(spec) == "label" else StringTensorType
            else:
                kind = float_type
            initial_types.append((spec["name"], kind([None, 1])))
    model, final = _convertible_copy(model, final)
    options = {id(final): {"zipmap": False}} if task == "classification" else None
    try:
        onnx_model = convert_sklearn(model, initial_types=initial_types, options=options, target_opset=TARGET_OPSET)
    except Exception as error:  # skl2onnx raises many kinds; each one means "cannot convert"
        reason = str(error).split("\n")[0]
        reason = reason if len(reason) <= 240 else reason[:240] + "..."
        raise Refused(f"unsupported estimator {class_path(final)}: skl2onnx cannot convert it: "
                      f"{type(error).__name__}: {reason}") from None
    outputs = [output.name for output in onnx_model.graph.output]
    if task == "classification":
        section_outputs = {"label": outputs[0]}
        if len(outputs) > 1 and _has_probabilities(final):
            section_outputs["probabilities"] = outputs[1]
    else:
        section_outputs = {"value": outputs[0]}
    section = {"outputs": section_outputs}
    if layout == "matrix":
        section.update(input=ONNX_INPUT, input_dtype=dtype)
    return canonical_onnx_bytes(onnx_model, name), section


def _convertible_copy(model, final):
    """onnxmltools reads XGBoost trees by feature index (f0, f1, ...): a copy whose booster
    forgets the feature names it was fitted with. The original stays the reference."""
    if not type(final).__module__.startswith("xgboost"):
        return model, final
    model = copy.deepcopy(model)
    final = model.steps[-1][1] if hasattr(model, "steps") else model
    final.get_booster().feature_names = None
    return model, final


def _has_probabilities(final):
    try:
        return callable(getattr(final, "predict_proba"))
    except AttributeError:  # e.g. SVC(probability=False)
        return False


# --- verifying ---------------------------------------------------------------------

def verify(model, final, task, layout, fields, names_in, onnx_bytes, section, sample_cols):
    """Compare ONNX Runtime with the original model on the grid and the sample."""
    import onnxruntime

    try:
        session = onnxruntime.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    except Exception as error:
        raise Refused(f"unsupported estimator {class_path(final)}: ONNX Runtime cannot load the converted "
                      f"model: {error}") from None
    thresholds = tree_thresholds(final, fields) if layout == "matrix" and final is model else {}
    grid, _, _ = input_grid(fields, thresholds, max_full_rows=IMPORT_GRID_ROWS, sampled_rows=IMPORT_GRID_ROWS)
    checks = [("grid_rows", grid)]
    if sample_cols is not None:
        checks.append(("sample_rows", sample_cols))
    counts = {}
    for what, columns in checks:
        try:
            expected = model.predict(reference_input(layout, fields, columns, names_in))
        except Exception as error:
            reason = str(error).split("\n")[0][:240]
            raise Refused(f"the original model cannot predict the {what.replace('_', ' ')} of the inputs as "
                          f"described: {type(error).__name__}: {reason}") from None
        actual = run_onnx(session, onnx_feeds(session, layout, fields, columns, section.get("input")),
                          section["outputs"])
        try:
            counts[what], largest = compare_predictions(task, expected, actual, what.replace("_", " "),
                                                        summed_trees(final))
        except RepositoryError as error:
            raise Refused(f"prediction mismatch: {error}") from None
        if task == "regression":
            counts[f"{what}_largest_difference"] = float(f"{largest:.3g}")
    return counts


def sample_metrics(task, model, layout, fields, names_in, sample, columns, target):
    if target is None:
        return None
    if target not in sample.columns:
        raise Refused(f"--target {target} is not a column of the sample")
    from sklearn.metrics import accuracy_score, mean_absolute_error, r2_score

    predicted = model.predict(reference_input(layout, fields, columns, names_in))
    truth = sample[target].to_numpy()
    if task == "classification":
        return {"sample_accuracy": rounded(accuracy_score(truth, predicted)), "sample_rows": len(truth)}
    return {"sample_r2": rounded(r2_score(truth, predicted)), "sample_mae": rounded(mean_absolute_error(truth, predicted)),
            "sample_rows": len(truth)}


# --- the command -------------------------------------------------------------------

def load_pickle(path, what):
    import joblib

    print(f"{PROG}: warning: unpickling {path} ({what}) runs code it contains; import only files you trust "
          "(the stack never unpickles: it serves the ONNX file)", file=sys.stderr)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            loaded = joblib.load(path)
    except Exception as error:
        raise Refused(f"cannot load {what} {path}: {type(error).__name__}: {error}") from None
    for warning in caught:
        if type(warning.message).__name__ == "InconsistentVersionWarning":
            message = warning.message
            PICKLED_WITH[path] = message.original_sklearn_version
            print(f"{PROG}: note: {path} was pickled by scikit-learn {message.original_sklearn_version}, loaded "
                  f"with {message.current_sklearn_version}; the check below compares the ONNX model with the model "
                  "as this version loads it", file=sys.stderr)
            break
    return loaded


def import_model(args, environ=os.environ):
    """Run the import described by the parsed arguments; returns (folder, card)."""
    try:
        check_name(args.name)
        check_version(args.version)
    except RepositoryError as error:
        raise Refused(str(error)) from None
    folder = os.path.join(args.repository, args.name)
    if os.path.exists(folder) and not args.force:
        raise Refused(f"{folder} already exists; pass --force to replace it")
    user_specs = read_inputs(args.inputs) if args.inputs else []
    sample = read_sample(args.sample) if args.sample else None
    if args.target and sample is None:
        raise Refused("--target names a column of the sample: give --sample")
    if args.target and args.target not in sample.columns:
        raise Refused(f"--target {args.target} is not a column of the sample (its columns: {list(sample.columns)})")
    if args.target and args.target in [spec["name"] for spec in user_specs]:
        raise Refused(f"--target {args.target} is one of the inputs")
    model = load_pickle(args.model, "the model")
    encoders = load_pickle(args.label_encoders, "the label encoders") if args.label_encoders else {}
    if not isinstance(encoders, dict) or not all(hasattr(e, "classes_") for e in encoders.values()):
        raise Refused(f"--label-encoders {args.label_encoders}: expected a dict of column -> fitted LabelEncoder")

    register_boosting_converters()
    steps, final, task = describe_model(model)
    layout = "columns" if column_transformer(model) is not None else "matrix"
    if layout == "columns" and args.date:
        raise Refused("--date applies to models over a numeric matrix; this Pipeline takes columns")
    names, names_in = field_names(model, user_specs, args.date)
    fields = draft_fields(names, layout, user_specs, encoders, args.date, sample, model)
    if layout == "matrix":
        expected_features = int(getattr(model, "n_features_in_", getattr(final, "n_features_in_", 0)))
        have = sum(n_features(spec) for spec in fields)
        if expected_features and have != expected_features:
            raise Refused(f"feature names do not match the inputs: the fields give {have} features, "
                          f"the model takes {expected_features}")
    sample_cols = sample_columns(sample, fields) if sample is not None else None

    onnx_bytes, section = convert(model, final, task, layout, fields, args.name)
    verification = verify(model, final, task, layout, fields, names_in, onnx_bytes, section, sample_cols)

    with open(args.model, "rb") as file:
        model_sha256 = hashlib.sha256(file.read()).hexdigest()
    source = {
        "estimator": class_path(final),
        "file": os.path.basename(args.model),
        "sha256": model_sha256,
        "imported_at": training_timestamp(environ),
        "imported_with": "training.import_model",
        "library_versions": library_versions(*LIBRARIES),
        "verification": verification,
    }
    written_with = PICKLED_WITH.get(args.model) or getattr(model, "_sklearn_version", None)
    if written_with:
        source["pickled_with"] = {"scikit-learn": written_with}
    if steps:
        source["pipeline"] = [f"{step_name}: {class_path(step)}" for step_name, step in steps]
    if args.label_encoders:
        source["label_encoders"] = os.path.basename(args.label_encoders)
    card = {
        "format": CARD_FORMAT,
        "name": args.name,
        "version": args.version,
        "task": task,
        "description": args.description or f"{class_path(final)} imported from {os.path.basename(args.model)}.",
        "input_layout": layout,
        "inputs": fields,
        "onnx": section,
        "source": source,
    }
    if args.result_key:
        card["result_key"] = args.result_key
    if task == "classification":
        card["classes"] = [_plain(c) for c in final.classes_.tolist()]
    metrics = sample_metrics(task, model, layout, fields, names_in, sample, sample_cols, args.target) \
        if sample is not None else None
    if metrics:
        card["metrics"] = metrics
    try:
        return write_entry(args.repository, card, onnx_bytes, force=args.force)
    except RepositoryError as error:
        raise Refused(str(error)) from None


def summary(folder, card):
    """Lines telling what was written."""
    onnx_path = os.path.join(folder, card["file"])
    section = card["onnx"]
    if card["input_layout"] == "matrix":
        onnx_in = f"{section['input']} ({section['input_dtype']}, {_width(card['inputs'])} features)"
    else:
        onnx_in = "one input per field"
    outputs = ", ".join(f"{k}={v}" for k, v in section["outputs"].items())
    lines = [
        f"wrote {folder}/: model.json, model.onnx ({os.path.getsize(onnx_path)} bytes, sha256 {card['sha256'][:16]}...)",
        f"  {card['name']} version {card['version']}: {card['task']}, {card['source']['estimator']}, "
        f"layout {card['input_layout']}; ONNX input {onnx_in} -> {outputs}",
    ]
    if "classes" in card:
        lines.append(f"  classes: {card['classes']}")
    if "result_key" in card:
        lines.append(f"  result key: {card['result_key']!r}")
    for spec in card["inputs"]:
        lines.append(f"  input {spec['name']}: {_describe_field(spec)}")
    checked = card["source"]["verification"]
    text = f"{checked['grid_rows']} grid rows"
    if "sample_rows" in checked:
        text += f" and {checked['sample_rows']} sample rows"
    if card["task"] == "regression":
        largest = max(v for k, v in checked.items() if k.endswith("largest_difference"))
        text += f" (largest difference {largest:g}, within float32 rounding)"
    else:
        text += " (class labels identical)"
    lines.append(f"  verified: ONNX Runtime gives the original model's predictions on {text}")
    if "metrics" in card:
        lines.append(f"  metrics: {card['metrics']}")
    return lines


def _width(fields):
    return sum(n_features(spec) for spec in fields)


def _describe_field(spec):
    kind, transform = spec["type"], transform_of(spec)
    if kind in ("number", "integer", "date"):
        text = f"{kind} {spec['minimum']}..{spec['maximum']}"
        return text + (" -> year, month, day, day of week" if kind == "date" else "")
    values = list(spec["encoding"]) if transform == "label" else spec["categories"]
    shown = ", ".join(values[:6]) + (f", ... ({len(values)})" if len(values) > 6 else "")
    return f"category ({transform}): {shown}"


def parser():
    p = argparse.ArgumentParser(
        prog="python -m training.import_model",
        description="Turn a saved scikit-learn / XGBoost / LightGBM model into a model repository entry "
                    "(model.json + model.onnx), verified against the original model.",
    )
    p.add_argument("--model", required=True, metavar="FILE", help="the estimator or Pipeline, saved with joblib or pickle")
    p.add_argument("--name", required=True, help="the model's name: its folder and URL (lower-case, digits, '-')")
    p.add_argument("--repository", required=True, metavar="DIR", help="the model repository to write NAME/ into")
    p.add_argument("--version", default="1", help="the model's version (default 1)")
    p.add_argument("--description", help="one paragraph shown on the form and in /api/v1/models")
    p.add_argument("--result-key", help="the answer's key for the prediction (default: prediction)")
    p.add_argument("--inputs", metavar="FILE.json",
                   help="field descriptions: {name: {type, minimum, maximum, categories, encoding, transform, "
                        "description, example}} (anything left out is drafted from the model and the sample)")
    p.add_argument("--label-encoders", metavar="FILE.pkl",
                   help="a pickled dict column -> LabelEncoder: those fields are categories coded by classes_")
    p.add_argument("--date", metavar="FIELD",
                   help="a date field the model takes as four features FIELD* (year, month, day, day of week)")
    p.add_argument("--sample", metavar="FILE.csv",
                   help="sample records (a column per field): ranges and categories are drafted from it and "
                        "predictions are verified on it")
    p.add_argument("--target", metavar="COLUMN", help="the sample's true answers: metrics on the sample go in the card")
    p.add_argument("--force", action="store_true", help="replace an existing DIR/NAME/")
    return p


def main(argv=None, environ=os.environ):
    args = parser().parse_args(argv)
    try:
        folder, card = import_model(args, environ)
    except Refused as error:
        print(f"{PROG}: refused: {error}", file=sys.stderr)
        return 2
    for line in summary(folder, card):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
