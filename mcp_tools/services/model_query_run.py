"""Run one model query call: check the arguments against the policy, build the ORM query, bound it, page it.

Every name an agent sends is looked up in the policy (ticked fields, lookups, orderings, aggregations);
anything else is an ``InvalidArguments`` that names what is allowed. The query runs on the read-only
alias (``settings.MCP_SQL_READONLY_ALIAS``) inside a READ ONLY transaction with a statement timeout
(SQLite: a progress-handler deadline), at most ``page_size + 1`` rows are fetched, and the page is cut
short when its JSON would pass ``settings.MCP_RESULT_MAX_BYTES``; the cursor then points at the first
row left out.

Cursors are signed offsets bound to the tool and to the filter, order_by and aggregate of the call that
produced them: a cursor that was edited, or is replayed with other conditions, is refused.
"""
from datetime import datetime, time as time_of_day, timezone as dt_timezone
from decimal import Decimal, InvalidOperation
import hashlib
import json
import uuid

from django.conf import settings
from django.core import signing
from django.core.serializers.json import DjangoJSONEncoder
from django.db import DatabaseError
from django.db.models import Avg, Count, F, FloatField, Max, Min, Sum, Window
from django.db.models.functions import RowNumber
from django.utils.dateparse import parse_date, parse_datetime, parse_duration, parse_time

from ..exceptions import InvalidArguments, ToolError
from .readonly_query import readonly_error, readonly_timeout_ms, readonly_transaction
from .model_query_policy import ModelQueryPolicy, field_category

ARGUMENTS = ("filter", "order_by", "page_size", "cursor", "aggregate")
MAX_ORDER_FIELDS = 3
_AGGREGATES = {"sum": Sum, "min": Min, "max": Max}


def _allowed(names) -> str:
    return ", ".join(sorted(names)) or "(none)"


# --- values -----------------------------------------------------------------------------------------------

def _parse_datetime(value: str):
    parsed = parse_datetime(value)
    if parsed is None:
        day = parse_date(value)
        parsed = datetime.combine(day, time_of_day.min) if day else None
    if parsed is not None and parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt_timezone.utc)
    return parsed


_PARSERS = {
    "date": (parse_date, "an ISO 8601 date (YYYY-MM-DD)"),
    "datetime": (_parse_datetime, "an ISO 8601 date-time"),
    "time": (parse_time, "an ISO 8601 time (HH:MM[:SS])"),
    "duration": (parse_duration, "an ISO 8601 duration"),
}
_JSON_TYPES = {"text": (str,), "integer": (int,), "number": (int, float), "boolean": (bool,), "uuid": (str,),
               "decimal": (str, int, float)}


def _one_value(field, value, where: str):
    category = field_category(field)
    if value is None or isinstance(value, (dict, list)) or (isinstance(value, bool) and category != "boolean"):
        raise InvalidArguments(f"{where}: give a single {category} value.")
    expected = _JSON_TYPES.get(category)
    if expected and not isinstance(value, expected):
        raise InvalidArguments(f"{where}: give a {category} value, not {type(value).__name__}.")
    try:
        if category in _PARSERS:
            parser, text = _PARSERS[category]
            parsed = parser(value) if isinstance(value, str) else None
            if parsed is None:
                raise InvalidArguments(f"{where}: {value!r:.80} is not {text}.")
            return parsed
        if category == "decimal":
            return Decimal(str(value))
        if category == "uuid":
            return uuid.UUID(value)
    except (ValueError, InvalidOperation):
        raise InvalidArguments(f"{where}: {value!r:.80} is not a valid {category} value.") from None
    return value


def _lookup_value(field, lookup: str, value, where: str, max_in_items: int):
    if lookup == "isnull":
        if not isinstance(value, bool):
            raise InvalidArguments(f"{where}: give true or false.")
        return value
    if lookup in ("year", "month", "day"):
        if not isinstance(value, int) or isinstance(value, bool):
            raise InvalidArguments(f"{where}: give the {lookup} as an integer.")
        return value
    if lookup in ("iexact", "icontains"):
        if not isinstance(value, str) or not value:
            raise InvalidArguments(f"{where}: give a non-empty string.")
        return value
    if lookup in ("in", "range"):
        if not isinstance(value, list):
            raise InvalidArguments(f"{where}: give a JSON array.")
        if lookup == "range" and len(value) != 2:
            raise InvalidArguments(f"{where}: give exactly two values, [low, high].")
        if lookup == "in" and not 1 <= len(value) <= max_in_items:
            raise InvalidArguments(f"{where}: give 1 to {max_in_items} values (got {len(value)}).")
        return [_one_value(field, item, f"{where}[{i}]") for i, item in enumerate(value)]
    return _one_value(field, value, where)


