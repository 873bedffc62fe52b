#!/usr/bin/env bash
# Import a saved scikit-learn / XGBoost / LightGBM model (joblib or pickle)
# into a model repository, with the project's venv (scripts/setup.sh makes it;
# app/requirements-train.txt holds the converters). docs/import.md explains it.
#
#   bash scripts/import-model.sh --model churn.pkl --name churn --repository models \
#        [--inputs fields.json] [--label-encoders encoders.pkl] [--date FIELD] [--sample sample.csv] ...
#   bash scripts/import-model.sh --help
#
# Paths are taken relative to where you run it. Exit status: 0 written,
# 2 refused (the message says why).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="$root/.venv/bin/python"
if [ ! -x "$python" ]; then
  echo "import-model: $python is missing; create it with: python3 -m venv .venv && .venv/bin/pip install -r app/requirements-train.txt" >&2
  exit 1
fi
PYTHONPATH="$root/app${PYTHONPATH:+:$PYTHONPATH}" exec "$python" -m training.import_model "$@"
