"""Scripted and random agreement changes after signing, as the banks' and CRMs' subscribers make
them: unsign and modify at the bank or at the operator, and signing again after a cancel."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from contracts.common import UserType
from simulators.bank import BankSimulator
from simulators.crm import CrmSimulator
from simulators.fleet import Simulators
from simulators.recording import Recorder
from simulators.scenarios import FINAL_WAIT_S, Run

FINAL = "ACTIVE"


@dataclass
class ChangeRun:
    label: str
    expected: str
    actual: str = "NO_ANSWER"


async def _answer(recorder: Recorder, message_id: str, what: str) -> str:
    """The result of the change message `message_id`: OK, or REJECTED:<reason_code>."""

    def answered() -> bool:
        return any(r.correlation_id == message_id for r in recorder.received)

    await recorder.wait_until(answered, what, FINAL_WAIT_S)
    body = next(r.body for r in recorder.received if r.correlation_id == message_id)
    return "OK" if body["result"] == "OK" else f"REJECTED:{body.get('reason_code')}"


async def _other_side_saw(
    change: ChangeRun, check: Callable[[], bool], recorder: Recorder, what: str
) -> None:
    """Only an applied change is told to the other side."""
    if change.actual == "OK":
        await recorder.wait_until(check, what, FINAL_WAIT_S)


async def change_agreements(sims: Simulators, runs: list[Run], seed: int, randoms: int) -> list[ChangeRun]:
    """Four scripted changes (one of each kind and side), a re-signing, then `randoms` random ones."""
    signed = [r for r in runs if r.label == "happy path"
              and sims.banks[r.bank].outcomes[r.request_id].active][1:]  # fmt: skip
    rng = random.Random(seed)
    scripted = [(_bank_unsign, signed[0:1]), (_crm_unsign, signed[1:2]), (_bank_modify, signed[2:3]),
                (_crm_modify, signed[3:4])]  # fmt: skip
    done = [await step(sims, run, rng) for step, some in scripted for run in some]
    if signed:
        done.append(await _sign_again(sims, signed[0]))
    for run in signed[4 : 4 + randoms]:
        change = await rng.choice([_bank_modify, _crm_modify])(sims, run, rng)
        change.label = "random: " + change.label
        done.append(change)
    return done


def _new_terms(sims: Simulators, phone: str, rng: random.Random) -> tuple[dict[str, object], str, str]:
    """Terms a subscriber of this number could ask for, the answer expected, and a label."""
    agreement = _crm_of(sims, phone).agreement_of(phone)
    assert agreement is not None
    if agreement.user_type is UserType.PREPAID:
        amount = rng.choice([2000, 3000, 6000, 7000])
        return {"recharge_amount": amount}, "OK", f"amount to {amount}"
    allowed = next(
        s.auto_pay_allowed for subs in sims.world.subscribers.values() for s in subs if s.phone == phone
    )
    # Auto-pay where the province does not allow it is refused: the scenario expects exactly that.
    return {"auto_pay": True}, "OK" if allowed else "REJECTED:OTHER", "auto-pay on"


async def _sign_again(sims: Simulators, cancelled: Run) -> ChangeRun:
    """The number cancelled at its bank signs again, at another bank."""
    phone = sims.banks[cancelled.bank].outcomes[cancelled.request_id].phone
    code = next(b for b in sims.banks if b != cancelled.bank)
    bank = sims.banks[code]
    request_id = await bank.start_signing(phone, sims.world.usable_accounts(code)[-1])
    result = await bank.wait_result(request_id, FINAL_WAIT_S)
    return ChangeRun(f"signs again at {code} after the cancel", "ACTIVE", str(result.get("status")))


def _bank_and_no(sims: Simulators, run: Run) -> tuple[BankSimulator, str, str]:
    bank = sims.banks[run.bank]
    outcome = bank.outcomes[run.request_id]
    assert outcome.bank_agreement_no is not None
    return bank, outcome.bank_agreement_no, outcome.phone


def _crm_of(sims: Simulators, phone: str) -> CrmSimulator:
    return next(c for c in sims.crms.values() if c.agreement_of(phone) is not None or any(
        a.phone == phone for a in c.agreements.values()))  # fmt: skip


async def _bank_unsign(sims: Simulators, run: Run, rng: random.Random) -> ChangeRun:
    bank, number, phone = _bank_and_no(sims, run)
    crm = _crm_of(sims, phone)
    change = ChangeRun("unsign at the bank", "OK")
    change.actual = await _answer(bank.recorder, await bank.unsign(number), "unsign.result")
    await _other_side_saw(change, lambda: crm.agreement_of(phone) is None, crm.recorder, "unsign.notify")
    return change


async def _crm_unsign(sims: Simulators, run: Run, rng: random.Random) -> ChangeRun:
    bank, number, phone = _bank_and_no(sims, run)
    crm = _crm_of(sims, phone)
    change = ChangeRun("unsign at the operator", "OK")
    change.actual = await _answer(crm.recorder, await crm.unsign_at_operator(phone), "unsign.result")
    await _other_side_saw(change, lambda: bank.agreements[number].status == "CANCELLED", bank.recorder,
                          "unsign.notice")  # fmt: skip
    return change


async def _bank_modify(sims: Simulators, run: Run, rng: random.Random) -> ChangeRun:
    bank, number, phone = _bank_and_no(sims, run)
    crm = _crm_of(sims, phone)
    terms, expected, label = _new_terms(sims, phone, rng)
    change = ChangeRun(f"modify {label} at the bank", expected)
    change.actual = await _answer(bank.recorder, await bank.modify(number, **terms), "modify.result")
    await _other_side_saw(change, lambda: _has(crm.agreement_of(phone), terms), crm.recorder, "modify.notify")
    return change


async def _crm_modify(sims: Simulators, run: Run, rng: random.Random) -> ChangeRun:
    bank, number, phone = _bank_and_no(sims, run)
    crm = _crm_of(sims, phone)
    terms, expected, label = _new_terms(sims, phone, rng)
    change = ChangeRun(f"modify {label} at the operator", expected)
    change.actual = await _answer(crm.recorder, await crm.modify_at_operator(phone, **terms), "modify.result")
    await _other_side_saw(
        change, lambda: _has(bank.agreements[number], terms), bank.recorder, "modify.notice"
    )
    return change


def _has(record: object, terms: dict[str, object]) -> bool:
    return record is not None and all(getattr(record, k, None) == v for k, v in terms.items())
