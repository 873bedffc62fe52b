"""One JSON error shape for every failure:

    {"error": "<code>", "message": "<human readable>",
     "field": "<field path or null>",
     "details": [{"field": ..., "code": ..., "problem": ...}, ...]}

Werkzeug's HTTP errors (404, 405, 413, ...) and unexpected exceptions (500)
are rendered in the same shape; no traceback ever reaches a client. Under
/v2 (mlapi.inference) every error takes the Open Inference Protocol's shape
instead: {"error": "<message>"}.
"""

from flask import current_app, g, jsonify, request
from werkzeug.exceptions import HTTPException

INFERENCE_PREFIX = "/v2"  # the Open Inference Protocol's paths (mlapi.inference)

# Codes for Werkzeug's errors where its own name reads badly as a code.
_HTTP_ERROR_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    500: "internal_error",
}


class ApiError(Exception):
    def __init__(self, status, error, message, field=None, details=()):
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.field = field
        self.details = details


def invalid_input(problems):
    """The 400 for records that failed validation (problems: records.Problem list)."""
    first = problems[0]
    message = f"{first.field} {first.problem}"
    if len(problems) > 1:
        message += f" (details list {len(problems) - 1} more)"
    details = [problem._asdict() for problem in problems]
    return ApiError(400, "invalid_input", message, field=first.field, details=details)


def error_response(status, error, message, field=None, details=()):
    g.error_code = error  # the outcome metrics.count_response counts a prediction under
    if request.path == INFERENCE_PREFIX or request.path.startswith(INFERENCE_PREFIX + "/"):
        response = jsonify(error=message)
    else:
        response = jsonify(error=error, message=message, field=field, details=list(details))
    response.status_code = status
    return response


def _handle_api_error(error):
    return error_response(error.status, error.error, error.message, error.field, error.details)


def _handle_http_exception(exception):
    status = exception.code or 500
    error = _HTTP_ERROR_CODES.get(status) or exception.name.lower().replace(" ", "_")
    if status == 500:
        # Flask has already logged the original exception with its traceback.
        message = "The server failed to handle the request."
    elif status == 413:
        message = f"The request body is larger than {current_app.config['MLAPI_MAX_BODY_BYTES']} bytes."
    else:
        message = exception.description or exception.name
    response = error_response(status, error, message)
    # Keep headers such as Allow (405) that the exception defines.
    for name, value in exception.get_headers():
        if name.lower() != "content-type":
            response.headers[name] = value
    return response


def register_error_handlers(app):
    app.register_error_handler(ApiError, _handle_api_error)
    app.register_error_handler(HTTPException, _handle_http_exception)
