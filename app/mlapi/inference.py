"""The Open Inference Protocol (KServe V2) REST API, under /v2.

https://github.com/kserve/open-inference-protocol (inference_rest.md). A
model's inputs are its card's fields, one tensor each of shape [-1, 1]
(numbers FP64, integers INT64, categories and dates BYTES, as strings);
every value goes through the same field validation as /api/v1. Outputs:
"label" and "probabilities" (if the model has them) for a classifier,
"prediction" for a regressor. Tensor data is JSON only: the binary tensor
extension is not supported, so "extensions" is empty. Errors are
{"error": "<message>"} (mlapi.errors).
"""

from flask import Blueprint, current_app, jsonify, request

from .errors import INFERENCE_PREFIX, ApiError
from .fields import InvalidValue, json_type_name, preview
from .openapi import API_VERSION
from .payload import read_json_body

blueprint = Blueprint("inference", __name__, url_prefix=INFERENCE_PREFIX)

SERVER_NAME = "mlapi"
PLATFORM = "onnxruntime_onnx"
FIELD_DATATYPES = {"number": "FP64", "integer": "INT64", "category": "BYTES", "date": "BYTES"}


def _bad_request(message):
    return ApiError(400, "bad_request", message)


def _model(name, version):
    models = current_app.extensions["mlapi"].models
    if models is None:
        raise ApiError(503, "model_unavailable", "The models are not loaded; try another replica.")
    if name not in models:
        raise ApiError(404, "not_found", f"No model is called {name!r}; served: {', '.join(models)}.")
    model = models[name]
    if version is not None and version != model.version:
        raise ApiError(404, "not_found", f"Model {name!r} has no version {version!r}; it serves {model.version!r}.")
    return model


def _model_routes(suffix, **options):
    """Register a view on the model's path with and without /versions/<model_version>."""

    def register(view):
        blueprint.add_url_rule(f"/models/<model_name>{suffix}", view_func=view,
                               defaults={"model_version": None}, **options)
        blueprint.add_url_rule(f"/models/<model_name>/versions/<model_version>{suffix}", view_func=view, **options)
        return view

    return register


@blueprint.get("")
def server_metadata():
    return jsonify(name=SERVER_NAME, version=API_VERSION, extensions=[])


@blueprint.get("/health/live")
def server_live():
    return jsonify(live=True)


@blueprint.get("/health/ready")
def server_ready():
    if current_app.extensions["mlapi"].models is None:
        raise ApiError(503, "model_unavailable", "The models are not loaded; the service log says why.")
    return jsonify(ready=True)


@_model_routes("", methods=["GET"])
def model_metadata(model_name, model_version):
    model = _model(model_name, model_version)
    return jsonify(
        name=model.name,
        versions=[model.version],
        platform=PLATFORM,
        inputs=[
            {"name": field.name, "datatype": FIELD_DATATYPES[field.spec["type"]], "shape": [-1, 1]}
            for field in model.schema.fields
        ],
        outputs=[{"name": name, "datatype": datatype, "shape": shape} for name, datatype, shape in _outputs(model)],
    )


@_model_routes("/ready", methods=["GET"])
def model_ready(model_name, model_version):
    model = _model(model_name, model_version)
    return jsonify(name=model.name, ready=True)


@_model_routes("/infer", methods=["POST"])
def infer(model_name, model_version):
    model = _model(model_name, model_version)
    if "Inference-Header-Content-Length" in request.headers:
        raise _bad_request("Binary tensor data is not supported; send the tensors' data as JSON.")
    # Any Content-Type, as Triton and KServe take it: tritonclient sends none,
    # curl -d a form's. The body must be JSON all the same.
    body = read_json_body(content_types=None)
    if not isinstance(body, dict):
        raise _bad_request(f"The request must be a JSON object, got {json_type_name(body)}.")
    request_id = body.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise _bad_request(f"id must be a string, got {json_type_name(request_id)}.")
    if not isinstance(body.get("parameters", {}), dict):
        raise _bad_request("parameters must be an object.")
    outputs = _requested_outputs(model, body.get("outputs"))
    rows = _rows(model, body.get("inputs"))
    results = model.run(rows)  # one session run for the whole batch
    answer = {"model_name": model.name, "model_version": model.version}
    if request_id is not None:
        answer["id"] = request_id
    datatypes = {name: datatype for name, datatype, _ in _outputs(model)}
    answer["outputs"] = [_output_tensor(name, datatypes[name], results, len(rows)) for name in outputs]
    return jsonify(answer)


