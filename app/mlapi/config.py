"""Settings of the API, read from the environment (and overridable in create_app)."""

import re
import socket

DEFAULT_MODEL_DIR = "/opt/mlapi/models"
DEFAULT_MAX_BODY_BYTES = 65536
DEFAULT_MAX_BATCH = 1000

_POSITIVE_INT_SETTINGS = ("MLAPI_MAX_BODY_BYTES", "MLAPI_MAX_BATCH")


def settings_from_env(environ):
    """The MLAPI_* settings from an environment mapping, with defaults."""
    return {
        "MLAPI_MODEL_DIR": environ.get("MLAPI_MODEL_DIR") or DEFAULT_MODEL_DIR,
        "MLAPI_MAX_BODY_BYTES": environ.get("MLAPI_MAX_BODY_BYTES") or DEFAULT_MAX_BODY_BYTES,
        "MLAPI_MAX_BATCH": environ.get("MLAPI_MAX_BATCH") or DEFAULT_MAX_BATCH,
        "MLAPI_REPLICA_NAME": environ.get("MLAPI_REPLICA_NAME") or socket.gethostname(),
    }


def normalize_settings(config):
    """Convert the integer settings in place; a bad value stops the start-up."""
    for name in _POSITIVE_INT_SETTINGS:
        value = config[name]
        if isinstance(value, str) and re.fullmatch(r"\s*[0-9]+\s*", value):
            value = int(value)
        if type(value) is not int or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {config[name]!r}")
        config[name] = value
