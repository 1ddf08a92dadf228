"""HTML pages of the simulated web hall and bank signing pages: templates in `web_pages/`, filled
with `string.Template`; every value is escaped unless passed as ready-made HTML."""

from __future__ import annotations

import html
from functools import cache
from pathlib import Path
from string import Template

from fastapi.responses import HTMLResponse

_DIR = Path(__file__).with_name("web_pages")


@cache
def _template(name: str) -> Template:
    return Template((_DIR / f"{name}.html").read_text(encoding="utf-8"))


def fragment(name: str, html_values: dict[str, str] | None = None, **text: object) -> str:
    """The template `name` filled: `text` values escaped, `html_values` as they are."""
    values = {k: html.escape(str(v)) for k, v in text.items()} | (html_values or {})
    return _template(name).substitute(values)


def page(
    site: str, colour: str, title: str, content: str, *, status: int = 200, refresh_s: int = 0
) -> HTMLResponse:
    refresh = f'<meta http-equiv="refresh" content="{refresh_s}">' if refresh_s else ""
    body = fragment("layout", {"content": content, "refresh": refresh}, site=site, colour=colour, title=title)
    return HTMLResponse(body, status_code=status)


def message(site: str, colour: str, title: str, text: str, *, ok: bool, code: str = "", back: str = "/",
            back_text: str = "返回", detail: str = "", status: int = 200) -> HTMLResponse:  # fmt: skip
    content = fragment("message", {"detail": f'<p class="note">{html.escape(detail)}</p>' if detail else ""},
                       kind="ok" if ok else "err", code=code, message=text, back=back, back_text=back_text)  # fmt: skip
    return page(site, colour, title, content, status=status)


def rows(pairs: list[tuple[str, str]]) -> str:
    """Table rows of label/value pairs, escaped."""
    return "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(v)}</td></tr>" for k, v in pairs)


def yuan(fen: int | None) -> str:
    return "-" if fen is None else f"{fen / 100:.2f} 元"
