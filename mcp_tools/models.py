from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone

TOOL_NAME_VALIDATOR = RegexValidator(
    r"^[A-Za-z0-9_.-]{1,128}$", "Use 1-128 characters: letters, digits, '_', '-' or '.'."
)
RATE_LIMIT_VALIDATOR = RegexValidator(
    r"^\d+/\d*[smhd]$", "Write a rate like 10/m, 100/h or 5/10s (count/period; s, m, h or d)."
)


class Tool(models.Model):
    class Execution(models.TextChoices):
        SYNC = "sync", "Synchronous (answer in the request)"
        ASYNC = "async", "Asynchronous (run on a Celery worker)"

    name = models.CharField(max_length=128, unique=True, validators=[TOOL_NAME_VALIDATOR])
    title = models.CharField(max_length=200, blank=True)
    description = models.TextField()
    input_schema = models.JSONField(default=dict, help_text="JSON Schema (Draft 2020-12) of the arguments.")
    output_schema = models.JSONField(null=True, blank=True, help_text="Optional JSON Schema of the result.")
    annotations = models.JSONField(
        default=dict, blank=True, help_text="MCP hints: readOnlyHint, destructiveHint, idempotentHint, openWorldHint."
    )
    kind = models.CharField(max_length=64, help_text="Handler kind that runs this tool.")
    config = models.JSONField(default=dict, blank=True, help_text="Handler configuration, checked against the kind.")
    enabled = models.BooleanField(default=True, db_index=True)
    execution = models.CharField(max_length=8, choices=Execution.choices, default=Execution.SYNC)
    timeout_s = models.PositiveIntegerField(default=30, help_text="Seconds before a call is abandoned.")
    rate_limit = models.CharField(max_length=32, blank=True, validators=[RATE_LIMIT_VALIDATOR])
    requires_confirmation = models.BooleanField(
        default=False, help_text="Ask the user to confirm (elicitation) before running."
    )
    sensitive_fields = models.JSONField(
        default=list, blank=True, help_text="Argument names redacted from audit events and logs."
    )
    version = models.PositiveIntegerField(default=1, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class ToolRevision(models.Model):
    """A tool's whole definition at one version, so any silent change to what it does shows.

    ``config`` is stored masked: secret header values never reach the history;
    ``secrets_changed`` names the secret headers whose value changed in this version.
    """

    tool = models.ForeignKey(Tool, on_delete=models.CASCADE, related_name="revisions")
    version = models.PositiveIntegerField()
    name = models.CharField(max_length=128)
    title = models.CharField(max_length=200, blank=True)
    description = models.TextField()
    input_schema = models.JSONField(default=dict)
    output_schema = models.JSONField(null=True, blank=True)
    annotations = models.JSONField(default=dict, blank=True)
    kind = models.CharField(max_length=64, blank=True)
    config = models.JSONField(default=dict, blank=True)
    secrets_changed = models.JSONField(default=list, blank=True)
    enabled = models.BooleanField(null=True, blank=True)
    execution = models.CharField(max_length=8, blank=True)
    timeout_s = models.PositiveIntegerField(null=True, blank=True)
    rate_limit = models.CharField(max_length=32, blank=True)
    requires_confirmation = models.BooleanField(null=True, blank=True)
    sensitive_fields = models.JSONField(default=list, blank=True)
    changed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-version"]
        constraints = [models.UniqueConstraint(fields=["tool", "version"], name="unique_tool_revision")]

    def __str__(self):
        return f"{self.name} v{self.version}"


class ApiToken(models.Model):
    """A bearer credential for agents. Only a salted, peppered hash of the secret is kept."""

    name = models.CharField(max_length=100)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="api_tokens"
    )
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    salt = models.CharField(max_length=32, editable=False)
    secret_hash = models.CharField(max_length=64, editable=False)
    all_tools = models.BooleanField(
        default=False, help_text="Allow every enabled tool. Leave off and pick tools below for least privilege."
    )
    allowed_tools = models.ManyToManyField(Tool, blank=True, related_name="tokens")
    scopes = models.JSONField(default=list, blank=True)
    allowed_ips = models.JSONField(default=list, blank=True, help_text="CIDR ranges; empty means any address.")
    rate_limit = models.CharField(max_length=32, blank=True, validators=[RATE_LIMIT_VALIDATOR])
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API token"

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    def is_expired(self, now=None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or timezone.now())


