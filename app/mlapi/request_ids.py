"""Which X-Request-ID values the API repeats, in its responses and its access log."""

import re

# Short printable ASCII only (Nginx's $request_id is 32 hex digits), so a
# client cannot inject odd header values or log text.
_REPEATABLE = re.compile(r"[\x21-\x7e]{1,128}")


def repeatable_request_id(value):
    """``value`` when it is a request id fit to repeat, else None."""
    return value if value and _REPEATABLE.fullmatch(value) else None
