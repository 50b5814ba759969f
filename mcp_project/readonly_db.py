"""The database connection the sql_query tools run through: read-only by construction.

Postgres: the same database as ``default`` reached as a dedicated role (default
``mcp_readonly``) that may only SELECT from the tables an administrator listed
(``manage.py setup_readonly_role`` creates it) and whose sessions start read-only
with a statement timeout. ``MCP_SQL_READONLY_URL`` overrides the whole URL.

Embedded SQLite: the same file opened with ``mode=ro``, so SQLite itself refuses
any write.

In tests the alias mirrors ``default``: it points at the test database, with its
own user.
"""
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

DEFAULT_ROLE = "mcp_readonly"


def derived_readonly_url(database_url: str, *, role: str, password: str = "") -> str:
    """``database_url`` with its user (and password) replaced by the read-only role's."""
    parts = urlsplit(database_url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = quote(role, safe="")
    if password:
        netloc += ":" + quote(password, safe="")
    netloc += "@" + host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def readonly_database(*, default: dict, database_url: str, readonly_url: str, role: str, password: str,
                      statement_timeout_ms: int, conn_max_age: int = 60) -> dict:
    """Settings for the read-only alias, given the resolved ``default`` database settings."""
    if default["ENGINE"] == "django.db.backends.sqlite3":
        return {
            "ENGINE": "django.db.backends.sqlite3",
            # Django always opens SQLite with uri=True, so mode=ro is honoured.
            "NAME": Path(default["NAME"]).resolve().as_uri() + "?mode=ro",
            "TEST": {"MIRROR": "default"},
        }
    url = readonly_url or derived_readonly_url(database_url, role=role, password=password)
    # Connections are reused (with a health check before each request's first use): every query runs in its
    # own READ ONLY transaction whose timeouts are set with SET LOCAL semantics (set_config(..., true)), and
    # the parser refuses anything that could change session state, so nothing carries over between calls.
    config = dj_database_url.parse(url, conn_max_age=conn_max_age, conn_health_checks=conn_max_age > 0)
    if not config.get("USER") or config["USER"] == default.get("USER"):
        raise ImproperlyConfigured(
            "MCP_SQL_READONLY_URL must connect as a dedicated read-only role, not as the application's own user.")
    # Every session of this role starts read-only with a timeout, whatever the role's own defaults say.
    config["OPTIONS"] = {**config.get("OPTIONS", {}),
                         "options": f"-c default_transaction_read_only=on -c statement_timeout={statement_timeout_ms}"}
    config["TEST"] = {"MIRROR": "default"}
    return config
