"""Checks on tool arguments that no JSON Schema expresses."""


def has_nul(value) -> bool:
    """True if any key or string in ``value`` holds a NUL character (Postgres text cannot store one)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _says_integer(schema) -> bool:
    kind = schema.get("type") if isinstance(schema, dict) else None
    return kind == "integer" or (isinstance(kind, list) and "integer" in kind and "number" not in kind)


def arguments_normalised(schema: dict, arguments):
    """``arguments`` with every integral number (``1.0``) where ``schema`` asks for an integer given as ``1``.

    JSON Schema counts 1.0 as an integer, so once the arguments passed the schema every tool gets a
    Python int there: one rule for "integer", whichever transport or tool. Follows ``properties``,
    ``items`` and ``prefixItems``; anything else is returned as it came.
    """
    if not isinstance(schema, dict):
        return arguments
    if isinstance(arguments, float) and arguments.is_integer() and _says_integer(schema):
        return int(arguments)
    if isinstance(arguments, dict):
        properties = schema.get("properties") or {}
        return {key: arguments_normalised(properties.get(key), value) for key, value in arguments.items()}
    if isinstance(arguments, list):
        prefix = schema.get("prefixItems") or []
        items = schema.get("items")
        return [arguments_normalised(prefix[i] if i < len(prefix) else items, value)
                for i, value in enumerate(arguments)]
    return arguments
