"""In-process cost of one prediction on the tutorial baseline's request path.

    python bench/tutorial/time_prediction.py --model-dir DIR   (joblib files from train_models.py)

Prints microseconds per call (best of 5 runs) for the DataFrame + predict
step alone and for a whole request through Flask's test client, the same
two figures app/tools/time_prediction.py prints for the project's API.
"""

import argparse
import importlib.util
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def _project_timer():
    """app/tools/time_prediction.py (the same file name as this one, so loaded by path)."""
    path = os.path.join(HERE, "..", "..", "app", "tools", "time_prediction.py")
    spec = importlib.util.spec_from_file_location("mlapi_time_prediction", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# The same payloads and the same timing as the project's measurement.
_timer = _project_timer()
SEED_PAYLOADS = _timer.SEED_PAYLOADS
microseconds_per_call = _timer.microseconds_per_call

# First on the path (before app/, which the project's tool put there): the baseline's api.py.
sys.path.insert(0, HERE)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--number", type=int, default=2000, help="calls per timing run")
    args = parser.parse_args(argv)
    os.environ["TUTORIAL_MODEL_DIR"] = args.model_dir
    import api

    client = api.app.test_client()
    views = {"decision-tree-classifier": api.predict_churn, "decision-tree-regressor": api.predict_profit}
    for name, payload in SEED_PAYLOADS.items():
        body = json.dumps(payload).encode()
        path = f"/api/v1/models/{name}/predictions"

        def view_only(view=views[name], body=body, path=path):
            # The view function (DataFrame + scikit-learn predict + jsonify) inside a request context.
            with api.app.test_request_context(path, method="POST", data=body, content_type="application/json"):
                return view()

        def request(body=body, path=path):
            return client.post(path, data=body, content_type="application/json")

        print(
            f"{name}: DataFrame+predict view {microseconds_per_call(view_only, args.number):.0f} us,"
            f" Flask request {microseconds_per_call(request, args.number):.0f} us"
        )


if __name__ == "__main__":
    main()