# --- arguments --------------------------------------------------------------------------------------------

def _conditions(policy: ModelQueryPolicy, filters) -> dict:
    if filters is None:
        filters = {}
    if not isinstance(filters, dict):
        raise InvalidArguments('filter: give an object like {"field": {"lookup": value}}.')
    missing = [name for name in policy.required_filters if name not in filters]
    if missing:
        raise InvalidArguments(f"filter: {', '.join(missing)} must be given.")
    conditions = {}
    for name, lookups in filters.items():
        if name not in policy.filters:
            raise InvalidArguments(f"filter: '{name}' may not be filtered on; allowed: {_allowed(policy.filters)}.")
        field, allowed = policy.filters[name]
        if not isinstance(lookups, dict) or not lookups:
            raise InvalidArguments(f"filter.{name}: give an object of lookups, one of: {', '.join(allowed)}.")
        for lookup, value in lookups.items():
            if lookup not in allowed:
                raise InvalidArguments(f"filter.{name}: lookup '{lookup}' is not allowed; allowed: "
                                       f"{', '.join(allowed)}.")
            conditions[f"{field.attname}__{lookup}"] = _lookup_value(field, lookup, value, f"filter.{name}.{lookup}",
                                                                    policy.max_in_items)
    return conditions


def _fixed_conditions(policy: ModelQueryPolicy) -> dict:
    try:
        return {f"{field.attname}__{lookup}": _lookup_value(field, lookup, value, "fixed_filters", 10_000)
                for field, lookup, value in policy.fixed_filters.values()}
    except InvalidArguments as exc:
        raise ToolError(f"The tool is misconfigured ({exc.message}); an administrator has to fix it.") from None


def _ordering(order_by, allowed, what: str) -> list[str]:
    if order_by is None:
        return []
    if not isinstance(order_by, list) or not all(isinstance(o, str) for o in order_by):
        raise InvalidArguments('order_by: give a list of field names, e.g. ["-created_at"].')
    if len(order_by) > MAX_ORDER_FIELDS:
        raise InvalidArguments(f"order_by: at most {MAX_ORDER_FIELDS} fields.")
    for item in order_by:
        if item.removeprefix("-") not in allowed:
            raise InvalidArguments(f"order_by: '{item}' is not allowed; {what} may be ordered by: "
                                   f"{_allowed(allowed)} ('-' first for descending).")
    return order_by


def _page_size(policy: ModelQueryPolicy, value) -> int:
    if value is None:
        return policy.default_page_size
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= policy.max_page_size:
        raise InvalidArguments(f"page_size: give an integer from 1 to {policy.max_page_size}.")
    return value


def _query_digest(tool_name: str, arguments: dict) -> str:
    key = {k: arguments.get(k) for k in ("filter", "order_by", "aggregate")}
    return hashlib.sha256(json.dumps([tool_name, key], sort_keys=True).encode()).hexdigest()[:24]


def _signer(tool_name: str) -> signing.Signer:
    return signing.Signer(salt=f"mcp_tools.model_query.cursor:{tool_name}")


def cursor_encode(*, tool_name: str, arguments: dict, offset: int) -> str:
    return _signer(tool_name).sign_object({"o": offset, "q": _query_digest(tool_name, arguments)})


def cursor_decode(*, tool_name: str, arguments: dict) -> int:
    cursor = arguments.get("cursor")
    if cursor is None:
        return 0
    try:
        payload = _signer(tool_name).unsign_object(cursor) if isinstance(cursor, str) else None
    except (signing.BadSignature, ValueError, UnicodeDecodeError):
        payload = None
    if not isinstance(payload, dict) or not isinstance(payload.get("o"), int) or payload["o"] < 0:
        raise InvalidArguments("cursor: not a cursor this tool issued; pass next_cursor back exactly as returned.")
    if payload.get("q") != _query_digest(tool_name, arguments):
        raise InvalidArguments("cursor: it belongs to a query with another filter, order_by or aggregate; send "
                               "the same ones as the call that returned it, or drop the cursor to start over.")
    return payload["o"]


