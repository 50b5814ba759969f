"""The input and output JSON Schemas (Draft 2020-12) of a model query tool, generated from its configuration.

Types come from the model fields, ``enum`` from their ``choices``. Values travel as JSON: dates, times and
datetimes as ISO 8601 strings, durations as ISO 8601 durations, decimals as strings (no precision lost),
UUIDs as strings, file fields as the stored file name, JSON fields as they are.
Object keys that are not ticked are refused with ``propertyNames``, so a refusal names what is allowed.
"""
from django.db import models

from .model_query_policy import ModelQueryPolicy, field_category, model_query_resolve

DECIMAL_PATTERN = r"^-?[0-9]+(\.[0-9]+)?$"
_BASE = {
    "text": {"type": "string"},
    "integer": {"type": "integer"},
    "number": {"type": "number"},
    "decimal": {"type": "string", "pattern": DECIMAL_PATTERN},
    "date": {"type": "string", "format": "date"},
    "datetime": {"type": "string", "format": "date-time"},
    "time": {"type": "string", "format": "time"},
    "duration": {"type": "string", "format": "duration"},
    "boolean": {"type": "boolean"},
    "uuid": {"type": "string", "format": "uuid"},
    "json": {},
}


def value_schema(field: models.Field, *, nullable: bool | None = None, describe: bool = True) -> dict:
    """JSON Schema of one value of ``field`` as results carry it."""
    target = field.target_field if isinstance(field, models.ForeignKey) else field
    category = field_category(field)
    schema = dict(_BASE[category])
    if category == "text" and getattr(target, "max_length", None) and not isinstance(target, models.FileField):
        schema["maxLength"] = target.max_length
    nullable = field.null if nullable is None else nullable
    if field.choices and category != "json":
        values = [value for value, _ in field.flatchoices]
        schema = {"type": schema["type"], "enum": values + ([None] if nullable else [])}
    if nullable and "type" in schema:
        schema["type"] = [schema["type"], "null"]
    if describe:
        text = str(field.help_text or field.verbose_name or "")
        if text:
            schema["description"] = text[:300]
    return schema


def _object(properties: dict, *, required: list | None = None) -> dict:
    schema = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = required
    return schema


def _names_only(names) -> dict:
    return {"propertyNames": {"enum": sorted(names)}}


def _lookup_schema(field, lookup: str, max_in_items: int) -> dict:
    one = value_schema(field, nullable=False, describe=False)
    if lookup in ("year", "month", "day"):
        return {"type": "integer", **{"year": {"minimum": 1, "maximum": 9999}, "month": {"minimum": 1, "maximum": 12},
                                      "day": {"minimum": 1, "maximum": 31}}[lookup]}
    if lookup == "isnull":
        return {"type": "boolean"}
    if lookup == "icontains" or lookup == "iexact":
        return {"type": "string", "minLength": 1, **({"maxLength": one["maxLength"]} if "maxLength" in one else {})}
    if lookup == "in":
        return {"type": "array", "items": one, "minItems": 1, "maxItems": max_in_items}
    if lookup == "range":
        return {"type": "array", "items": one, "minItems": 2, "maxItems": 2,
                "description": "[low, high], both included."}
    if "format" in one and lookup in ("gt", "gte", "lt", "lte", "exact") and field_category(field) == "datetime":
        one["description"] = "ISO 8601 date-time; a time without offset is read as UTC."
    return one


def _filter_schema(policy: ModelQueryPolicy) -> dict:
    properties = {}
    for name, (field, lookups) in policy.filters.items():
        lookup_props = {lk: _lookup_schema(field, lk, policy.max_in_items) for lk in lookups}
        properties[name] = {**_object(lookup_props), **_names_only(lookups), "minProperties": 1,
                            "description": f"Lookups on {name}: {', '.join(lookups)}."}
    required = list(policy.required_filters)
    return {**_object(properties, required=required), **_names_only(policy.filters),
            "description": 'Conditions, all of which must hold: {"field": {"lookup": value}}, e.g. '
                           '{"state": {"exact": "CA"}}.'}


def _aggregate_output_names(policy: ModelQueryPolicy) -> list[str]:
    names = ["count"] if "count" in policy.aggregate_functions else []
    for function in policy.aggregate_functions:
        if function != "count":
            names += [f"{function}_{name}" for name in policy.aggregate_fields]
    return names


