"""Measure the in-process cost of one prediction with the seed payloads.

    cd app && python tools/time_prediction.py --model-dir ../models

Prints microseconds per call (best of 5 runs) for validation + prediction
(and ONNX Runtime's session.run alone),
and for a whole request through Flask's test client (JSON parsing, routing,
response serialisation; no network, no Gunicorn).

With --metrics it compares, in the same run, a request with the Prometheus
metrics counted and without (MLAPI_METRICS_PORT=0), in prometheus_client's
multiprocess mode as under Gunicorn (files in a temporary directory):
rounds alternate between the two apps, best round each (CPU time of this
process); "WSGI" calls the app with a prepared environ, without the test
client's own overhead.
"""

import argparse
import io
import json
import os
import sys
import tempfile
import time
import timeit

from werkzeug.test import EnvironBuilder

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SEED_PAYLOADS = {
    "decision-tree-classifier": {"monthly_fee": 60, "customer_age": 30, "support_calls": 1},
    "decision-tree-regressor": {
        "CustomerType": "Business",
        "BranchSubCounty": "Kilimani",
        "ProductCategoryName": "Meat-Based Dishes",
        "QuantityOrdered": 8,
        "PaymentDate": "2027-11-13",
    },
}


def microseconds_per_call(function, number):
    return min(timeit.repeat(function, number=number, repeat=5)) / number * 1e6


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", default="/opt/mlapi/models")
    parser.add_argument("--number", type=int, default=20000, help="calls per timing run")
    parser.add_argument("--metrics", action="store_true", help="compare requests with and without metrics")
    parser.add_argument("--rounds", type=int, default=7, help="alternating rounds of --metrics")
    args = parser.parse_args(argv)
    if args.metrics:
        # Before prometheus_client is first imported, as Gunicorn does (gunicorn.conf.py).
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="mlapi-metrics-")
    from mlapi.app import create_app

    if args.metrics:
        apps = {label: create_app({"MLAPI_MODEL_DIR": args.model_dir, "MLAPI_METRICS_PORT": port})
                for label, port in (("off", 0), ("on", 9000))}
        for name, payload in SEED_PAYLOADS.items():
            print(compare_metrics(apps, name, payload, args.number // 20, args.rounds))
        return
    app = create_app({"MLAPI_MODEL_DIR": args.model_dir})
    models = app.extensions["mlapi"].models
    if models is None:
        sys.exit(f"no models in {args.model_dir}")
    client = app.test_client()
    for name, payload in SEED_PAYLOADS.items():
        print(time_model(client, models[name], payload, args.number))


def time_model(client, model, payload, number):
    body = json.dumps(payload).encode()
    rows, _ = model.schema.parse_records([payload], False)
    feeds = model.feeds(rows)
    outputs = list(model.card.outputs.values())

    def validate_and_predict():
        parsed, _ = model.schema.parse_records([payload], False)
        return model.results(parsed)

    def request():
        return client.post(model.endpoint, data=body, content_type="application/json")

    return (
        f"{model.name}: validate+predict {microseconds_per_call(validate_and_predict, number):.1f} us"
        f" (ONNX Runtime session.run {microseconds_per_call(lambda: model.session.run(outputs, feeds), number):.1f} us),"
        f" Flask request {microseconds_per_call(request, number // 20):.0f} us"
    )


def compare_metrics(apps, name, payload, number, rounds):
    body = json.dumps(payload).encode()
    url = f"/api/v1/models/{name}/predictions"
    calls = {}
    for label, app in apps.items():
        client = app.test_client()
        environ = _environ(url, body)
        calls[label, "Flask test client"] = (
            lambda client=client: client.post(url, data=body, content_type="application/json")
        )
        calls[label, "WSGI"] = lambda app=app, environ=environ: _call_wsgi(app, environ, body)
    best = {key: float("inf") for key in calls}
    for _ in range(rounds):
        for key, call in calls.items():
            best[key] = min(best[key], timeit.timeit(call, timer=time.process_time, number=number) / number * 1e6)
    lines = [f"{name}, best of {rounds} alternating rounds of {number} requests:"]
    for way in ("WSGI", "Flask test client"):
        off, on = best["off", way], best["on", way]
        lines.append(f"  {way}: metrics off {off:.1f} us, on {on:.1f} us: +{on - off:.1f} us ({(on / off - 1) * 100:+.1f}%)")
    return "\n".join(lines)


def _environ(url, body):
    builder = EnvironBuilder(path=url, method="POST", data=body, content_type="application/json")
    try:
        return builder.get_environ()
    finally:
        builder.close()


def _call_wsgi(app, environ, body):
    environ = dict(environ, **{"wsgi.input": io.BytesIO(body)})
    status = []
    chunks = app.wsgi_app(environ, lambda code, headers, exc_info=None: status.append(code))
    b"".join(chunks)
    assert status[0].startswith("200"), status


if __name__ == "__main__":
    main()
