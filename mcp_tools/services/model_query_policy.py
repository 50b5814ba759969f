"""What a model query tool may expose: the deny list, and the configuration resolved against the model.

An admin's configuration names a model (``app_label.ModelName``) and ticks, field by field, what an
agent may read, filter on (and with which lookups), order by, follow and aggregate.
``model_query_resolve`` turns it into a ``ModelQueryPolicy`` or a list of problems a person can act on;
the kind checks every call against that policy and nothing else, so what is not ticked cannot be reached.
"""
from dataclasses import dataclass, field as dataclass_field

from django.apps import apps
from django.conf import settings
from django.db import models

# Never offered, whatever a configuration says: credentials, sessions, OAuth state, the tool server's own
# configuration (tool configs hold upstream secrets) and queued arguments. Audit rows need an explicit opt-in.
DENIED_APPS = frozenset({"oauth2_provider", "sessions"})
DENIED_MODELS = frozenset({
    "mcp_tools.apitoken", "mcp_tools.tool", "mcp_tools.toolrevision", "mcp_tools.tooltask",
    "mcp_tools.mcpsession", "mcp_tools.mcpendpoint", "admin.logentry",
})
AUDIT_MODELS = frozenset({"mcp_tools.auditevent"})
# Fields never offered on the model that has them; ``*`` applies to every model.
DENIED_FIELDS = {"*": frozenset({"password"}), "auth.user": frozenset({"password"})}

LOOKUPS = ("exact", "iexact", "in", "gt", "gte", "lt", "lte", "range", "icontains", "isnull", "year", "month",
           "day")
DATE_PARTS = ("year", "month", "day")
AGGREGATE_FUNCTIONS = ("count", "sum", "avg", "min", "max")
_COMPARE = ("exact", "in", "gt", "gte", "lt", "lte", "range")
# Which lookups make sense for each kind of value (isnull is added for nullable fields).
LOOKUPS_BY_CATEGORY = {
    "text": _COMPARE + ("iexact", "icontains"),
    "integer": _COMPARE,
    "number": _COMPARE,
    "decimal": _COMPARE,
    "date": _COMPARE + DATE_PARTS,
    "datetime": _COMPARE + DATE_PARTS,
    "time": _COMPARE,
    "duration": _COMPARE,
    "boolean": ("exact",),
    "uuid": ("exact", "in"),
    "json": (),
}
NUMERIC = frozenset({"integer", "number", "decimal"})
MAX_RELATION_LIMIT = 50


def field_category(field: models.Field) -> str | None:
    """The kind of JSON value a concrete field holds, or None if it cannot be exposed (binary data)."""
    if isinstance(field, models.ForeignKey):
        return field_category(field.target_field)
    checks = (
        (models.BooleanField, "boolean"), (models.DecimalField, "decimal"), (models.FloatField, "number"),
        ((models.IntegerField, models.AutoField, models.BigAutoField, models.SmallAutoField), "integer"),
        (models.DateTimeField, "datetime"), (models.DateField, "date"), (models.TimeField, "time"),
        (models.DurationField, "duration"), (models.UUIDField, "uuid"), (models.JSONField, "json"),
        ((models.CharField, models.TextField, models.FileField, models.GenericIPAddressField), "text"),
    )
    for classes, category in checks:
        if isinstance(field, classes):
            return category
    return None


def model_label(model) -> str:
    return model._meta.label_lower


def model_denial(label: str, *, allow_audit_model: bool = False) -> str | None:
    """Why the model with this lower-case label may never be exposed, or None."""
    app_label = label.split(".", 1)[0]
    if app_label in DENIED_APPS or label in DENIED_MODELS:
        return f"Model '{label}' holds credentials or server state and can never be exposed."
    if label in AUDIT_MODELS and not allow_audit_model:
        return f"Model '{label}' holds audit rows; set \"allow_audit_model\": true to expose it deliberately."
    return None


def exposable_fields(model) -> dict:
    """{name: field} of the model's concrete columns an admin may tick (foreign keys by attname, e.g. customer_id)."""
    denied = DENIED_FIELDS["*"] | DENIED_FIELDS.get(model_label(model), frozenset())
    return {f.attname: f for f in model._meta.concrete_fields
            if f.name not in denied and f.attname not in denied and field_category(f) is not None}


def field_lookups(field: models.Field) -> tuple:
    lookups = LOOKUPS_BY_CATEGORY[field_category(field)]
    return lookups + ("isnull",) if field.null else lookups


