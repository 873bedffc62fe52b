"""Writing one entry of a model repository (docs/model-repository.md): the
ONNX model, its model card, and the proof that the ONNX model predicts what
the original model predicts.

Shared by training (the built-in models) and the import command (a user's
scikit-learn, XGBoost or LightGBM model). Feature building here is plain
numpy, the same expansion the card describes (label codes, one-hot columns,
date parts), so training does not depend on the serving code.
"""

import datetime as dt
import hashlib
import itertools
import json
import os
import re

import numpy as np

CARD_FORMAT = "mlapi.model/1"
CARD_FILE = "model.json"
ONNX_FILE = "model.onnx"
NAME_PATTERN = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
VERSION_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")
FIELD_NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_ .-]{0,63}$")
FIELD_TYPES = ("number", "integer", "category", "date")
TRANSFORMS = {"number": ("number",), "integer": ("number",), "category": ("label", "onehot", "raw"),
              "date": ("date-parts",)}
DATE_PARTS = ("year", "month", "day", "day_of_week")
# Opsets every converter here targets: fixed, so the ONNX bytes do not move
# with a converter's default, and loadable by every ONNX Runtime since 1.14.
TARGET_OPSET = {"": 18, "ai.onnx.ml": 3}

DECIMAL_GRID_STEPS = 61
MAX_INTEGER_VALUES = 101
DATE_STRIDE_DAYS = 97  # prime, not a multiple of 7: the grid dates fall on every weekday
MAX_FULL_GRID_ROWS = 2_000_000
SAMPLED_GRID_ROWS = 200_000


class RepositoryError(Exception):
    """A problem that stops writing a repository entry (a message for the user)."""


class VerificationError(RepositoryError):
    pass


# --- fields -----------------------------------------------------------------

def check_name(name):
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise RepositoryError(
            f"model name {name!r} is not allowed: lower-case letters, digits and '-', "
            "1-63 characters, starting and ending with a letter or digit"
        )


def check_version(version):
    if not isinstance(version, str) or not VERSION_PATTERN.fullmatch(version):
        raise RepositoryError(f"version {version!r} is not allowed: ^[A-Za-z0-9][A-Za-z0-9._+-]{{0,63}}$")


def transform_of(spec):
    return spec.get("transform", TRANSFORMS[spec["type"]][0])


def category_values(spec):
    """The allowed strings of a category field, in code / column order."""
    if transform_of(spec) == "label":
        return sorted(spec["encoding"], key=spec["encoding"].__getitem__)
    return list(spec["categories"])


def check_field(spec, layout):
    """Raise RepositoryError unless spec is a complete field of the card format."""
    name = spec.get("name")
    if not isinstance(name, str) or not FIELD_NAME_PATTERN.fullmatch(name):
        raise RepositoryError(f"field name {name!r} is not allowed: ^[A-Za-z_][A-Za-z0-9_ .-]{{0,63}}$")
    kind = spec.get("type")
    if kind not in FIELD_TYPES:
        raise RepositoryError(f"field {name!r}: unknown type {kind!r} (one of {', '.join(FIELD_TYPES)})")
    transform = transform_of(spec)
    if transform not in TRANSFORMS[kind]:
        raise RepositoryError(f"field {name!r}: transform {transform!r} does not apply to a {kind}")
    if kind in ("number", "integer", "date"):
        if "minimum" not in spec or "maximum" not in spec:
            raise RepositoryError(
                f"field {name!r}: no range; give minimum and maximum in --inputs, or a --sample to draft them from"
            )
        low, high = spec["minimum"], spec["maximum"]
        if kind == "date":
            low, high = dt.date.fromisoformat(low), dt.date.fromisoformat(high)
        if not low <= high:
            raise RepositoryError(f"field {name!r}: minimum {spec['minimum']} is above maximum {spec['maximum']}")
    if kind == "category":
        if transform == "label":
            encoding = spec.get("encoding")
            if not isinstance(encoding, dict) or not encoding:
                raise RepositoryError(f"field {name!r}: a label category needs its encoding (value -> code)")
        else:
            if not spec.get("categories"):
                raise RepositoryError(f"field {name!r}: a {transform} category needs its categories")
        if transform == "raw" and layout != "columns":
            raise RepositoryError(f"field {name!r}: transform raw needs the columns layout")
    if layout == "columns" and transform in ("onehot", "date-parts"):
        raise RepositoryError(f"field {name!r}: transform {transform} is for the matrix layout only")


def n_features(spec):
    transform = transform_of(spec)
    if transform == "onehot":
        return len(spec["categories"])
    if transform == "date-parts":
        return len(DATE_PARTS)
    return 1


