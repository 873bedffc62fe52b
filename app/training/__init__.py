"""Reproducible synthetic data, training of the built-in models, and the
import of a user's saved model, all writing a model repository
(docs/model-repository.md).

    python -m training.generate_data --out DIR [--seed 42]   # the data sets as CSV
    python -m training.train --out DIR [--seed 42]           # the built-in repository (models/)
    python -m training.import_model --model FILE.pkl ...     # a user's model into a repository
    python -m training.examples --out DIR                    # an example repository of five imports

Run from the app/ directory. SOURCE_DATE_EPOCH, when set, fixes the recorded
training date, so the same seed gives byte-identical files.
"""
