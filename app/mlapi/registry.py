"""Loading a model repository (docs/model-repository.md) and predicting with it.

Every folder of the repository is a model: its card (model.json, checked by
mlapi.card) and its ONNX file, checked against the card's SHA-256, loaded
into an ONNX Runtime session and checked against the card's inputs and
outputs before anything is served. Nothing in a repository is executed
but the ONNX graph.
"""

import hashlib
import json
import os
import stat

import numpy as np
import onnxruntime

from .card import CARD_FILE, CardError, check_card
from .fields import COLUMNS, NUMBER, STRING

# ONNX element types the cards may use, as ONNX Runtime names them.
NUMPY_TYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(int64)": np.int64}
ONNX_TYPES = {"float32": "tensor(float)", "float64": "tensor(double)", "int64": "tensor(int64)"}
FLOAT_TYPES = ("tensor(float)", "tensor(double)")


class ModelLoadError(Exception):
    """The repository is missing, empty or holds a model that breaks the format."""


class Model:
    """A checked model: its card, its ONNX Runtime session, and predictions."""

    def __init__(self, card, session):
        self.card = card
        self.name = card.name
        self.version = card.version
        self.task = card.task
        self.result_key = card.result_key
        self.classes = card.classes
        self.schema = card.schema
        self.endpoint = f"/api/v1/models/{card.name}/predictions"
        self.session = session
        self._inputs = {meta.name: NUMPY_TYPES.get(meta.type, object) for meta in session.get_inputs()}
        self._output_names = list(card.outputs.values())
        # One RunOptions for every run: session.run would build a new one each time.
        self._run_options = onnxruntime.RunOptions()

    def feeds(self, rows):
        """The ONNX inputs of valid records (rows of parsed values, as RecordSchema.parse gives)."""
        if self.card.layout == COLUMNS:
            return {
                field.name: np.array(
                    [field.column_value(row[index]) for row in rows], dtype=self._inputs[field.name]
                ).reshape(-1, 1)
                for index, field in enumerate(self.schema.fields)
            }
        matrix = rows if self.schema.values_are_features else [self.schema.feature_row(row) for row in rows]
        return {self.card.onnx_input: np.array(matrix, dtype=self._inputs[self.card.onnx_input])}

    def run(self, rows):
        """One session run for all rows: {"label", "probabilities"} or {"value"}, as plain lists.

        Labels are Python ints or strings (as the card's classes), values
        floats, probabilities one list of floats per row.
        """
        arrays = self.session.run(self._output_names, self.feeds(rows), self._run_options)
        raw = dict(zip(self.card.outputs, arrays, strict=True))
        if self.task == "regression":
            return {"value": raw["value"].astype(np.float64).reshape(-1).tolist()}
        outputs = {"label": raw["label"].reshape(-1).tolist()}
        if "probabilities" in raw:
            # float32 probabilities to 7 decimals (their precision): 0.2, not 0.19999998807907104.
            # The session was checked to give [N, classes] (_check_shape, _try).
            outputs["probabilities"] = raw["probabilities"].astype(np.float64).round(7).tolist()
        return outputs

    def results(self, rows):
        """The answers of /api/v1 for valid records, in order."""
        outputs = self.run(rows)
        if self.task == "regression":
            return [self._answer(value) for value in outputs["value"]]
        if "probabilities" not in outputs:
            return [self._answer(label) for label in outputs["label"]]
        return [
            self._answer(label, dict(zip(map(str, self.classes), probabilities, strict=True)))
            for label, probabilities in zip(outputs["label"], outputs["probabilities"], strict=True)
        ]

    def _answer(self, prediction, probabilities=None):
        answer = {self.result_key: prediction, "prediction": prediction}
        if probabilities is not None:
            answer["probabilities"] = probabilities
        answer["model"] = self.name
        answer["model_version"] = self.version
        return answer

    def describe(self):
        """The public description served by /api/v1/models."""
        card = self.card
        return {
            "name": self.name,
            "version": self.version,
            "task": self.task,
            "description": card.description,
            "endpoint": self.endpoint,
            "input_schema": self.input_schema(),
            "inputs": card.spec["inputs"],
            "classes": list(self.classes) if self.classes is not None else None,
            "result_key": self.result_key,
            "metrics": card.metrics,
            "source": card.source,
        }

    def input_schema(self):
        """JSON Schema of one input record."""
        return {
            "type": "object",
            "required": list(self.schema.names),
            "properties": {field.name: field.json_schema() for field in self.schema.fields},
            "additionalProperties": False,
        }


def load_models(model_dir):
    """Every model of the repository model_dir, by name in name order, or raise ModelLoadError."""
    try:
        entries = sorted(os.listdir(model_dir))
    except OSError as error:
        raise ModelLoadError(f"cannot read the model repository {model_dir}: {error.strerror}") from error
    # Hidden entries (.dockerignore, editor files) and plain files are not models.
    folders = [name for name in entries if not name.startswith(".") and os.path.isdir(os.path.join(model_dir, name))]
    if not folders:
        raise ModelLoadError(f"the model repository {model_dir} holds no model folder")
    return {name: load_model(os.path.join(model_dir, name)) for name in folders}


