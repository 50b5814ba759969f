"""Admin forms that refuse a broken tool or token before it is saved."""
import ipaddress

from django import forms

from .admin_schema_form import (KindConfigWidget, PrettyJSONField, SchemaFormWidget, config_pruned, form_schema,
                                problems_by_field)
from .kinds.base import _REGISTRY, config_problems, get_kind, kind_choices
from .models import ApiToken, McpEndpoint, Tool
from .services.schemas import input_schema_problems, instance_problems, schema_problems
from .services.secret_config import config_masked, config_unmasked

ANNOTATION_KEYS = {"title", "readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint"}


NEW_TOOL_INPUT_SCHEMA = {"type": "object", "properties": {}, "required": [], "additionalProperties": False}


def kind_form_schemas() -> dict[str, dict]:
    """Every registered kind's settings schema, ready for the settings form."""
    return {name: form_schema(kind.config_schema) for name, kind in _REGISTRY.items()}


class ToolAdminForm(forms.ModelForm):
    input_schema = PrettyJSONField(
        required=False, label="Input schema",
        help_text='JSON Schema (Draft 2020-12) of the arguments agents send: an object, e.g. {"type": "object", '
                  '"properties": {"email": {"type": "string", "description": "Customer e-mail"}}, '
                  '"required": ["email"]}. Names in it are the placeholders a kind\'s settings may use.')
    output_schema = PrettyJSONField(
        required=False, label="Output schema",
        help_text="Optional JSON Schema of the result (an object). With one, agents also get the result as "
                  "structuredContent.")
    annotations = PrettyJSONField(
        required=False, initial=dict, widget=forms.Textarea(attrs={"class": "mcp-json", "rows": 4, "spellcheck": "false"}),
        help_text="MCP hints, e.g. {\"readOnlyHint\": true}: title, readOnlyHint, destructiveHint, idempotentHint, "
                  "openWorldHint.")
    sensitive_fields = PrettyJSONField(
        required=False, initial=list, widget=forms.Textarea(attrs={"class": "mcp-json", "rows": 2, "spellcheck": "false"}),
        help_text='Argument names redacted from audit events and logs, e.g. ["password"].')

    class Meta:
        model = Tool
        fields = "__all__"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "kind" in self.fields:
            self.fields["kind"] = forms.ChoiceField(
                choices=[("", "---------")] + kind_choices(),
                help_text="What the tool does when called. Choose it first: the settings below follow it.")
        if "config" in self.fields:
            kind = (self.data.get(self.add_prefix("kind")) if self.is_bound else None) \
                or self.initial.get("kind") or self.instance.kind or ""
            self.fields["config"] = forms.JSONField(
                required=False, label="Settings",
                help_text="The chosen kind's settings. Blank optional settings take their defaults.",
                widget=KindConfigWidget(kind_schemas=kind_form_schemas(), kind=kind))
        if "input_schema" in self.fields:
            self.fields["input_schema"].help_text = (
                "JSON Schema of the arguments, validated by the dialect its $schema declares (2020-12 when "
                "absent; 2019-09, draft-07, -06, -04 accepted).")
        for name in ("input_schema", "output_schema"):
            if name in self.fields:
                self.fields[name].required = False
                self.fields[name].help_text += (" Generated from the settings for kinds that derive it "
                                                "(model query): what you type there is replaced on save.")
        if self.instance.pk and isinstance(self.instance.config, dict):
            # Upstream secrets are never sent back to the browser; the mask keeps the stored value.
            self.initial["config"] = config_masked(get_kind(self.instance.kind), self.instance.config)
        elif not self.instance.pk:
            self.initial.setdefault("input_schema", NEW_TOOL_INPUT_SCHEMA)

    def _kind_derives_schemas(self) -> bool:
        kind = get_kind(self.data.get("kind") or self.instance.kind or "")
        return kind is not None and kind.derives_schemas

    def clean_input_schema(self):
        schema = self.cleaned_data.get("input_schema")
        if self._kind_derives_schemas():
            return schema  # replaced in clean() by the schema generated from the config
        if schema is None or schema == "":
            raise forms.ValidationError('Give the input schema: a JSON object such as {"type": "object", '
                                        '"properties": {}}.')
        if not isinstance(schema, dict):
            raise forms.ValidationError(
                f"The input schema must be a JSON object, not {type(schema).__name__ if schema != [] else 'a list'}"
                ': e.g. {"type": "object", "properties": {"email": {"type": "string"}}}.')
        problems = input_schema_problems(schema)
        if problems:
            raise forms.ValidationError(problems)
        return schema

    def clean_output_schema(self):
        schema = self.cleaned_data.get("output_schema")
        if schema in (None, {}) or self._kind_derives_schemas():
            return None
        problems = schema_problems(schema)
        if not problems and schema.get("type") != "object":
            problems = ['An output schema must describe an object: set "type": "object".']
        if problems:
            raise forms.ValidationError(problems)
        return schema

    def clean_annotations(self):
        annotations = self.cleaned_data.get("annotations") or {}
        if not isinstance(annotations, dict):
            raise forms.ValidationError("Annotations must be a JSON object.")
        unknown = set(annotations) - ANNOTATION_KEYS
        if unknown:
            raise forms.ValidationError(f"Unknown annotation(s): {', '.join(sorted(unknown))}.")
        for key, value in annotations.items():
            if key != "title" and not isinstance(value, bool):
                raise forms.ValidationError(f"{key} must be true or false.")
        return annotations

    def clean_sensitive_fields(self):
        value = self.cleaned_data.get("sensitive_fields") or []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise forms.ValidationError('Give a JSON list of argument names, e.g. ["password"].')
        return value

    def clean(self):
        cleaned = super().clean()
        kind = get_kind(cleaned.get("kind") or "")
        config = cleaned.get("config") or {}
        if kind is not None and isinstance(config, dict):
            config = cleaned["config"] = config_pruned(config, kind.config_schema)
        if kind is not None and isinstance(config, dict) and self.instance.pk:
            config = cleaned["config"] = config_unmasked(kind, config, self.instance.config or {})
        if kind is not None:
            if not isinstance(config, dict):
                self.add_error("config", "The settings must be a JSON object.")
                return cleaned
            input_schema = cleaned.get("input_schema")
            problems = instance_problems(kind.config_schema, config)
            extra = [] if problems else config_problems(
                kind, config, input_schema=input_schema if isinstance(input_schema, dict) else None)
            if problems or extra:
                self._config_problems(kind, config, extra)
                return cleaned
            derived = kind.derived_schemas(config)
            if derived is not None:
                # Generated from the config: what the admin sees after saving is what agents get.
                cleaned["input_schema"], cleaned["output_schema"] = derived
                for name in ("input_schema", "output_schema"):
                    self.errors.pop(name, None)
            if kind.fixed_annotations:
                cleaned["annotations"] = {**(cleaned.get("annotations") or {}), **kind.fixed_annotations}
        return cleaned

    def _config_problems(self, kind, config, extra):
        """Show each problem next to the setting it names; the rest above the settings."""
        error_map, loose = problems_by_field(kind.config_schema, config, extra)
        widget = self.fields["config"].widget
        if error_map and hasattr(widget, "add_error"):
            widget.add_error(error_map)
        placed = [f"{key.replace('§', '.')}: {message}" for key, messages in error_map.items() for message in messages]
        self.add_error("config", forms.ValidationError(
            loose + ([f"Fix the settings marked below ({'; '.join(placed)})."] if placed else [])))