def relations_of(model) -> dict:
    """{name: relation field} an admin may tick: forward FK/one-to-one by name, reverse ones by accessor."""
    found = {}
    for f in model._meta.get_fields():
        if not f.is_relation or f.many_to_many:
            continue
        if f.concrete and (f.many_to_one or f.one_to_one):
            found[f.name] = f
        elif not f.concrete and (f.one_to_many or f.one_to_one) and f.get_accessor_name():
            found[f.get_accessor_name()] = f
    return found


@dataclass(frozen=True)
class ToOne:
    """A forward (or reverse one-to-one) relation read in the same query: an object or null."""

    name: str
    path: str  # the ORM's name for the join (a reverse one-to-one's query name)
    model: type
    fields: dict


@dataclass(frozen=True)
class ToMany:
    """A reverse foreign key read in a second query: the first ``limit`` related rows of each row."""

    name: str
    output: str
    model: type
    link: str  # attname of the foreign key on the related model, pointing back
    fields: dict
    order: tuple
    limit: int
    first_only: bool


@dataclass(frozen=True)
class ModelQueryPolicy:
    model: type
    fields: dict
    filters: dict  # {name: (field, lookups)}
    required_filters: tuple
    order_fields: dict
    default_order: tuple
    to_one: tuple
    to_many: tuple
    max_page_size: int
    default_page_size: int
    max_in_items: int
    fixed_filters: dict
    aggregate_functions: tuple = ()
    aggregate_fields: dict = dataclass_field(default_factory=dict)
    group_by: dict = dataclass_field(default_factory=dict)

    @property
    def label(self) -> str:
        return model_label(self.model)


def _names(value) -> list:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _pick(model, names, available: dict, what: str, problems: list) -> dict:
    picked = {}
    for name in names:
        if name in available:
            picked[name] = available[name]
        else:
            problems.append(f"{what}: '{name}' is not an exposable field of {model_label(model)}; choose from "
                            f"{', '.join(sorted(available))}.")
    return picked


def _order_problems(order, allowed: dict, what: str) -> list:
    return [f"{what}: '{o}' is not an orderable field; choose from {', '.join(sorted(allowed))}."
            for o in order if o.lstrip("-") not in allowed]


def _resolve_relation(model, name, spec, relation, problems) -> ToOne | ToMany | None:
    related = relation.related_model
    denial = model_denial(model_label(related))
    if denial:
        problems.append(f"relations.{name}: {denial}")
        return None
    available = exposable_fields(related)
    fields = _pick(related, _names(spec.get("fields")), available, f"relations.{name}.fields", problems)
    if not fields:
        problems.append(f"relations.{name}: tick at least one field of {model_label(related)}.")
    if relation.concrete or relation.one_to_one:
        extra = sorted(set(spec) & {"order_by", "limit", "first_only", "as"})
        if extra:
            problems.append(f"relations.{name}: {', '.join(extra)} only apply to one-to-many relations.")
        return ToOne(name=name, path=relation.name, model=related, fields=fields)
    order = tuple(_names(spec.get("order_by"))) or ("-" + related._meta.pk.attname,)
    problems += _order_problems(order, available, f"relations.{name}.order_by")
    first_only = bool(spec.get("first_only", False))
    return ToMany(name=name, output=spec.get("as") or name, model=related, link=relation.field.attname,
                  fields=fields, order=order, limit=1 if first_only else int(spec.get("limit", 10)),
                  first_only=first_only)


def _resolve_fixed_filters(model, fixed: dict, problems: list) -> dict:
    available = exposable_fields(model)
    resolved = {}
    for key, value in fixed.items():
        name, _, lookup = key.partition("__")
        lookup = lookup or "exact"
        if name not in available:
            problems.append(f"fixed_filters: '{name}' is not an exposable field of {model_label(model)}; choose "
                            f"from {', '.join(sorted(available))}.")
        elif lookup not in field_lookups(available[name]):
            problems.append(f"fixed_filters: lookup '{lookup}' does not apply to '{name}'; use one of "
                            f"{', '.join(field_lookups(available[name]))}.")
        else:
            resolved[f"{name}__{lookup}"] = (available[name], lookup, value)
    return resolved


