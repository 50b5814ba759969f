"""Masking of the secret parts of a tool's config (e.g. http_request's ``secret_headers``) in the admin.

A kind lists its secret config keys in ``secret_config_fields``; each value under
such a key is shown as MASK. Saving the form with MASK left in place keeps the
stored value; typing a new value replaces it.
"""
MASK = "********"


def _secret_fields(kind) -> tuple[str, ...]:
    return tuple(getattr(kind, "secret_config_fields", ()) or ())


def config_masked(kind, config: dict) -> dict:
    masked = dict(config)
    for field in _secret_fields(kind):
        if isinstance(config.get(field), dict):
            masked[field] = {name: MASK for name in config[field]}
    return masked


def config_unmasked(kind, submitted: dict, stored: dict) -> dict:
    restored = dict(submitted)
    for field in _secret_fields(kind):
        values, previous = submitted.get(field), stored.get(field) or {}
        if isinstance(values, dict):
            restored[field] = {name: previous.get(name, "") if value == MASK else value
                               for name, value in values.items()}
    return restored
