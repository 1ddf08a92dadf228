"""Refused messages as operators work them: grouped by reason and sender, inspected (masked),
replayed, discarded with a reason, a whole group at a rate limit, and edit-and-replay.

Edit-and-replay changes only body fields the contract's current model of that type declares
(`contracts.catalogue`); the envelope (sender, type, message_id) stays, as a replay must. The
edited body is validated against the model before it is proposed, shown with where it will be
routed, and sent only after a second operator approves it (`hub.console.approvals`).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from pydantic import ValidationError

from contracts import catalogue
from contracts import envelope as env
from contracts.masking import mask_body
from contracts.routing import Party
from hub.console import audit
from hub.console.auth import Operator, Role, require
from hub.console.context import Console, header, log
from hub.console.proposals import propose
from hub.protection import mask_digits_in_text
from hub.services.dispatch import HANDLERS
from hub.services.operations import OperationRefused, discard_dead, replay_dead


async def groups(console: Console, state: str = "OPEN") -> list[dict[str, Any]]:
    return await console.store.console().dead_groups(state)


async def listing(console: Console, *, reason: str | None = None, sender: str | None = None,
                  state: str | None = "OPEN", limit: int = 500) -> list[dict[str, Any]]:  # fmt: skip
    return await console.store.console().dead_messages(reason=reason, sender=sender, state=state, limit=limit)


async def _row(console: Console, dead_id: str) -> dict[str, Any]:
    row = await console.store.console().dead_message(dead_id)
    if row is None:
        raise LookupError(f"no dead message {dead_id}")
    return row


def _original(console: Console, row: dict[str, Any]) -> Any:
    raw = console.deps.protector.decrypt(row["original_enc"])
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", errors="replace")


def _model(row: dict[str, Any]) -> catalogue.Entry | None:
    try:
        party = Party.parse(row["sender"] or row["routing_key"].rsplit(".", 2)[0])
    except ValueError:
        return None
    msg_type = row["type"] or json.loads(row["properties"]).get("type") or ""
    return catalogue.inbound(party.kind, msg_type)


def _masked(value: Any) -> Any:
    return mask_body(value) if not isinstance(value, str) else mask_digits_in_text(value)


async def inspect(console: Console, dead_id: str) -> dict[str, Any]:
    row = await _row(console, dead_id)
    entry = _model(row)
    props = json.loads(row["properties"])
    return {
        "dead": {k: v for k, v in row.items() if k not in ("original_enc", "properties")},
        "properties": {k: v for k, v in props.items() if k != "headers"} | {"headers": props.get("headers")},
        "body": _masked(_original(console, row)),
        "editable": sorted(entry.model.model_fields) if entry else [],
        "model": entry.model.__name__ if entry else None,
        "audit": await audit.entries(console.store, target=dead_id),
    }


async def _remove_copy(console: Console, row: dict[str, Any]) -> bool:
    message_id = row["message_id"] or row["dead_id"]
    return await console.remove_copy(
        console.deps.names.dead_queue,
        lambda m: m.message_id == message_id and header(m, env.H_ROUTING_KEY) == row["routing_key"]
        and header(m, env.H_REASON) == row["reason"],
    )  # fmt: skip


async def replay(console: Console, by: str, dead_id: str, *, body: Any = None, approved_by: str | None = None
                 ) -> dict[str, Any]:  # fmt: skip
    """The stored original (or an approved edited body) back onto the hub's queue; its copy out of
    the dead queue; the action in the audit log."""
    row = await _row(console, dead_id)
    raw = None if body is None else json.dumps(body, ensure_ascii=False).encode()
    routed = await replay_dead(console.store, console.deps, dead_id, by=by, body=raw)
    removed = await _remove_copy(console, row) if row["state"] == "OPEN" else False
    after = {
        "state": "REPLAYED",
        "routing_key": routed,
        "edited": body is not None,
        "dead_copy_removed": removed,
    }
    if body is not None:
        after["body"] = mask_body(body)
    await audit.record(console.store, console.deps.clock(), approved_by or by,
                       "dead.EDIT_REPLAY" if body is not None else "dead.replay", target=dead_id,
                       reason=f"proposed by {by}" if approved_by else None,
                       before={"state": row["state"], "body": _masked(_original(console, row))}, after=after)  # fmt: skip
    log.info("dead message %s replayed by %s", dead_id, approved_by or by, extra=_ids(row))
    return {"dead_id": dead_id} | after


def _ids(row: dict[str, Any]) -> dict[str, Any]:
    return {"message_id": row["message_id"], "sender": row["sender"], "msg_type": row["type"]}


async def replay_as(console: Console, op: Operator, dead_id: str) -> dict[str, Any]:
    require(op, Role.OPERATOR)
    return await replay(console, op.name, dead_id)


async def discard(console: Console, op: Operator, dead_id: str, reason: str) -> dict[str, Any]:
    require(op, Role.OPERATOR)
    row = await _row(console, dead_id)
    await discard_dead(console.store, console.deps, dead_id, by=op.name, reason=reason)
    removed = await _remove_copy(console, row) if row["state"] == "OPEN" else False
    after = {"state": "DISCARDED", "dead_copy_removed": removed}
    await audit.record(console.store, console.deps.clock(), op.name, "dead.discard", target=dead_id, reason=reason,
                       before={"state": row["state"]}, after=after)  # fmt: skip
    log.info("dead message %s discarded by %s", dead_id, op.name, extra=_ids(row))
    return {"dead_id": dead_id, "state": "DISCARDED", "dead_copy_removed": removed}


async def act_on_group(console: Console, op: Operator, reason: str, sender: str, action: str, why: str = ""
                       ) -> dict[str, Any]:  # fmt: skip
    """Replays or discards every open message of one (reason, sender) group, at most
    `console.group_rate` a second and `console.group_limit` per call."""
    require(op, Role.OPERATOR)
    if action not in ("replay", "discard"):
        raise OperationRefused(f"unknown group action {action!r}")
    if action == "discard" and not why.strip():
        raise OperationRefused("discarding needs a reason")
    rows = await listing(console, reason=reason, sender=sender, limit=console.group_limit)
    done, failed = [], []
    for index, row in enumerate(rows):
        if index:
            await asyncio.sleep(1 / console.group_rate)
        try:
            if action == "replay":
                await replay(console, op.name, row["dead_id"])
            else:
                await discard(console, op, row["dead_id"], why)
            done.append(row["dead_id"])
        except OperationRefused as exc:
            failed.append({"dead_id": row["dead_id"], "error": str(exc)})
    await audit.record(console.store, console.deps.clock(), op.name, f"dead.group.{action}",
                       target=f"{reason}/{sender}", reason=why or None, after={"done": done, "failed": failed})  # fmt: skip
    return {"action": action, "done": done, "failed": failed}


def route_preview(console: Console, row: dict[str, Any], body: dict[str, Any], entry: catalogue.Entry
                  ) -> dict[str, Any]:  # fmt: skip
    """Where an edited message goes: the hub's queue under its original routing key, the handler
    that takes it, the home province of its number, and the queue the answer goes to."""
    party = Party.parse(row["sender"] or row["routing_key"].rsplit(".", 2)[0])
    handler = HANDLERS.get((party.kind, entry.type))
    phone = body.get("phone")
    return {
        "queue": console.hub_names.inbound_queue, "routing_key": row["routing_key"], "sender": str(party),
        "type": entry.type, "message_id": row["message_id"],
        "handler": f"{handler.__module__}.{handler.__name__}" if handler else "none: refused NOT_SUPPORTED",
        "home_province": console.deps.segments.province_of(phone) if isinstance(phone, str) else None,
        "answer_to": console.deps.names.party_queue(party),
    }  # fmt: skip


async def propose_edit(console: Console, op: Operator, dead_id: str, changes: dict[str, Any], reason: str
                       ) -> dict[str, Any]:  # fmt: skip
    """Validates an edited body against the current model and proposes its replay for approval."""
    require(op, Role.OPERATOR)
    row = await _row(console, dead_id)
    if row["state"] == "DISCARDED":
        raise OperationRefused(f"dead message {dead_id} was discarded")
    entry, original = _model(row), _original(console, row)
    if entry is None or not isinstance(original, dict):
        raise OperationRefused("only a JSON body of a type the contract knows for its sender can be edited")
    unknown = sorted(set(changes) - set(entry.model.model_fields))
    if unknown:
        raise OperationRefused(f"fields not in {entry.model.__name__}: {unknown}")
    masked = mask_body(original)
    # A field left at its masked text keeps the stored value: the operator never saw the number.
    body = original | {k: v for k, v in changes.items() if v != masked.get(k)}
    try:
        entry.model.model_validate_json(json.dumps(body))
    except ValidationError as exc:
        problems = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
        raise OperationRefused(mask_digits_in_text("; ".join(problems))) from None
    changed = {
        k: {"before": masked.get(k), "after": mask_body(body).get(k)}
        for k in body
        if body[k] != original.get(k)
    }
    preview = route_preview(console, row, body, entry) | {"changed": changed}
    return await propose(
        console, op, "dead.EDIT_REPLAY", dead_id, reason, payload={"body": body}, preview=preview
    )
