"""Import the kinds this app ships so they register themselves."""
from . import echo, http_request, sql_query  # noqa: F401
