"""The AsyncAPI document as one readable HTML page (pure): the channels, then every message with
its summary, routing and a table of its body fields, the enumerations, and the hub's notes on
where the contract is silent. The JSON stays the reference at `/asyncapi.json`."""

from __future__ import annotations

from html import escape
from typing import Any

_STYLE = """body{font-family:system-ui,"Noto Sans CJK SC",sans-serif;margin:2em auto;max-width:1100px;color:#222}
table{border-collapse:collapse;width:100%;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:4px 8px;
text-align:left;vertical-align:top;font-size:14px}th{background:#f3f3f3}code{background:#f6f6f6;padding:0 3px}
h2{border-bottom:2px solid #36c;padding-bottom:4px}h3{margin-bottom:.2em}nav a{margin-right:1em}"""


def _type(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f'<a href="#schema-{escape(name)}">{escape(name)}</a>'
    if "anyOf" in schema:
        return " | ".join(_type(s) for s in schema["anyOf"] if s.get("type") != "null") + " (optional)"
    if schema.get("type") == "array":
        return f"array of {_type(schema.get('items', {}))}"
    kind = escape(str(schema.get("type", "any")))
    fmt = schema.get("format")
    return f"{kind} ({escape(fmt)})" if fmt else kind


def _fields(payload: dict[str, Any]) -> str:
    required = set(payload.get("required", []))
    rows = []
    for name, schema in payload.get("properties", {}).items():
        rule = schema.get("pattern") or schema.get("const") or ""
        rows.append(f"<tr><td><code>{escape(name)}</code>{' <b>*</b>' if name in required else ''}</td>"
                    f"<td>{_type(schema)}</td><td>{escape(str(schema.get('description', '')))}</td>"
                    f"<td><code>{escape(str(rule))}</code></td></tr>")  # fmt: skip
    head = "<tr><th>字段 field</th><th>类型 type</th><th>说明 description</th><th>规则 rule</th></tr>"
    return f"<table>{head}{''.join(rows)}</table>"


def _message(key: str, message: dict[str, Any]) -> str:
    return (f'<h3 id="msg-{escape(key)}">{escape(key)}</h3><p>{escape(message.get("summary", ""))}</p>'
            f"<p>{escape(message.get('description', ''))}</p>{_fields(message.get('payload', {}))}")  # fmt: skip


def _enum(name: str, schema: dict[str, Any]) -> str:
    values = ", ".join(f"<code>{escape(str(v))}</code>" for v in schema.get("enum", []))
    return f'<tr id="schema-{escape(name)}"><td>{escape(name)}</td><td>{values}</td></tr>'


def render_contract(doc: dict[str, Any]) -> str:
    info = doc.get("info", {})
    channels = "".join(f"<tr><td><code>{escape(c.get('address') or '')}</code></td>"
                       f"<td>{escape(c.get('description', ''))}</td></tr>"
                       for c in doc.get("channels", {}).values())  # fmt: skip
    messages = "".join(_message(k, m) for k, m in doc.get("components", {}).get("messages", {}).items())
    enums = "".join(_enum(k, s) for k, s in doc.get("components", {}).get("schemas", {}).items())
    notes = "".join(f"<li>{escape(n)}</li>" for n in doc.get("x-signhub-notes", []))
    return f"""<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<title>接口契约 Contract — {escape(info.get("title", ""))}</title><style>{_STYLE}</style></head><body>
<h1>接口契约 Wire contract: {escape(info.get("title", ""))} v{escape(str(info.get("version", "")))}</h1>
<nav><a href="/asyncapi.json">AsyncAPI JSON</a><a href="#channels">通道 Channels</a>
<a href="#messages">消息 Messages</a><a href="#enums">枚举 Enumerations</a><a href="#notes">说明 Notes</a></nav>
<p>{escape(info.get("description", ""))}</p>
<h2 id="channels">通道 Channels</h2><table><tr><th>地址 address</th><th>说明</th></tr>{channels}</table>
<h2 id="messages">消息 Messages</h2><p><b>*</b> = 必填 required</p>{messages}
<h2 id="enums">枚举 Enumerations</h2><table>{enums}</table>
<h2 id="notes">说明 Notes (where the contract is silent)</h2><ul>{notes}</ul></body></html>"""
