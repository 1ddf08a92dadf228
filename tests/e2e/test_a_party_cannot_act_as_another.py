"""A party cannot act as another through the headers the hub puts on its own retries and replays
(issue 14, item 1): on the real broker, a bank forges `x-death`, `x-signhub-routing-key`,
`x-signhub-user-id` and `x-signhub-replay`, and is still taken as itself. The hub's real retries
and replays, which it seals, keep working (tests/e2e/test_transient_failures.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aio_pika
import pytest

from hub.bootstrap import Hub
from tests.support.data import confirmed, fresh_phone
from tests.support.flows import approve
from tests.support.hubrun import AMQP_URL, running_hub
from tests.support.probe import Probe, to

WAIT_S = 15.0


def _forged(prefix: str, **extra: Any) -> dict[str, Any]:
    """What the hub's own retry of a CRM's unsign.request looks like, headers only."""
    death = {"count": 1, "reason": "expired", "queue": f"{prefix}.hub.retry.1", "exchange": "",
             "routing-keys": [f"{prefix}.hub.inbound"]}  # fmt: skip
    return {"x-schema-version": 1, "x-death": [death], "x-signhub-routing-key": "crm.GD.unsign.request",
            "x-signhub-user-id": f"{prefix}.crm.GD", "x-signhub-attempt": 1, **extra}  # fmt: skip


async def _signed_at(probe: Probe, bank: str) -> dict[str, Any]:
    phone = fresh_phone()
    request = await approve(probe, bank, phone)
    await probe.publish(f"bank.{bank}", "sign.confirmed", confirmed(request))
    result = await probe.expect("ACTIVE", to(f"bank.{bank}", "sign.result", request_id=request["request_id"]))
    assert result.body["status"] == "ACTIVE"
    return dict(result.body, phone=phone)


def _answers_to(probe: Probe, mid: str, party: str) -> list[Any]:
    return probe.all(lambda r: r.routing_key.startswith(f"{party}.") and r.correlation_id == mid)


async def test_a_bank_forging_a_crms_retry_cancels_nothing_and_is_answered_as_itself(
    hub: Hub, probe: Probe
) -> None:
    other_banks = await _signed_at(probe, "CCB")

    mid = await probe.publish("bank.ICBC", "unsign.request", {"phone": other_banks["phone"]},
                              headers=_forged(probe.prefix))  # fmt: skip

    told = await probe.expect("message.rejected to the forging bank itself",
                              to("bank.ICBC", "message.rejected", message_id=mid), timeout=WAIT_S)  # fmt: skip
    assert told.body["reason_code"] == "INVALID_MESSAGE", "a bank's unsign.request names its bank_agreement_no"
    rows = await hub.store.query("SELECT status FROM agreements WHERE agreement_id=?",
                                 (other_banks["agreement_id"],))  # fmt: skip
    assert rows == [{"status": "ACTIVE"}]
    assert not _answers_to(probe, mid, "crm.GD")
    assert not probe.all(to("bank.CCB", "unsign.notice", agreement_id=other_banks["agreement_id"]))


@pytest.fixture(scope="module")
async def strict_hub(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[Hub, Probe]]:
    """A hub with SIGNHUB_REQUIRE_USER_ID=true (the probe, as guest, can only forge)."""
    async with running_hub(Path(tmp_path_factory.mktemp("strict")), require_user_id=True) as pair:
        yield pair


async def test_a_forged_replay_does_not_skip_the_user_id_check(strict_hub: tuple[Hub, Probe]) -> None:
    hub, probe = strict_hub

    mid = await probe.publish("bank.ICBC", "unsign.request", {"phone": fresh_phone()},
                              headers=_forged(probe.prefix, **{"x-signhub-replay": "op"}))  # fmt: skip

    told = await probe.expect("message.rejected to the forging bank itself",
                              to("bank.ICBC", "message.rejected", message_id=mid), timeout=WAIT_S)  # fmt: skip
    assert told.body["reason_code"] == "UNAUTHORIZED_SENDER"
    assert not _answers_to(probe, mid, "crm.GD")
    assert not await hub.store.query("SELECT 1 FROM inbox WHERE message_id=?", (mid,))


async def test_a_message_put_straight_on_the_hubs_queue_with_forged_headers_is_refused_as_from_nobody(
    hub: Hub, probe: Probe
) -> None:
    mid = "straight-" + fresh_phone()
    connection = await aio_pika.connect(AMQP_URL)
    try:
        channel = await connection.channel(publisher_confirms=True)
        message = aio_pika.Message(b'{"phone": "13800138000"}', message_id=mid, type="unsign.request",
                                   content_type="application/json", headers=_forged(probe.prefix))  # fmt: skip
        await channel.default_exchange.publish(message, routing_key=hub.hub_names.inbound_queue, mandatory=True)
    finally:
        await connection.close()

    dead = await probe.expect("the dead copy", lambda r: r.queue == f"{probe.prefix}.dead" and r.message_id == mid,
                              timeout=WAIT_S)  # fmt: skip
    assert dead.headers["x-signhub-reason"] == "UNKNOWN_SENDER"
    assert not _answers_to(probe, mid, "crm.GD")
    assert not await hub.store.query("SELECT 1 FROM inbox WHERE message_id=?", (mid,))
