"""Input fields of a model: the field specs of a model card (``inputs`` in
model.json, docs/model-repository.md), strict validation of one JSON value,
how a valid value becomes model input (the field's transform) and its JSON
Schema.

Code that needs a record as a replica feeds it to a model (the import tool
checking its ONNX file, say) can build it with these classes and
mlapi.records.RecordSchema, so that it cannot disagree with serving.
"""

import datetime as dt
import math
import re

# Shape check before date.fromisoformat, which also accepts other ISO forms
# (e.g. "20271113", "2027-W46-6") on newer Pythons. ASCII digits only: \d
# would match any Unicode digit.
_DATE_SHAPE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_ .-]{0,63}")

DATE_FEATURES = ("year", "month", "day", "day_of_week")

MATRIX, COLUMNS = "matrix", "columns"

# What a field feeds the model, for checking it against the ONNX input's
# element type: "number" needs a float input, "integer" any numeric one.
NUMBER, INTEGER, STRING = "number", "integer", "string"


class SpecError(ValueError):
    """A field spec of a model card that is malformed."""


class InvalidValue(Exception):
    """A value a field rejects; ``code`` is machine readable, ``problem`` is for humans."""

    def __init__(self, code, problem):
        super().__init__(problem)
        self.code = code
        self.problem = problem


def json_type_name(value):
    """The JSON type of a decoded value, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def preview(value, limit=40):
    """A short JSON-like rendering of a client value to quote back in a message."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return "a very large integer"
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class Field:
    """Base class: a named input of a model, described by a card's field spec.

    ``transforms`` lists the transforms the type allows, the default first;
    ``layouts`` the input layouts the field's transform can feed.
    """

    transforms = ()
    layouts = (MATRIX, COLUMNS)
    n_features = 1
    kind = NUMBER

    def __init__(self, spec):
        self.name = spec["name"]
        self.transform = spec.get("transform", self.transforms[0])
        if self.transform not in self.transforms:
            raise SpecError(
                f"transform must be one of {', '.join(self.transforms)} for type {spec['type']}, "
                f"got {preview(self.transform)}"
            )
        self.description = _optional(spec, "description", str, "a string", "")
        self.spec = spec

    def check_example(self):
        """The example, if the spec has one, must be a value the field accepts."""
        if "example" not in self.spec:
            return
        try:
            self.parse(self.spec["example"])
        except InvalidValue as invalid:
            raise SpecError(f"example {invalid.problem}") from None

    @property
    def example(self):
        return self.spec.get("example")

    def parse(self, value):
        """Return the value to predict with, or raise InvalidValue."""
        raise NotImplementedError

    def sample(self):
        """A valid parsed value (the lowest), to try the model with when it is loaded."""
        return self.minimum

    def features(self, value):
        """The matrix-layout features of a parsed value, as a tuple of numbers."""
        return (value,)

    def column_value(self, value):
        """The columns-layout input of a parsed value: a number or a string."""
        return value

    def feature_names(self):
        return (self.name,)

    def json_schema(self):
        raise NotImplementedError

    def _schema(self, **schema):
        schema.setdefault("description", self.description)
        if self.example is not None:
            schema["examples"] = [self.example]
        return schema

    def _wrong_type(self, expected, value):
        return InvalidValue("wrong_type", f"must be {expected}, got {json_type_name(value)}")


def _is_number(value):
    # bool is a subclass of int in Python, but true/false is not a number in JSON.
    return type(value) is not bool and isinstance(value, (int, float)) and math.isfinite(value)


def _required(spec, key, check, expected):
    if key not in spec:
        raise SpecError(f"{key} is missing")
    if not check(spec[key]):
        raise SpecError(f"{key} must be {expected}, got {preview(spec[key])}")
    return spec[key]


def _optional(spec, key, kind, expected, default):
    value = spec.get(key, default)
    if not isinstance(value, kind):
        raise SpecError(f"{key} must be {expected}, got {preview(value)}")
    return value


