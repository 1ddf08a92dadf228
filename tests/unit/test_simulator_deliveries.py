"""How a simulated party takes its deliveries (`simulators.deliveries`), without a broker.

The broker's side is faked: a delivery records whether it was acknowledged or given back, and
the publish either confirms, fails as when the broker went away, or waits for the test's word.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import cast

import aio_pika
import pytest
from aio_pika.abc import AbstractIncomingMessage
from aiormq import spec
from aiormq.abc import AbstractChannel, DeliveredMessage
from aiormq.exceptions import (
    ChannelAccessRefused,
    ChannelInvalidStateError,
    ChannelNotFoundEntity,
    ConnectionClosed,
    DeliveryError,
    PublishError,
)
from pamqp.header import ContentHeader

from simulators.deliveries import BrokerUnavailable, Deliveries, Outgoing, broker_trouble
from simulators.party import ContractViolation

WAIT_S = 2.0


@dataclass
class FakeDelivery:
    """What the party sees of one delivery, and what it did with it."""

    message_id: str | None
    body: bytes = b"{}"
    type: str = "verify.request"
    routing_key: str = "crm.GD.verify.request"
    channel_closed: bool = False
    settled: list[str] = field(default_factory=list)

    async def ack(self) -> None:
        self._settle("ack")

    async def reject(self, requeue: bool = False) -> None:
        self._settle(f"reject(requeue={requeue})")

    def _settle(self, how: str) -> None:
        if self.channel_closed:
            raise ChannelInvalidStateError("the channel closed with the connection")
        self.settled.append(how)


class FakeBroker:
    """Publishes: confirmed, or failed as when the broker is away, as `confirms` says call by call
    (confirmed once it is spent); with a `gate`, each waits for the test's word first."""

    def __init__(self, confirms: list[bool] | None = None) -> None:
        self.confirms = list(confirms or [])
        self.confirmed: list[str] = []
        self.gate: asyncio.Event | None = None
        self.sending = asyncio.Event()

    async def send(self, outgoing: Outgoing) -> None:
        self.sending.set()
        if self.gate is not None:
            await asyncio.wait_for(self.gate.wait(), WAIT_S)
        if self.confirms and not self.confirms.pop(0):
            raise BrokerUnavailable("not confirmed within 0 s")
        self.confirmed.append(outgoing.message.body.decode())


class FakeParty:
    """A party whose handler publishes `answers` (as `PartyClient.publish` does inside a handler),
    then fails with `fail_with`, if given."""

    def __init__(
        self, answers: list[str], fail_with: Exception | None = None, confirms: list[bool] | None = None
    ) -> None:
        self.answers = answers
        self.fail_with = fail_with
        self.broker = FakeBroker(confirms)
        self.handled: list[str | None] = []
        self.deliveries = Deliveries("crm.GD", self._handle, self.broker.send, give_back_pause_s=0.0)

    async def _handle(self, incoming: AbstractIncomingMessage) -> None:
        self.handled.append(incoming.message_id)
        for answer in self.answers:
            assert self.deliveries.collect(
                Outgoing(aio_pika.Message(answer.encode()), "crm.GD.verify.response")
            )
        if self.fail_with is not None:
            raise self.fail_with


def _incoming(delivery: FakeDelivery) -> AbstractIncomingMessage:
    return cast(AbstractIncomingMessage, delivery)


async def _take(party: FakeParty, delivery: FakeDelivery) -> None:
    await asyncio.wait_for(party.deliveries.take(_incoming(delivery)), WAIT_S)


async def test_a_delivery_whose_answer_was_not_confirmed_is_not_seen_and_its_redelivery_is_answered() -> None:
    party = FakeParty(["answer"], confirms=[False])
    first = FakeDelivery("m1", channel_closed=True)
    await _take(party, first)

    assert first.settled == [] and party.deliveries.owed == 1 and party.broker.confirmed == []
    again = FakeDelivery("m1")
    await _take(party, again)

    assert party.broker.confirmed == ["answer"] and again.settled == ["ack"]
    assert party.handled == ["m1"], "the handler's effects happen once: the owed answer is sent"
    assert party.deliveries.duplicates == 0 and party.deliveries.errors == [] and party.deliveries.owed == 0


async def test_a_delivery_not_done_with_goes_back_to_the_queue_when_its_channel_is_still_open() -> None:
    party = FakeParty(["answer"], confirms=[False])
    delivery = FakeDelivery("m1")
    await _take(party, delivery)
    assert delivery.settled == ["reject(requeue=True)"]