# --- execution --------------------------------------------------------------------------------------------

def _json_safe(value):
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def _within_budget(rows: list, budget: int) -> list:
    """The longest prefix of ``rows`` whose JSON fits in ``budget`` bytes."""
    kept, used = [], 2
    for row in rows:
        size = len(json.dumps(row, separators=(",", ":")).encode()) + 1
        if used + size > budget:
            if not kept:
                raise ToolError(f"One result is larger than the {budget}-byte result budget; tick fewer or "
                                "smaller fields.")
            break
        kept.append(row)
        used += size
    return kept


def _order_expressions(order) -> list:
    return [F(o[1:]).desc() if o.startswith("-") else F(o).asc() for o in order]


def _rows(policy: ModelQueryPolicy, queryset, order: list, offset: int, size: int) -> list[dict]:
    pk = policy.model._meta.pk.attname
    names = list(policy.fields)
    for relation in policy.to_one:
        names += [f"{relation.path}__{n}" for n in relation.fields]
        names.append(f"{relation.path}__{relation.model._meta.pk.attname}")
    fetched = list(queryset.order_by(*(order or policy.default_order), pk)
                   .values(*names, _mq_pk=F(pk))[offset:offset + size + 1])
    rows = []
    for raw in fetched:
        row = {"_mq_pk": raw["_mq_pk"], **{n: raw[n] for n in policy.fields}}
        for relation in policy.to_one:
            present = raw[f"{relation.path}__{relation.model._meta.pk.attname}"] is not None
            row[relation.name] = {n: raw[f"{relation.path}__{n}"] for n in relation.fields} if present else None
        rows.append(row)
    _attach_to_many(policy, queryset.db, rows[:size])
    return rows


def _attach_to_many(policy: ModelQueryPolicy, alias: str, rows: list[dict]) -> None:
    """Each row's first ``limit`` related rows of every ticked one-to-many relation, in one query per relation."""
    keys = [row["_mq_pk"] for row in rows]
    for relation in policy.to_many:
        related = {key: [] for key in keys}
        if keys:
            window = Window(RowNumber(), partition_by=[F(relation.link)],
                            order_by=_order_expressions((*relation.order, relation.model._meta.pk.attname)))
            queryset = (relation.model._default_manager.using(alias).filter(**{f"{relation.link}__in": keys})
                        .annotate(_mq_rank=window).filter(_mq_rank__lte=relation.limit)
                        .order_by(relation.link, "_mq_rank").values(relation.link, *relation.fields))
            for item in queryset:
                related[item[relation.link]].append({n: item[n] for n in relation.fields})
        for row in rows:
            found = related[row["_mq_pk"]]
            row[relation.output] = (found[0] if found else None) if relation.first_only else found


def _aggregate_spec(policy: ModelQueryPolicy, aggregate) -> tuple[list[str], dict]:
    if not policy.aggregate_functions:
        raise InvalidArguments("aggregate: this tool does not aggregate; list rows with filter and order_by.")
    if not isinstance(aggregate, dict) or not aggregate:
        raise InvalidArguments(f"aggregate: give an object with any of: {_allowed(_aggregate_keys(policy))}.")
    expressions = {}
    group_by = []
    for key, value in aggregate.items():
        if key == "group_by" and policy.group_by:
            if not isinstance(value, list) or any(v not in policy.group_by for v in value):
                raise InvalidArguments(f"aggregate.group_by: give a list of: {_allowed(policy.group_by)}.")
            group_by = list(dict.fromkeys(value))
        elif key == "count" and "count" in policy.aggregate_functions:
            if value is True:
                expressions["count"] = Count("pk")
        elif key in policy.aggregate_functions and key != "count":
            if not isinstance(value, list) or any(v not in policy.aggregate_fields for v in value):
                raise InvalidArguments(f"aggregate.{key}: give a list of: {_allowed(policy.aggregate_fields)}.")
            for name in value:
                field = policy.aggregate_fields[name]
                attname = field.attname
                if key == "avg":
                    expressions[f"avg_{name}"] = Avg(attname) if field_category(field) == "decimal" else \
                        Avg(attname, output_field=FloatField())
                else:
                    expressions[f"{key}_{name}"] = _AGGREGATES[key](attname)
        else:
            raise InvalidArguments(f"aggregate: '{key}' is not allowed; allowed: "
                                   f"{_allowed(_aggregate_keys(policy))}.")
    if not expressions:
        raise InvalidArguments("aggregate: ask for at least one aggregate (count, or a function over fields).")
    return group_by, expressions


