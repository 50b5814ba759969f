"""Limits checked on a JSON body before it is parsed."""
from itertools import accumulate
import re

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(rb"[\[\]{}]")


def json_depth(raw: bytes) -> int:
    """Deepest nesting of arrays/objects in ``raw``, counted without parsing (no recursion at all)."""
    brackets = _BRACKET.findall(_STRING.sub(b"", raw))
    steps = (1 if b in (b"[", b"{") else -1 for b in brackets)
    return max(accumulate(steps, initial=0))


def reject_constant(name: str):
    """json.loads parse_constant hook: NaN and Infinity are not JSON."""
    raise ValueError(f"{name} is not valid JSON")