def _outputs(model):
    """(name, datatype, shape) of every output tensor of the model."""
    if model.task == "regression":
        return [("prediction", "FP64", [-1])]
    outputs = [("label", "BYTES" if isinstance(model.classes[0], str) else "INT64", [-1])]
    if "probabilities" in model.card.outputs:
        outputs.append(("probabilities", "FP32", [-1, len(model.classes)]))
    return outputs


def _requested_outputs(model, requested):
    names = [name for name, _, _ in _outputs(model)]
    if requested is None:
        return names
    if not isinstance(requested, list) or not all(isinstance(output, dict) for output in requested):
        raise _bad_request("outputs must be a list of objects with a name.")
    chosen = []
    for output in requested:
        name = output.get("name")
        if not isinstance(name, str) or name not in names:
            raise _bad_request(f"outputs: {preview(name)} is not an output of {model.name} ({', '.join(names)}).")
        if name in chosen:
            raise _bad_request(f"outputs: {name!r} is requested twice.")
        chosen.append(name)
    return chosen


def _rows(model, inputs):
    """The parsed records of the request's input tensors, or raise a 400 naming the tensor."""
    if not isinstance(inputs, list) or not inputs:
        raise _bad_request("inputs must be a non-empty list of tensors.")
    fields = {field.name: field for field in model.schema.fields}
    columns = {}
    for tensor in inputs:
        if not isinstance(tensor, dict):
            raise _bad_request(f"inputs: each tensor must be an object, got {json_type_name(tensor)}.")
        name = tensor.get("name")
        if not isinstance(name, str) or name not in fields:
            raise _bad_request(
                f"inputs: {preview(name)} is not an input of {model.name} ({', '.join(fields)})."
            )
        if name in columns:
            raise _bad_request(f"input {name!r} is given twice.")
        columns[name] = _column(fields[name], tensor)
    missing = [name for name in fields if name not in columns]
    if missing:
        raise _bad_request(f"input {missing[0]!r} is missing (inputs: {', '.join(fields)}).")
    counts = {len(values) for values in columns.values()}
    if len(counts) > 1:
        raise _bad_request("The input tensors hold different numbers of rows.")
    count = counts.pop()
    max_batch = current_app.config["MLAPI_MAX_BATCH"]
    if not 1 <= count <= max_batch:
        raise _bad_request(f"The inputs hold {count} rows; send 1 to {max_batch}.")
    return list(zip(*(columns[name] for name in fields), strict=True))


def _column(field, tensor):
    """The parsed values of one input tensor."""
    name = field.name
    datatype = FIELD_DATATYPES[field.spec["type"]]
    if tensor.get("datatype") != datatype:
        raise _bad_request(f"input {name!r} must have datatype {datatype}, got {preview(tensor.get('datatype'))}.")
    shape = tensor.get("shape")
    if (
        not isinstance(shape, list)
        or not 1 <= len(shape) <= 2
        or not all(type(size) is int and size >= 0 for size in shape)
        or shape[1:] not in ([], [1])
    ):
        raise _bad_request(f"input {name!r} must have shape [N] or [N, 1], got {preview(shape)}.")
    data = tensor.get("data")
    if not isinstance(data, list):
        raise _bad_request(f"input {name!r}: data must be a list, got {json_type_name(data)}.")
    # Row-major data, flat or nested as the shape: [[1], [2]] or [1, 2].
    values = [value for item in data for value in (item if isinstance(item, list) and len(shape) == 2 else [item])]
    if len(values) != shape[0]:
        raise _bad_request(f"input {name!r} has {len(values)} values for shape {shape}.")
    parsed = []
    for index, value in enumerate(values):
        try:
            if datatype == "INT64" and type(value) is not int:
                raise InvalidValue("wrong_type", f"must be an integer (INT64), got {json_type_name(value)}")
            parsed.append(field.parse(value))
        except InvalidValue as invalid:
            raise _bad_request(f"input {name!r}[{index}] {invalid.problem}.") from None
    return parsed


def _output_tensor(name, datatype, results, count):
    if name == "probabilities":
        rows = results["probabilities"]
        return {"name": name, "shape": [count, len(rows[0])], "datatype": datatype,
                "data": [p for row in rows for p in row]}
    data = results["value" if name == "prediction" else "label"]
    return {"name": name, "shape": [count], "datatype": datatype, "data": data}
