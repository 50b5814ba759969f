"""The current request id, visible to logs and to code far from the view."""
import contextvars
import re
import uuid

_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
_VALID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def new_request_id(candidate: str | None = None) -> str:
    """Accept a well-formed client-supplied id, otherwise make one."""
    if candidate and _VALID.match(candidate):
        return candidate
    return uuid.uuid4().hex


def set_request_id(value: str) -> contextvars.Token:
    return _request_id.set(value)


def reset_request_id(token: contextvars.Token) -> None:
    _request_id.reset(token)


def get_request_id() -> str:
    return _request_id.get()