def feature_matrix(specs, columns):
    """The matrix-layout features (float64) of records given as columns: name -> list of JSON values."""
    blocks = []
    for spec in specs:
        values = columns[spec["name"]]
        transform = transform_of(spec)
        if transform == "label":
            blocks.append(np.array([[spec["encoding"][v]] for v in values], dtype=np.float64))
        elif transform == "onehot":
            index = {c: i for i, c in enumerate(spec["categories"])}
            block = np.zeros((len(values), len(index)))
            block[np.arange(len(values)), [index[v] for v in values]] = 1.0
            blocks.append(block)
        elif transform == "date-parts":
            dates = [dt.date.fromisoformat(v) for v in values]
            blocks.append(np.array([[d.year, d.month, d.day, d.weekday()] for d in dates], dtype=np.float64))
        else:
            blocks.append(np.array(values, dtype=np.float64).reshape(-1, 1))
    return np.hstack(blocks)


# --- the input grid ----------------------------------------------------------

def grid_values(spec, thresholds=()):
    """Values of one field spanning its domain; decimals refined around split thresholds."""
    kind = spec["type"]
    if kind == "integer":
        low, high = int(spec["minimum"]), int(spec["maximum"])
        count = min(high - low + 1, MAX_INTEGER_VALUES)
        return sorted({int(v) for v in np.linspace(low, high, count).round()})
    if kind == "number":
        low, high = float(spec["minimum"]), float(spec["maximum"])
        values = set(np.linspace(low, high, DECIMAL_GRID_STEPS).tolist())
        for threshold in thresholds:
            as_float32 = np.float32(threshold)
            values.update(float(v) for v in (
                threshold, np.nextafter(threshold, -np.inf), np.nextafter(threshold, np.inf), as_float32,
                np.nextafter(as_float32, np.float32(-np.inf)), np.nextafter(as_float32, np.float32(np.inf)),
            ))
        return sorted(v for v in values if low <= v <= high)
    if kind == "category":
        return category_values(spec)
    low, high = dt.date.fromisoformat(spec["minimum"]), dt.date.fromisoformat(spec["maximum"])
    days = (high - low).days
    dates = {(low + dt.timedelta(days=offset)).isoformat() for offset in range(0, days + 1, DATE_STRIDE_DAYS)}
    return sorted(dates | {high.isoformat()})


def input_grid(specs, thresholds_by_field=None, seed=0, max_full_rows=MAX_FULL_GRID_ROWS, sampled_rows=SAMPLED_GRID_ROWS):
    """Records (as columns) covering every field's grid values: the full cartesian
    product when it has at most max_full_rows rows, else sampled_rows random
    combinations (seeded) in which every grid value of every field occurs.
    Returns (columns, rows, whether the product is full)."""
    thresholds_by_field = thresholds_by_field or {}
    value_lists = [grid_values(spec, thresholds_by_field.get(spec["name"], ())) for spec in specs]
    names = [spec["name"] for spec in specs]
    total = 1
    for values in value_lists:
        total *= len(values)
    if total <= max_full_rows:
        rows = list(itertools.product(*value_lists))
        return {name: [row[i] for row in rows] for i, name in enumerate(names)}, total, True
    rng = np.random.default_rng(seed)
    columns = {}
    for name, values in zip(names, value_lists, strict=True):
        picks = rng.integers(0, len(values), sampled_rows)
        picks[: len(values)] = np.arange(len(values))  # every value at least once
        columns[name] = [values[i] for i in rng.permutation(picks)]
    return columns, sampled_rows, False


def tree_thresholds(estimator, specs):
    """Split thresholds of scikit-learn tree models per decimal field (matrix layout), else {}."""
    trees = []
    if hasattr(estimator, "tree_"):
        trees = [estimator.tree_]
    elif hasattr(estimator, "estimators_"):
        for member in np.ravel(np.asarray(estimator.estimators_, dtype=object)):
            if hasattr(member, "tree_"):
                trees.append(member.tree_)
    offsets, position = {}, 0
    for spec in specs:
        offsets[position] = spec
        position += n_features(spec)
    found = {}
    for tree in trees:
        for feature, threshold in zip(tree.feature.tolist(), tree.threshold.tolist(), strict=True):
            spec = offsets.get(feature)
            if feature >= 0 and spec is not None and spec["type"] == "number":
                found.setdefault(spec["name"], set()).add(threshold)
    return {name: sorted(values) for name, values in found.items()}


# --- running and comparing ---------------------------------------------------

def onnx_feeds(session, layout, specs, columns, input_name=None):
    """The ONNX Runtime feeds of records given as columns."""
    if layout == "matrix":
        elem = session.get_inputs()[0].type
        dtype = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(int64)": np.int64}[elem]
        return {input_name: feature_matrix(specs, columns).astype(dtype)}
    feeds = {}
    types = {i.name: i.type for i in session.get_inputs()}
    for spec in specs:
        values = columns[spec["name"]]
        elem = types[spec["name"]]
        if elem == "tensor(string)":
            feeds[spec["name"]] = np.array(values, dtype=object).reshape(-1, 1)
        else:
            if transform_of(spec) == "label":
                values = [spec["encoding"][v] for v in values]
            dtype = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(int64)": np.int64}[elem]
            feeds[spec["name"]] = np.array(values, dtype=dtype).reshape(-1, 1)
    return feeds


