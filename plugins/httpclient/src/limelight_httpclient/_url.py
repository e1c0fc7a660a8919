"""URL handling for span attributes: credentials and secrets redacted."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from functools import lru_cache
from urllib.parse import unquote_plus, urlsplit, urlunsplit

__all__ = [
    "DEFAULT_PORTS",
    "DEFAULT_REDACTED_QUERY_PARAMS",
    "REDACTED",
    "redact_url",
    "redacted_names",
    "url_redactor",
]

REDACTED = "REDACTED"
"""What replaces a credential or a sensitive query value in ``url.full``."""

DEFAULT_REDACTED_QUERY_PARAMS: frozenset[str] = frozenset(
    name.lower()
    for name in (
        # the OpenTelemetry semantic conventions' list
        "AWSAccessKeyId",
        "Signature",
        "sig",
        "X-Goog-Signature",
        # signed URLs of the big object stores
        "X-Amz-Signature",
        "X-Amz-Credential",
        "X-Amz-Security-Token",
        "X-Goog-Credential",
        # tokens, keys and passwords passed in the query string
        "access_token",
        "refresh_token",
        "id_token",
        "token",
        "api_key",
        "apikey",
        "api-key",
        "key",
        "client_secret",
        "secret",
        "password",
        "passwd",
    )
)
"""Query parameters (compared case-insensitively) whose values are always redacted."""

DEFAULT_PORTS: dict[str, int] = {"http": 80, "https": 443}
"""``server.port`` when the URL gives none."""


def redacted_names(extra: Iterable[str] = ()) -> frozenset[str]:
    """The built-in redacted query parameter names plus *extra* (lowercased)."""
    return DEFAULT_REDACTED_QUERY_PARAMS | frozenset(name.lower() for name in extra)


def _redact_pairs(text: str, names: frozenset[str]) -> str:
    parts = text.split("&")
    changed = False
    for index, part in enumerate(parts):
        name, sep, _value = part.partition("=")
        if not sep:
            continue
        plain = unquote_plus(name) if ("%" in name or "+" in name) else name
        if plain.lower() in names:
            parts[index] = f"{name}={REDACTED}"
            changed = True
    return "&".join(parts) if changed else text


def _redact_all(url: str, names: frozenset[str]) -> str:
    try:
        scheme, netloc, path, query, fragment = urlsplit(url)
    except ValueError:
        return REDACTED
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        netloc = (
            f"{REDACTED}:{REDACTED}@{hostport}" if ":" in userinfo else f"{REDACTED}@{hostport}"
        )
    if query:
        query = _redact_pairs(query, names)
    if fragment:
        fragment = _redact_pairs(fragment, names)
    return urlunsplit((scheme, netloc, path, query, fragment))


_special = re.compile(r"[?#@\[\]]").search
"""Finds the first character after which a URL may hold something to redact."""


@lru_cache(maxsize=16)
def url_redactor(names: frozenset[str] = DEFAULT_REDACTED_QUERY_PARAMS) -> Callable[[str], str]:
    """:func:`redact_url` for *names*, built once: a URL with nothing to redact costs one scan.

    The URL is parsed and rebuilt only when it has an ``@`` or a bracket, or a
    query or fragment with a parameter named after one of *names* (in any
    case) or whose name is percent-encoded or has a ``+`` (those are decoded
    before comparing), or is not ASCII. Anything else is returned as it is.
    """
    alternatives = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    # a parameter (after ?, & or #) named as one of *names*, or whose name needs decoding
    suspect = re.compile(rf"[?&#](?:(?:{alternatives})=|[^=&#]*[%+])", re.IGNORECASE).search

    def redact(url: str) -> str:
        if _special(url) is None:  # no user info, bracket, query or fragment: one scan
            return url
        query = url.find("?")
        fragment = url.find("#")
        if "@" in url or "[" in url or "]" in url:  # user info, or a host urlsplit may reject
            return _redact_all(url, names)
        if query < 0:
            if fragment < 0:
                return url
            start = fragment
        else:
            start = query if fragment < 0 or query < fragment else fragment
        if suspect(url, start) is None and url.isascii():
            return url
        return _redact_all(url, names)

    return redact


def redact_url(url: str, names: frozenset[str] = DEFAULT_REDACTED_QUERY_PARAMS) -> str:
    """*url* with its user info and the values of sensitive query parameters redacted.

    ``https://user:pw@host/p?sig=abc&page=2`` becomes
    ``https://REDACTED:REDACTED@host/p?sig=REDACTED&page=2``. Everything else
    is kept byte for byte. The fragment is treated like the query.
    """
    return url_redactor(frozenset(names))(url)
