"""Scripted bank-channel scenarios, driven by the simulated banks as outside parties would.

Used by `signhub demo`: happy paths, each CRM refusal, an unknown segment, an already-signed
number, a duplicate confirmation, a silent CRM, a failed signing, a bad message and a local bank
refusal. Each scenario knows what it expects, so the demo can say whether the hub did it.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field

from contracts.common import ReasonCode
from simulators.bank import BankSimulator, Outcome
from simulators.fleet import Simulators
from simulators.seed import Subscriber, World

FINAL_WAIT_S = 30.0


@dataclass
class Run:
    """One signing the demo started, what it expected and what happened."""

    label: str
    bank: str
    request_id: str
    expected: str

    def actual(self, outcome: Outcome) -> str:
        if outcome.local_refusal is not None:
            return "REFUSED_BY_BANK"
        if outcome.failed:
            return "FAILED_AT_BANK"
        if outcome.status is not None:
            code = outcome.sign_results[-1].get("reason_code")
            return f"{outcome.status}:{code}" if code else str(outcome.status)
        if outcome.sign_response is not None and outcome.sign_response.get("result") == "REJECTED":
            return f"REJECTED:{outcome.sign_response.get('reason_code')}"
        return "NO_ANSWER"


@dataclass
class Plan:
    """Which subscribers play which part; the knobs of the simulators follow from it."""

    happy: list[Subscriber]
    silent: Subscriber
    fails: Subscriber
    duplicate: Subscriber
    unknown_segment_phone: str
    refusals: list[Subscriber] = field(default_factory=list)


def plan(world: World, provinces: list[str], flows: int, unknown_segment_phone: str) -> Plan:
    pools = {p: list(world.signable(p)) for p in provinces}
    special = [pools[p].pop() for p in itertools.islice(itertools.cycle(provinces), 3)]
    happy = [pools[p].pop(0) for p in itertools.islice(itertools.cycle(provinces), flows) if pools[p]]
    reasons = [r for r in ReasonCode if world.refused(r)]
    refusals = [world.refused(r)[0] for r in reasons]
    return Plan(happy, special[0], special[1], special[2], unknown_segment_phone, refusals)


def _terminal(outcome: Outcome) -> bool:
    if outcome.local_refusal is not None or outcome.failed:
        return True
    if outcome.status is not None and outcome.status != "MANUAL_REVIEW":
        return True
    response = outcome.sign_response
    return response is not None and response.get("result") == "REJECTED"


async def drive(sims: Simulators, p: Plan, banks: list[str]) -> list[Run]:
    """Runs every scenario and waits (bounded) until each has its final answer."""
    world, runs = sims.world, []
    bank_cycle = itertools.cycle(banks)
    accounts = {b: itertools.cycle(world.usable_accounts(b)) for b in banks}

    async def start(label: str, phone: str, expected: str, bank: str | None = None) -> Run:
        code = bank or next(bank_cycle)
        rid = await sims.banks[code].start_signing(phone, next(accounts[code]))
        run = Run(label, code, rid, expected)
        runs.append(run)
        return run

    for sub in p.happy:
        await start("happy path", sub.phone, "ACTIVE")
    for sub in p.refusals:
        await start("CRM refuses", sub.phone, f"REJECTED:{sub.expected_refusal}")
    await start("unknown segment", p.unknown_segment_phone, "REJECTED:UNKNOWN_SEGMENT")
    await start("silent CRM", p.silent.phone, "REJECTED:CRM_TIMEOUT")
    await start("bank fails after approval", p.fails.phone, "FAILED_AT_BANK", banks[-1])
    await _local_refusal(sims, banks[0], runs, p.happy[0].phone)
    await _wait_all(sims, runs)
    await start("already signed", p.happy[0].phone, "REJECTED:ALREADY_SIGNED", banks[1])
    runs += await _duplicate(sims, p.duplicate, banks[0], banks[1])
    await _wait_all(sims, runs)
    return runs


async def _local_refusal(sims: Simulators, bank: str, runs: list[Run], phone: str) -> None:
    frozen = next(a for a in sims.world.accounts[bank] if a.status != "NORMAL")
    rid = await sims.banks[bank].start_signing(phone, frozen)
    runs.append(Run("frozen account, refused at the bank", bank, rid, "REFUSED_BY_BANK"))


async def _duplicate(sims: Simulators, sub: Subscriber, first: str, second: str) -> list[Run]:
    """Two banks approved for one number; both confirm: the second waits for an operator."""
    a, b = sims.banks[first], sims.banks[second]
    rid_a = await a.start_signing(sub.phone, sims.world.usable_accounts(first)[0])
    rid_b = await b.start_signing(sub.phone, sims.world.usable_accounts(second)[1])
    await a.wait_response(rid_a, FINAL_WAIT_S)
    await b.wait_response(rid_b, FINAL_WAIT_S)
    await a.confirm_for(rid_a)
    await a.wait_result(rid_a, FINAL_WAIT_S)
    await b.confirm_for(rid_b)
    await b.wait_result(rid_b, FINAL_WAIT_S)
    return [Run("duplicate: first bank", first, rid_a, "ACTIVE"),
            Run("duplicate: second bank", second, rid_b, "MANUAL_REVIEW:DUPLICATE_AGREEMENT")]  # fmt: skip


async def _wait_all(sims: Simulators, runs: list[Run]) -> None:
    async def one(run: Run) -> None:
        bank: BankSimulator = sims.banks[run.bank]
        if run.expected.startswith("MANUAL_REVIEW"):
            return
        await bank.wait_for(run.request_id, _terminal, FINAL_WAIT_S, what=f"final answer to {run.label}")

    await asyncio.gather(*(one(r) for r in runs))