class NumberField(Field):
    """A finite JSON number (integer or decimal) within [minimum, maximum]."""

    transforms = ("number",)
    _bound_text = "a finite number"

    def __init__(self, spec):
        super().__init__(spec)
        self.minimum = _required(spec, "minimum", self._is_bound, self._bound_text)
        self.maximum = _required(spec, "maximum", self._is_bound, self._bound_text)
        if self.minimum > self.maximum:
            raise SpecError(f"minimum {self.minimum} is above maximum {self.maximum}")

    @staticmethod
    def _is_bound(value):
        return _is_number(value)

    def parse(self, value):
        if type(value) is bool or not isinstance(value, (int, float)):
            raise self._wrong_type("a number", value)
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidValue("not_finite", "must be a finite number")
        self._check_range(value)
        return value

    def _check_range(self, value):
        if not self.minimum <= value <= self.maximum:
            raise InvalidValue(
                "out_of_range",
                f"must be between {self.minimum} and {self.maximum}, got {preview(value)}",
            )

    def json_schema(self):
        return self._schema(type="number", minimum=self.minimum, maximum=self.maximum)


class IntegerField(NumberField):
    """A whole number within [minimum, maximum].

    JSON has one number type, so a number with a zero fraction (``30.0``,
    ``3e1``) is accepted as the integer it equals, as JSON Schema's
    ``integer`` type does; ``2.5`` is rejected.
    """

    kind = INTEGER
    _bound_text = "a whole number"

    @staticmethod
    def _is_bound(value):
        return _is_number(value) and float(value).is_integer()

    def parse(self, value):
        if type(value) is bool or not isinstance(value, (int, float)):
            raise self._wrong_type("an integer", value)
        if isinstance(value, float):
            if not math.isfinite(value):
                raise InvalidValue("not_finite", "must be a finite number")
            if not value.is_integer():
                raise InvalidValue("not_integer", f"must be an integer, got {preview(value)}")
        self._check_range(value)
        return int(value)

    def json_schema(self):
        return self._schema(type="integer", minimum=self.minimum, maximum=self.maximum)


class CategoryField(Field):
    """One of a fixed set of strings (case-sensitive).

    ``label``: the integer code ``encoding`` gives the string (a
    LabelEncoder's index); ``onehot``: one 0/1 feature per entry of
    ``categories`` (matrix layout); ``raw``: the string itself (columns
    layout, for an encoder inside the ONNX model).
    """

    transforms = ("label", "onehot", "raw")

    def __init__(self, spec):
        super().__init__(spec)
        if self.transform == "label":
            self.encoding = _required(spec, "encoding", _is_encoding, "an object of category: distinct code (0 or more)")
            self.values = sorted(self.encoding, key=self.encoding.__getitem__)
            self.kind = INTEGER
        else:
            self.values = _required(spec, "categories", _is_category_list, "a list of distinct strings")
            if self.transform == "onehot":
                self.n_features = len(self.values)
                self.layouts = (MATRIX,)
            else:
                self.kind = STRING
                self.layouts = (COLUMNS,)
        self._allowed_text = ", ".join(self.values)

    def parse(self, value):
        if not isinstance(value, str):
            raise self._wrong_type("a string", value)
        if value not in self.values:
            raise InvalidValue(
                "unknown_category",
                f"must be one of: {self._allowed_text}; got {preview(value)}",
            )
        return value

    def sample(self):
        return self.values[0]

    def features(self, value):
        if self.transform == "onehot":
            return tuple(int(value == category) for category in self.values)
        return (self.encoding[value],)

    def column_value(self, value):
        return self.encoding[value] if self.transform == "label" else value

    def feature_names(self):
        if self.transform == "onehot":
            return tuple(f"{self.name}={category}" for category in self.values)
        return (self.name,)

    def json_schema(self):
        return self._schema(type="string", enum=list(self.values))


def _is_encoding(value):
    return (
        isinstance(value, dict)
        and len(value) > 0
        and all(type(code) is int and code >= 0 for code in value.values())
        and len(set(value.values())) == len(value)
    )


def _is_category_list(value):
    return (
        isinstance(value, list)
        and len(value) > 0
        and all(isinstance(item, str) for item in value)
        and len(set(value)) == len(value)
    )


