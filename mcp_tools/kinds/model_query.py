"""Model query: a Django model exposed read-only, field by field, without SQL.

The admin's configuration ticks what an agent may read, filter on (with which lookups), order by, follow
and aggregate; the tool's input and output schemas are generated from it
(``services.model_query_schemas``) and every call is checked against it (``services.model_query_run``).
The query runs through the read-only alias the sql_query tools use. See docs/model-query-tools.md.
"""
from django.conf import settings

from ..exceptions import ToolError
from ..services.model_query_policy import AGGREGATE_FUNCTIONS, LOOKUPS, model_query_resolve
from ..services.model_query_run import model_query_run
from ..services.model_query_schemas import model_query_schemas
from .base import HandlerKind, register

_NAMES = {"type": "array", "uniqueItems": True, "items": {"type": "string", "minLength": 1}}
_ORDER = {"type": "array", "items": {"type": "string", "pattern": "^-?[A-Za-z_][A-Za-z0-9_]*$"}}


@register
class ModelQueryKind(HandlerKind):
    name = "model_query"
    label = "Model query (read-only, no SQL)"
    atomic = False  # runs in its own read-only transaction on the read-only connection
    fixed_annotations = {"readOnlyHint": True, "destructiveHint": False, "idempotentHint": True,
                         "openWorldHint": False}
    config_schema = {
        "type": "object",
        "additionalProperties": False,
        "required": ["model"],
        "properties": {
            "model": {"type": "string", "pattern": r"^[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*$",
                      "description": "app_label.ModelName, e.g. demo_company.Customer."},
            "allow_audit_model": {"type": "boolean", "default": False,
                                  "description": "Allow exposing audit rows (mcp_tools.AuditEvent)."},
            "fields": {**_NAMES, "description": "Fields agents may read (foreign keys by attname, e.g. customer_id)."},
            "filters": {"type": "object", "description": '{"field": ["exact", "in", ...]}: lookups agents may use.',
                        "additionalProperties": {"type": "array", "uniqueItems": True, "minItems": 1,
                                                 "items": {"enum": list(LOOKUPS)}}},
            "required_filters": {**_NAMES, "description": "Filters every call must give."},
            "order_by": {**_NAMES, "description": "Fields agents may order by."},
            "default_order": {**_ORDER, "maxItems": 3, "description": 'e.g. ["-created_at"]; defaults to the key.'},
            "relations": {
                "type": "object",
                "description": "Related objects to include, one level: forward foreign keys and reverse ones "
                               "(by accessor, e.g. order_set).",
                "additionalProperties": {
                    "type": "object", "additionalProperties": False, "required": ["fields"],
                    "properties": {
                        "fields": _NAMES,
                        "order_by": {**_ORDER, "maxItems": 3},
                        "limit": {"type": "integer", "minimum": 1, "maximum": 50, "default": 10},
                        "first_only": {"type": "boolean", "default": False},
                        "as": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
                    },
                },
            },
            "max_page_size": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 50},
            "default_page_size": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 20},
            "max_in_items": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100},
            "fixed_filters": {"type": "object", "description": 'Conditions every call gets, e.g. {"is_active": true} '
                                                                'or {"created_at__year": 2025}.'},
            "aggregations": {
                "type": "object", "additionalProperties": False,
                "properties": {
                    "functions": {"type": "array", "uniqueItems": True, "items": {"enum": list(AGGREGATE_FUNCTIONS)}},
                    "fields": {**_NAMES, "description": "Numeric fields sum/avg/min/max may use."},
                    "group_by": {**_NAMES, "description": "Fields results may be grouped by."},
                },
            },
        },
    }

    def check_config(self, config):
        return model_query_resolve(config)[1]

    def derived_schemas(self, config):
        return model_query_schemas(config)

    def run(self, arguments, config, context):
        policy, problems = model_query_resolve(config)
        if policy is None:
            raise ToolError(f"Tool '{context.tool_name}' is misconfigured ({' '.join(problems)[:500]}); an "
                            "administrator has to fix it.")
        alias = settings.MCP_SQL_READONLY_ALIAS
        return model_query_run(policy=policy, arguments=arguments, tool_name=context.tool_name, alias=alias,
                               timeout_s=context.timeout_s)
