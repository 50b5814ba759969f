"""Admin forms that refuse a broken tool or token before it is saved."""
import ipaddress

from django import forms

from .kinds.base import config_problems, get_kind, kind_choices
from .models import ApiToken, Tool
from .services.schemas import input_schema_problems, instance_problems, schema_problems
from .services.secret_config import config_masked, config_unmasked

ANNOTATION_KEYS = {"title", "readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint"}


CONFIG_HELP = (
    "Handler configuration, checked against the kind. sql_query: a fixed \"query\" writes placeholders as "
    "%(name)s (each a property of the input schema; a literal % as %%) and is planned by the database on save "
    "with every placeholder NULL; without one, the caller's SELECT comes from the \"query_argument\" property. "
    "http_request: \"path\" starts with '/', each {placeholder} value becomes one percent-encoded segment "
    "('.', '..' and empty values refused); a base_url on a loopback or private address needs an "
    "\"allowed_hosts\" entry; secret_headers values are scrubbed from responses when echoed as sent, in "
    "another letter case, percent-encoded or base64, not when hashed or otherwise transformed."
)


class ToolAdminForm(forms.ModelForm):
    class Meta:
        model = Tool
        fields = "__all__"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "kind" in self.fields:
            self.fields["kind"] = forms.ChoiceField(choices=kind_choices(), help_text=self.fields["kind"].help_text)
        if "config" in self.fields:
            self.fields["config"].help_text = CONFIG_HELP
        if "input_schema" in self.fields:
            self.fields["input_schema"].help_text = (
                "JSON Schema of the arguments, validated by the dialect its $schema declares (2020-12 when "
                "absent; 2019-09, draft-07, -06, -04 accepted).")
        for name in ("input_schema", "output_schema"):
            if name in self.fields:
                self.fields[name].required = False
                self.fields[name].help_text += (" Generated from the config for kinds that derive it "
                                                "(model query): what you type there is replaced on save.")
        if self.instance.pk and isinstance(self.instance.config, dict):
            # Upstream secrets are never sent back to the browser; the mask keeps the stored value.
            self.initial["config"] = config_masked(get_kind(self.instance.kind), self.instance.config)

    def _kind_derives_schemas(self) -> bool:
        kind = get_kind(self.data.get("kind") or self.instance.kind or "")
        return kind is not None and kind.derives_schemas

    def clean_input_schema(self):
        schema = self.cleaned_data.get("input_schema")
        if self._kind_derives_schemas():
            return schema  # replaced in clean() by the schema generated from the config
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
        if kind is not None and isinstance(config, dict) and self.instance.pk:
            config = cleaned["config"] = config_unmasked(kind, config, self.instance.config or {})
        if kind is not None:
            if not isinstance(config, dict):
                self.add_error("config", "The configuration must be a JSON object.")
                return cleaned
            input_schema = cleaned.get("input_schema")
            problems = instance_problems(kind.config_schema, config) or config_problems(
                kind, config, input_schema=input_schema if isinstance(input_schema, dict) else None)
            if problems:
                self.add_error("config", forms.ValidationError(problems))
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


class ApiTokenAdminForm(forms.ModelForm):
    class Meta:
        model = ApiToken
        fields = ["name", "owner", "all_tools", "allowed_tools", "scopes", "allowed_ips", "rate_limit",
                  "expires_at"]

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


