"""Settings for the MCP tool server, all taken from the environment.

With no configuration the product runs embedded: a SQLite file under var/ and
Celery tasks executed in-process. Set DATABASE_URL and REDIS_URL (or
CELERY_BROKER_URL) to use Postgres, Redis and real Celery workers.
"""
import ipaddress
import logging
import re
import secrets
from urllib.parse import urlsplit
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from .env import env_bool, env_int, env_list, env_str
from .readonly_db import readonly_database

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("MCP_VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

VERSION = "0.1.0"

DEBUG = env_bool("DJANGO_DEBUG", False)


def _secret_key() -> str:
    key = env_str("DJANGO_SECRET_KEY")
    if key:
        if len(key) < 32:
            raise ImproperlyConfigured("DJANGO_SECRET_KEY must be at least 32 characters long")
        return key
    # Embedded mode: a random key kept on disk (never in the repository) so that
    # sessions survive a restart. Production sets DJANGO_SECRET_KEY.
    key_file = VAR_DIR / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


SECRET_KEY = _secret_key()
# Pepper mixed into API token hashes; separate from SECRET_KEY so rotating one
# does not silently invalidate the other.
MCP_TOKEN_PEPPER = env_str("MCP_TOKEN_PEPPER") or SECRET_KEY

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "mcp_tools.apps.McpAdminConfig",  # django.contrib.admin with the product-first site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "oauth2_provider",
    "corsheaders",
    "django_prometheus",
    "django_jsonform",
    "mcp_tools",
    "tickets",
    "notifications",
    "demo_company",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "mcp_tools.middleware.RequestIdMiddleware",
    # A chunked body (no Content-Length) is read up to the body limit, not as empty.
    "mcp_tools.request_body.ChunkedBodyMiddleware",
    # Right after the request id, so requests refused by the middleware below are logged too.
    "mcp_tools.access_log.AccessLogMiddleware",
    # Records refusals marked by the transports and the IP allow-list below (the admin's Connections page).
    "mcp_tools.transports.refusals.ConnectionRefusalMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "mcp_tools.security_middleware.EndpointIpAllowListMiddleware",
    "mcp_tools.security_middleware.SecurityHeadersMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "mcp_project.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "mcp_project.wsgi.application"

DATABASE_URL = env_str("DATABASE_URL")
EMBEDDED_DATABASE = not DATABASE_URL
if EMBEDDED_DATABASE:
    DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": VAR_DIR / "db.sqlite3"}}
else:
    DATABASES = {
        "default": dj_database_url.parse(
            DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60, minimum=0), conn_health_checks=True
        )
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# sql_query tools run through this alias: a dedicated read-only role on Postgres
# (created by `manage.py setup_readonly_role`), the SQLite file opened read-only when embedded.
MCP_SQL_READONLY_ALIAS = "tools_readonly"
MCP_SQL_READONLY_ROLE = env_str("MCP_SQL_READONLY_ROLE", "mcp_readonly")
# Tables the read-only role may SELECT from; nothing else is granted.
MCP_SQL_READONLY_TABLES = env_list("MCP_SQL_READONLY_TABLES", ["users", "products", "orders"])
# Upper bound for any statement of the read-only role (each tool's own timeout applies below it).
MCP_SQL_STATEMENT_TIMEOUT_MS = env_int("MCP_SQL_STATEMENT_TIMEOUT_MS", 30_000, minimum=100)
# Largest JSON result (bytes) a query tool returns in one call; model query tools end the page early there.
MCP_RESULT_MAX_BYTES = env_int("MCP_RESULT_MAX_BYTES", 1_000_000, minimum=1024)
DATABASES[MCP_SQL_READONLY_ALIAS] = readonly_database(
    default=DATABASES["default"], database_url=DATABASE_URL, readonly_url=env_str("MCP_SQL_READONLY_URL"),
    role=MCP_SQL_READONLY_ROLE, password=env_str("MCP_SQL_READONLY_PASSWORD"),
    statement_timeout_ms=MCP_SQL_STATEMENT_TIMEOUT_MS,
    conn_max_age=env_int("MCP_SQL_READONLY_CONN_MAX_AGE", 60, minimum=0),
)

REDIS_URL = env_str("REDIS_URL")
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL") or REDIS_URL
CELERY_EMBEDDED = not CELERY_BROKER_URL
if CELERY_EMBEDDED:
    CELERY_BROKER_URL = "memory://"  # never used: tasks run eagerly in-process
CELERY_TASK_ALWAYS_EAGER = CELERY_EMBEDDED
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A task that is not acknowledged within this window is redelivered to another
# worker (Redis transport). Longer than any task we run.
# Every Redis client (cache and rate limits, lookup caches, live events, sessions, the broker) gives up after
# these timeouts, and a server that failed is not tried again by this process for MCP_REDIS_DOWN_S seconds
# (mcp_tools/redis_client.py): a dead or hung Redis costs one timeout per interval, not one per call.
MCP_REDIS_CONNECT_TIMEOUT_MS = env_int("MCP_REDIS_CONNECT_TIMEOUT_MS", 500, minimum=10)
MCP_REDIS_SOCKET_TIMEOUT_MS = env_int("MCP_REDIS_SOCKET_TIMEOUT_MS", 1000, minimum=10)
MCP_REDIS_DOWN_S = env_int("MCP_REDIS_DOWN_S", 5, minimum=1)
# Redis pub/sub channels are shared by every database number of a server, so two deployments on one Redis
# (say db 0 and db 1) would hear each other's change feeds and session messages. Every channel name starts
# with this prefix; by default the database number of REDIS_URL tells deployments apart.
MCP_REDIS_CHANNEL_PREFIX = env_str("MCP_REDIS_CHANNEL_PREFIX") or "db{}:".format(
    (urlsplit(REDIS_URL).path.strip("/") or "0") if REDIS_URL else "0")
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600, minimum=60),
    "socket_connect_timeout": MCP_REDIS_CONNECT_TIMEOUT_MS / 1000,
    "socket_timeout": MCP_REDIS_SOCKET_TIMEOUT_MS / 1000,
}

