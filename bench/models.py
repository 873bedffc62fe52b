"""Per-request cost of each kind of model, in process: mlapi's own code path and ONNX Runtime alone.

    .venv/bin/python bench/models.py [--examples DIR] [--seconds S] [--json FILE]

For each model kind (the built-in decision tree, and from the example
repository of app/training/examples.py a random forest, a Pipeline with a
ColumnTransformer, XGBoost and LightGBM) and for one record and a batch of
100 records, it times:

  parse    model.schema.parse_records(records): the JSON records (the card's
           example record) validated and parsed, as the API does first;
  results  model.results(rows): what /api/v1 does with parsed rows (ONNX
           feeds, one session run, the answers as plain dicts);
  ort      model.session.run(outputs, feeds) alone, on feeds made once: the
           ONNX Runtime floor.

Each is timed per call (perf_counter_ns) after a warm-up, for at most
--seconds seconds or --max-calls calls, and reported as median and p99 in
microseconds. The example repository is built into a temporary folder
unless --examples names one (cd app && ../.venv/bin/python -m
training.examples --out DIR builds it).
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PROJECT_ROOT = os.path.dirname(HERE)
APP = os.path.join(PROJECT_ROOT, "app")
sys.path.insert(0, APP)

import numpy as np  # noqa: E402
import onnxruntime  # noqa: E402

from mlapi.registry import load_models  # noqa: E402

BUILT_IN = os.path.join(PROJECT_ROOT, "models")
# (kind, repository: "built-in" or "examples", model name)
MODELS = [
    ("tree (built-in)", "built-in", "decision-tree-classifier"),
    ("random forest, 25 trees", "examples", "churn-random-forest"),
    ("Pipeline (ColumnTransformer + LogisticRegression)", "examples", "churn-pipeline"),
    ("XGBoost, 30 trees", "examples", "churn-xgboost"),
    ("LightGBM regressor, 40 trees", "examples", "profit-lightgbm"),
]
BATCHES = (1, 100)


def build_examples(out):
    subprocess.run([sys.executable, "-m", "training.examples", "--out", out], cwd=APP, check=True,
                   stdout=subprocess.DEVNULL)


def example_record(model):
    """The card's example record (every field's example; a field without one gets its lowest valid value)."""
    record = {}
    for field in model.schema.fields:
        record[field.name] = field.spec["example"] if "example" in field.spec else field.sample()
    return record


def time_calls(call, seconds, max_calls, warmup=200):
    """Per-call times in microseconds: median, p99, and the number of calls timed."""
    for _ in range(warmup):
        call()
    times = []
    clock = time.perf_counter_ns
    deadline = clock() + int(seconds * 1e9)
    while len(times) < max_calls:
        start = clock()
        call()
        end = clock()
        times.append(end - start)
        if end > deadline:
            break
    values = np.array(times, dtype=np.float64) / 1000.0
    return {"p50": float(np.percentile(values, 50)), "p99": float(np.percentile(values, 99)), "calls": len(times)}


def measure(model, batch, seconds, max_calls):
    records = [example_record(model)] * batch
    is_batch = batch > 1
    rows, problems = model.schema.parse_records(records, is_batch)
    if problems:
        raise SystemExit(f"{model.name}: the example record is rejected: {problems}")
    answers = model.results(rows)
    assert len(answers) == batch
    feeds = model.feeds(rows)
    output_names = model._output_names  # the outputs model.run asks for
    session = model.session
    return {
        "model": model.name,
        "batch": batch,
        "answer": answers[0],
        "parse": time_calls(lambda: model.schema.parse_records(records, is_batch), seconds, max_calls),
        "results": time_calls(lambda: model.results(rows), seconds, max_calls),
        "ort": time_calls(lambda: session.run(output_names, feeds), seconds, max_calls),
    }


def markdown(measurements):
    lines = [
        "| model | batch | parse p50 / p99 us | results() p50 / p99 us | session.run p50 / p99 us | results() per record us | ORT share of results() |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for m in measurements:
        parse, results, ort = m["parse"], m["results"], m["ort"]
        lines.append(
            f"| {m['kind']} (`{m['model']}`) | {m['batch']} | {parse['p50']:.1f} / {parse['p99']:.1f} "
            f"| {results['p50']:.1f} / {results['p99']:.1f} | {ort['p50']:.1f} / {ort['p99']:.1f} "
            f"| {results['p50'] / m['batch']:.2f} | {ort['p50'] / results['p50']:.0%} |"
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--examples", help="the example repository (built into a temporary folder if absent)")
    parser.add_argument("--seconds", type=float, default=2.0, help="time budget per measurement (default 2)")
    parser.add_argument("--max-calls", type=int, default=20000, help="most calls per measurement (default 20000)")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="mlapi-bench-examples-") as scratch:
        examples = args.examples
        if not examples:
            examples = os.path.join(scratch, "examples")
            build_examples(examples)
        repositories = {"built-in": load_models(BUILT_IN), "examples": load_models(examples)}
        measurements = []
        for kind, repository, name in MODELS:
            model = repositories[repository][name]
            for batch in BATCHES:
                measurement = measure(model, batch, args.seconds, args.max_calls)
                measurement["kind"] = kind
                measurements.append(measurement)
                print(f"[models] {name} batch {batch}: results p50 {measurement['results']['p50']:.1f} us",
                      file=sys.stderr)

    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    header = (f"{started}: Python {platform.python_version()}, onnxruntime {onnxruntime.__version__}, "
              f"numpy {np.__version__}, {os.cpu_count()} CPUs; per call: warm-up 200, then up to "
              f"{args.max_calls} calls or {args.seconds:g} s")
    print(header)
    print()
    print(markdown(measurements))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as file:
            json.dump({"at": started, "header": header, "measurements": measurements}, file, indent=1, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
