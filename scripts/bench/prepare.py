"""Prepare the bench database (never the test or dev one): migrate, seed, a token, optional extra tools.

python -m scripts.bench.prepare --reset            drop/create the database, migrate, seed, print a token (JSON)
python -m scripts.bench.prepare --extra-tools 1000 add that many echo tools (for tools/list)
"""
import argparse
import json
import os
import sys
from urllib.parse import urlparse

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "scripts.bench.bench_settings")


def reset_database(url: str) -> None:
    import psycopg

    parsed = urlparse(url)
    name = parsed.path.lstrip("/")
    if not name.startswith("mcp_bench"):
        raise SystemExit(f"refusing to reset {name!r}: the bench only resets databases named mcp_bench*")
    admin = parsed._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reset", action="store_true")
    parser.add_argument("--extra-tools", type=int, default=0)
    parser.add_argument("--token", action="store_true", help="issue another bench token")
    args = parser.parse_args()
    if args.reset:
        reset_database(os.environ["DATABASE_URL"])
    import django

    django.setup()
    from django.core.management import call_command

    from demo_company.seed import seed_company, seed_resources_and_prompts, seed_tools
    from mcp_tools.models import Tool
    from mcp_tools.services.tokens import token_issue

    out = {}
    if args.reset:
        call_command("migrate", interactive=False, verbosity=0)
        try:  # the sql_query tools' read-only role, where the product has it
            call_command("setup_readonly_role", verbosity=0)
        except Exception as exc:  # noqa: BLE001 - reported, the SQL target then shows errors
            print(f"setup_readonly_role failed: {exc}", file=sys.stderr)
        seed_company()
        seed_tools("http://127.0.0.1:9")
        seed_resources_and_prompts()
        # Rate limiting on, set far above what the bench sends, so the limiter runs but never refuses.
        Tool.objects.filter(name__in=["echo", "get_customer_by_email"]).update(rate_limit="100000000/m")
        out["token"] = token_issue(name="bench", all_tools=True, rate_limit="100000000/m").secret
        from demo_company.models import Customer

        out["email"] = Customer.objects.order_by("pk").values_list("email", flat=True).first()
    if args.token:
        out["token"] = token_issue(name="bench", all_tools=True, rate_limit="100000000/m").secret
    if args.extra_tools:
        echo = Tool.objects.get(name="echo")
        existing = Tool.objects.filter(name__startswith="bench_tool_").count()
        Tool.objects.bulk_create([
            Tool(name=f"bench_tool_{i:04d}", title=f"Bench tool {i}", description=f"Echo tool number {i} for the "
                 "tools/list benchmark.", input_schema=echo.input_schema, kind="echo", config={})
            for i in range(existing, args.extra_tools)
        ])
        # bulk_create sends no post_save: tell the running servers' lookup caches, as product code must.
        from mcp_tools.services.lookup_cache import lookup_cache_bump

        lookup_cache_bump()
        out["tools"] = Tool.objects.count()
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
