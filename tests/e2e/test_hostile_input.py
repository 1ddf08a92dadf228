"""Hostile input through the real broker (issue 14): a body nested 10,000 levels deep is refused
once (item 7), a 10 MB body is kept as a bounded prefix (item 10), and card numbers in a routing
key, type or message_id reach neither the dead copy, the store's dead record nor /metrics, where
made-up types make no series of their own (item 11)."""

from __future__ import annotations

import json
import uuid

import pytest
from prometheus_client import REGISTRY

from hub.bootstrap import Hub
from hub.messaging.copies import KEPT_OF_OVERSIZE
from hub.protection import mask_digits_in_text
from hub.services.operations import OperationRefused, replay_dead
from tests.support.data import CARD, ID_NO
from tests.support.personal_scan import metrics as read_metrics
from tests.support.probe import Probe, Received, to

WAIT_S = 15.0


def _retries() -> float:
    """Retries the hub (running in this process) scheduled so far, from its metrics."""
    return REGISTRY.get_sample_value("signhub_retries_total") or 0.0


async def _dead_copy(probe: Probe, message_id: str) -> Received:
    return await probe.expect(f"the dead copy of {message_id}",
                              lambda r: r.queue == f"{probe.prefix}.dead" and r.message_id == message_id,
                              timeout=WAIT_S)  # fmt: skip


async def test_a_body_nested_ten_thousand_levels_deep_is_refused_once_and_the_sender_told(
    hub: Hub, probe: Probe
) -> None:
    retried = _retries()
    body = b'{"request_id": ' + b"[" * 10_000 + b"]" * 10_000 + b"}"

    mid = await probe.publish("bank.ICBC", "sign.request", body)

    told = await probe.expect("message.rejected", to("bank.ICBC", "message.rejected", message_id=mid), timeout=WAIT_S)
    assert told.body["reason_code"] == "INVALID_MESSAGE"
    assert (await _dead_copy(probe, mid)).headers["x-signhub-reason"] == "INVALID_MESSAGE"
    assert _retries() == retried, "a refusal is never retried"
    assert len(await hub.store.query("SELECT 1 FROM dead_messages WHERE message_id=?", (mid,))) == 1


async def test_a_refused_ten_megabyte_body_is_kept_as_a_prefix_that_says_how_long_it_was(
    hub: Hub, probe: Probe
) -> None:
    body = b'{"padding": "' + b"x" * (10 * 1024 * 1024) + b'"}'

    mid = await probe.publish("bank.ICBC", "sign.request", body)

    copy = await _dead_copy(probe, mid)
    assert len(copy.raw) <= KEPT_OF_OVERSIZE
    assert copy.headers["x-signhub-body-length"] == len(body)
    assert copy.headers["x-signhub-body-kept"] == KEPT_OF_OVERSIZE
    rows = await hub.store.query("SELECT dead_id, properties, original_enc FROM dead_messages WHERE message_id=?",
                                 (mid,))  # fmt: skip
    assert len(hub.deps.protector.decrypt(rows[0]["original_enc"])) == KEPT_OF_OVERSIZE
    assert json.loads(rows[0]["properties"])["body_length"] == len(body)
    with pytest.raises(OperationRefused, match="only the first"):
        await replay_dead(hub.store, hub.deps, rows[0]["dead_id"], by="op")


async def test_card_and_id_numbers_a_party_puts_in_names_are_masked_and_labels_stay_the_hubs(
    hub: Hub, probe: Probe
) -> None:
    made_up = f"made.up.{uuid.uuid4().hex[:6]}"
    sent = [
        ("bank.ICBC", CARD, f"m-{uuid.uuid4().hex[:6]}-{CARD}"),  # routing key, type and message_id
        ("bank.ICBC", made_up, f"m-{uuid.uuid4().hex[:6]}-{ID_NO}"),
        (f"shop.{CARD}", "sign.request", f"m-{uuid.uuid4().hex[:6]}"),  # nobody's routing key
    ]
    for party, msg_type, mid in sent:
        await probe.publish(party, msg_type, {"request_id": "R1"}, message_id=mid)

    for party, _, mid in sent:
        copy = await _dead_copy(probe, mask_digits_in_text(mid))
        shown = json.dumps([copy.message_id, copy.type, copy.headers, copy.body])
        assert CARD not in shown and ID_NO not in shown, shown
        if party == "bank.ICBC":  # the sender itself is told under the message_id it gave
            told = await probe.expect(f"message.rejected for {mid}", to(party, "message.rejected", message_id=mid))
            assert CARD not in told.body["type"]
    stored = await hub.store.query("SELECT * FROM dead_messages WHERE message_id IN (?, ?, ?)",
                                   tuple(mask_digits_in_text(mid) for _, _, mid in sent))  # fmt: skip
    assert len(stored) == 3
    assert CARD not in json.dumps(stored) and ID_NO not in json.dumps(stored)
    metrics = await read_metrics(hub.settings.http_port)
    assert CARD not in metrics and ID_NO not in metrics and made_up not in metrics
    assert 'signhub_messages_in_total{party="bank.ICBC",type="other"}' in metrics
    assert 'signhub_messages_in_total{party="unknown",type="sign.request"}' in metrics
