"""Editing JSON in the admin as forms built from a JSON Schema (django-jsonform), and pretty JSON text.

``form_schema`` turns a kind's ``config_schema`` (or a tool's input schema) into the
schema django-jsonform renders: every property gets a label, help text (description,
default and examples) and a placeholder. ``config_pruned`` drops the empty strings,
lists and objects the form submits for settings left blank, so "left blank" means
"not set". ``problems_by_field`` places each problem next to the setting it names.
"""
import copy
import json
import re

from django import forms
from django_jsonform.utils import join_coords
from django_jsonform.widgets import JSONFormWidget

from .services.schemas import validator_for

_JSONFORM_JS = ("django_jsonform/vendor/react.production.min.js", "django_jsonform/vendor/react-dom.production.min.js",
                "django_jsonform/vendor/react-modal.min.js", "django_jsonform/react-json-form.js")
_CSS = {"all": ("django_jsonform/style.css", "mcp_tools/admin/admin.css")}
_EMPTY = ("", None, [], {})


def _example_text(value) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def form_schema(schema: dict) -> dict:
    """A copy of ``schema`` with django-jsonform's labels and help text filled in."""
    schema = copy.deepcopy(schema) if isinstance(schema, dict) else {}
    if "type" not in schema and "properties" in schema:
        schema["type"] = "object"
    if schema.get("type") == "object" and "properties" not in schema:
        schema["properties"] = {}
    for name, prop in (schema.get("properties") or {}).items():
        if not isinstance(prop, dict):
            continue
        prop.setdefault("title", name.replace("_", " ").capitalize())
        help_parts = [prop["description"]] if prop.get("description") else []
        if "default" in prop:
            help_parts.append(f"Default: {_example_text(prop['default'])}.")
        examples = prop.get("examples") or []
        if examples:
            help_parts.append("Example: " + " | ".join(_example_text(e) for e in examples[:2]))
            if isinstance(examples[0], str) and prop.get("type") == "string":
                prop.setdefault("placeholder", examples[0])
        if help_parts:
            prop["help_text"] = " ".join(help_parts)
        if prop.get("x-widget") == "textarea":
            prop["widget"] = "textarea"
        if "enum" in prop and "type" not in prop:
            prop["type"] = "string" if all(isinstance(v, str) for v in prop["enum"]) else prop.get("type", "string")
        if prop.get("type") == "object" and prop.get("additionalProperties") not in (None, False) \
                and "properties" not in prop:
            # A free-form map (e.g. headers): the editor needs "properties" to offer "add key".
            prop["properties"] = {}
        if prop.get("properties"):  # nested objects and lists of objects get labels and help too
            prop["properties"] = form_schema(prop)["properties"]
        if isinstance(prop.get("items"), dict) and prop["items"].get("properties"):
            prop["items"] = form_schema(prop["items"])
    return schema


def config_pruned(config, schema: dict):
    """``config`` without the optional settings a person left blank (empty text, list or map)."""
    if not isinstance(config, dict):
        return config
    required = set(schema.get("required") or ()) if isinstance(schema, dict) else set()
    # An "add item" clicked and left empty submits "": it is not a value either.
    config = {key: [item for item in value if item not in ("", None)] if isinstance(value, list) else value
              for key, value in config.items()}
    return {key: value for key, value in config.items() if key in required or value not in _EMPTY}


def _named_field(message: str, names: list[str]) -> str | None:
    for name in sorted(names, key=len, reverse=True):
        if re.search(rf"(?<![\w]){re.escape(name)}(?![\w])", message):
            return name
    return None


def problems_by_field(schema: dict, config, extra_problems) -> tuple[dict[str, list[str]], list[str]]:
    """(django-jsonform error map, problems that name no setting) for ``config`` against ``schema``.

    ``extra_problems`` is what a kind's ``check_config`` returned: a list of sentences
    (placed at the setting a sentence names) or a ``{setting: [sentences]}`` mapping.
    """
    names = list((schema.get("properties") or {}).keys()) if isinstance(schema, dict) else []
    error_map: dict[str, list[str]] = {}
    loose: list[str] = []

    def place(coords, message):
        error_map.setdefault(join_coords(*coords), []).append(message)

    if isinstance(config, dict):
        for error in validator_for(schema).iter_errors(config):
            path = list(error.path)
            if error.validator == "required" and not path:
                for missing in error.validator_value:
                    if missing not in config:
                        place([missing], "This setting is required.")
            elif error.validator == "additionalProperties" and not path:
                loose.append(error.message)
            elif path:
                place(path, error.message)
            else:
                loose.append(error.message)
    if isinstance(extra_problems, dict):
        for key, messages in extra_problems.items():
            for message in [messages] if isinstance(messages, str) else messages:
                (place([key], message) if key in names else loose.append(str(message)))
    else:
        for message in extra_problems or ():
            name = _named_field(str(message), names)
            (place([name], str(message)) if name else loose.append(str(message)))
    return error_map, loose


class KindConfigWidget(JSONFormWidget):
    """The kind's settings as a form; switches schema in the browser when the kind select changes.

    ``kind_schemas`` maps every kind name to its form schema; ``kind_config.js`` reads them
    from the textarea's data attribute (no inline script: the admin's CSP forbids it).
    """

    template_name = "admin/mcp_tools/widgets/kind_config.html"

    def __init__(self, kind_schemas: dict, kind: str = "", attrs=None):
        self.kind_schemas = kind_schemas
        self.kind = kind
        super().__init__(schema=lambda: kind_schemas.get(self.kind) or {"type": "object", "properties": {}},
                         attrs=attrs)

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        context["kind_schemas"] = json.dumps(self.kind_schemas)
        return context

    @property
    def media(self):
        return forms.Media(css=_CSS, js=_JSONFORM_JS + ("mcp_tools/admin/kind_config.js",))


class SchemaFormWidget(JSONFormWidget):
    """A form built from a fixed JSON Schema (the "Try it" arguments), started by django-jsonform's own script."""

    def __init__(self, schema: dict, attrs=None):
        super().__init__(schema=form_schema(schema), attrs=attrs)

    @property
    def media(self):
        return forms.Media(css=_CSS, js=_JSONFORM_JS + ("django_jsonform/index.js",))


class PrettyJSONField(forms.JSONField):
    """A JSON text field shown indented in a monospace editor, so it stays readable after saving."""

    def __init__(self, **kwargs):
        kwargs.setdefault("widget", forms.Textarea(attrs={"class": "mcp-json", "rows": 12, "spellcheck": "false"}))
        super().__init__(**kwargs)

    def prepare_value(self, value):
        if isinstance(value, forms.fields.InvalidJSONInput):
            return value
        if value is None:
            return ""
        return json.dumps(value, ensure_ascii=False, indent=2, cls=self.encoder)

    class Media:
        css = {"all": ("mcp_tools/admin/admin.css",)}
