"""Run a call after the current transaction commits."""
from django.db import transaction


def on_commit_call(func, /, *, robust: bool = False, **kwargs) -> None:
    """``transaction.on_commit`` of ``func(**kwargs)``.

    With ``robust=True`` a hook that raises is logged and skipped, so work already committed is not
    reported as failed. Django names the failed hook by its ``__qualname__``, which a
    ``functools.partial`` lacks: the AttributeError would escape and turn a committed call into an
    error (and a second audit row). This wrapper carries the function's name.
    """
    def hook():
        func(**kwargs)

    hook.__qualname__ = getattr(func, "__qualname__", type(func).__qualname__)
    transaction.on_commit(hook, robust=robust)
