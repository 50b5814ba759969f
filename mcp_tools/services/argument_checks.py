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