def _aggregate_input(policy: ModelQueryPolicy) -> dict:
    properties = {}
    if "count" in policy.aggregate_functions:
        properties["count"] = {"type": "boolean", "description": "Count the rows (of each group)."}
    for function in policy.aggregate_functions:
        if function != "count":
            properties[function] = {"type": "array", "uniqueItems": True,
                                    "items": {"enum": sorted(policy.aggregate_fields)}}
    if policy.group_by:
        properties["group_by"] = {"type": "array", "uniqueItems": True, "items": {"enum": sorted(policy.group_by)}}
    return {**_object(properties), **_names_only(properties), "minProperties": 1,
            "description": "Aggregate instead of listing rows: results become groups with count, "
                           "<function>_<field> values and the group_by fields."}


def _aggregate_row(policy: ModelQueryPolicy) -> dict:
    properties = {name: value_schema(field, nullable=True, describe=False) for name, field in
                  policy.group_by.items()}
    if "count" in policy.aggregate_functions:
        properties["count"] = {"type": "integer", "minimum": 0}
    for function in policy.aggregate_functions:
        if function == "count":
            continue
        for name, field in policy.aggregate_fields.items():
            if function == "avg":
                properties[f"avg_{name}"] = ({"type": ["string", "null"], "pattern": DECIMAL_PATTERN}
                                             if field_category(field) == "decimal" else {"type": ["number", "null"]})
            else:
                properties[f"{function}_{name}"] = value_schema(field, nullable=True, describe=False)
    return _object(properties)


def _row_schema(policy: ModelQueryPolicy) -> dict:
    properties = {name: value_schema(field) for name, field in policy.fields.items()}
    for relation in policy.to_one:
        inner = _object({n: value_schema(f) for n, f in relation.fields.items()}, required=list(relation.fields))
        properties[relation.name] = {"anyOf": [inner, {"type": "null"}]}
    for relation in policy.to_many:
        inner = _object({n: value_schema(f) for n, f in relation.fields.items()}, required=list(relation.fields))
        properties[relation.output] = ({"anyOf": [inner, {"type": "null"}]} if relation.first_only else
                                       {"type": "array", "items": inner, "maxItems": relation.limit})
    return _object(properties, required=list(properties))


def schemas_for_policy(policy: ModelQueryPolicy) -> tuple[dict, dict]:
    order_names = sorted(policy.order_fields)
    properties = {}
    if policy.filters:
        properties["filter"] = _filter_schema(policy)
    if order_names:
        group_names = sorted({*policy.group_by, *_aggregate_output_names(policy)})
        choices = sorted({*order_names, *group_names}) if policy.aggregate_functions else order_names
        properties["order_by"] = {
            "type": "array", "uniqueItems": True, "maxItems": 3,
            "items": {"enum": [p + n for n in choices for p in ("", "-")]},
            "description": "Fields to sort by; '-' first for descending.",
        }
    properties["page_size"] = {"type": "integer", "minimum": 1, "maximum": policy.max_page_size,
                               "default": policy.default_page_size}
    properties["cursor"] = {"type": "string", "minLength": 1, "maxLength": 2000,
                            "description": "next_cursor from the previous page, with the same filter and order_by."}
    if policy.aggregate_functions:
        properties["aggregate"] = _aggregate_input(policy)
    input_schema = {**_object(properties),
                    **_names_only(properties)}
    if policy.required_filters:
        input_schema["required"] = ["filter"]
    output_properties = {
        "results": {"type": "array", "items": _row_schema(policy)},
        "next_cursor": {"type": ["string", "null"], "description": "Pass as cursor to get the next page; null on "
                                                                    "the last page."},
    }
    if policy.aggregate_functions:
        output_properties["groups"] = {"type": "array", "items": _aggregate_row(policy)}
    output_schema = {"type": "object", "properties": output_properties, "required": ["next_cursor"],
                     "additionalProperties": False}
    return input_schema, output_schema


def model_query_schemas(config: dict) -> tuple[dict, dict]:
    """(input_schema, output_schema) of a model query tool with ``config``. Raises ValueError if it is unusable."""
    policy, problems = model_query_resolve(config)
    if policy is None:
        raise ValueError(" ".join(problems))
    return schemas_for_policy(policy)

