"""Input fields of a model: strict validation of one JSON value, its expansion
into tree features, and its JSON Schema.

Field specs are read from ``metadata.json``, which training writes from the
same definitions it generated the data with, so the documented ranges and
categories are exactly the model's training domain. Training builds its
feature matrix with these classes too: serving and training cannot disagree
on how a record becomes features.
"""

import datetime as dt
import math
import re

# Shape check before date.fromisoformat, which also accepts other ISO forms
# (e.g. "20271113", "2027-W46-6") on newer Pythons. ASCII digits only: \d
# would match any Unicode digit.
_DATE_SHAPE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")

DATE_FEATURES = ("year", "month", "day", "day_of_week")


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
    """Base class: a named input of a model, described by a metadata spec dict."""

    n_features = 1

    def __init__(self, spec):
        self.name = spec["name"]
        self.description = spec.get("description", "")
        self.example = spec.get("example")

    def parse(self, value):
        """Return the value to predict with, or raise InvalidValue."""
        raise NotImplementedError

    def features(self, value):
        """The tree features of a parsed value, as a tuple of numbers."""
        return (value,)

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


class NumberField(Field):
    """A finite JSON number (integer or decimal) within [minimum, maximum]."""

    def __init__(self, spec):
        super().__init__(spec)
        self.minimum = spec["minimum"]
        self.maximum = spec["maximum"]

    def parse(self, value):
        # bool is a subclass of int in Python, but true/false is not a number in JSON.
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
    """One of a fixed set of strings (case-sensitive), label-encoded to an integer."""

    def __init__(self, spec):
        super().__init__(spec)
        self.encoding = dict(spec["encoding"])
        self.values = sorted(self.encoding, key=self.encoding.__getitem__)
        self._allowed_text = ", ".join(self.values)

    def parse(self, value):
        if not isinstance(value, str):
            raise self._wrong_type("a string", value)
        if value not in self.encoding:
            raise InvalidValue(
                "unknown_category",
                f"must be one of: {self._allowed_text}; got {preview(value)}",
            )
        return value

    def features(self, value):
        return (self.encoding[value],)

    def json_schema(self):
        return self._schema(type="string", enum=list(self.values))


class DateField(Field):
    """A calendar date written ``YYYY-MM-DD`` within [minimum, maximum].

    Expands to the features year, month, day and day of week (Monday = 0).
    """

    n_features = len(DATE_FEATURES)

    def __init__(self, spec):
        super().__init__(spec)
        self.minimum = dt.date.fromisoformat(spec["minimum"])
        self.maximum = dt.date.fromisoformat(spec["maximum"])

    def parse(self, value):
        if not isinstance(value, str):
            raise self._wrong_type("a date string (YYYY-MM-DD)", value)
        if not _DATE_SHAPE.fullmatch(value):
            raise InvalidValue("invalid_date", f"must be a date written YYYY-MM-DD, got {preview(value)}")
        try:
            date = dt.date.fromisoformat(value)
        except ValueError:
            raise InvalidValue("invalid_date", f"{value} is not a calendar date") from None
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
            ),
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
    try:
        field_class = FIELD_TYPES[spec["type"]]
    except KeyError:
        raise ValueError(f"field {spec.get('name')!r} has unknown type {spec.get('type')!r}") from None
    return field_class(spec)
