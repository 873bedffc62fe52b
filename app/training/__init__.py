"""Reproducible synthetic data and training of the served decision trees.

    python -m training.generate_data --out DIR [--seed 42]   # the data sets as CSV
    python -m training.train --out DIR [--seed 42]           # the model directory

Run from the app/ directory. SOURCE_DATE_EPOCH, when set, fixes the recorded
training date, so the same seed gives byte-identical artifacts.
"""
