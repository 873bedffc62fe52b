"""The OpenAPI 3.1 document of the API, generated from the loaded models.

Request schemas come from the same field objects that validate requests, so
the document states exactly what the API accepts: types, ranges, categories,
dates, required fields and no additional properties.
"""

from .records import MAX_PROBLEMS

API_VERSION = "1.0.0"

_ERROR_REF = {"$ref": "#/components/schemas/Error"}

DESCRIPTION = """\
Predictions from the models of a model repository, served with ONNX
Runtime; `GET /api/v1/models` lists them with their inputs. The same models
answer the Open Inference Protocol (KServe V2) under `/v2`, which follows
its own specification and is not described here.

**Requests.** A prediction request is a JSON object (one record) or a JSON
array of 1 to {max_batch} records (a batch; the answer is an array in the
same order). The body must be `application/json` (UTF-8) and at most
{max_body_bytes} bytes. Every input is required and no other key is
allowed: an unknown key is rejected so that a typo cannot pass silently.
Integers may be written with a zero fraction (`30.0`); booleans are not
numbers; `NaN`/`Infinity` are rejected; categories are case-sensitive;
dates are `YYYY-MM-DD` calendar dates within the training range.

**Answers.** Each prediction has the model's result key (for the
tutorial's models that of the original API, `"Predicted Class = "` or
`"Predicted Percentage Profit per Unit = "`), `prediction`, `model` and
`model_version`; a classifier with probabilities adds `probabilities`
(class: probability).

**Errors** all have one shape: `error` (a code), `message`, `field` (the
first offending field, e.g. `[3].monthly_fee` in a batch, or null) and
`details` (every problem found, at most {max_problems}, each with `field`, `code` and
`problem`). Codes: `empty_body`, `invalid_json`, `invalid_body`,
`empty_batch`, `batch_too_large`, `invalid_input` (details codes:
`missing_field`, `unknown_field`, `wrong_type`, `not_finite`,
`not_integer`, `out_of_range`, `unknown_category`, `invalid_date`),
`unsupported_media_type` (415), `payload_too_large` (413), `not_found`
(404, also for a model that is not served), `method_not_allowed` (405,
with an `Allow` header),
`model_unavailable` (503).
"""


def build_openapi(models, max_batch, max_body_bytes):
    paths = {
        "/api/health": _get_and_head(
            "readiness",
            "Readiness: 200 once every model is loaded, 503 otherwise.",
            {
                "200": _json_response("Ready to serve predictions.", _schema_ref("Health")),
                "503": _json_response("The models are not loaded.", _schema_ref("Health")),
            },
        ),
        "/api/health/live": _get_and_head(
            "liveness",
            "Liveness: 200 while the process serves HTTP.",
            {"200": _json_response("The process is up.", _schema_ref("Liveness"))},
        ),
        "/api/v1/models": _get_and_head(
            "listModels",
            "The served models with their input schemas and held-out metrics.",
            {
                "200": _json_response("The served models.", _schema_ref("ModelList")),
                "503": {"$ref": "#/components/responses/ModelUnavailable"},
            },
        ),
        "/api/v1/models/{model_name}": _get_and_head(
            "getModel",
            "One served model.",
            {
                "200": _json_response("The model.", _schema_ref("ModelInfo")),
                "404": {"$ref": "#/components/responses/NotFound"},
                "503": {"$ref": "#/components/responses/ModelUnavailable"},
            },
            parameters=[
                {
                    "name": "model_name",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "enum": sorted(models)},
                }
            ],
        ),
        "/api/v1/openapi.json": _get_and_head(
            "openapi",
            "This document.",
            {
                "200": _json_response("The OpenAPI document.", {"type": "object"}),
                "503": {"$ref": "#/components/responses/ModelUnavailable"},
            },
        ),
    }
    schemas = _common_schemas()
    for name, model in sorted(models.items()):
        prefix = _pascal_case(name)
        schemas[f"{prefix}Input"] = model.input_schema()
        schemas[f"{prefix}Prediction"] = _prediction_schema(model)
        paths[model.endpoint] = {"post": _prediction_operation(model, prefix, max_batch)}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "ML prediction API",
            "version": API_VERSION,
            "description": DESCRIPTION.format(
                max_batch=max_batch, max_body_bytes=max_body_bytes, max_problems=MAX_PROBLEMS
            ),
        },
        "paths": paths,
        "components": {"schemas": schemas, "responses": _common_responses(max_body_bytes)},
    }


def _prediction_operation(model, prefix, max_batch):
    input_ref = _schema_ref(f"{prefix}Input")
    prediction_ref = _schema_ref(f"{prefix}Prediction")
    example = {field.name: field.example for field in model.schema.fields}
    return {
        "operationId": f"predict{prefix}",
        "summary": model.card.description,
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"oneOf": [input_ref, _batch_of(input_ref, max_batch)]},
                    "examples": {
                        "record": {"summary": "One record", "value": example},
                        "batch": {"summary": "A batch", "value": [example, example]},
                    },
                }
            },
        },
        "responses": {
            "200": _json_response(
                "The prediction (an array of predictions, in order, for a batch).",
                {"oneOf": [prediction_ref, _batch_of(prediction_ref, max_batch)]},
            ),
            "400": {"$ref": "#/components/responses/BadRequest"},
            "413": {"$ref": "#/components/responses/PayloadTooLarge"},
            "415": {"$ref": "#/components/responses/UnsupportedMediaType"},
            "503": {"$ref": "#/components/responses/ModelUnavailable"},
        },
    }


