"""HTTP prediction API serving decision trees exported to plain JSON.

The Flask application factory lives in :mod:`mlapi.app` (``create_app``) and
the WSGI entry point in :mod:`mlapi.wsgi`. This package imports nothing but
the standard library at import time, so the training code can reuse the
feature and tree modules without installing Flask.
"""
