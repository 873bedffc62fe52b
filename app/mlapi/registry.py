"""Loading the served models from a model directory written by training.

The directory holds ``metadata.json`` and one exported tree per model. Every
tree file is checked against the SHA-256 recorded in the metadata, and its
shape against the model's declared inputs, before anything is served.
"""

import hashlib
import json
import os
from typing import NamedTuple

from .fields import field_from_spec
from .records import RecordSchema
from .tree import DecisionTree

METADATA_FILE = "metadata.json"
METADATA_FORMAT = "mlapi.models/1"


class ServedModel(NamedTuple):
    task: str
    result_key: str  # the answer key of the original API; clients depend on it byte for byte


SERVED_MODELS = {
    "decision-tree-classifier": ServedModel("classification", "Predicted Class = "),
    "decision-tree-regressor": ServedModel("regression", "Predicted Percentage Profit per Unit = "),
}


class ModelLoadError(Exception):
    """The model directory is missing, incomplete or inconsistent."""


class Model:
    def __init__(self, name, metadata, tree):
        served = SERVED_MODELS[name]
        if metadata["task"] != served.task or tree.task != served.task:
            raise ModelLoadError(f"{name}: expected a {served.task} model")
        self.name = name
        self.version = metadata["version"]
        self.task = served.task
        self.result_key = served.result_key
        self.endpoint = f"/api/v1/models/{name}/predictions"
        self.schema = RecordSchema(field_from_spec(spec) for spec in metadata["inputs"])
        self.tree = tree
        self.metadata = metadata
        if not self.schema.n_features == tree.n_features == len(metadata["model_features"]):
            raise ModelLoadError(f"{name}: inputs expand to a different number of features than the tree uses")

    def result(self, features):
        prediction = self.tree.predict(features)
        return {
            self.result_key: prediction,
            "prediction": prediction,
            "model": self.name,
            "model_version": self.version,
        }

    def describe(self):
        """The public description served by /api/v1/models."""
        meta = self.metadata
        return {
            "name": self.name,
            "version": self.version,
            "task": self.task,
            "description": meta["description"],
            "endpoint": self.endpoint,
            "trained_at": meta["trained_at"],
            "input_schema": self.input_schema(),
            "inputs": meta["inputs"],
            "model_features": meta["model_features"],
            "target": meta["target"],
            "result_key": self.result_key,
            "metrics": meta["metrics"],
            "training_data": meta["data"],
            "tree": meta["tree"],
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
    """Load every served model from model_dir, or raise ModelLoadError."""
    try:
        metadata = _read_json(os.path.join(model_dir, METADATA_FILE))
        if metadata.get("format") != METADATA_FORMAT:
            raise ModelLoadError(f"{METADATA_FILE}: unsupported format {metadata.get('format')!r}")
        return {name: _load_model(model_dir, name, metadata["models"]) for name in SERVED_MODELS}
    except ModelLoadError:
        raise
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise ModelLoadError(f"cannot load models from {model_dir}: {error!r}") from error


def _load_model(model_dir, name, all_metadata):
    if name not in all_metadata:
        raise ModelLoadError(f"{METADATA_FILE} does not describe {name}")
    metadata = all_metadata[name]
    artifact = metadata["artifact"]
    with open(os.path.join(model_dir, artifact["file"]), "rb") as file:
        content = file.read()
    if hashlib.sha256(content).hexdigest() != artifact["sha256"]:
        raise ModelLoadError(f"{name}: {artifact['file']} does not match its recorded SHA-256")
    return Model(name, metadata, DecisionTree(json.loads(content)))


def _read_json(path):
    with open(path, "rb") as file:
        return json.load(file)
