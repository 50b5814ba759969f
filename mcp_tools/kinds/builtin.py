"""Import the kinds this app ships so they register themselves."""
from . import echo, http_request, model_query, sql_query  # noqa: F401
