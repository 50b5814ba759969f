"""The contract every handler kind fulfils, and the registry of kinds.

A kind is code; a Tool row binds to a kind by name and supplies a config that
is validated against the kind's ``config_schema`` when an admin saves it.
Kinds never check auth, limits or schemas of arguments: the pipeline does.
"""
from dataclasses import dataclass, field
import inspect
from typing import Any, Callable


@dataclass(frozen=True)
class InvocationContext:
    tool_name: str
    request_id: str
    timeout_s: float
    token_id: int | None = None
    token_prefix: str = ""
    client_ip: str | None = None
    transport: str = ""
    report_progress: Callable[[float, float | None, str | None], None] = field(
        default=lambda progress, total=None, message=None: None
    )


class HandlerKind:
    name: str = ""
    label: str = ""
    config_schema: dict = {"type": "object"}
    # Run inside one database transaction, so a failure leaves no half-written rows.
    # Kinds that wait on the network set this False: no transaction across I/O.
    atomic: bool = True
    # Part of the work is done later by a Celery worker (e.g. an e-mail): the admin warns when none is alive.
    needs_worker: bool = False
    # Annotations every tool of this kind carries, whatever the admin typed (e.g. readOnlyHint).
    fixed_annotations: dict = {}

    def derived_schemas(self, config: dict) -> tuple[dict, dict] | None:
        """(input_schema, output_schema) generated from a valid ``config``, or None if an admin writes them.

        Saving a tool of a kind that generates them overwrites what was typed, so they never drift.
        """
        return None

    @property
    def derives_schemas(self) -> bool:
        return type(self).derived_schemas is not HandlerKind.derived_schemas

    def check_config(self, config: dict, *, input_schema: dict | None = None) -> list[str]:
        """Extra checks beyond the JSON Schema; return human-readable problems.

        ``input_schema`` is the tool's input schema being saved with the config (None when unknown),
        so a kind can refuse a config that could never run with those arguments.
        """
        return []

    def run(self, arguments: dict, config: dict, context: InvocationContext) -> Any:
        raise NotImplementedError

    def rest_result(self, result: Any) -> Any:
        """``result`` as the REST pair answers it under ``"result"`` (MCP always gets ``result`` itself)."""
        return result


_REGISTRY: dict[str, HandlerKind] = {}


def register(kind_class: type[HandlerKind]) -> type[HandlerKind]:
    if not kind_class.name:
        raise ValueError(f"{kind_class.__name__} has no name")
    _REGISTRY[kind_class.name] = kind_class()
    return kind_class


def config_problems(kind: HandlerKind, config: dict, *, input_schema: dict | None = None) -> list[str]:
    """``kind.check_config``, given the input schema when the kind's check accepts it."""
    if "input_schema" in inspect.signature(kind.check_config).parameters:
        return kind.check_config(config, input_schema=input_schema)
    return kind.check_config(config)


def get_kind(name: str) -> HandlerKind | None:
    return _REGISTRY.get(name)


def kind_choices() -> list[tuple[str, str]]:
    return sorted((name, kind.label or name) for name, kind in _REGISTRY.items())


def get_kind_names_needing_worker() -> list[str]:
    return sorted(name for name, kind in _REGISTRY.items() if kind.needs_worker)
