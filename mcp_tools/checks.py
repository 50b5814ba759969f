"""Django system checks (``manage.py check``, and before ``migrate``) and the post-migrate role setup."""
import logging
import sys

from django.core import checks
from django.db import DatabaseError

logger = logging.getLogger("mcp_tools.checks")


@checks.register()
def check_readonly_role(app_configs=None, **kwargs):
    """W001 when the read-only role sql_query tools run as is missing; silent when the database is down."""
    from .services.readonly_role import readonly_role_problem

    try:
        problem = readonly_role_problem()
    except DatabaseError:
        return []  # unreachable database: `migrate` and readiness say so themselves
    if problem is None:
        return []
    return [checks.Warning(problem, hint="sql_query tools answer 'unavailable' until the role exists.",
                           id="mcp_tools.W001")]


def readonly_role_after_migrate(sender, *, using="default", verbosity=1, stdout=None, plan=None, **kwargs):
    """post_migrate: create or update the read-only role, or say why not and what to run instead.

    Runs once per ``migrate`` (connected with the mcp_tools app config as sender), after every app's
    tables exist, so the grants cover them. A user without CREATEROLE gets a warning, not a failure.
    """
    from django.conf import settings
    from django.db import connections

    from .services.readonly_role import FIX_COMMAND, _same_server, readonly_role_setup

    if plan is None:  # `flush` (every transactional test) sends post_migrate too; only `migrate` passes a plan
        return
    out = stdout or sys.stdout
    connection = connections[using]
    target = settings.DATABASES[settings.MCP_SQL_READONLY_ALIAS]
    if using != "default" or connection.vendor != "postgresql" or not _same_server(connection.settings_dict,
                                                                                  target):
        return
    try:
        role = readonly_role_setup(using=using, attempts=2)
    except DatabaseError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        message = (f"WARNING: the read-only role '{target.get('USER')}' could not be set up ({reason}). "
                   f"sql_query tools will not work until a database user allowed to create roles runs "
                   f"`{FIX_COMMAND}`.\n")
        logger.warning(message.strip())
        out.write(message)
        return
    if verbosity >= 1:
        out.write(f"Read-only role '{role}' is set up for database '{connection.settings_dict['NAME']}'.\n")