class AuditEvent(models.Model):
    """One row per tool invocation, whatever its outcome. Append-only."""

    class Outcome(models.TextChoices):
        OK = "ok", "OK"
        QUEUED = "queued", "Queued"
        TOOL_ERROR = "tool_error", "Tool error"
        DENIED = "denied", "Denied"
        RATE_LIMITED = "rate_limited", "Rate limited"
        INVALID = "invalid", "Invalid request"
        TIMEOUT = "timeout", "Timeout"
        INTERNAL_ERROR = "internal_error", "Internal error"

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    token = models.ForeignKey(ApiToken, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    token_prefix = models.CharField(max_length=16, blank=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    tool = models.ForeignKey(Tool, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    tool_name = models.CharField(max_length=128)
    transport = models.CharField(max_length=32, help_text="rest, mcp, stdio, admin …")
    method = models.CharField(max_length=64, default="tools/call")
    arguments = models.JSONField(default=dict, blank=True)
    argument_bytes = models.PositiveIntegerField(default=0)
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    error_code = models.CharField(max_length=32, blank=True)
    error_message = models.TextField(blank=True)
    duration_ms = models.FloatField(default=0)
    request_id = models.CharField(max_length=64, db_index=True)
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    protocol_version = models.CharField(max_length=16, blank=True)
    task_id = models.CharField(max_length=64, blank=True)
    confirmation = models.CharField(
        max_length=16, blank=True,
        help_text="The user's answer when the tool asked for confirmation: accept, decline or cancel.")

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["tool_name", "created_at"], name="audit_tool_time"),
            models.Index(fields=["outcome", "created_at"], name="audit_outcome_time"),
            models.Index(fields=["token", "created_at"], name="audit_token_time"),
        ]

    def __str__(self):
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.tool_name} {self.outcome}"


