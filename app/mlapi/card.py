"""The model card (model.json) of a model in a model repository, checked
against docs/model-repository.md.

``check_card`` needs the card only; what the card says about the ONNX file
(its hash, inputs and outputs) is checked by mlapi.registry when it loads
the file.
"""

import re
from dataclasses import dataclass

from .fields import COLUMNS, MATRIX, NUMBER, SpecError, field_from_spec, json_type_name, preview
from .records import RecordSchema

CARD_FILE = "model.json"
CARD_FORMAT = "mlapi.model/1"
MODEL_NAME = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}")
SHA256 = re.compile(r"[0-9a-f]{64}")
TASKS = ("classification", "regression")
LAYOUTS = (MATRIX, COLUMNS)
INPUT_DTYPES = ("float32", "float64", "int64")
# The ONNX outputs a card names, by task: (required, optional).
OUTPUTS = {"classification": (("label",), ("probabilities",)), "regression": (("value",), ())}
DEFAULT_RESULT_KEY = "prediction"
# Keys an answer carries besides the result key, which must not be one of them.
ANSWER_KEYS = ("model", "model_version", "probabilities")


class CardError(ValueError):
    """A model card that breaks the format; the message says what is wrong."""


@dataclass(frozen=True)
class Card:
    name: str
    version: str
    task: str
    description: str
    file: str
    sha256: str
    result_key: str
    layout: str
    schema: RecordSchema
    onnx_input: str | None  # the matrix layout's one input; None in the columns layout
    input_dtype: str | None
    outputs: dict  # "label"/"probabilities" or "value" -> ONNX output name
    classes: tuple | None
    metrics: dict | None
    source: dict | None
    spec: dict  # the card as read


def check_card(card, folder_name):
    """The Card of a decoded model.json in the folder folder_name, or raise CardError."""
    if not isinstance(card, dict):
        raise CardError(f"the card must be a JSON object, got {json_type_name(card)}")
    if card.get("format") != CARD_FORMAT:
        raise CardError(f"format must be {CARD_FORMAT!r}, got {preview(card.get('format'))}")
    name = _string(card, "name")
    if not MODEL_NAME.fullmatch(name):
        raise CardError(f"name must match ^{MODEL_NAME.pattern}$, got {preview(name)}")
    if name != folder_name:
        raise CardError(f"name {name!r} is not the name of its folder {folder_name!r}")
    version = _string(card, "version")
    if not VERSION.fullmatch(version):
        raise CardError(f"version must match ^{VERSION.pattern}$, got {preview(version)}")
    task = _choice(card, "task", TASKS)
    file = _string(card, "file")
    if file in (".", "..") or "/" in file or "\\" in file or "\0" in file:
        raise CardError(f"file must be a plain file name inside the model's folder, got {preview(file)}")
    sha256 = _string(card, "sha256")
    if not SHA256.fullmatch(sha256):
        raise CardError(f"sha256 must be 64 lower-case hex digits, got {preview(sha256)}")
    result_key = card.get("result_key", DEFAULT_RESULT_KEY)
    if not isinstance(result_key, str) or not result_key or result_key in ANSWER_KEYS:
        raise CardError(f"result_key must be a string other than {', '.join(ANSWER_KEYS)}, got {preview(result_key)}")
    layout = _choice(card, "input_layout", LAYOUTS)
    schema = _schema(card, layout)
    onnx = card.get("onnx")
    if not isinstance(onnx, dict):
        raise CardError(f"onnx must be an object, got {json_type_name(onnx)}")
    onnx_input = input_dtype = None
    if layout == MATRIX:
        onnx_input = _string(onnx, "input", "onnx.input")
        input_dtype = _choice(onnx, "input_dtype", INPUT_DTYPES, "onnx.input_dtype")
        if input_dtype == "int64":
            for field in schema.fields:
                if field.kind == NUMBER:
                    raise CardError(f"field {field.name!r}: a number cannot feed an int64 input")
    return Card(
        name=name,
        version=version,
        task=task,
        description=_string(card, "description"),
        file=file,
        sha256=sha256,
        result_key=result_key,
        layout=layout,
        schema=schema,
        onnx_input=onnx_input,
        input_dtype=input_dtype,
        outputs=_outputs(onnx, task),
        classes=_classes(card) if task == "classification" else None,
        metrics=_free_form(card, "metrics"),
        source=_free_form(card, "source"),
        spec=card,
    )


def _string(mapping, key, label=None):
    label = label or key
    if key not in mapping:
        raise CardError(f"{label} is missing")
    value = mapping[key]
    if not isinstance(value, str) or not value:
        raise CardError(f"{label} must be a non-empty string, got {preview(value)}")
    return value


def _choice(mapping, key, choices, label=None):
    label = label or key
    if key not in mapping:
        raise CardError(f"{label} is missing")
    if mapping[key] not in choices:
        raise CardError(f"{label} must be one of {', '.join(choices)}, got {preview(mapping[key])}")
    return mapping[key]


def _schema(card, layout):
    specs = card.get("inputs")
    if not isinstance(specs, list) or not specs:
        raise CardError(f"inputs must be a non-empty list of fields, got {preview(specs)}")
    fields = []
    for spec in specs:
        try:
            field = field_from_spec(spec)
        except SpecError as error:
            raise CardError(f"inputs: {error}") from None
        if layout not in field.layouts:
            raise CardError(f"inputs: field {field.name!r}: transform {field.transform} cannot feed the {layout} layout")
        if field.name in (other.name for other in fields):
            raise CardError(f"inputs: field name {field.name!r} appears twice")
        fields.append(field)
    return RecordSchema(fields)


def _outputs(onnx, task):
    outputs = onnx.get("outputs")
    if not isinstance(outputs, dict):
        raise CardError(f"onnx.outputs must be an object, got {json_type_name(outputs)}")
    required, optional = OUTPUTS[task]
    for key in outputs:
        if key not in required + optional:
            raise CardError(f"onnx.outputs: {preview(key)} is not an output of a {task} model "
                            f"({', '.join(required + optional)})")
    for key in (*required, *(key for key in optional if key in outputs)):
        _string(outputs, key, f"onnx.outputs.{key}")
    return dict(outputs)


def _classes(card):
    classes = card.get("classes")
    if not isinstance(classes, list) or not classes:
        raise CardError(f"classes must be a non-empty list of labels, got {preview(classes)}")
    if not (all(type(label) is int for label in classes) or all(isinstance(label, str) for label in classes)):
        raise CardError("classes must be all whole numbers or all strings")
    if len(set(classes)) != len(classes):
        raise CardError("classes must be distinct")
    return tuple(classes)


def _free_form(card, key):
    value = card.get(key)
    if value is not None and not isinstance(value, dict):
        raise CardError(f"{key} must be an object, got {json_type_name(value)}")
    return value