def load_model(folder):
    """The checked Model of one model folder, or raise ModelLoadError naming model, file and problem."""
    name = os.path.basename(os.path.normpath(folder))
    file = CARD_FILE
    try:
        card = check_card(_read_card(os.path.join(folder, CARD_FILE)), name)
        file = card.file
        content = _read_model_file(os.path.join(folder, card.file))
        if hashlib.sha256(content).hexdigest() != card.sha256:
            raise CardError(f"its SHA-256 is not the card's {card.sha256}")
        model = Model(card, _session(content))
        _check_session(card, model.session)
        _try(model)
    except CardError as error:
        raise ModelLoadError(f"model {name}: {file}: {error}") from None
    return model


def _read_card(path):
    try:
        with open(path, "rb") as file:
            return json.load(file)
    except OSError as error:
        raise CardError(f"cannot be read: {error.strerror}") from None
    except (ValueError, RecursionError) as error:
        raise CardError(f"is not valid JSON: {error}") from None


def _read_model_file(path):
    try:
        # lstat: a symbolic link could point outside the model's folder.
        if not stat.S_ISREG(os.lstat(path).st_mode):
            raise CardError("is not a regular file")
        with open(path, "rb") as file:
            return file.read()
    except OSError as error:
        raise CardError(f"cannot be read: {error.strerror}") from None


def _session(content):
    """An ONNX Runtime session of the model bytes that were hashed (not re-read from disk).

    One thread per session: a prediction is small, and a replica runs one
    worker process per CPU (gunicorn.conf.py), so more threads only compete.
    Without a thread pool a session also holds no threads a fork could copy
    in a locked state (test_gunicorn checks the preloaded sessions in workers).
    """
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only: warnings about the graph are not the operator's business
    # No memory pattern: planning a run's buffers costs more than it saves for
    # a prediction's small tensors (bench/ort_options.py: about a quarter fewer
    # instructions per run; without the arena too, the gain is gone).
    options.enable_mem_pattern = False
    try:
        return onnxruntime.InferenceSession(content, sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as error:  # ONNX Runtime's own exception types: any means the file is unusable
        raise CardError(f"is not an ONNX model ONNX Runtime can load: {str(error).strip()}") from None


def _check_session(card, session):
    inputs = {meta.name: meta for meta in session.get_inputs()}
    if card.layout == COLUMNS:
        expected = {field.name: field for field in card.schema.fields}
        if set(inputs) != set(expected):
            raise CardError(f"the ONNX inputs {sorted(inputs)} are not the card's fields {sorted(expected)}")
        for name, field in expected.items():
            meta = inputs[name]
            allowed = ("tensor(string)",) if field.kind == STRING else FLOAT_TYPES if field.kind == NUMBER else (
                *FLOAT_TYPES, "tensor(int64)")
            if meta.type not in allowed:
                raise CardError(f"ONNX input {name!r} is {meta.type}; field {name!r} needs {' or '.join(allowed)}")
            _check_shape(meta, 1, f"ONNX input {name!r}", "1")
    else:
        if list(inputs) != [card.onnx_input]:
            raise CardError(f"the ONNX inputs {sorted(inputs)} are not the card's one input {card.onnx_input!r}")
        meta = inputs[card.onnx_input]
        if meta.type != ONNX_TYPES[card.input_dtype]:
            raise CardError(f"ONNX input {meta.name!r} is {meta.type}, the card says {card.input_dtype}")
        _check_shape(meta, card.schema.n_features, f"ONNX input {meta.name!r}", "the fields' feature count")
    outputs = {meta.name: meta for meta in session.get_outputs()}
    for key, name in card.outputs.items():
        if name not in outputs:
            raise CardError(f"onnx.outputs.{key}: the model has no output {name!r} (outputs: {', '.join(outputs)})")
        meta = outputs[name]
        if key == "label":
            allowed = ("tensor(string)",) if isinstance(card.classes[0], str) else ("tensor(int64)",)
        else:
            allowed = FLOAT_TYPES
        if meta.type not in allowed:
            raise CardError(f"ONNX output {name!r} ({key}) is {meta.type}, expected {' or '.join(allowed)}"
                            + (" (convert without a ZipMap)" if meta.type.startswith("seq(") else ""))
        if key == "probabilities":
            _check_shape(meta, len(card.classes), f"ONNX output {name!r}", "the number of classes")


def _check_shape(meta, width, what, expected):
    # The batch dimension is free; the last one, when the model fixes it, must fit.
    if len(meta.shape) != 2:
        raise CardError(f"{what} has shape {meta.shape}, expected [N, {width}]")
    last = meta.shape[-1]
    if isinstance(last, int) and last != width:
        raise CardError(f"{what} has {last} columns, {expected} is {width}")


def _try(model):
    """Run the model once on the fields' lowest values: the outputs must have the card's shape."""
    row = tuple(field.sample() for field in model.schema.fields)
    try:
        outputs = model.run([row])
    except Exception as error:  # ONNX Runtime's own exception types
        raise CardError(f"the model fails on a valid record: {str(error).strip()}") from None
    if model.task == "regression":
        if len(outputs["value"]) != 1:
            raise CardError(f"the model gives {len(outputs['value'])} values for one record")
        return
    if len(outputs["label"]) != 1 or outputs["label"][0] not in model.classes:
        raise CardError(f"the model predicts {outputs['label']!r} for one record, not one of classes")
    if "probabilities" in outputs and len(outputs["probabilities"][0]) != len(model.classes):
        raise CardError(
            f"the model gives {len(outputs['probabilities'][0])} probabilities, classes has {len(model.classes)}"
        )