def _parse_date_bound(value):
    return isinstance(value, str) and _DATE_SHAPE.fullmatch(value) and _calendar_date(value) is not None


def _calendar_date(text):
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return None


class DateField(Field):
    """A calendar date written ``YYYY-MM-DD`` within [minimum, maximum].

    Expands to the features year, month, day and day of week (Monday = 0).
    """

    transforms = ("date-parts",)
    layouts = (MATRIX,)
    n_features = len(DATE_FEATURES)
    kind = INTEGER

    def __init__(self, spec):
        super().__init__(spec)
        self.minimum = dt.date.fromisoformat(_required(spec, "minimum", _parse_date_bound, "a date YYYY-MM-DD"))
        self.maximum = dt.date.fromisoformat(_required(spec, "maximum", _parse_date_bound, "a date YYYY-MM-DD"))
        if self.minimum > self.maximum:
            raise SpecError(f"minimum {self.minimum} is after maximum {self.maximum}")

    def parse(self, value):
        if not isinstance(value, str):
            raise self._wrong_type("a date string (YYYY-MM-DD)", value)
        if not _DATE_SHAPE.fullmatch(value):
            raise InvalidValue("invalid_date", f"must be a date written YYYY-MM-DD, got {preview(value)}")
        date = _calendar_date(value)
        if date is None:
            raise InvalidValue("invalid_date", f"{value} is not a calendar date")
        if not self.minimum <= date <= self.maximum:
            raise InvalidValue(
                "out_of_range",
                f"must be between {self.minimum.isoformat()} and {self.maximum.isoformat()}, got {value}",
            )
        return date

    def features(self, date):
        return (date.year, date.month, date.day, date.weekday())

    def feature_names(self):
        return tuple(f"{self.name}.{part}" for part in DATE_FEATURES)

    def json_schema(self):
        return self._schema(
            type="string",
            format="date",
            # The length bound also keeps out a trailing newline, which "$"
            # admits in Python's regex dialect (though not in ECMA-262's).
            minLength=10,
            maxLength=10,
            pattern=exact_date_pattern(self.minimum.year, self.maximum.year),
            description=(
                f"{self.description} A calendar date written YYYY-MM-DD, "
                f"from {self.minimum.isoformat()} to {self.maximum.isoformat()}."
            ).strip(),
        )


def exact_date_pattern(first_year, last_year):
    """A regular expression matching exactly the valid calendar dates of the years
    first_year..last_year, leap days included.

    JSON Schema cannot bound a date string, so this pattern is what makes the
    documented schema reject "2027-02-30" or "2031-01-01" exactly as the API
    does (given that the allowed range spans whole years).
    """
    years = "|".join(str(year) for year in range(first_year, last_year + 1))
    leap_years = "|".join(
        str(year) for year in range(first_year, last_year + 1) if _is_leap(year)
    )
    common = (
        rf"(?:{years})-(?:"
        r"(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])"
        r"|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)"
        r"|02-(?:0[1-9]|1[0-9]|2[0-8]))"
    )
    if leap_years:
        return rf"^(?:{common}|(?:{leap_years})-02-29)$"
    return rf"^{common}$"


def _is_leap(year):
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


FIELD_TYPES = {
    "number": NumberField,
    "integer": IntegerField,
    "category": CategoryField,
    "date": DateField,
}


def field_from_spec(spec):
    """The Field of a card's field spec, or raise SpecError saying what is wrong."""
    if not isinstance(spec, dict):
        raise SpecError(f"a field must be an object, got {json_type_name(spec)}")
    name = spec.get("name")
    if not isinstance(name, str) or not FIELD_NAME.fullmatch(name):
        raise SpecError(f"field name must match ^{FIELD_NAME.pattern}$, got {preview(name)}")
    try:
        field_class = FIELD_TYPES.get(spec.get("type")) if isinstance(spec.get("type"), str) else None
        if field_class is None:
            raise SpecError(f"type must be one of {', '.join(FIELD_TYPES)}, got {preview(spec.get('type'))}")
        field = field_class(spec)
        field.check_example()
    except SpecError as error:
        raise SpecError(f"field {name!r}: {error}") from None
    return field