def _prediction_schema(model):
    properties = {}
    if model.task == "classification":
        value = {"type": "integer" if type(model.classes[0]) is int else "string", "enum": list(model.classes)}
    else:
        value = {"type": "number"}
    properties[model.result_key] = properties["prediction"] = value
    if "probabilities" in model.card.outputs:
        classes = [str(label) for label in model.classes]
        properties["probabilities"] = {
            "type": "object",
            "required": classes,
            "properties": {label: {"type": "number"} for label in classes},
            "additionalProperties": False,
        }
    properties["model"] = {"const": model.name}
    properties["model_version"] = {"const": model.version}
    return {
        "type": "object",
        "required": list(properties),
        "properties": properties,
        "additionalProperties": False,
    }


def _common_schemas():
    return {
        "Error": {
            "type": "object",
            "required": ["error", "message", "field", "details"],
            "properties": {
                "error": {"type": "string"},
                "message": {"type": "string"},
                "field": {"type": ["string", "null"]},
                "details": {
                    "type": "array",
                    "maxItems": MAX_PROBLEMS,
                    "items": {
                        "type": "object",
                        "required": ["field", "code", "problem"],
                        "properties": {
                            "field": {"type": "string"},
                            "code": {"type": "string"},
                            "problem": {"type": "string"},
                        },
                        "additionalProperties": False,
                    },
                },
            },
            "additionalProperties": False,
        },
        "Health": {
            "type": "object",
            "required": ["status", "replica", "pid", "models"],
            "properties": {
                "status": {"enum": ["ok", "unavailable"]},
                "replica": {"type": "string"},
                "pid": {"type": "integer"},
                "models": {"type": "object", "additionalProperties": {"type": "string"}},
                "message": {"type": "string"},
            },
            "additionalProperties": False,
        },
        "Liveness": {
            "type": "object",
            "required": ["status", "replica", "pid"],
            "properties": {
                "status": {"const": "alive"},
                "replica": {"type": "string"},
                "pid": {"type": "integer"},
            },
            "additionalProperties": False,
        },
        "ModelInfo": {
            "type": "object",
            "required": [
                "name", "version", "task", "description", "endpoint", "input_schema", "inputs",
                "classes", "result_key", "metrics", "source",
            ],
            "properties": {
                "name": {"type": "string"},
                "version": {"type": "string"},
                "task": {"enum": ["classification", "regression"]},
                "description": {"type": "string"},
                "endpoint": {"type": "string"},
                "input_schema": {"type": "object", "description": "JSON Schema of one input record."},
                "inputs": {
                    "type": "array",
                    "description": "The input fields of the model card: ranges, categories, transforms.",
                    "items": {"type": "object"},
                },
                "classes": {
                    "type": ["array", "null"],
                    "description": "A classifier's labels, in the order of its probabilities; null for a regressor.",
                    "items": {"type": ["integer", "string"]},
                },
                "result_key": {"type": "string"},
                "metrics": {"type": ["object", "null"], "description": "The model card's metrics, as they are."},
                "source": {"type": ["object", "null"], "description": "Where the model came from, as the card says."},
            },
            "additionalProperties": False,
        },
        "ModelList": {
            "type": "object",
            "required": ["models"],
            "properties": {"models": {"type": "array", "items": _schema_ref("ModelInfo")}},
            "additionalProperties": False,
        },
    }


def _common_responses(max_body_bytes):
    return {
        "BadRequest": _json_response(
            "The body is not valid JSON, not a record or batch, or a record is invalid "
            "(see `details`).",
            _ERROR_REF,
        ),
        "NotFound": _json_response("No such resource or model.", _ERROR_REF),
        "MethodNotAllowed": _json_response(
            "Returned for any method a path does not list; the `Allow` header names those it does.",
            _ERROR_REF,
        ),
        "PayloadTooLarge": _json_response(
            f"The body is larger than {max_body_bytes} bytes.", _ERROR_REF
        ),
        "UnsupportedMediaType": _json_response(
            "The Content-Type is not application/json, or its charset is not UTF-8.", _ERROR_REF
        ),
        "ModelUnavailable": _json_response("The models are not loaded.", _ERROR_REF),
        "InternalError": _json_response(
            "An unexpected server fault; no request is known to cause one.", _ERROR_REF
        ),
    }


def _get_and_head(operation_id, summary, responses, parameters=None):
    """A GET operation and its HEAD twin (same statuses, no body), as Flask serves both."""
    get = {"operationId": operation_id, "summary": summary, "responses": responses}
    head = {
        "operationId": f"{operation_id}Head",
        "summary": f"{summary} Headers only.",
        "responses": {status: {"description": "Headers only."} for status in responses},
    }
    if parameters:
        get["parameters"] = head["parameters"] = parameters
    return {"get": get, "head": head}


def _json_response(description, schema):
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _batch_of(item_schema, max_batch):
    return {"type": "array", "minItems": 1, "maxItems": max_batch, "items": item_schema}


def _schema_ref(name):
    return {"$ref": f"#/components/schemas/{name}"}


def _pascal_case(name):
    return "".join(part.capitalize() for part in name.split("-"))
