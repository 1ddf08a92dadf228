"""The broker side of the fuzzer and its judge: publishes inputs as parties would, keeps everything
that comes back (every party queue, the dead and the manual queue), and judges it against each
input's own label (bench/fuzz_expect.py), never against the hub's classifier.

Per input: a refused one has exactly one dead copy with the expected `x-signhub-reason` and, from a
registered sender, exactly one `message.rejected` with the expected `reason_code` on that sender's
own queue (none from an unknown sender), and nothing else; an accepted one has no refusal, its
answer (of the label's types, on the label's party's queue), and nothing correlated to it anywhere
else. Repeats of one request share one answer; uncorrelated relays are counted per addressee.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractRobustConnection

from bench.fuzz_expect import Expect
from bench.fuzz_inputs import FuzzInput
from hub.protection import mask_digits_in_text as shown

_BATCH = 100
DEAD, MANUAL = "dead", "manual"


@dataclass(frozen=True)
class Seen:
    """One message the hub sent, as a party (or an operator draining a queue) got it."""

    queue: str  # the party whose queue it came from, or DEAD / MANUAL
    type: str
    message_id: str
    correlation_id: str | None = None
    reason: str | None = None  # x-signhub-reason of a dead or manual copy
    names: str | None = None  # message.rejected: the message_id it names
    reason_code: str | None = None  # message.rejected


@dataclass
class Verdict:
    """What the judge found: problems by input, and problems of the run as a whole."""

    by_input: dict[int, list[str]] = field(default_factory=lambda: defaultdict(list))
    general: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        return [f"input {k}: {p}" for k, ps in sorted(self.by_input.items()) for p in ps] + self.general

    @property
    def mismatches(self) -> int:
        """Inputs whose outcome is not their label's."""
        return sum(1 for ps in self.by_input.values() if ps)


@dataclass
class _Came:
    dead: dict[int, list[str]] = field(default_factory=lambda: defaultdict(list))
    rejected: dict[int, dict[str, tuple[str, str | None]]] = field(default_factory=lambda: defaultdict(dict))
    answers: dict[int, list[tuple[str, str]]] = field(default_factory=lambda: defaultdict(list))
    uncorrelated: Counter[tuple[str, str]] = field(default_factory=Counter)


def judge(labelled: Sequence[tuple[str, Expect]], seen: Sequence[Seen]) -> Verdict:
    """`labelled`: each input's message_id (as published) and label, by input number."""
    verdict, came = Verdict(), _sort(labelled, seen)
    for k, (_, e) in enumerate(labelled):
        (_judge_refused if not e.accepted else _judge_accepted)(verdict.by_input[k], e, came, k)
    _judge_answered(verdict, labelled, came)
    _judge_relays(verdict, labelled, came)
    verdict.general += _strays(labelled, seen)
    return verdict


def _judge_answered(verdict: Verdict, labelled: Sequence[tuple[str, Expect]], came: _Came) -> None:
    """Every accepted input that is due an answer has one, or one of its repeats has it."""
    groups: dict[str, list[int]] = defaultdict(list)
    for k, (_, e) in enumerate(labelled):
        if e.accepted and e.answers and e.correlated:
            groups[e.shared or f"input {k}"].append(k)
    # "the hub closes the request ... without an answer": delivery is "in no guaranteed order", so a
    # flow some accepted sign.failed names may have been closed before its request was answered.
    closed = {e.closes for _, e in labelled if e.accepted and e.closes is not None}
    for members in groups.values():
        if any(came.answers[k] for k in members) or labelled[members[0]][1].flow in closed:
            continue
        due = "/".join(labelled[members[0]][1].answers)
        repeats = "" if len(members) == 1 else f" (nor any of its {len(members) - 1} repeats)"
        for k in members:
            verdict.by_input[k].append(f"accepted but not answered with {due}{repeats}")


def _judge_relays(verdict: Verdict, labelled: Sequence[tuple[str, Expect]], came: _Came) -> None:
    """Answers that name no input (BOSS's relayed agreement.synced): as many per addressee as inputs."""
    counted: Counter[tuple[str, tuple[str, ...]]] = Counter()
    for _, e in labelled:
        if e.accepted and e.answers and not e.correlated and e.answer_to is not None:
            counted[(e.answer_to, e.answers)] += 1
    for (party, types), n in counted.items():
        if (got := sum(came.uncorrelated[(party, t)] for t in types)) != n:
            verdict.general.append(f"{got} uncorrelated {'/'.join(types)} to {party}, expected {n}")


