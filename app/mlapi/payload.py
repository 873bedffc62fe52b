"""Reading a prediction request body: strict JSON holding one record or a batch."""

import json

from flask import current_app, request
from werkzeug.exceptions import RequestEntityTooLarge

from .errors import ApiError
from .fields import json_type_name


class _NonStandardConstant(ValueError):
    """NaN / Infinity / -Infinity: Python's json accepts them, JSON does not."""


def _reject_constant(name):
    raise _NonStandardConstant(name)


# Made once: json.loads with an option builds a new decoder for every body.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def read_json_body(content_types=("application/json",)):
    """The decoded JSON body of the current request, or raise ApiError.

    content_types: the media types accepted, or None for any (the body must
    be JSON all the same).

    The Content-Type is checked before the body is read. A body larger than
    MLAPI_MAX_BODY_BYTES is a 413: Werkzeug refuses a larger Content-Length
    before reading (MAX_CONTENT_LENGTH), but a chunked body it only cuts off
    at MAX_CONTENT_LENGTH bytes, silently. So MAX_CONTENT_LENGTH is one byte
    more than the limit, and a body that reaches it is refused here.
    """
    if content_types is not None and request.mimetype not in content_types:
        raise ApiError(415, "unsupported_media_type", "Content-Type must be application/json.")
    charset = request.mimetype_params.get("charset", "utf-8").lower()
    if charset not in ("utf-8", "utf8"):
        raise ApiError(415, "unsupported_media_type", "JSON bodies must be encoded in UTF-8.")
    raw = request.get_data(cache=False)
    if len(raw) > current_app.config["MLAPI_MAX_BODY_BYTES"]:
        raise RequestEntityTooLarge()
    if not raw:
        raise ApiError(400, "empty_body", "The request body is empty; send a JSON object or array.")
    try:
        return _DECODER.decode(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ApiError(400, "invalid_json", "The request body is not valid UTF-8.") from None
    except _NonStandardConstant as constant:
        raise ApiError(
            400, "invalid_json", f"{constant} is not valid JSON; numbers must be finite."
        ) from None
    except json.JSONDecodeError as error:
        raise ApiError(
            400,
            "invalid_json",
            f"The request body is not valid JSON: {error.msg} (line {error.lineno}, column {error.colno}).",
        ) from None
    except (ValueError, RecursionError):
        # Integer literals beyond Python's digit limit, or absurd nesting.
        raise ApiError(
            400,
            "invalid_json",
            "The request body is not valid JSON: a number is too long or the nesting too deep.",
        ) from None


def records_of(body, max_batch):
    """The records of a decoded body, and whether it was a batch (a JSON array)."""
    if isinstance(body, dict):
        return [body], False
    if isinstance(body, list):
        if not body:
            raise ApiError(400, "empty_batch", f"The batch is empty; send 1 to {max_batch} records.")
        if len(body) > max_batch:
            raise ApiError(
                400,
                "batch_too_large",
                f"The batch holds {len(body)} records; at most {max_batch} are allowed.",
            )
        return body, True
    raise ApiError(
        400,
        "invalid_body",
        "The request body must be a JSON object (one record) or an array of objects (a batch), "
        f"got {json_type_name(body)}.",
    )