def model_query_resolve(config: dict) -> tuple[ModelQueryPolicy | None, list[str]]:
    """The policy a configuration describes, or None and the reasons it cannot be used."""
    label = str(config.get("model", ""))
    try:
        model = apps.get_model(label)
    except (LookupError, ValueError):
        return None, [f"Unknown model '{label}'; write app_label.ModelName of an installed app, e.g. "
                      "demo_company.Customer."]
    denial = model_denial(model_label(model), allow_audit_model=bool(config.get("allow_audit_model")))
    if denial:
        return None, [denial]
    problems: list[str] = []
    available = exposable_fields(model)
    fields = _pick(model, _names(config.get("fields")), available, "fields", problems)
    filters = {}
    for name, lookups in (config.get("filters") or {}).items():
        if name not in available:
            problems.append(f"filters: '{name}' is not an exposable field of {model_label(model)}; choose from "
                            f"{', '.join(sorted(available))}.")
            continue
        allowed = field_lookups(available[name])
        wrong = [lk for lk in lookups if lk not in allowed]
        if wrong:
            problems.append(f"filters.{name}: lookup(s) {', '.join(wrong)} do not apply to this field; it allows "
                            f"{', '.join(allowed) or 'no lookups'}.")
        filters[name] = (available[name], tuple(dict.fromkeys(lk for lk in lookups if lk in allowed)))
    required = tuple(_names(config.get("required_filters")))
    problems += [f"required_filters: '{n}' is not in filters." for n in required if n not in filters]
    order_fields = _pick(model, _names(config.get("order_by")), available, "order_by", problems)
    order_fields = {n: f for n, f in order_fields.items() if field_category(f) != "json"}
    default_order = tuple(_names(config.get("default_order")))
    problems += _order_problems(default_order, order_fields, "default_order")
    to_one, to_many = [], []
    relations = relations_of(model)
    for name, spec in (config.get("relations") or {}).items():
        if name not in relations:
            problems.append(f"relations: '{name}' is not a relation of {model_label(model)}; choose from "
                            f"{', '.join(sorted(relations)) or '(none)'} (many-to-many is not supported).")
            continue
        resolved = _resolve_relation(model, name, spec, relations[name], problems)
        if isinstance(resolved, ToOne):
            to_one.append(resolved)
        elif isinstance(resolved, ToMany):
            to_many.append(resolved)
    outputs = [*fields, *(r.name for r in to_one), *(r.output for r in to_many)]
    clashes = sorted({o for o in outputs if outputs.count(o) > 1})
    if clashes:
        problems.append(f"Output names clash: {', '.join(clashes)}; rename a relation with \"as\".")
    if not fields and not config.get("aggregations"):
        problems.append("Tick at least one field agents may read (fields), or configure aggregations.")
    max_page = int(config.get("max_page_size", 50))
    aggregations = config.get("aggregations") or {}
    aggregate_fields = _pick(model, _names(aggregations.get("fields")), available, "aggregations.fields",
                             problems)
    problems += [f"aggregations.fields: '{n}' is not numeric; sum/avg/min/max apply to numeric fields only."
                 for n, f in aggregate_fields.items() if field_category(f) not in NUMERIC]
    group_by = _pick(model, _names(aggregations.get("group_by")), available, "aggregations.group_by", problems)
    functions = tuple(_names(aggregations.get("functions"))) or (("count",) if aggregations else ())
    if any(fn != "count" for fn in functions) and not aggregate_fields:
        problems.append("aggregations: sum/avg/min/max need at least one numeric field in aggregations.fields.")
    policy = ModelQueryPolicy(
        model=model, fields=fields, filters=filters, required_filters=required, order_fields=order_fields,
        default_order=default_order or ("pk",), to_one=tuple(to_one), to_many=tuple(to_many),
        max_page_size=max_page, default_page_size=min(int(config.get("default_page_size", 20)), max_page),
        max_in_items=int(config.get("max_in_items", 100)),
        fixed_filters=_resolve_fixed_filters(model, config.get("fixed_filters") or {}, problems),
        aggregate_functions=functions, aggregate_fields=aggregate_fields, group_by=group_by,
    )
    problems += _grant_problems(policy)
    return (None, problems) if problems else (policy, [])


def _grant_problems(policy: ModelQueryPolicy) -> list[str]:
    """Query tools read only MCP_SQL_READONLY_TABLES, on every database: on Postgres they are the read-only
    role's grants; on the embedded SQLite default, which has no roles, this list is the only wall."""
    tables = {policy.model._meta.db_table, *(r.model._meta.db_table for r in (*policy.to_one, *policy.to_many))}
    missing = sorted(tables - set(settings.MCP_SQL_READONLY_TABLES))
    if not missing:
        return []
    return [f"Query tools may not read table(s) {', '.join(missing)}: add them to MCP_SQL_READONLY_TABLES "
            "(on Postgres, then run 'manage.py setup_readonly_role')."]