if REDIS_URL:
    # Django's Redis cache with one shared client and pool per process (see mcp_tools/cache_backend.py).
    CACHES = {"default": {"BACKEND": "mcp_tools.cache_backend.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# Per-process token/tool lookup caches, invalidated through Redis (mcp_tools/services/lookup_cache.py);
# without REDIS_URL they are off. The TTL bounds staleness only for changes made while Redis was down.
MCP_LOOKUP_CACHE = env_bool("MCP_LOOKUP_CACHE", True)
MCP_LOOKUP_CACHE_TTL_S = env_int("MCP_LOOKUP_CACHE_TTL_S", 60, minimum=1)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
FORMAT_MODULE_PATH = ["mcp_project.formats"]
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["mcp_tools.transports.authentication.ApiTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "UNAUTHENTICATED_USER": None,
    "EXCEPTION_HANDLER": "mcp_tools.transports.errors.rest_exception_handler",
}

# Largest request body the MCP and REST endpoints accept (413 beyond it).
MCP_MAX_BODY_BYTES = env_int("MCP_MAX_BODY_BYTES", 1_000_000, minimum=1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = MCP_MAX_BODY_BYTES
# Deepest nesting of arrays/objects a JSON body may have (400 beyond it): deep nesting costs
# recursion in every layer that walks the arguments (schema validation, redaction, rendering).
MCP_MAX_JSON_DEPTH = env_int("MCP_MAX_JSON_DEPTH", 64, minimum=4)
# Header carrying an API key, besides "Authorization: Bearer".
MCP_API_KEY_HEADER = env_str("MCP_API_KEY_HEADER", "X-API-Key")
# Calls per caller (API token) when the token sets no rate_limit of its own, e.g. 100/m; "" for none.
# Tools may add their own limit (Tool.rate_limit). Counters live in the default cache (Redis when
# REDIS_URL is set, shared by all processes). If it is down, read-only tools run, others are refused.
MCP_DEFAULT_RATE_LIMIT = env_str("MCP_DEFAULT_RATE_LIMIT", "100/m")
if MCP_DEFAULT_RATE_LIMIT and not re.fullmatch(r"\d+/\d*[smhd]", MCP_DEFAULT_RATE_LIMIT):
    raise ImproperlyConfigured(f"MCP_DEFAULT_RATE_LIMIT must look like 100/m, 10/s or 5/10m, got "
                               f"{MCP_DEFAULT_RATE_LIMIT!r}")
RATELIMIT_USE_CACHE = "default"
# Admin login attempts per client IP and per username (429 beyond it); "" disables the throttle.
MCP_ADMIN_LOGIN_RATE_LIMIT = env_str("MCP_ADMIN_LOGIN_RATE_LIMIT", "5/m")
if MCP_ADMIN_LOGIN_RATE_LIMIT and not re.fullmatch(r"\d+/\d*[smhd]", MCP_ADMIN_LOGIN_RATE_LIMIT):
    raise ImproperlyConfigured(f"MCP_ADMIN_LOGIN_RATE_LIMIT must look like 5/m, got {MCP_ADMIN_LOGIN_RATE_LIMIT!r}")
# Default per-call timeout when a tool does not set one.
MCP_DEFAULT_TOOL_TIMEOUT_S = env_int("MCP_DEFAULT_TOOL_TIMEOUT_S", 30, minimum=1)
# HTTP+SSE transport (MCP 2024-11-05, /mcp/sse): seconds between keep-alive comments on an idle stream.
MCP_SSE_PING_INTERVAL_S = env_int("MCP_SSE_PING_INTERVAL_S", 15, minimum=1)
# Items per tools/list (resources/list, prompts/list) page on the HTTP+SSE door; 0 = every item in one page.
# Its clients are older ones that often read only the first page (mistralai's get_tools() does), and the
# list is bounded by what admins define. An endpoint's own page size (admin) takes precedence.
MCP_SSE_PAGE_SIZE = env_int("MCP_SSE_PAGE_SIZE", 0, minimum=0)
# --- MCP Streamable HTTP (/mcp and admin-defined /mcp/<slug>), both protocol eras ---
# Browser origins allowed to call the MCP endpoints (403 otherwise); requests without an Origin
# header (non-browser clients) pass. An entry without a port allows any port of that host.
# The Host header is checked by Django against DJANGO_ALLOWED_HOSTS (400 otherwise).
MCP_ALLOWED_ORIGINS = env_list("MCP_ALLOWED_ORIGINS", ["http://localhost", "http://127.0.0.1", "http://[::1]"])
# Items per page of tools/list, resources/list, prompts/list (cursor pagination).
MCP_PAGE_SIZE = env_int("MCP_PAGE_SIZE", 50, minimum=1)
# A handshake-era session unused this long is gone (404); DELETE ends one at once.
MCP_SESSION_IDLE_S = env_int("MCP_SESSION_IDLE_S", 24 * 3600, minimum=60)
# Calls that may stream (tools/call, prompts/get, resources/read) run on one bounded pool per process
# while the request thread streams their SSE events; beyond it a call gets 503 + Retry-After.
# Keep it BELOW gunicorn's threads (GUNICORN_THREADS, 8): a stream waiting for the client's answer
# holds a gunicorn thread, and the answer arrives as another POST that needs a free one.
MCP_STREAM_WORKERS = env_int("MCP_STREAM_WORKERS", 4, minimum=1)
# How long a handshake-era call waits for the client's answer (elicitation, sampling).
MCP_CLIENT_REQUEST_TIMEOUT_S = env_int("MCP_CLIENT_REQUEST_TIMEOUT_S", 120, minimum=1)
# subscriptions/listen (2026-07-28): open change streams per process (each holds a gunicorn thread; beyond
# it a listen is acknowledged and closed at once), and how long one stream lasts before the client re-listens.
MCP_LISTEN_MAX_STREAMS = env_int("MCP_LISTEN_MAX_STREAMS", 2, minimum=0)
# Held streams (GET /mcp/sse, a session's GET /mcp, subscriptions/listen) each hold a request thread while
# open. Per process, at most MCP_HELD_STREAMS_MAX of all kinds together, never more than the threads minus
# MCP_STREAM_WORKERS minus MCP_THREAD_RESERVE (threads kept for /health and ordinary calls); at most
# MCP_HELD_STREAMS_PER_TOKEN per credential. Beyond a cap: 503 + Retry-After. (transports/held_streams.py)
MCP_THREAD_RESERVE = env_int("MCP_THREAD_RESERVE", 2, minimum=1)
MCP_HELD_STREAMS_MAX = env_int("MCP_HELD_STREAMS_MAX", 1000, minimum=0)
MCP_HELD_STREAMS_PER_TOKEN = env_int("MCP_HELD_STREAMS_PER_TOKEN", 4, minimum=1)
MCP_LISTEN_MAX_S = env_int("MCP_LISTEN_MAX_S", 300, minimum=1)
# Sent to clients as the server's instructions on /mcp (an endpoint has its own).
MCP_INSTRUCTIONS = env_str("MCP_INSTRUCTIONS")
# TEST ONLY: serve the conformance suite's fixtures without authentication at /mcp/conformance.
MCP_CONFORMANCE_FIXTURES = env_bool("MCP_CONFORMANCE_FIXTURES", False)

# Without a mail server configured, e-mails are printed to the console.
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend" if env_str("EMAIL_HOST") else "django.core.mail.backends.console.EmailBackend",
)
EMAIL_HOST = env_str("EMAIL_HOST", "127.0.0.1")
EMAIL_PORT = env_int("EMAIL_PORT", 1025, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10, minimum=1)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "mcp@localhost")

LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
if LOG_LEVEL not in logging.getLevelNamesMapping():
    raise ImproperlyConfigured(f"LOG_LEVEL must be a logging level name, got {LOG_LEVEL!r}")
# json: one JSON object per line (production); plain: readable text for a terminal.
LOG_FORMAT = env_str("LOG_FORMAT", "json").lower()
if LOG_FORMAT not in ("json", "plain"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be json or plain, got {LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "mcp_tools.middleware.RequestIdLogFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        "json": {"()": "mcp_tools.log_format.JsonFormatter"},
    },
    "handlers": {
        # Secret-looking values (password=..., Bearer ..., mcp_ tokens) are scrubbed from the output.
        "console": {"class": "mcp_tools.log_redaction.RedactingStreamHandler", "formatter": LOG_FORMAT,
                    "filters": ["request_id"]},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

if not DEBUG:
    SESSION_COOKIE_HTTPONLY = True
    CSRF_COOKIE_HTTPONLY = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
    X_FRAME_OPTIONS = "DENY"
    SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE

# Webhook notifications are signed with this key (HMAC-SHA256).
MCP_WEBHOOK_SECRET = env_str("MCP_WEBHOOK_SECRET") or SECRET_KEY
# A notification left in 'sending' longer than this (its worker died) may be retried.
NOTIFICATION_LEASE_S = env_int("NOTIFICATION_LEASE_S", 300, minimum=1)
# Temporary delivery failures are retried after base * 2**(attempt-1) seconds (capped), up to the max attempts.
NOTIFICATION_RETRY_BASE_S = env_int("NOTIFICATION_RETRY_BASE_S", 30, minimum=0)
NOTIFICATION_RETRY_MAX_S = env_int("NOTIFICATION_RETRY_MAX_S", 3600, minimum=1)
NOTIFICATION_MAX_ATTEMPTS = env_int("NOTIFICATION_MAX_ATTEMPTS", 6, minimum=1)
# Domain of every notification's Message-ID (<notification.<id>.<created>@domain>), the same on every attempt:
# e-mail delivery is at-least-once, and a repeat keeps its id so receivers can drop it. Default: the sender's domain.
NOTIFICATION_MESSAGE_ID_DOMAIN = env_str("NOTIFICATION_MESSAGE_ID_DOMAIN") or (
    DEFAULT_FROM_EMAIL.rpartition("@")[2].strip(">") or "localhost")
if not re.fullmatch(r"[A-Za-z0-9.-]+", NOTIFICATION_MESSAGE_ID_DOMAIN):
    raise ImproperlyConfigured(f"NOTIFICATION_MESSAGE_ID_DOMAIN must be a domain name, got "
                               f"{NOTIFICATION_MESSAGE_ID_DOMAIN!r}")
# A notification still 'queued' this long after it was due lost its message: the sweeper enqueues it again.
NOTIFICATION_STALE_S = env_int("NOTIFICATION_STALE_S", 600, minimum=1)
# Async tool runs (MCP tasks): how long results are kept, and how often clients should poll.
MCP_TASK_TTL_S = env_int("MCP_TASK_TTL_S", 3600, minimum=1)
MCP_TASK_MAX_TTL_S = env_int("MCP_TASK_MAX_TTL_S", 7 * 24 * 3600, minimum=1)
MCP_TASK_POLL_INTERVAL_MS = env_int("MCP_TASK_POLL_INTERVAL_MS", 1000, minimum=100)
if MCP_TASK_TTL_S > MCP_TASK_MAX_TTL_S:
    raise ImproperlyConfigured("MCP_TASK_TTL_S must not exceed MCP_TASK_MAX_TTL_S")

# Celery workers write a heartbeat this often; readiness and the admin call the fleet dead after MCP_WORKER_STALE_S.
MCP_WORKER_HEARTBEAT_S = env_int("MCP_WORKER_HEARTBEAT_S", 10, minimum=1)
MCP_WORKER_STALE_S = env_int("MCP_WORKER_STALE_S", 30, minimum=2)

# Periodic jobs, run by `celery -A mcp_project beat`.
CELERY_BEAT_SCHEDULE = {
    "requeue-stale-notifications": {"task": "notifications.tasks.requeue_stale_notifications", "schedule": 60.0},
    "cleanup-expired-tasks": {"task": "mcp_tools.tasks.cleanup_expired_tasks", "schedule": 300.0},
    "prune-audit-events": {"task": "mcp_tools.audit_retention.prune_audit_events", "schedule": 3600.0},
}
CELERY_IMPORTS = ["mcp_tools.audit_retention"]
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# Publishing gives up quickly when the broker is down (the caller gets a clear error, the sweeper re-sends).
# One retry: enough to replace a connection the broker dropped (a restart), not to multiply a hung broker's timeout.
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}
# Base URL the demo's internal-API tools (crm_lookup, billing_invoice) call.
MCP_DEMO_API_BASE = env_str("MCP_DEMO_API_BASE", "http://127.0.0.1:8000")

# --- Operations: metrics, audit retention ---------------------------------------------------
# /metrics is served only to these addresses/CIDRs, or to a request bearing METRICS_TOKEN.
METRICS_ALLOWED_IPS = env_list("METRICS_ALLOWED_IPS", ["127.0.0.1/32", "::1/128"])
try:
    METRICS_ALLOWED_NETWORKS = [ipaddress.ip_network(cidr, strict=False) for cidr in METRICS_ALLOWED_IPS]
except ValueError as exc:
    raise ImproperlyConfigured(f"METRICS_ALLOWED_IPS must be IP addresses or CIDR ranges: {exc}") from None
METRICS_TOKEN = env_str("METRICS_TOKEN")
if METRICS_TOKEN and len(METRICS_TOKEN) < 24:
    raise ImproperlyConfigured("METRICS_TOKEN must be at least 24 characters long")
# A Celery worker serves its processes' metrics on this port (0: off); bind address beside it.
CELERY_METRICS_PORT = env_int("CELERY_METRICS_PORT", 0, minimum=0)
CELERY_METRICS_ADDR = env_str("CELERY_METRICS_ADDR", "127.0.0.1")
# Audit events older than this many days are deleted by `prune_audit` / the beat job (0: keep forever).
MCP_AUDIT_RETENTION_DAYS = env_int("MCP_AUDIT_RETENTION_DAYS", 90, minimum=0)
# Connections page (mcp_tools/services/connections.py): refused requests and connected clients are kept this
# many days, and buffered rows are written every this many milliseconds (0: at the end of each request).
MCP_CONNECTION_LOG_RETENTION_DAYS = env_int("MCP_CONNECTION_LOG_RETENTION_DAYS", 7, minimum=1)
MCP_CONNECTION_LOG_FLUSH_MS = env_int("MCP_CONNECTION_LOG_FLUSH_MS", 2000, minimum=0)
# Where the beat job archives pruned events as JSON lines before deleting them (empty: no archive).
MCP_AUDIT_ARCHIVE_DIR = env_str("MCP_AUDIT_ARCHIVE_DIR")

# OAuth 2.1: django-oauth-toolkit is the bundled authorization server; this
# server is the resource. Public URL of this server (scheme://host[:port]) used
# as the token audience; derived from each request when empty.
MCP_PUBLIC_URL = env_str("MCP_PUBLIC_URL")
MCP_OAUTH_REQUIRE_AUDIENCE = env_bool("MCP_OAUTH_REQUIRE_AUDIENCE", True)
MCP_OAUTH_DEFAULT_SCOPES = env_list("MCP_OAUTH_DEFAULT_SCOPES", [])
LOGIN_URL = "/admin/login/"
OAUTH2_PROVIDER = {
    "SCOPES_BACKEND_CLASS": "mcp_tools.oauth.ToolScopes",
    "PKCE_REQUIRED": True,
    "COMPLIANT_BCP_RFC9700_PKCE_METHOD": True,
    "COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PASSWORD_GRANT": True,
    "COMPLIANT_BCP_RFC9700_ACCESS_TOKEN_TRANSPORT": True,
    "ACCESS_TOKEN_EXPIRE_SECONDS": env_int("MCP_OAUTH_ACCESS_TOKEN_SECONDS", 3600, minimum=60),
    "ROTATE_REFRESH_TOKEN": True,
    # Prefixed tokens, recognisable in free text so they are redacted by value (mcp_tools/token_shapes.py).
    "ACCESS_TOKEN_GENERATOR": "mcp_tools.token_shapes.oauth_access_token_generate",
    "REFRESH_TOKEN_GENERATOR": "mcp_tools.token_shapes.oauth_refresh_token_generate",
    "OAUTH2_RESPONSE_TYPES_SUPPORTED": ["code"],
    "OAUTH2_GRANT_TYPES_SUPPORTED": ["authorization_code", "client_credentials", "refresh_token"],
    "OAUTH2_PROTECTED_RESOURCE_NAME": "MCP tool server",
}

# CORS for browser-based clients: only these origins (the seed's allow_origins); none by default.
CORS_ALLOWED_ORIGINS = env_list("MCP_CORS_ALLOWED_ORIGINS", [])
CORS_URLS_REGEX = r"^/(mcp|o|\.well-known)(/.*)?$"
CORS_ALLOW_HEADERS = ["authorization", "content-type", "x-api-key", "mcp-session-id", "mcp-protocol-version",
                      "mcp-method", "mcp-name", "last-event-id", "x-request-id"]
CORS_EXPOSE_HEADERS = ["mcp-session-id", "www-authenticate", "x-request-id", "retry-after"]
# Agent traffic (/mcp…, /o/…) only from these CIDR ranges (the seed's ALLOWED_IPS); empty allows all.
MCP_ALLOWED_IPS = env_list("MCP_ALLOWED_IPS", [])
for _cidr in MCP_ALLOWED_IPS:
    try:
        ipaddress.ip_network(_cidr, strict=False)
    except ValueError:
        raise ImproperlyConfigured(f"MCP_ALLOWED_IPS: {_cidr!r} is not an IP address or CIDR range") from None
