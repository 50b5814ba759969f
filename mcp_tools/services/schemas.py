"""JSON Schema checks for tool definitions, arguments and results.

A schema is validated by the dialect its ``$schema`` declares (2020-12, 2019-09, draft-07, -06, -04);
a schema without ``$schema`` is 2020-12, as MCP 2025-11-25 specifies. A ``$schema`` naming any
other dialect is refused when the tool is saved, so no schema is read by rules it was not written for.
"""
from functools import lru_cache
import json

from jsonschema import (Draft4Validator, Draft6Validator, Draft7Validator, Draft201909Validator,
                        Draft202012Validator, FormatChecker)
from jsonschema.exceptions import SchemaError

_FORMAT_CHECKER = FormatChecker()
_DIALECTS = {
    (validator.META_SCHEMA.get("$id") or validator.META_SCHEMA.get("id")).rstrip("#").replace("https://", "http://"):
        validator
    for validator in (Draft202012Validator, Draft201909Validator, Draft7Validator, Draft6Validator, Draft4Validator)
}


def _dialect(schema: dict):
    """The validator class for ``schema``'s declared ``$schema``; None when it names an unknown dialect."""
    declared = schema.get("$schema")
    if declared is None:
        return Draft202012Validator
    if not isinstance(declared, str):
        return None
    return _DIALECTS.get(declared.strip().rstrip("#").replace("https://", "http://"))


def schema_problems(schema) -> list[str]:
    """Why ``schema`` is not a usable JSON Schema, or [] if it is."""
    if not isinstance(schema, dict):
        return ["A schema must be a JSON object."]
    validator = _dialect(schema)
    if validator is None:
        return [f"Unknown JSON Schema dialect in $schema: {schema.get('$schema')!r}. Declare one of "
                "https://json-schema.org/draft/2020-12/schema (the default when $schema is absent), "
                "https://json-schema.org/draft/2019-09/schema or http://json-schema.org/draft-07/schema# "
                "(draft-06 and draft-04 are accepted too)."]
    try:
        validator.check_schema(schema)
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.path) or "(root)"
        return [f"Not a valid JSON Schema at {where}: {exc.message}"]
    return _remote_ref_problems(schema)


def _remote_ref_problems(schema: dict) -> list[str]:
    """A $ref outside the schema itself would be fetched (or fail) when a call is checked: refuse it at save."""
    problems, pending = [], [schema]
    while pending:  # iterative: an admin's schema may nest deeply
        node = pending.pop()
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and not ref.startswith("#"):
                problems.append(f"$ref '{ref[:200]}' points outside the schema; put the definition under "
                                "\"$defs\" and refer to it as \"#/$defs/<name>\".")
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    return problems


def input_schema_problems(schema) -> list[str]:
    problems = schema_problems(schema)
    if not problems and schema.get("type") != "object":
        problems.append('A tool\'s input schema must describe an object: set "type": "object".')
    return problems


@lru_cache(maxsize=2048)
def _validator(schema_json: str):
    schema = json.loads(schema_json)
    return (_dialect(schema) or Draft202012Validator)(schema, format_checker=_FORMAT_CHECKER)


def validator_for(schema: dict):
    return _validator(json.dumps(schema, sort_keys=True))


def instance_problems(schema: dict, instance) -> list[str]:
    """Readable list of where ``instance`` breaks ``schema`` (first 10)."""
    problems = []
    for error in sorted(validator_for(schema).iter_errors(instance), key=lambda e: list(e.path)):
        where = "".join(f"[{p!r}]" if isinstance(p, int) else f".{p}" for p in error.path)
        problems.append(f"{'$' + where}: {_error_message(error)}")
        if len(problems) == 10:
            break
    return problems


def _error_message(error) -> str:
    """jsonschema's message, without echoing a huge value back (a 10,000-item list, a megabyte string)."""
    if error.validator == "maxItems" and isinstance(error.instance, list):
        return f"is too long: has {len(error.instance)} items; at most {error.validator_value} are allowed"
    if error.validator == "maxLength" and isinstance(error.instance, str):
        return f"is too long: has {len(error.instance)} characters; at most {error.validator_value} are allowed"
    message = error.message
    return message if len(message) <= 500 else message[:500] + "…"
