"""Scrub secrets from log output, whatever logged them and however it is formatted.

The console handler formats a record as usual (plain or JSON, tracebacks included)
and then replaces, in the finished text, values that follow secret-looking names
(``password=...``, ``"token": "..."``), bearer credentials and the product's API and OAuth tokens (token_shapes.py).
Records themselves are not changed, so other handlers see them as they were.
"""
import logging
import re

from .token_shapes import TOKEN_VALUE

REDACTED = "[REDACTED]"
_NAME = (r"pass(?:word|wd|phrase)?|secret|token|api[_-]?key|authorization|credential|private[_-]?key|"
         r"cookie|session[_-]?id|ssn|card[_-]?number|cvv|iban")
# name, then = or : (optionally quoted, possibly JSON-escaped), then the value up to a delimiter.
_NAMED_VALUE = re.compile(
    rf"(?i)(\b\w*(?:{_NAME})\w*\\?[\"']?\s*[:=]\s*(?:\\?[\"'])?)(?!\[REDACTED\])([^\s\"'\\&,;}}\])]+)")
_BEARER = re.compile(r"(?i)\b(bearer|basic)(\s+)[A-Za-z0-9._~+/=-]{8,}")


def scrub_text(text: str) -> str:
    text = TOKEN_VALUE.sub(REDACTED, text)
    text = _BEARER.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
    return _NAMED_VALUE.sub(lambda m: m.group(1) + REDACTED, text)


class RedactingStreamHandler(logging.StreamHandler):
    def format(self, record: logging.LogRecord) -> str:
        return scrub_text(super().format(record))
