"""Schemathesis hooks of test/e2e/security.test.ts (loaded via SCHEMATHESIS_HOOKS).

Registers the `no_stack_trace` check: no response of the API, body or
headers, may carry a stack trace or a source path (the patterns live in
stack-trace-patterns.json, shared with the test's own scan of the HAR).
"""

import json
import pathlib
import re

import schemathesis

_PATTERNS_FILE = pathlib.Path(__file__).with_name("stack-trace-patterns.json")
STACK_TRACE_PATTERNS = [re.compile(p) for p in json.loads(_PATTERNS_FILE.read_text(encoding="utf-8"))["patterns"]]


def stack_trace_in(text):
    """The first stack-trace-like excerpt of `text`, or None."""
    for pattern in STACK_TRACE_PATTERNS:
        match = pattern.search(text)
        if match:
            return text[max(0, match.start() - 60) : match.end() + 60]
    return None


@schemathesis.check
def no_stack_trace(ctx, response, case):
    headers = "\n".join(f"{name}: {value}" for name, values in response.headers.items() for value in values)
    for where, text in (("body", response.text or ""), ("headers", headers)):
        excerpt = stack_trace_in(text)
        if excerpt is not None:
            raise AssertionError(f"stack trace in the response {where}: {excerpt!r}")
    return None