class ApiTokenAdminForm(forms.ModelForm):
    class Meta:
        model = ApiToken
        fields = ["name", "owner", "all_tools", "allowed_tools", "scopes", "allowed_ips", "rate_limit",
                  "expires_at"]
        help_texts = {
            "scopes": 'Labels kept with the token for your own records, e.g. ["billing"]. What the token may '
                      "call is decided by \"All tools\" and \"Allowed tools\"; OAuth scopes (tool:&lt;name&gt;, "
                      "mcp:tools) apply to OAuth access tokens, not to these.",
            "allowed_tools": "The tools this token may list and call (least privilege). Ignored when "
                             "\"All tools\" is on.",
            "rate_limit": "Calls allowed per period for this token, e.g. 60/m; empty means the server default.",
            "expires_at": "After this moment the token no longer authenticates. Empty: it never expires.",
            "name": "Who or what uses it, e.g. \"billing agent (production)\".",
        }

    def clean_allowed_ips(self):
        value = self.cleaned_data.get("allowed_ips") or []
        if not isinstance(value, list):
            raise forms.ValidationError('Give a JSON list of CIDR ranges, e.g. ["10.0.0.0/8"].')
        for cidr in value:
            try:
                ipaddress.ip_network(str(cidr), strict=False)
            except ValueError:
                raise forms.ValidationError(f"'{cidr}' is not an IP address or CIDR range.") from None
        return value




class McpEndpointAdminForm(forms.ModelForm):
    class Meta:
        model = McpEndpoint
        fields = "__all__"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "slug" in self.fields:
            # The admin renders help text as HTML: the placeholder must be escaped to show.
            self.fields["slug"].help_text = "Served at /mcp/&lt;slug&gt;, e.g. /mcp/support for the slug support."


class ToolTryForm(forms.Form):
    """The "Try it" arguments: a form built from the tool's input schema (raw JSON when it has no properties)."""

    def __init__(self, *args, tool: Tool, **kwargs):
        super().__init__(*args, **kwargs)
        self.tool = tool
        schema = tool.input_schema if isinstance(tool.input_schema, dict) else {}
        if schema.get("properties"):
            widget = SchemaFormWidget(schema=schema)
        else:
            widget = forms.Textarea(attrs={"class": "mcp-json", "rows": 6, "spellcheck": "false"})
        self.fields["arguments"] = forms.JSONField(
            required=False, initial=dict, widget=widget, label="Arguments",
            help_text="Checked against the input schema by the server, exactly as an agent's call is.")
        if tool.requires_confirmation:
            self.fields["confirm"] = forms.BooleanField(
                required=False, label="I confirm this call",
                help_text="This tool asks a person to confirm each call; unticked, the call is refused.")

    def clean_arguments(self):
        arguments = self.cleaned_data.get("arguments")
        if arguments in (None, ""):
            return {}
        # Optional fields left blank in the form are not sent, as an agent would leave them out.
        return config_pruned(arguments, self.tool.input_schema or {})