def _sort(labelled: Sequence[tuple[str, Expect]], seen: Sequence[Seen]) -> _Came:
    by_mid = {mid: k for k, (mid, _) in enumerate(labelled)}
    by_shown = {shown(mid): k for k, (mid, _) in enumerate(labelled)}  # a dead copy's message_id is masked
    came = _Came()
    for s in seen:
        if s.queue == DEAD and s.message_id in by_shown:
            came.dead[by_shown[s.message_id]].append(s.reason or "")
        elif s.queue not in (DEAD, MANUAL) and s.type == "message.rejected" and s.names in by_mid:
            # One refusal delivered twice (at least once, same message_id) is still one refusal.
            came.rejected[by_mid[s.names]][s.message_id] = (s.queue, s.reason_code)
        elif s.queue not in (DEAD, MANUAL) and s.correlation_id in by_mid:
            came.answers[by_mid[s.correlation_id]].append((s.queue, s.type))
        elif s.queue not in (DEAD, MANUAL):
            came.uncorrelated[(s.queue, s.type)] += 1
    return came


def _judge_refused(out: list[str], e: Expect, came: _Came, k: int) -> None:
    if came.dead[k] != [e.reason]:
        out.append(f"dead copies {came.dead[k]}, expected one {e.reason}")
    told = list(came.rejected[k].values())
    expected = [(e.answer_to, e.reason)] if e.answer_to else []
    if told != expected:
        out.append(f"message.rejected (party, reason_code) {told}, expected {expected}")
    if came.answers[k]:
        out.append(f"refused, yet answered {came.answers[k]}")


def _judge_accepted(out: list[str], e: Expect, came: _Came, k: int) -> None:
    if came.dead[k] or came.rejected[k]:
        out.append(f"accepted, yet refused: dead {came.dead[k]}, told {list(came.rejected[k].values())}")
    wrong = [(q, t) for q, t in came.answers[k] if q != e.answer_to or t not in e.answers]
    if wrong:
        due = f"{'/'.join(e.answers)} to {e.answer_to}" if e.answers else "no answer"
        out.append(f"answered {wrong}, expected {due}")


def _strays(labelled: Sequence[tuple[str, Expect]], seen: Sequence[Seen]) -> list[str]:
    known = {shown(mid) for mid, _ in labelled}
    strays = [s for s in seen if s.queue == DEAD and s.message_id not in known]
    cases = [s for s in seen if s.queue == MANUAL]
    out = [f"a dead copy names no input: {s.message_id!r} ({s.reason})" for s in strays[:5]]
    return out + [f"a case was opened: {s.type} {s.message_id!r} ({s.reason})" for s in cases[:5]]


class Watcher:
    """Consumes a hub's party queues, dead and manual queue and keeps every message as `Seen`."""

    def __init__(self, connection: AbstractRobustConnection, channel: AbstractChannel, prefix: str) -> None:
        self.connection, self.channel, self.prefix = connection, channel, prefix
        self.seen: list[Seen] = []

    @classmethod
    async def start(cls, url: str, prefix: str, parties: Sequence[str]) -> Watcher:
        connection = await aio_pika.connect_robust(url)
        channel = await connection.channel(publisher_confirms=True)
        await channel.set_qos(prefetch_count=500)
        w = cls(connection, channel, prefix)
        queues = {p: f"{prefix}.party.{p}" for p in parties} | {
            DEAD: f"{prefix}.dead",
            MANUAL: f"{prefix}.manual",
        }
        for where, name in queues.items():
            queue = await channel.get_queue(name, ensure=True)
            await queue.consume(partial(w._take, where))
        return w

    async def _take(self, where: str, message: AbstractIncomingMessage) -> None:
        headers = message.headers or {}
        reason = headers.get("x-signhub-reason")
        names = code = None
        if message.type == "message.rejected":
            try:
                body = json.loads(message.body)
                names, code = str(body.get("message_id")), str(body.get("reason_code"))
            except (ValueError, AttributeError):
                names = "<not a JSON object>"
        self.seen.append(Seen(
            where, message.type or "", message.message_id or "", message.correlation_id,
            reason.decode() if isinstance(reason, bytes) else None if reason is None else str(reason), names, code,
        ))  # fmt: skip
        await message.ack()

    async def publish(self, inputs: Sequence[FuzzInput]) -> None:
        """Input k goes out as a party would send it, with the message_id `inputs[k].message_id(k)`."""
        exchange = await self.channel.get_exchange(f"{self.prefix}.inbound")

        async def one(k: int, i: FuzzInput) -> None:
            message = aio_pika.Message(
                i.body, message_id=i.message_id(k), type=i.msg_type, content_type=i.content_type,
                headers=i.headers, delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            )  # fmt: skip
            await exchange.publish(message, routing_key=i.routing_key, mandatory=True)

        for start in range(0, len(inputs), _BATCH):
            await asyncio.gather(*(one(k, inputs[k]) for k in range(start, min(start + _BATCH, len(inputs)))))

    async def settle(self, done: Callable[[list[Seen]], bool], timeout: float, grace: float = 2.0) -> None:
        """Until `done` holds (bounded by `timeout`), then `grace` longer for anything more on its way."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if done(self.seen):
                break
            await asyncio.sleep(0.5)
        await asyncio.sleep(grace)

    async def close(self) -> None:
        await self.connection.close()
