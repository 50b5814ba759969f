"""The product's settings plus the bench-only URLs (the floor view, held-connection views).

Same middleware, database and server configuration as production; only ROOT_URLCONF differs.
"""
from mcp_project.settings import *  # noqa: F401,F403

ROOT_URLCONF = "scripts.bench.bench_urls"
