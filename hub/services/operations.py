"""What operations staff do through the hub (the console and `signhub ops` call these):
resolve a duplicate-signing case, replay or discard a refused message.

Each action is one unit of work: the state change, its history and audit event, and the
messages it causes (through the outbox) commit together.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from hub.agreements import FlowState
from hub.flows.duplicates import Resolution, resolve
from hub.messaging.copies import BODY_KEPT, BODY_LENGTH
from hub.messaging.outbound import to_rows
from hub.messaging.seal import Vouched, load_seal
from hub.messaging.topology import HubNames
from hub.outgoing import Target
from hub.services.context import Deps
from hub.store.unit_of_work import OutboxRow, Store, UnitOfWork


class OperationRefused(Exception):
    """The action cannot be taken (unknown or already closed case or message)."""


@dataclass(frozen=True, slots=True)
class CaseOutcome:
    case_id: str
    resolution: Resolution
    messages: list[str]  # routing keys of what was sent, for the operator's confirmation page


async def resolve_case(store: Store, deps: Deps, case_id: str, resolution: Resolution, *, by: str, reason: str
                       ) -> CaseOutcome:  # fmt: skip
    """Applies an operator's (already approved) resolution of an OPEN case."""
    if not reason.strip():
        raise OperationRefused("a resolution needs a reason")
    now = deps.clock()
    async with store.unit_of_work() as uow:
        case = await uow.case(case_id)
        if case is None or case.state != "OPEN":
            raise OperationRefused(f"case {case_id} is not open")
        held = await uow.agreement(case.new_agreement_id)
        existing = await uow.agreement(case.existing_agreement_id) if case.existing_agreement_id else None
        assert held is not None
        decided = resolve(case, held, existing, resolution, now)
        for change in decided.changes:
            await uow.update_agreement(change.after, expected_version=change.before.version)
            await uow.record_change(change.before, change.after, source=f"operator:{by}", message_id=None,
                                    change=f"RESOLVE_{resolution.value}", now=now)  # fmt: skip
        await uow.close_case(case_id, "RESOLVED", by=by, reason=f"{resolution.value}: {reason}", now=now)
        await _settle_flow(uow, case.flow_key, resolution, now)
        await uow.add_event(now, "case.resolved", agreement_id=held.agreement_id, flow_key=case.flow_key,
                            party=f"operator:{by}", detail={"case_id": case_id, "resolution": resolution.value,
                                                            "reason": reason})  # fmt: skip
        await uow.add_outbox(to_rows(decided.out, deps.names, deps.new_id), now)
    return CaseOutcome(case_id, resolution, [f"{o.to}.{o.type}" for o in decided.out])


async def _settle_flow(uow: UnitOfWork, flow_key: str, resolution: Resolution, now: datetime) -> None:
    bank, _, request_id = flow_key.partition("|")
    flow = await uow.flow(bank, request_id) if request_id and not flow_key.startswith("session:") else None
    if flow is not None and flow.state is FlowState.MANUAL_REVIEW:
        state = FlowState.ACTIVE if resolution is Resolution.REPLACE else FlowState.CONFIRM_REJECTED
        await uow.save_flow(replace(flow, state=state), now)


async def replay_dead(store: Store, deps: Deps, dead_id: str, *, by: str, body: bytes | None = None) -> str:
    """Puts a refused message's stored original back on the hub's inbound queue, keeping its
    sender, message_id and body (CONTRACT.md): an outbox row for the hub's own queue, committed
    with the REPLAYED mark and its event, published by the relay. A refused message never counted
    as processed, so the replay takes effect once however often it is pressed: a second one is a
    repeat. `body`: an operator's edited body (already validated and approved) instead of the
    original. The hub seals the original sender on it (hub.messaging.seal): a party cannot make
    such a replay. The relay publishes every row as JSON (`env.CONTENT_TYPE`): a message refused
    only for its content type is taken as JSON when replayed."""
    dead = await store.console().dead_message(dead_id)
    if dead is None or dead["state"] == "DISCARDED":
        raise OperationRefused(f"no replayable dead message {dead_id}")
    props: dict[str, Any] = json.loads(dead["properties"])
    if body is None and props.get(BODY_LENGTH):
        raise OperationRefused(f"dead message {dead_id}: only the first {props.get(BODY_KEPT)} of its "
                               f"{props[BODY_LENGTH]} bytes were kept; nothing whole to replay")  # fmt: skip
    raw = deps.protector.decrypt(dead["original_enc"]) if body is None else body
    vouched = Vouched(dead["routing_key"], props.get("user_id") or None, props.get("message_id"), replay_by=by)
    headers = {k: v for k, v in (props.get("headers") or {}).items() if not k.startswith("x-signhub-")}
    headers |= (await load_seal(store, deps.protector)).headers(vouched, raw)
    # A message sent without a message_id is sealed without one; its row needs one (the seal
    # verifies either way: hub.messaging.seal.Seal.read).
    row = OutboxRow(props.get("message_id") or deps.new_id("R"), Target.HUB.value, HubNames(deps.names).inbound_queue,
                    props.get("type") or "", props.get("correlation_id"), raw, headers)  # fmt: skip
    await _mark_dead(store, deps, dead_id, "REPLAYED", by=by, reason="replayed" if body is None else "edited",
                     out=[row])  # fmt: skip
    return str(dead["routing_key"])


async def discard_dead(store: Store, deps: Deps, dead_id: str, *, by: str, reason: str) -> None:
    if not reason.strip():
        raise OperationRefused("discarding needs a reason")
    dead = await store.console().dead_message(dead_id)
    if dead is None or dead["state"] == "DISCARDED":
        raise OperationRefused(f"no open dead message {dead_id}")
    await _mark_dead(store, deps, dead_id, "DISCARDED", by=by, reason=reason)


async def _mark_dead(store: Store, deps: Deps, dead_id: str, state: str, *, by: str, reason: str,
                     out: Sequence[OutboxRow] = ()) -> None:  # fmt: skip
    now = deps.clock()
    async with store.unit_of_work() as uow:
        await uow.set_dead_state(dead_id, state)
        await uow.add_outbox(out, now)
        await uow.add_event(now, f"dead.{state.lower()}", party=f"operator:{by}",
                            detail={"dead_id": dead_id, "reason": reason})  # fmt: skip
