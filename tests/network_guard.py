"""A guard that keeps SSRF tests on this machine.

While ``no_external_network`` is active, any socket connect to an address that is
not loopback is refused before a packet leaves (OSError to the code under test) and
recorded; the test FAILS at teardown unless it inspected and cleared the record
itself. Name resolution answers only IP literals, ``localhost``, names in
/etc/hosts and names a test maps with ``guard.map_name()``: no external DNS query.
"""
import errno
import ipaddress
import re
import socket

import pytest

_NUMERIC_PART = re.compile(r"^(0[xX][0-9a-fA-F]+|[0-9]+)$")


def _hosts_file_names() -> set[str]:
    names = {"localhost"}
    try:
        with open("/etc/hosts") as hosts:
            for line in hosts:
                fields = line.split("#", 1)[0].split()
                names.update(name.lower() for name in fields[1:])
    except OSError:
        pass
    return names


def _is_loopback(host) -> bool:
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


class NetworkGuard:
    def __init__(self):
        self.attempts: list[tuple] = []
        self.lookups: list[str] = []
        self._mapped: dict[str, list[list[str]]] = {}
        self._local_names = _hosts_file_names()

    def map_name(self, name: str, *answers: list[str]) -> None:
        """Make ``name`` resolve to answers[0] on the first lookup, answers[1] on the second, ..."""
        self._mapped[name.lower()] = [list(a) for a in answers]

    def take_attempts(self) -> list[tuple]:
        attempts, self.attempts = self.attempts, []
        return attempts


@pytest.fixture
def no_external_network(monkeypatch):
    guard = NetworkGuard()
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def refuse(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address[0]):
            guard.attempts.append(tuple(address[:2]))
            return True
        return False

    def connect(sock, address):
        if refuse(sock, address):
            raise OSError(errno.ENETUNREACH, f"test guard: refused connection to {address[0]}")
        return real_connect(sock, address)

    def connect_ex(sock, address):
        if refuse(sock, address):
            return errno.ENETUNREACH
        return real_connect_ex(sock, address)

    def getaddrinfo(host, port, *args, **kwargs):
        name = host.decode() if isinstance(host, bytes) else str(host) if host is not None else None
        if name is not None and name.lower() in guard._mapped:
            guard.lookups.append(name)
            answers = guard._mapped[name.lower()]
            addresses = answers.pop(0) if len(answers) > 1 else answers[0]
            return [item for address in addresses for item in real_getaddrinfo(address, port, *args, **kwargs)]
        if name is None or name.lower() in guard._local_names:
            return real_getaddrinfo(host, port, *args, **kwargs)
        try:
            ipaddress.ip_address(name.strip("[]").split("%")[0])
        except ValueError:
            # Numeric forms like 2130706433 or 0177.0.0.1 are parsed locally by the resolver (inet_aton):
            # no query is sent for them. Any other name would be a DNS query: refused here.
            if not all(_NUMERIC_PART.match(part) for part in name.split(".")):
                raise socket.gaierror(socket.EAI_NONAME, f"test guard: no external DNS for {name!r}") from None
        return real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield guard
    if guard.attempts:
        pytest.fail(f"a test tried to connect off this machine: {guard.attempts}")
