"""Bench-only Gunicorn hooks for bench/experiment.ts (never in an image).

    GUNICORN_CMD_ARGS="--logger-class bench_experiments.NoAccessLogger"   (PYTHONPATH += bench/wsgi)

NoAccessLogger: Gunicorn's logger with the access log switched off (what
``accesslog = None`` in app/gunicorn.conf.py would do), to measure what the
per-request access log line costs without editing the app's settings.
"""

from gunicorn.glogging import Logger


class NoAccessLogger(Logger):
    def access(self, resp, req, environ, request_time):
        return
