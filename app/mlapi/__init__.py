"""HTTP prediction API serving a model repository (docs/model-repository.md)
with ONNX Runtime: /api/v1 and the Open Inference Protocol under /v2.

The Flask application factory lives in :mod:`mlapi.app` (``create_app``) and
the WSGI entry point in :mod:`mlapi.wsgi`. This package imports nothing at
import time; mlapi.fields, mlapi.records and mlapi.card need only the
standard library, so the import tool can check cards and build features
with them without Flask or ONNX Runtime.
"""
