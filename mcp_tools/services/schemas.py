"""JSON Schema checks (Draft 2020-12) for tool definitions, arguments and results."""
from functools import lru_cache
import json

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import SchemaError

_FORMAT_CHECKER = FormatChecker()


def schema_problems(schema) -> list[str]:
    """Why ``schema`` is not a usable JSON Schema, or [] if it is."""
    if not isinstance(schema, dict):
        return ["A schema must be a JSON object."]
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.path) or "(root)"
        return [f"Not a valid JSON Schema at {where}: {exc.message}"]
    return []


def input_schema_problems(schema) -> list[str]:
    problems = schema_problems(schema)
    if not problems and schema.get("type") != "object":
        problems.append('A tool\'s input schema must describe an object: set "type": "object".')
    return problems


@lru_cache(maxsize=2048)
def _validator(schema_json: str) -> Draft202012Validator:
    return Draft202012Validator(json.loads(schema_json), format_checker=_FORMAT_CHECKER)


def validator_for(schema: dict) -> Draft202012Validator:
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
