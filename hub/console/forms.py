"""What the console's pages trust in a form a browser posts: it comes from a console page (its
`Origin`, when the browser names one, is the console's) and carries the CSRF token of the cookie
it goes with (hub.console.auth.form_token); and where a page sends the browser back to, which is
always a page of the console, whatever the `Referer` says.

SameSite alone is not enough: every port of a host is the same site, so a page served on another
port of the hub's host could post to the console with its cookie.
"""

from __future__ import annotations

import hmac
from urllib.parse import parse_qs, urlsplit

from fastapi import Request

from hub.console.auth import form_token

FIELD = "csrf"  # the hidden field of every form


async def read_form(request: Request) -> dict[str, str]:
    # Plain urlencoded forms, parsed here: no multipart dependency for a handful of fields.
    parsed = parse_qs((await request.body()).decode("utf-8", errors="replace"), keep_blank_values=True)
    return {k: v[0] for k, v in parsed.items()}


def same_origin(request: Request, public_url: str | None) -> bool:
    """False when the browser says the form came from a page of another origin."""
    origin = request.headers.get("origin")
    if origin is None:  # not a browser, or an old one: the token decides
        return True
    own = {f"{request.url.scheme}://{request.url.netloc}", (public_url or "").rstrip("/")}
    return origin in own


def form_ok(request: Request, form: dict[str, str], cookie: str | None, public_url: str | None) -> bool:
    if not cookie or not same_origin(request, public_url):
        return False
    return hmac.compare_digest(form.get(FIELD, ""), form_token(cookie))


def console_path(referer: str | None, default: str) -> str:
    """The path of `referer` when it is a console page, else `default`: never another host."""
    path = urlsplit(referer or "").path
    return path if path.startswith("/ops/") else default
