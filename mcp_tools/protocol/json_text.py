"""The one parser of JSON that a client sends, with the limits every door applies.

Every door (the REST pair, /mcp in both eras, /mcp/sse, stdio) reads client JSON through
:func:`json_parse`, so one place decides what is accepted. The result holds only values that
every later step can handle without a special case: Postgres ``text`` and ``jsonb`` can store
every string and number in it, and no code walking it recurses deeper than ``max_depth``.

Refused (``JsonRejected``, a ``ValueError``), beyond what RFC 8259 itself forbids:

- a body longer than ``max_bytes`` bytes, or text that is not UTF-8;
- nesting of arrays/objects deeper than ``max_depth`` (counted before parsing, without recursion);
- ``NaN``/``Infinity`` and numbers that overflow a double (``1e400``): JSON has no non-finite numbers;
- integers outside the signed 64-bit range (what a Postgres ``bigint`` holds; I-JSON, RFC 7493 §2.2,
  asks for far less);
- strings or member names holding U+0000 (Postgres text cannot store it) or an unpaired surrogate
  escape such as ``"\\ud800"`` (not a Unicode character; RFC 7493 §2.1);
- an object with the same member name twice (RFC 7493 §2.3: which value wins differs between parsers).

No Django here: the transports pass the limits from settings (``transports/json_limits.py``).
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import accumulate
import json
import math
import re
from typing import Any

INT_MIN, INT_MAX = -(2**63), 2**63 - 1

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(rb"[\[\]{}]")
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# A parsed string can hold NUL or a lone surrogate only if the raw text has such a \u escape (a raw NUL
# is invalid JSON, raw surrogates are invalid UTF-8): text without one skips the walk over the value.
_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")
_INT_DIGITS = len(str(INT_MAX))


@dataclass(frozen=True)
class JsonLimits:
    max_bytes: int = 1_000_000
    max_depth: int = 64


DEFAULT_LIMITS = JsonLimits()


class JsonRejected(ValueError):
    """The text is not JSON this server accepts; ``reason`` says why, for a person to act on.

    ``too_large`` is True for a body over ``max_bytes`` (HTTP 413 rather than 400).
    """

    def __init__(self, reason: str, *, too_large: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.too_large = too_large


def json_depth(raw: bytes) -> int:
    """Deepest nesting of arrays/objects in ``raw``, counted without parsing (no recursion at all)."""
    brackets = _BRACKET.findall(_STRING.sub(b"", raw))
    steps = (1 if b in (b"[", b"{") else -1 for b in brackets)
    return max(accumulate(steps, initial=0))


def _reject_constant(name: str):
    raise JsonRejected(f"{name} is not a JSON number")


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise JsonRejected(f"the number {text[:40]}{'…' if len(text) > 40 else ''} is too large (beyond a double)")
    return value


def _parse_int(text: str) -> int:
    # Beyond 19 digits and a sign nothing is in range (and int() of a huge literal is not free);
    # below 19 characters everything is.
    value = int(text) if len(text) <= _INT_DIGITS + 1 else None
    if value is None or (len(text) >= _INT_DIGITS and not INT_MIN <= value <= INT_MAX):
        raise JsonRejected(f"the integer {text[:40]}{'…' if len(text) > 40 else ''} is outside the signed "
                           "64-bit range")
    return value


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen = set()
        for key, _ in pairs:
            if key in seen:
                raise JsonRejected(f"the member name {key[:60]!r} appears twice in one object")
            seen.add(key)
    return result


def _path(parts: list) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts).lstrip(".") or "(top level)"


def _check_text(value: Any) -> None:
    """Refuse NUL and unpaired surrogates in any string or member name; iterative, not recursive."""
    stack: list[tuple[Any, list]] = [(value, [])]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            found = _UNSTORABLE.search(item)
            if found:
                raise JsonRejected(_text_problem(found.group(), where))
        elif isinstance(item, dict):
            for key, child in item.items():
                found = _UNSTORABLE.search(key)
                if found:
                    raise JsonRejected(_text_problem(found.group(), where, key=True))
                stack.append((child, where + [key[:60]]))
        elif isinstance(item, list):
            stack.extend((child, where + [i]) for i, child in enumerate(item))


def _text_problem(char: str, where: list, key: bool = False) -> str:
    what = "a NUL character (\\u0000)" if char == "\x00" else f"an unpaired surrogate (\\u{ord(char):04x})"
    place = f"a member name in {_path(where)}" if key else _path(where)
    return f"text at {place} holds {what}, which is not accepted"


def json_parse(raw: bytes | str, limits: JsonLimits = DEFAULT_LIMITS) -> Any:
    """The JSON value in ``raw`` (UTF-8 bytes or text), or JsonRejected with the reason.

    Returns dicts, lists, str, int (signed 64-bit), float (finite), bool and None only.
    """
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else bytes(raw)
    if len(data) > limits.max_bytes:
        raise JsonRejected(f"the body is larger than {limits.max_bytes} bytes", too_large=True)
    if data.count(b"[") + data.count(b"{") > limits.max_depth and json_depth(data) > limits.max_depth:
        raise JsonRejected(f"the JSON is nested deeper than {limits.max_depth} levels")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise JsonRejected("the body is not UTF-8 text") from None
    try:
        value = json.loads(text, parse_constant=_reject_constant, parse_float=_parse_float, parse_int=_parse_int,
                           object_pairs_hook=_unique_members)
    except JsonRejected:
        raise
    except RecursionError:  # cannot happen under the depth limit; a parse error all the same
        raise JsonRejected("the JSON is nested too deeply") from None
    except ValueError as exc:
        raise JsonRejected(f"not valid JSON ({exc})") from None
    if b"\\u" in data and _ESCAPE.search(data):
        _check_text(value)
    return value
