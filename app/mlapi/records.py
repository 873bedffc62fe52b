"""Turning request records (decoded JSON objects) into validated values and
model features."""

from typing import NamedTuple

from .fields import Field, InvalidValue, json_type_name

# Upper bound on the problems reported for one request, so a large invalid
# batch cannot make an even larger error response.
MAX_PROBLEMS = 50


class Problem(NamedTuple):
    field: str
    code: str
    problem: str


def field_path(prefix, name):
    return f"{prefix}.{name}" if prefix else name


class RecordSchema:
    """The ordered input fields of a model.

    A record must be a JSON object holding every field and nothing else: an
    unknown key is rejected rather than ignored, so a typo such as
    ``monthly_fees`` cannot pass silently.
    """

    def __init__(self, fields):
        self.fields = tuple(fields)
        self.names = tuple(field.name for field in self.fields)
        self._name_set = frozenset(self.names)
        self.n_features = sum(field.n_features for field in self.fields)
        # Every field its own one feature: a record's parsed values are its feature row.
        self.values_are_features = all(type(field).features is Field.features for field in self.fields)

    def parse(self, record, path, problems):
        """The parsed values of one record in field order, or None after appending its problems.

        ``path`` prefixes the field names in problems (``"[3]"`` in a batch).
        """
        if type(record) is not dict:
            problems.append(
                Problem(path, "wrong_type", f"must be a JSON object, got {json_type_name(record)}")
            )
            return None
        values = []
        valid = True
        for field in self.fields:
            if field.name not in record:
                problems.append(Problem(field_path(path, field.name), "missing_field", "is required"))
                valid = False
                continue
            try:
                values.append(field.parse(record[field.name]))
            except InvalidValue as invalid:
                problems.append(Problem(field_path(path, field.name), invalid.code, invalid.problem))
                valid = False
        if not self._name_set.issuperset(record):
            expected = ", ".join(self.names)
            for name in record:
                if name not in self._name_set:
                    problems.append(
                        Problem(
                            field_path(path, name),
                            "unknown_field",
                            f"is not an input of this model (inputs: {expected})",
                        )
                    )
            valid = False
        return tuple(values) if valid else None

    def parse_records(self, records, is_batch):
        """Parsed values of all records, and the problems found (at most MAX_PROBLEMS)."""
        rows = []
        problems = []
        for index, record in enumerate(records):
            rows.append(self.parse(record, f"[{index}]" if is_batch else "", problems))
            if len(problems) >= MAX_PROBLEMS:
                break
        return rows, problems[:MAX_PROBLEMS]

    def feature_row(self, values):
        """The matrix-layout feature vector of one record's parsed values."""
        return [feature for field, value in zip(self.fields, values, strict=True) for feature in field.features(value)]
