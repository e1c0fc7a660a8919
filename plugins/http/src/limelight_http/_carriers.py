"""Reading requests: propagation getters over ASGI headers and WSGI environs, and the
semantic-convention attributes known before routing."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.propagators.textmap import Getter
from opentelemetry.util.types import AttributeValue

from limelight.semconv import (
    CLIENT_ADDRESS,
    NETWORK_PROTOCOL_VERSION,
    SERVER_ADDRESS,
    SERVER_PORT,
    URL_PATH,
    URL_SCHEME,
    USER_AGENT_ORIGINAL,
)

__all__ = [
    "ASGI_GETTER",
    "ENVIRON_GETTER",
    "AsgiCarrier",
    "asgi_attributes",
    "environ_attributes",
    "split_host",
]

AsgiCarrier = tuple[Sequence[tuple[bytes, bytes]], Mapping[bytes, bytes]]
"""The raw ASGI header list and a dict of it (for absent-header checks)."""

_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
_HOST_CACHE: dict[tuple[str, str], tuple[str, int | None]] = {}
_HOST_CACHE_SIZE = 512
_ASGI_HOST_CACHE: dict[tuple[bytes, str], tuple[str, int | None]] = {}
_AGENT_CACHE: dict[bytes, str] = {}
_AGENT_CACHE_SIZE = 1024
_AGENT_CACHE_LENGTH = 512
_NAME_BYTES: dict[str, bytes] = {}
_ENVIRON_KEYS: dict[str, str] = {}


class _AsgiGetter(Getter[AsgiCarrier]):
    """Every value of a header, from the raw ASGI list (duplicates kept)."""

    def get(self, carrier: AsgiCarrier, key: str) -> list[str] | None:
        name = _NAME_BYTES.get(key)
        if name is None:
            name = _NAME_BYTES.setdefault(key, key.lower().encode("latin-1"))
        headers, index = carrier
        if name not in index:
            return None
        return [value.decode("latin-1") for n, value in headers if n == name]

    def keys(self, carrier: AsgiCarrier) -> list[str]:
        return [name.decode("latin-1") for name, _value in carrier[0]]


class _EnvironGetter(Getter[Mapping[str, Any]]):
    """A header from a WSGI environ (or Django ``META``): ``HTTP_<NAME>``."""

    def get(self, carrier: Mapping[str, Any], key: str) -> list[str] | None:
        name = _ENVIRON_KEYS.get(key)
        if name is None:
            name = _ENVIRON_KEYS.setdefault(key, "HTTP_" + key.upper().replace("-", "_"))
        value = carrier.get(name)
        if value is None:
            return None
        return [value]

    def keys(self, carrier: Mapping[str, Any]) -> list[str]:
        return [k[5:].lower().replace("_", "-") for k in carrier if k.startswith("HTTP_")]


ASGI_GETTER = _AsgiGetter()
ENVIRON_GETTER = _EnvironGetter()


def split_host(host: str, scheme: str) -> tuple[str, int | None]:
    """``server.address`` and ``server.port`` from a Host header value."""
    key = (host, scheme)
    cached = _HOST_CACHE.get(key)
    if cached is not None:
        return cached
    address, port_text = host, ""
    if host.startswith("["):
        end = host.find("]")
        if end > 0:
            address = host[1:end]
            rest = host[end + 1 :]
            port_text = rest[1:] if rest.startswith(":") else ""
    elif host.count(":") == 1:
        address, _sep, port_text = host.partition(":")
    port = int(port_text) if port_text.isdigit() else _DEFAULT_PORTS.get(scheme)
    result = (address, port)
    if len(_HOST_CACHE) < _HOST_CACHE_SIZE:
        _HOST_CACHE[key] = result
    return result


def _asgi_host(host: bytes, scheme: str) -> tuple[str, int | None]:
    """:func:`split_host` of a raw Host header (cached by its bytes)."""
    key = (host, scheme)
    cached = _ASGI_HOST_CACHE.get(key)
    if cached is None:
        cached = split_host(host.decode("latin-1"), scheme)
        if len(_ASGI_HOST_CACHE) < _HOST_CACHE_SIZE:
            _ASGI_HOST_CACHE[key] = cached
    return cached


def _agent(value: bytes) -> str:
    """A User-Agent header as text (the few agents a service sees are cached)."""
    text = _AGENT_CACHE.get(value)
    if text is None:
        text = value.decode("latin-1")
        if len(value) <= _AGENT_CACHE_LENGTH and len(_AGENT_CACHE) < _AGENT_CACHE_SIZE:
            _AGENT_CACHE[value] = text
    return text


def asgi_attributes(
    scope: Mapping[str, Any], index: Mapping[bytes, bytes], scheme: str
) -> dict[str, AttributeValue]:
    """The attributes of an ASGI request known before routing."""
    attributes: dict[str, AttributeValue] = {
        URL_PATH: scope["path"],
        URL_SCHEME: scheme,
        NETWORK_PROTOCOL_VERSION: scope.get("http_version") or "1.1",
    }
    host = index.get(b"host")
    if host:
        address, port = _ASGI_HOST_CACHE.get((host, scheme)) or _asgi_host(host, scheme)
        attributes[SERVER_ADDRESS] = address
        if port is not None:
            attributes[SERVER_PORT] = port
    else:
        server = scope.get("server")
        if server:
            attributes[SERVER_ADDRESS] = server[0]
            if server[1] is not None:
                attributes[SERVER_PORT] = server[1]
    client = scope.get("client")
    if client:
        attributes[CLIENT_ADDRESS] = client[0]
    agent = index.get(b"user-agent")
    if agent:
        attributes[USER_AGENT_ORIGINAL] = _AGENT_CACHE.get(agent) or _agent(agent)
    return attributes


def _wsgi_text(value: str) -> str:
    """A PEP 3333 "bytes as latin-1" string as the text it encodes."""
    if value.isascii():
        return value
    try:
        return value.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return value


def environ_attributes(environ: Mapping[str, Any]) -> dict[str, AttributeValue]:
    """The attributes of a WSGI request (or Django ``META``) known before routing."""
    scheme = environ.get("wsgi.url_scheme") or "http"
    path = _wsgi_text(environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", ""))
    protocol = environ.get("SERVER_PROTOCOL", "")
    attributes: dict[str, AttributeValue] = {
        URL_PATH: path or "/",
        URL_SCHEME: scheme,
        NETWORK_PROTOCOL_VERSION: protocol[5:] if protocol.startswith("HTTP/") else "1.1",
    }
    host = environ.get("HTTP_HOST")
    if host:
        address, port = split_host(host, scheme)
        attributes[SERVER_ADDRESS] = address
        if port is not None:
            attributes[SERVER_PORT] = port
    else:
        name = environ.get("SERVER_NAME")
        if name:
            attributes[SERVER_ADDRESS] = name
            port_text = str(environ.get("SERVER_PORT", ""))
            if port_text.isdigit():
                attributes[SERVER_PORT] = int(port_text)
    client = environ.get("REMOTE_ADDR")
    if client:
        attributes[CLIENT_ADDRESS] = client
    agent = environ.get("HTTP_USER_AGENT")
    if agent:
        attributes[USER_AGENT_ORIGINAL] = agent
    return attributes