def _aggregate_keys(policy: ModelQueryPolicy) -> list[str]:
    return [*policy.aggregate_functions, *(["group_by"] if policy.group_by else [])]


def _groups(policy, queryset, aggregate, order_by, offset, size) -> tuple[list[dict], bool]:
    group_by, expressions = _aggregate_spec(policy, aggregate)
    internal = {f"_mq_{name}": expression for name, expression in expressions.items()}
    if not group_by:
        totals = queryset.aggregate(**internal)
        return [{name: totals[f"_mq_{name}"] for name in expressions}], False
    attnames = {name: policy.group_by[name].attname for name in group_by}

    def column(item: str) -> str:
        name = item.removeprefix("-")
        return item[:len(item) - len(name)] + (attnames[name] if name in attnames else f"_mq_{name}")

    order = [column(o) for o in _ordering(order_by, {*group_by, *expressions}, "groups")]
    fetched = list(queryset.values(*attnames.values()).annotate(**internal)
                   .order_by(*order, *attnames.values())[offset:offset + size + 1])
    groups = [{**{name: raw[attnames[name]] for name in group_by},
               **{name: raw[f"_mq_{name}"] for name in expressions}} for raw in fetched]
    return groups[:size], len(groups) > size


def model_query_run(*, policy: ModelQueryPolicy, arguments: dict, tool_name: str, alias: str,
                    timeout_s: float) -> dict:
    """One page of results ({"results": [...], "next_cursor": str|None}) or of groups ({"groups": [...], ...}).

    Raises InvalidArguments for anything not ticked, ToolTimeout past the deadline, ToolError if the
    database refuses or one row alone passes the byte budget, ServiceUnavailable if the database is down.
    """
    if not isinstance(arguments, dict):
        raise InvalidArguments("Tool arguments must be a JSON object.")
    unknown = sorted(set(arguments) - set(ARGUMENTS))
    if unknown:
        allowed = [a for a in ARGUMENTS if a != "aggregate" or policy.aggregate_functions]
        raise InvalidArguments(f"Unknown argument(s) {', '.join(unknown)}; allowed: {', '.join(allowed)}.")
    fixed, conditions = _fixed_conditions(policy), _conditions(policy, arguments.get("filter"))
    size = _page_size(policy, arguments.get("page_size"))
    aggregate = arguments.get("aggregate")
    if aggregate is None:
        order = _ordering(arguments.get("order_by"), policy.order_fields, "results")
        order = [o[0] + policy.order_fields[o[1:]].attname if o.startswith("-") else policy.order_fields[o].attname
                 for o in order]
    else:
        order = None
    offset = cursor_decode(tool_name=tool_name, arguments=arguments)
    # Two filter() calls: a caller's condition on the same field narrows the fixed one, never replaces it.
    queryset = policy.model._default_manager.using(alias).filter(**fixed).filter(**conditions)
    timeout_ms = readonly_timeout_ms(timeout_s)
    try:
        with readonly_transaction(alias, timeout_ms=timeout_ms):
            if aggregate is not None:
                items, more = _groups(policy, queryset, aggregate, arguments.get("order_by"), offset, size)
            else:
                items = _rows(policy, queryset, order, offset, size)
                more = len(items) > size
                items = items[:size]
                for row in items:
                    del row["_mq_pk"]
    except DatabaseError as exc:
        raise readonly_error(exc, timeout_ms=timeout_ms) from None
    items = _json_safe(items)
    kept = _within_budget(items, settings.MCP_RESULT_MAX_BYTES - 200)
    more = more or len(kept) < len(items)
    next_cursor = cursor_encode(tool_name=tool_name, arguments=arguments, offset=offset + len(kept)) if more \
        else None
    return {("results" if aggregate is None else "groups"): kept, "next_cursor": next_cursor}
