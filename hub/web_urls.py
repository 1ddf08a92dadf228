"""Whether an address a web hall gives (`return_url`, `notify_url`) is one of its own. Pure.

The browser is sent to `return_url` and the hub POSTs to `notify_url`, so both must be addresses
of the web hall that opened the session: parsed, never compared as strings (a prefix test passes
`http://hall:8090@evil/`, `http://hall:8090.evil/` and `http://hall:80901/`). Scheme, host and
port must be the configured ones exactly; a configured path is a prefix of whole segments.
"""

from __future__ import annotations

from urllib.parse import SplitResult, unquote, urlsplit

_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(parts: SplitResult) -> tuple[str, str, int] | None:
    try:
        port = parts.port
    except ValueError:  # not a number, or out of range
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    return scheme, parts.hostname.lower(), port if port is not None else _DEFAULT_PORTS[scheme]


def is_address_of(url: str, base: str) -> bool:
    """True when `url` is on `base`'s scheme, host and port, under `base`'s path."""
    # A backslash or credentials: browsers and parsers disagree on where the host ends, so
    # neither is ever an address of the web hall (`http://evil\@hall/` is evil's to a browser).
    if "\\" in url or any(ord(c) < 0x21 or c == "\x7f" for c in url):
        return False
    given, own = urlsplit(url), urlsplit(base)
    if "@" in given.netloc or given.username is not None:
        return False
    origin = _origin(given)
    if origin is None or origin != _origin(own):
        return False
    prefix = own.path.rstrip("/")
    if not prefix:
        return True
    # A dot segment would leave the prefix once the browser resolves it.
    if any(segment in (".", "..") for segment in unquote(given.path).split("/")):
        return False
    return given.path == prefix or given.path.startswith(prefix + "/")
