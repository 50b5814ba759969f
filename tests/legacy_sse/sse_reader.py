"""A minimal, blocking reader of a server-sent event stream, for tests that speak the wire by hand."""
from contextlib import contextmanager
from dataclasses import dataclass
import json

import httpx


@dataclass
class Event:
    event: str = "message"
    data: str = ""
    comment: str | None = None  # set for a ': ...' line (keep-alive)

    def json(self):
        return json.loads(self.data)


class EventStream:
    def __init__(self, response: httpx.Response):
        self.response = response
        self._lines = response.iter_lines()

    def next(self) -> Event:
        """The next event or comment; raises httpx.ReadTimeout when none arrives in time."""
        event = Event()
        fields = False
        for line in self._lines:
            if line.startswith(":"):
                if not fields:
                    return Event(comment=line[1:].strip())
                continue
            if line == "":
                if fields:
                    return event
                continue
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            fields = True
            if name == "event":
                event.event = value
            elif name == "data":
                event.data = value if not event.data else event.data + "\n" + value
        raise EOFError("the server closed the stream")

    def next_event(self) -> Event:
        """The next real event, skipping keep-alive comments."""
        while True:
            event = self.next()
            if event.comment is None:
                return event

    def next_message(self) -> dict:
        event = self.next_event()
        assert event.event == "message", event
        return event.json()


@contextmanager
def open_stream(base_url: str, path: str = "/mcp/sse", headers: dict | None = None, read_timeout: float = 10):
    """Open the event stream; yields (response, EventStream) with the status already known."""
    with httpx.Client(base_url=base_url, timeout=httpx.Timeout(10, read=read_timeout)) as client:
        with client.stream("GET", path, headers=headers or {}) as response:
            yield response, EventStream(response)
