"""Instructions per ONNX Runtime run of a model under the session settings
mlapi.registry could use, counted by valgrind (callgrind), so that the
figures do not depend on what else the machine is doing.

    .venv/bin/python bench/ort_options.py [MODEL_FOLDER] [--runs 5000]

MODEL_FOLDER defaults to models/decision-tree-classifier; its card's example
record (or each field's lowest value) is the one input row. Each setting runs
the model --runs times and 1000 times in two processes under callgrind; the
difference over (runs - 1000) is the cost of one run, start-up excluded.
Needs valgrind (Debian package valgrind).
"""

import argparse
import json
import os
import sys

from callgrind import instructions

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "app"))

# The two memory settings of each variant; every other one is mlapi.registry's.
SETTINGS = {
    "ONNX Runtime's defaults (1 thread)": {"enable_cpu_mem_arena": True, "enable_mem_pattern": True},
    "no memory arena": {"enable_cpu_mem_arena": False, "enable_mem_pattern": True},
    "no memory pattern (mlapi.registry)": {"enable_cpu_mem_arena": True, "enable_mem_pattern": False},
    "neither": {"enable_cpu_mem_arena": False, "enable_mem_pattern": False},
}


def child(folder, setting, runs, run_options):
    """Run the model `runs` times with one of SETTINGS (in the process valgrind counts)."""
    import onnxruntime

    from mlapi.registry import load_model

    model = load_model(folder)  # checks the card and the model as the replicas do
    options = model.session.get_session_options()
    for name, value in SETTINGS[setting].items():
        setattr(options, name, value)
    with open(os.path.join(folder, model.card.file), "rb") as file:
        session = onnxruntime.InferenceSession(file.read(), sess_options=options, providers=["CPUExecutionProvider"])
    row = tuple(field.sample() if field.example is None else field.parse(field.example) for field in model.schema.fields)
    feeds = model.feeds([row])
    names = list(model.card.outputs.values())
    once = onnxruntime.RunOptions() if run_options else None
    for _ in range(runs):
        session.run(names, feeds, once)


def runs_instructions(folder, setting, runs, run_options):
    return instructions([sys.executable, __file__, "--child", setting, "--runs", str(runs), folder]
                        + (["--run-options"] if run_options else []))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", nargs="?", default=os.path.join(REPO, "models", "decision-tree-classifier"))
    parser.add_argument("--runs", type=int, default=5000)
    parser.add_argument("--child")
    parser.add_argument("--run-options", action="store_true")
    args = parser.parse_args()
    if args.child:
        return child(args.folder, args.child, args.runs, args.run_options)
    if args.runs <= 1000:
        parser.error("--runs must be over 1000")
    card = json.load(open(os.path.join(args.folder, "model.json")))
    print(f"model {card['name']} {card['version']}: instructions per session.run, one record, callgrind")
    for run_options in (False, True):
        for setting in SETTINGS:
            many = runs_instructions(args.folder, setting, args.runs, run_options)
            few = runs_instructions(args.folder, setting, 1000, run_options)
            label = setting + (", one RunOptions reused" if run_options else ", RunOptions per run")
            print(f"{(many - few) / (args.runs - 1000):10.0f}  {label}")


if __name__ == "__main__":
    main()
