"""Test-only WSGI wrapper that makes a replica slow, to test failover.

It lives under test/ and is put on PYTHONPATH only by the end-to-end harness:
no image contains it, so production cannot enable it.
"""

import os
import time

from mlapi.wsgi import app as real_app

DELAY_SECONDS = float(os.environ.get("E2E_PREDICTION_DELAY_SECONDS", "0"))


def app(environ, start_response):
    if DELAY_SECONDS and environ["REQUEST_METHOD"] == "POST" and environ["PATH_INFO"].endswith("/predictions"):
        time.sleep(DELAY_SECONDS)
    return real_app(environ, start_response)
