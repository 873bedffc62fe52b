"""Settings of the API, read from the environment (and overridable in create_app)."""

import re
import socket

DEFAULT_MODEL_DIR = "/opt/mlapi/models"
DEFAULT_MAX_BODY_BYTES = 65536
DEFAULT_MAX_BATCH = 1000
DEFAULT_METRICS_PORT = 9000

# name -> (smallest, largest) allowed value
_INT_SETTINGS = {
    "MLAPI_MAX_BODY_BYTES": (1, None),
    "MLAPI_MAX_BATCH": (1, None),
    "MLAPI_METRICS_PORT": (0, 65535),  # 0: no metrics
}


def settings_from_env(environ):
    """The MLAPI_* settings from an environment mapping, with defaults."""
    return {
        "MLAPI_MODEL_DIR": environ.get("MLAPI_MODEL_DIR") or DEFAULT_MODEL_DIR,
        "MLAPI_MAX_BODY_BYTES": environ.get("MLAPI_MAX_BODY_BYTES") or DEFAULT_MAX_BODY_BYTES,
        "MLAPI_MAX_BATCH": environ.get("MLAPI_MAX_BATCH") or DEFAULT_MAX_BATCH,
        "MLAPI_REPLICA_NAME": environ.get("MLAPI_REPLICA_NAME") or socket.gethostname(),
        "MLAPI_METRICS_PORT": environ.get("MLAPI_METRICS_PORT") or DEFAULT_METRICS_PORT,
    }


def normalize_settings(config):
    """Convert the integer settings in place; a bad value stops the start-up."""
    for name in _INT_SETTINGS:
        config[name] = integer_setting(config, name)


def integer_setting(config, name):
    """The integer value of setting ``name`` in config, or raise ValueError."""
    value = config[name]
    smallest, largest = _INT_SETTINGS[name]
    if isinstance(value, str) and re.fullmatch(r"\s*[0-9]+\s*", value):
        value = int(value)
    if type(value) is not int or value < smallest or (largest is not None and value > largest):
        bounds = f"between {smallest} and {largest}" if largest is not None else f"at least {smallest}"
        raise ValueError(f"{name} must be an integer {bounds}, got {config[name]!r}")
    return value