def compare_predictions(task, expected, actual, what, summed_terms=1):
    """Count of rows, or VerificationError naming the largest difference.

    Classification: labels exactly equal. Regression: within float32
    rounding, |onnx - reference| <= 1e-6 * max(1, |reference|), or equal to
    the reference's float32 cast; a sum of summed_terms float32 tree outputs
    (an ensemble) may differ by one float32 rounding of the largest
    prediction per term: summed_terms * 2**-23 * max(1, max |reference|)
    when that is larger.
    """
    expected = np.asarray(expected).ravel()
    actual = np.asarray(actual).ravel()
    if expected.shape != actual.shape:
        raise VerificationError(f"{what}: {actual.shape[0]} ONNX predictions for {expected.shape[0]} rows")
    if task == "classification":
        differ = np.array([e != a for e, a in zip(expected.tolist(), actual.tolist(), strict=True)], dtype=bool)
        if differ.any():
            first = int(np.argmax(differ))
            raise VerificationError(
                f"{what}: {int(differ.sum())} of {len(expected)} ONNX class labels differ from the original "
                f"model's; first at row {first}: {expected[first].item()!r} expected, ONNX gave {actual[first].item()!r}"
            )
        return len(expected), 0.0
    expected = expected.astype(np.float64)
    actual = actual.astype(np.float64)
    difference = np.abs(actual - expected)
    allowed = 1e-6 * np.maximum(1.0, np.abs(expected))
    if summed_terms > 1 and len(expected):
        # Partial sums reach the size of the largest prediction, whatever this row's is.
        allowed = np.maximum(allowed, summed_terms * 2.0**-23 * max(1.0, float(np.abs(expected).max())))
    bad = (difference > allowed) & (actual != expected.astype(np.float32).astype(np.float64))
    if bad.any():
        worst = int(np.argmax(np.where(bad, difference, -1)))
        raise VerificationError(
            f"{what}: {int(bad.sum())} of {len(expected)} ONNX predictions are further than float32 rounding from "
            f"the original model's; largest difference {difference[worst]:.6g} at row {worst}: "
            f"{expected[worst].item()!r} expected, ONNX gave {actual[worst].item()!r}"
        )
    return len(expected), float(difference.max()) if len(difference) else 0.0


def run_onnx(session, feeds, outputs):
    """The ONNX prediction (label or value) for the feeds."""
    name = outputs.get("label", outputs.get("value"))
    return session.run([name], feeds)[0]


# --- serialising -------------------------------------------------------------

def canonical_onnx_bytes(model, graph_name):
    """The ONNX bytes with every run-dependent field fixed: skl2onnx names the graph
    with a random UUID, and lists the opsets in set order (which moves with
    Python's hash seed) and sometimes twice."""
    model.graph.name = graph_name
    model.doc_string = ""
    versions = {}
    for opset in model.opset_import:
        versions[opset.domain] = max(opset.version, versions.get(opset.domain, 0))
    del model.opset_import[:]
    for domain in sorted(versions):
        model.opset_import.add(domain=domain, version=versions[domain])
    return model.SerializeToString(deterministic=True)


def card_bytes(card):
    """Canonical card JSON: sorted keys, two-space indent, floats as Python's shortest repr."""
    return (json.dumps(card, indent=2, sort_keys=True, allow_nan=False, ensure_ascii=False) + "\n").encode("utf-8")


def rounded(value, places=6):
    """A metric rounded to a fixed number of decimals (plain float)."""
    return round(float(value), places)


def training_timestamp(environ):
    """SOURCE_DATE_EPOCH (reproducible builds) if set, else the current time; UTC, ISO 8601."""
    epoch = environ.get("SOURCE_DATE_EPOCH")
    moment = dt.datetime.fromtimestamp(int(epoch), dt.UTC) if epoch else dt.datetime.now(dt.UTC)
    return moment.replace(microsecond=0).isoformat().replace("+00:00", "Z")


def library_versions(*names):
    from importlib import metadata

    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


def write_entry(repository, card, onnx_bytes, force=False):
    """Write repository/NAME/{model.json, model.onnx}; the card gets the file's SHA-256."""
    check_name(card["name"])
    folder = os.path.join(repository, card["name"])
    if os.path.exists(folder) and not force:
        raise RepositoryError(f"{folder} already exists; pass --force to replace it")
    card = dict(card, file=ONNX_FILE, sha256=hashlib.sha256(onnx_bytes).hexdigest())
    os.makedirs(folder, exist_ok=True)
    for file_name, content in ((ONNX_FILE, onnx_bytes), (CARD_FILE, card_bytes(card))):
        temporary = os.path.join(folder, f".{file_name}.tmp")
        with open(temporary, "wb") as file:
            file.write(content)
        os.replace(temporary, os.path.join(folder, file_name))
    return folder, card
