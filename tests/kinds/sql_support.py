"""Shared helpers: the SQL corpora, and an embedded SQLite copy of the demo company tables."""
import os
from pathlib import Path
import re

from django.db import connections
from django.db.backends.sqlite3.base import DatabaseWrapper
from django.db.utils import ConnectionHandler

from demo_company.models import BillingAccount, Customer, Order, Product
from mcp_project.readonly_db import readonly_database

# CI may point this at the shared corpora (../shared/sql); a fresh clone uses the committed copy.
CORPORA_DIR = Path(os.environ.get("MCP_SQL_CORPORA_DIR") or Path(__file__).resolve().parent / "sql_corpora")
SQLITE_RW, SQLITE_RO = "sqlite_demo_rw", "sqlite_demo_ro"


def corpus(name: str) -> list[tuple[str, bool]]:
    """[(sql, postgres_only)] from a corpus file: entries separated by a line '--' (see its README)."""
    entries = []
    for chunk in re.split(r"(?m)^--[ \t]*$", (CORPORA_DIR / name).read_text()):
        lines = [line for line in chunk.strip().splitlines()]
        postgres_only = any(line.strip().lower() == "-- postgres only" for line in lines)
        sql = "\n".join(line for line in lines if line.strip().lower() != "-- postgres only").strip()
        if sql:
            entries.append((sql, postgres_only))
    return entries


def _add_alias(alias: str, config: dict) -> None:
    # A connection object only, not a settings entry: Django treats it as dynamically created.
    settings_dict = ConnectionHandler({"default": config}).settings["default"]
    connections[alias] = DatabaseWrapper(settings_dict, alias)


def sqlite_demo_open(path: Path) -> str:
    """A SQLite file holding a copy of the (seeded) demo tables; returns the read-only alias reading it.

    Added after the test's database setup, so Django neither creates nor flushes it.
    """
    _add_alias(SQLITE_RW, {"ENGINE": "django.db.backends.sqlite3", "NAME": str(path)})
    with connections[SQLITE_RW].schema_editor() as editor:
        for model in (Customer, Product, BillingAccount, Order):
            editor.create_model(model)
    for model in (Customer, Product, BillingAccount, Order):
        model.objects.using(SQLITE_RW).bulk_create(list(model.objects.all()))
    connections[SQLITE_RW].close()
    _add_alias(SQLITE_RO, readonly_database(default={"ENGINE": "django.db.backends.sqlite3", "NAME": path},
                                            database_url="", readonly_url="", role="r", password="",
                                            statement_timeout_ms=5000))
    return SQLITE_RO


def sqlite_demo_close() -> None:
    for alias in (SQLITE_RO, SQLITE_RW):
        try:
            connections[alias].close()
            del connections[alias]
        except (AttributeError, KeyError):
            pass


def sqlite_counts() -> dict:
    return {model._meta.db_table: model.objects.using(SQLITE_RW).count() for model in (Customer, Product, Order)}
