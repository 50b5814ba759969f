import json
import logging

from django.core.management.base import BaseCommand, CommandError

from ...doctor import Doctor, render_text


class Command(BaseCommand):
    help = ("Walk what an MCP client does against a server (DNS, TCP, TLS, /health, authentication and OAuth "
            "discovery, Origin, both protocol eras, the GET stream, HTTP+SSE, one tools/call) and say, for each "
            "step that fails, the likely cause and the fix. Exit status 0 only when no step failed.")

    def add_arguments(self, parser):
        parser.add_argument("url", help="The MCP endpoint, e.g. https://mcp.example.com/mcp")
        credentials = parser.add_mutually_exclusive_group()
        credentials.add_argument("--token", help="Sent as 'Authorization: Bearer TOKEN'.")
        credentials.add_argument("--header", action="append", default=[], metavar="'NAME: VALUE'",
                                 help="A header to send with every request (repeatable), e.g. an API-key header.")
        parser.add_argument("--tool", help="Call this tool (default: a read-only tool without required arguments).")
        parser.add_argument("--arguments", default="{}", help="JSON object of arguments for --tool.")
        parser.add_argument("--timeout", type=float, default=10.0, help="Seconds per network operation.")
        parser.add_argument("--insecure", action="store_true", help="Do not verify TLS certificates.")
        parser.add_argument("--json", action="store_true", help="Print the report as JSON.")

    def handle(self, *args, url, token, header, tool, arguments, timeout, insecure, **options):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        for item in header:
            name, sep, value = item.partition(":")
            if not sep or not name.strip():
                raise CommandError(f"--header must look like 'Name: value', got {item!r}")
            headers[name.strip()] = value.strip()
        try:
            tool_arguments = json.loads(arguments)
        except ValueError as exc:
            raise CommandError(f"--arguments is not JSON: {exc}") from None
        if not isinstance(tool_arguments, dict):
            raise CommandError("--arguments must be a JSON object")
        # Their per-request INFO lines (and the SDK's teardown noise) would bury the report; failures are in it.
        logging.getLogger("httpx").setLevel(logging.WARNING)
        logging.getLogger("httpx2").setLevel(logging.WARNING)
        logging.getLogger("mcp").setLevel(logging.CRITICAL)
        report = Doctor(url, headers=headers, tool=tool, arguments=tool_arguments, timeout=timeout,
                        verify=not insecure).run()
        self.stdout.write(json.dumps(report.as_json(), indent=2) if options["json"] else render_text(report))
        if not report.ok:
            raise SystemExit(1)

