"""Fixtures of the app tests: a model repository of small models trained once
per session (model_repository.py), and apps built with create_app({...}).
"""

import sys

import pytest

from mlapi_testing import APP_DIR, REPLICA, SEED

sys.path.insert(0, str(APP_DIR))

from mlapi.app import create_app
from model_repository import train_models, write_repository


@pytest.fixture(scope="session")
def trained():
    """name -> model_repository.Trained: the estimators, ONNX bytes, cards and held-out records."""
    return train_models(SEED)


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory, trained):
    return write_repository(tmp_path_factory.mktemp("models"), trained)


@pytest.fixture(scope="session")
def make_app(model_dir):
    def make(**settings):
        config = {"MLAPI_MODEL_DIR": str(model_dir), "MLAPI_REPLICA_NAME": REPLICA}
        config.update(settings)
        return create_app(config)

    return make


@pytest.fixture(scope="session")
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture(scope="session")
def openapi(app):
    return app.test_client().get("/api/v1/openapi.json").get_json()
