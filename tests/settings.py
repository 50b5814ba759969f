"""Test settings: the product's settings, against this machine's Postgres and Redis by default.

DATABASE_URL and REDIS_URL can be overridden (e.g. to run two suites side by side).
"""
import os

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/mcp_tools")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/1")
# The product default (100 calls a minute per token) would throttle long test modules that reuse one
# token; the rate-limit tests set their own limits.
os.environ.setdefault("MCP_DEFAULT_RATE_LIMIT", "100000/m")
os.environ.setdefault("MCP_ADMIN_LOGIN_RATE_LIMIT", "100000/m")  # tests that log in often; see tests/security
# Connections page rows are written when each response ends (no flusher thread writing outside a test's
# transaction); the gunicorn servers the tests start inherit it.
os.environ.setdefault("MCP_CONNECTION_LOG_FLUSH_MS", "0")
# Short notification retry backoff, for this process and the test worker processes alike.
os.environ.setdefault("NOTIFICATION_RETRY_BASE_S", "1")

from mcp_project.settings import *  # noqa: E402,F401,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast user creation in tests only