class Resource(models.Model):
    uri = models.CharField(max_length=500, unique=True)
    name = models.CharField(max_length=200)
    title = models.CharField(max_length=200, blank=True)
    description = models.TextField(blank=True)
    mime_type = models.CharField(max_length=100, default="text/plain")
    text = models.TextField(blank=True)
    enabled = models.BooleanField(default=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["uri"]

    def __str__(self):
        return self.uri


class Prompt(models.Model):
    name = models.CharField(max_length=128, unique=True, validators=[TOOL_NAME_VALIDATOR])
    title = models.CharField(max_length=200, blank=True)
    description = models.TextField(blank=True)
    arguments = models.JSONField(
        default=list, blank=True, help_text='List of {"name", "description", "required"} objects.'
    )
    template = models.TextField(help_text="Message text; {argument} placeholders are filled in.")
    enabled = models.BooleanField(default=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


def _new_task_id() -> str:
    import uuid

    return str(uuid.uuid4())


class ToolTask(models.Model):
    """One asynchronous tool run (an MCP task): queued by the pipeline, run by a Celery worker.

    ``arguments`` holds the real arguments only until a worker takes the task (the
    audit event keeps a redacted copy). ``result`` is the tool's result, or None.
    Rows are deleted by the cleanup job once ``expires_at`` has passed.
    """

    class Status(models.TextChoices):
        WORKING = "working", "Working"
        INPUT_REQUIRED = "input_required", "Input required"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    TERMINAL = (Status.COMPLETED, Status.FAILED, Status.CANCELLED)

    id = models.CharField(primary_key=True, max_length=64, default=_new_task_id, editable=False)
    tool = models.ForeignKey(Tool, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    tool_name = models.CharField(max_length=128)
    token = models.ForeignKey(ApiToken, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE,
                             related_name="+")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.WORKING, db_index=True)
    status_message = models.CharField(max_length=500, blank=True)
    progress = models.JSONField(
        null=True, blank=True, help_text="Last progress the tool reported: {progress, total, message}.")
    progress_token = models.JSONField(
        null=True, blank=True, help_text="The client's progressToken from the task-augmented call; valid for the "
                                         "task's lifetime, so relayed progress carries it.")
    session_key = models.CharField(
        max_length=32, blank=True, help_text="Digest of the MCP session that created the task (handshake era): "
                                             "that session's GET stream hears the task's status and progress.")
    arguments = models.JSONField(null=True, blank=True)
    result = models.JSONField(null=True, blank=True)
    outcome = models.CharField(max_length=16, blank=True, help_text="Audit outcome of the finished run.")
    error_code = models.CharField(max_length=32, blank=True)
    error_message = models.TextField(blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    transport = models.CharField(max_length=32, blank=True)
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    protocol_version = models.CharField(max_length=16, blank=True)
    ttl_s = models.PositiveIntegerField()
    poll_interval_ms = models.PositiveIntegerField(default=1000)
    expires_at = models.DateTimeField(db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["token", "created_at"], name="task_token_time")]

    def __str__(self):
        return f"{self.tool_name} task {self.id} ({self.status})"

    @property
    def is_terminal(self) -> bool:
        return self.status in self.TERMINAL


ENDPOINT_SLUG_VALIDATOR = RegexValidator(
    r"^(?!(v1|sse|messages|conformance)$)[a-z0-9][a-z0-9_-]{0,63}$",
    "Use 1-64 lowercase letters, digits, '-' or '_' (v1, sse, messages and conformance are taken).",
)


class McpEndpoint(models.Model):
    """A named MCP server at /mcp/<slug>: a chosen set of tools, resources and prompts.

    The default endpoint /mcp needs no row: it serves every tool the caller's token may use.
    """

    slug = models.CharField(max_length=64, unique=True, validators=[ENDPOINT_SLUG_VALIDATOR],
                            help_text="Served at /mcp/<slug>.")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, help_text="For administrators; not sent to clients.")
    instructions = models.TextField(blank=True, help_text="Sent to MCP clients as the server's instructions.")
    all_tools = models.BooleanField(default=False, help_text="Serve every tool the caller's token may use.")
    tools = models.ManyToManyField(Tool, blank=True, related_name="mcp_endpoints")
    all_resources = models.BooleanField(default=False)
    resources = models.ManyToManyField(Resource, blank=True, related_name="mcp_endpoints")
    all_prompts = models.BooleanField(default=False)
    prompts = models.ManyToManyField(Prompt, blank=True, related_name="mcp_endpoints")
    requires_auth = models.BooleanField(
        default=True, help_text="Off: anyone who can reach the server may call the tools listed here.")
    page_size = models.PositiveIntegerField(
        null=True, blank=True,
        help_text="Items per tools/list, resources/list and prompts/list page. Empty: the server default "
                  "(MCP_PAGE_SIZE; on HTTP+SSE, MCP_SSE_PAGE_SIZE). 0: everything in one page, for clients "
                  "that read only the first page (Mistral's get_tools()).")
    enabled = models.BooleanField(default=True, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["slug"]
        verbose_name = "MCP endpoint"

    def __str__(self):
        return f"/mcp/{self.slug}"

    def clean(self):
        from django.core.exceptions import ValidationError

        if not self.requires_auth and self.all_tools:
            raise ValidationError({"all_tools": "An endpoint without authentication must list its tools "
                                                "one by one; 'all tools' would publish every tool."})


class McpSession(models.Model):
    """A handshake-era (2025-03-26 .. 2025-11-25) MCP session, visible to every worker.

    ``state`` is the protocol layer's SessionState. A session belongs to the credential that
    opened it (``principal``; empty on an endpoint without authentication); ``ended_at`` is set
    by DELETE, after which the id answers 404.
    """

    id = models.CharField(primary_key=True, max_length=64, editable=False)
    endpoint = models.CharField(max_length=64, blank=True, help_text="Endpoint slug; empty for /mcp.")
    principal = models.CharField(max_length=80, blank=True, help_text="Who opened it, e.g. 'api-token:12'.")
    state = models.JSONField(default=dict)
    protocol_version = models.CharField(max_length=16, blank=True)
    client_name = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now, db_index=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-last_seen_at"]
        verbose_name = "MCP session"

    def __str__(self):
        return f"{self.id[:8]}… ({self.client_name or 'client'}, {self.protocol_version})"


class RateLimitCounter(models.Model):
    """One fixed-window rate-limit bucket, counted in the database when the cache is not Redis.

    Every server process of a deployment shares the database, so limits hold across processes
    in the embedded mode too (services/ratelimit.py counts with one atomic upsert per bucket).
    """

    key = models.CharField(primary_key=True, max_length=255)
    count = models.PositiveIntegerField(default=0)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        verbose_name = "rate-limit counter"


class ConnectionRefusal(models.Model):
    """Requests refused before any tool ran, for the admin's Connections page.

    One row stands for ``count`` identical refusals (same reason, client, address, path)
    seen between ``first_at`` and ``last_at``: a flood costs one row per flush, not one per
    request. Only the reason code is stored; its plain words and fix live in
    ``services.connections.REASONS``. Never a secret or a request body.
    """

    first_at = models.DateTimeField(default=timezone.now)
    last_at = models.DateTimeField(default=timezone.now, db_index=True)
    count = models.PositiveIntegerField(default=1)
    reason = models.CharField(max_length=40, db_index=True)
    http_status = models.PositiveSmallIntegerField(default=0)
    transport = models.CharField(max_length=24, help_text="streamable-http, http+sse, rest, oauth …")
    method = models.CharField(max_length=8, blank=True)
    path = models.CharField(max_length=200)
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    token_prefix = models.CharField(max_length=40, blank=True, help_text="Token prefix or OAuth client; never a secret.")
    client_name = models.CharField(max_length=100, blank=True)
    client_version = models.CharField(max_length=40, blank=True)
    detail = models.CharField(max_length=300, blank=True, help_text="The message the client was sent.")

    class Meta:
        verbose_name = "refused connection"
        verbose_name_plural = "connections"
        ordering = ["-last_at"]


class ClientConnection(models.Model):
    """A client seen connecting successfully: one row per credential, client name and transport."""

    credential = models.CharField(max_length=40, blank=True, help_text="Token prefix or OAuth client; empty: public.")
    client_name = models.CharField(max_length=100, blank=True)
    transport = models.CharField(max_length=24)
    client_version = models.CharField(max_length=40, blank=True)
    protocol_version = models.CharField(max_length=16, blank=True)
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    first_seen = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        verbose_name = "connected client"
        ordering = ["-last_seen"]
        constraints = [models.UniqueConstraint(fields=["credential", "client_name", "transport"],
                                               name="client_connection_unique")]
