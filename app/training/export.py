"""Exporting a fitted scikit-learn tree as plain JSON (read by mlapi.tree).

Nothing is pickled: the tree is its node arrays, so loading it runs no code
and needs neither scikit-learn nor numpy.
"""

import json

import numpy as np
from sklearn.tree import DecisionTreeClassifier

from mlapi.tree import EXPORT_FORMAT


def export_tree(estimator, feature_names):
    """The JSON document of a fitted DecisionTreeClassifier/Regressor (single output)."""
    tree = estimator.tree_
    nodes = {
        "children_left": tree.children_left.tolist(),
        "children_right": tree.children_right.tolist(),
        "feature": tree.feature.tolist(),
        "threshold": tree.threshold.tolist(),
        "n_node_samples": tree.n_node_samples.tolist(),
    }
    document = {
        "format": EXPORT_FORMAT,
        "n_features": int(estimator.n_features_in_),
        "feature_names": list(feature_names),
        "nodes": nodes,
    }
    if isinstance(estimator, DecisionTreeClassifier):
        class_fractions = tree.value[:, 0, :]
        document["task"] = "classification"
        document["classes"] = estimator.classes_.tolist()
        nodes["value"] = class_fractions.tolist()
        # scikit-learn predicts classes_[argmax(value)], the first class on ties.
        nodes["class"] = estimator.classes_[np.argmax(class_fractions, axis=1)].tolist()
    else:
        document["task"] = "regression"
        nodes["value"] = tree.value[:, 0, 0].tolist()
    return document


def tree_json_bytes(document):
    """Canonical bytes: sorted keys, no spaces, shortest round-trip float repr."""
    return (json.dumps(document, sort_keys=True, separators=(",", ":"), allow_nan=False) + "\n").encode("utf-8")
