"""Proof that the exported JSON tree predicts exactly what scikit-learn predicts.

Checked on the held-out rows and on a grid spanning every input's allowed
range, refined around each split threshold of a decimal input (the
threshold, its float64 and float32 neighbours), where a different rounding
of the input would take a different branch.
"""

import datetime as dt
import itertools

import numpy as np

from mlapi.fields import CategoryField, DateField, IntegerField, NumberField

DECIMAL_GRID_STEPS = 61
MAX_INTEGER_VALUES = 101
DATE_STRIDE_DAYS = 97  # prime, and not a multiple of 7: the grid dates fall on every weekday


class VerificationError(Exception):
    pass


def assert_identical(estimator, tree, X, what):
    """Raise VerificationError unless tree.predict agrees with estimator.predict on every row."""
    expected = estimator.predict(X).tolist()
    actual = [tree.predict(row) for row in X.tolist()]
    mismatches = [i for i, (e, a) in enumerate(zip(expected, actual, strict=True)) if e != a]
    if mismatches:
        first = mismatches[0]
        raise VerificationError(
            f"{what}: {len(mismatches)} of {len(expected)} exported-tree predictions differ from "
            f"scikit-learn's; first at row {first}: {expected[first]!r} != {actual[first]!r}"
        )
    return len(expected)


def input_grid(schema, tree):
    """Feature rows for the cartesian product of per-input grid values."""
    thresholds = _thresholds_by_feature(tree)
    value_lists = []
    feature_index = 0
    for field in schema.fields:
        value_lists.append(_grid_values(field, thresholds.get(feature_index, ())))
        feature_index += field.n_features
    problems = []
    rows = [
        schema.features(dict(zip(schema.names, values, strict=True)), "", problems)
        for values in itertools.product(*value_lists)
    ]
    if problems:
        raise VerificationError(f"grid values outside the input domain: {problems[:3]}")
    return np.array(rows, dtype=np.float64)


def _thresholds_by_feature(tree):
    by_feature = {}
    for feature, threshold in tree.splits():
        by_feature.setdefault(feature, set()).add(threshold)
    return by_feature


def _grid_values(field, thresholds):
    if isinstance(field, IntegerField):
        count = min(field.maximum - field.minimum + 1, MAX_INTEGER_VALUES)
        return sorted({int(v) for v in np.linspace(field.minimum, field.maximum, count).round()})
    if isinstance(field, NumberField):
        values = set(np.linspace(field.minimum, field.maximum, DECIMAL_GRID_STEPS).tolist())
        for threshold in thresholds:
            as_float32 = np.float32(threshold)
            values.update(
                float(v)
                for v in (
                    threshold,
                    np.nextafter(threshold, -np.inf),
                    np.nextafter(threshold, np.inf),
                    as_float32,
                    np.nextafter(as_float32, np.float32(-np.inf)),
                    np.nextafter(as_float32, np.float32(np.inf)),
                )
            )
        return sorted(v for v in values if field.minimum <= v <= field.maximum)
    if isinstance(field, CategoryField):
        return list(field.values)
    if isinstance(field, DateField):
        days = (field.maximum - field.minimum).days
        return [
            (field.minimum + dt.timedelta(days=offset)).isoformat()
            for offset in range(0, days + 1, DATE_STRIDE_DAYS)
        ] + [field.maximum.isoformat()]
    raise TypeError(f"no grid for {type(field).__name__}")
