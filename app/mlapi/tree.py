"""A decision tree exported from scikit-learn to JSON, evaluated in plain Python.

The export format (written by ``training/export.py``) keeps scikit-learn's
parallel node arrays: ``children_left``, ``children_right``, ``feature``,
``threshold``, ``value`` and, for classifiers, ``class`` (the label
scikit-learn predicts at that node). A leaf has both children set to -1.
"""

import math
from array import array

EXPORT_FORMAT = "mlapi.decision-tree/1"
LEAF = -1


class TreeFormatError(ValueError):
    """The exported tree is malformed; serving it could loop or index out of range."""


class DecisionTree:
    def __init__(self, exported):
        if exported.get("format") != EXPORT_FORMAT:
            raise TreeFormatError(f"unsupported tree format {exported.get('format')!r}")
        self.task = exported["task"]
        self.n_features = exported["n_features"]
        self.feature_names = list(exported["feature_names"])
        nodes = exported["nodes"]
        self._left = list(nodes["children_left"])
        self._right = list(nodes["children_right"])
        self._feature = list(nodes["feature"])
        self._threshold = [float(t) for t in nodes["threshold"]]
        if self.task == "classification":
            self.classes = list(exported["classes"])
            self._output = list(nodes["class"])
        elif self.task == "regression":
            self.classes = None
            self._output = [float(v) for v in nodes["value"]]
        else:
            raise TreeFormatError(f"unknown task {self.task!r}")
        self._check_structure()

    @property
    def n_nodes(self):
        return len(self._left)

    def splits(self):
        """(feature, threshold) of every internal node."""
        return [(f, t) for left, f, t in zip(self._left, self._feature, self._threshold, strict=True) if left != LEAF]

    def predict(self, features):
        """The prediction for one feature vector, identical to scikit-learn's.

        scikit-learn casts inputs to float32 before comparing them with its
        float64 thresholds; array("f") applies the same rounding, so values
        that fall between a threshold and its float32 neighbour take the
        same branch as in scikit-learn.
        """
        x = array("f", features)
        left, right, feature, threshold = self._left, self._right, self._feature, self._threshold
        node = 0
        while left[node] != LEAF:
            node = left[node] if x[feature[node]] <= threshold[node] else right[node]
        return self._output[node]

    def _check_structure(self):
        n = len(self._left)
        if n == 0:
            raise TreeFormatError("tree has no nodes")
        if self.n_features != len(self.feature_names):
            raise TreeFormatError("n_features does not match feature_names")
        arrays = (self._right, self._feature, self._threshold, self._output)
        if any(len(values) != n for values in arrays):
            raise TreeFormatError("node arrays differ in length")
        if any(type(index) is not int for index in self._left + self._right + self._feature):
            raise TreeFormatError("node indices and features must be integers")
        for node in range(n):
            left, right = self._left[node], self._right[node]
            if left == LEAF or right == LEAF:
                if left != right:
                    raise TreeFormatError(f"node {node} has exactly one child")
                self._check_output(node)
                continue
            # scikit-learn numbers nodes depth-first, so children come after
            # their parent; requiring it rules out cycles.
            if not (node < left < n and node < right < n):
                raise TreeFormatError(f"node {node} has children out of order or range")
            if not 0 <= self._feature[node] < self.n_features:
                raise TreeFormatError(f"node {node} splits on unknown feature {self._feature[node]}")
            if not math.isfinite(self._threshold[node]):
                raise TreeFormatError(f"node {node} has a non-finite threshold")

    def _check_output(self, node):
        output = self._output[node]
        if self.classes is not None:
            if type(output) is not int or output not in self.classes:
                raise TreeFormatError(f"leaf {node} predicts unknown class {output!r}")
        elif not math.isfinite(output):
            raise TreeFormatError(f"leaf {node} predicts a non-finite value")