async def test_a_repeat_of_a_delivery_done_with_is_dropped_and_acknowledged() -> None:
    party = FakeParty(["answer"])
    await _take(party, FakeDelivery("m1"))
    repeat = FakeDelivery("m1")
    await _take(party, repeat)

    assert repeat.settled == ["ack"] and party.deliveries.duplicates == 1
    assert party.broker.confirmed == ["answer"] and party.handled == ["m1"]


async def test_a_handler_bug_is_recorded_acknowledged_and_its_earlier_answers_still_sent() -> None:
    party = FakeParty(["first"], fail_with=ContractViolation("the hub sent 'x.y'"))
    delivery = FakeDelivery("m1")
    await _take(party, delivery)

    assert delivery.settled == ["ack"] and party.broker.confirmed == ["first"]
    [error] = party.deliveries.errors
    assert error.message_id == "m1" and error.msg_type == "verify.request"
    assert error.error == "ContractViolation: the hub sent 'x.y'"
    await _take(party, FakeDelivery("m1"))
    assert party.deliveries.duplicates == 1, "a message its handler failed on is done with too"


async def test_a_handler_cut_off_by_the_broker_is_run_again_on_the_redelivery() -> None:
    party = FakeParty([], fail_with=ConnectionClosed(320, "CONNECTION_FORCED"))
    first = FakeDelivery("m1")
    await _take(party, first)
    await _take(party, FakeDelivery("m1"))

    assert party.handled == ["m1", "m1"] and party.deliveries.errors == []
    assert first.settled == ["reject(requeue=True)"] and party.deliveries.duplicates == 0


@pytest.mark.parametrize("first_confirmed", [True, False], ids=["confirmed", "not-confirmed"])
async def test_a_redelivery_arriving_while_the_first_is_worked_on_waits_for_how_it_ends(
    first_confirmed: bool,
) -> None:
    party = FakeParty(["answer"], confirms=[first_confirmed])
    party.broker.gate = asyncio.Event()
    first = asyncio.create_task(party.deliveries.take(_incoming(FakeDelivery("m1", channel_closed=True))))
    await asyncio.wait_for(party.broker.sending.wait(), WAIT_S)
    again = asyncio.create_task(party.deliveries.take(_incoming(FakeDelivery("m1"))))
    await asyncio.sleep(0)  # one turn of the loop: the redelivery reaches its wait for the first
    party.broker.gate.set()
    await asyncio.wait_for(asyncio.gather(first, again), WAIT_S)

    assert party.handled == ["m1"] and party.broker.confirmed == ["answer"]
    assert party.deliveries.duplicates == (1 if first_confirmed else 0)
    assert party.deliveries.owed == 0


async def test_a_delivery_without_message_id_is_handled_each_time() -> None:
    party = FakeParty(["answer"])
    await _take(party, FakeDelivery(None))
    await _take(party, FakeDelivery(None))
    assert party.handled == [None, None] and party.broker.confirmed == ["answer", "answer"]


async def test_outside_a_handler_a_publish_is_not_collected() -> None:
    party = FakeParty([])
    assert not party.deliveries.collect(Outgoing(aio_pika.Message(b"x"), "crm.GD.verify.response"))


def _returned() -> PublishError:
    frame = spec.Basic.Return(reply_code=312, reply_text="NO_ROUTE", exchange="x", routing_key="k")
    returned = DeliveredMessage(
        delivery=frame, header=ContentHeader(), body=b"", channel=cast(AbstractChannel, None)
    )
    return PublishError(returned, frame)


@pytest.mark.parametrize(
    ("exc", "trouble"),
    [
        (ConnectionClosed(320, "CONNECTION_FORCED"), True),
        (ConnectionResetError(), True),
        (BrokerUnavailable("not confirmed"), True),
        (ChannelInvalidStateError("closed"), True),
        (ChannelNotFoundEntity("no exchange 'p.inbound'"), True),
        (TimeoutError(), True),
        (DeliveryError(None, spec.Basic.Nack(delivery_tag=1)), True),
        (_returned(), False),
        (ChannelAccessRefused("write access refused"), False),
        (ValueError("bad body"), False),
        (ContractViolation("off the contract"), False),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else str(v),
)
def test_broker_trouble_is_told_apart_from_what_would_fail_on_every_try(
    exc: Exception, trouble: bool
) -> None:
    assert broker_trouble(exc) is trouble
