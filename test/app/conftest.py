"""Fixtures of the app tests: models trained once per session by the real
training code, and apps built with create_app({...}).
"""

import json
import sys

import pytest

from mlapi_testing import APP_DIR, REPLICA, SEED, SOURCE_DATE_EPOCH

sys.path.insert(0, str(APP_DIR))

from mlapi.app import create_app
from training.train import train_all, training_timestamp


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("models")
    train_all(str(out), SEED, training_timestamp({"SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH}))
    return out


@pytest.fixture(scope="session")
def metadata(model_dir):
    return json.loads((model_dir / "metadata.json").read_text())


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
