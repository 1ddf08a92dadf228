"""Reconciliation files as banks and provincial CRMs make them (flow 3), written from CONTRACT.md.

A bank or a CRM writes its DAILY file (the records it changed on the business date) or its
MONTHLY file (every agreement it has, ACTIVE and CANCELLED) from its own data, uploads it to
`<files>/inbound/<kind>.<code>/` and announces it with `recon.file`. `drift_*` inject
discrepancies into a simulator's own data on demand (the bank "forgets" or invents agreements,
changes a status or terms without telling the hub), so the files that follow carry them.
A CRM reads the hub's error-handling file and corrects its data from it (`read_errors`).
"""

from __future__ import annotations

import hashlib
import random
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from contracts.common import Scope, UserType
from contracts.recon import ReconFile
from simulators.bank_records import BankAgreement
from simulators.crm_register import CrmAgreement
from simulators.timefmt import SHANGHAI, now_local


def _fen(value: int | None) -> str:
    return "" if value is None else str(value)


def _flag(value: bool | None) -> str:
    return "Y" if value else "N"


def _day_of(stamp: str) -> date | None:
    return datetime.fromisoformat(stamp).astimezone(SHANGHAI).date() if stamp else None


def bank_record(a: BankAgreement) -> tuple[str, ...]:
    user_type = UserType.PREPAID if a.recharge_threshold is not None else UserType.POSTPAID
    return (a.bank_agreement_no, a.phone, a.account.account_no[-4:], a.status, user_type.value,
            _fen(a.recharge_threshold), _fen(a.recharge_amount), _flag(a.auto_pay), a.signed_at,
            a.changed_at or a.signed_at)  # fmt: skip


def crm_record(a: CrmAgreement) -> tuple[str, ...]:
    return (a.agreement_id, a.phone, a.bank_code, a.status, a.user_type.value, _fen(a.recharge_threshold),
            _fen(a.recharge_amount), _flag(a.auto_pay), a.changed_at or a.signed_at)  # fmt: skip


def bank_records(agreements: Iterable[BankAgreement], day: date, scope: Scope) -> list[tuple[str, ...]]:
    """The bank's file content: its formal agreements (not those pending or held by the hub)."""
    signed = [a for a in agreements if a.status in ("ACTIVE", "CANCELLED")]
    return [bank_record(a) for a in signed if _in_scope(a.changed_at or a.signed_at, day, scope)]


def crm_records(agreements: Iterable[CrmAgreement], day: date, scope: Scope) -> list[tuple[str, ...]]:
    """The CRM's file content: its formal agreements (pre-signings at the province are not)."""
    formal = [a for a in agreements if not a.provisional]
    return [crm_record(a) for a in formal if _in_scope(a.changed_at or a.signed_at, day, scope)]


def _in_scope(changed_at: str, day: date, scope: Scope) -> bool:
    changed = _day_of(changed_at)
    return changed is not None and (changed == day if scope is Scope.DAILY else changed <= day)


@dataclass(frozen=True, slots=True)
class Uploaded:
    path: Path
    announcement: ReconFile


def upload(files: Path, sender: str, day: date, scope: Scope, records: Sequence[Sequence[str]],
           file_name: str | None = None) -> Uploaded:  # fmt: skip
    """Writes the file (header, records, trailer; LF; UTF-8) to the party's inbound folder."""
    name = file_name or f"{sender.split('.')[1]}_{day:%Y%m%d}_{scope.value}_{uuid.uuid4().hex[:6]}.txt"
    folder = files / "inbound" / sender
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    digest = hashlib.sha256()
    with path.open("wb") as f:
        for line in (f"H|{sender}|{day:%Y%m%d}|{scope.value}|{len(records)}",
                     *("D|" + "|".join(r) for r in records), f"T|{len(records)}"):  # fmt: skip
            data = (line + "\n").encode("utf-8")
            digest.update(data)
            f.write(data)
    announcement = ReconFile(file_name=name, business_date=day.isoformat(), scope=scope,
                             record_count=len(records), sha256=digest.hexdigest())  # fmt: skip
    return Uploaded(path, announcement)


def read_errors(files: Path, crm: str, file_name: str, sha256: str) -> list[list[str]]:
    """The hub's error-handling file for `crm`, checked against its announcement."""
    path = files / "outbound" / crm / file_name
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != sha256:
        raise ValueError(f"{file_name}: sha256 does not match the announcement")
    lines = data.decode("utf-8").split("\n")
    if lines[-1] != "" or not lines[0].startswith("H|") or not lines[-2].startswith("T|"):
        raise ValueError(f"{file_name}: not a header, records and a trailer")
    records = [line.split("|")[1:] for line in lines[1:-2]]
    if int(lines[0].split("|")[4]) != len(records) or int(lines[-2].split("|")[1]) != len(records):
        raise ValueError(f"{file_name}: counts do not match")
    return records


# --- discrepancies on demand ------------------------------------------------------------------


def drift_bank(agreements: dict[str, BankAgreement], each: int, rng: random.Random,
               template: BankAgreement | None = None) -> dict[str, list[str]]:  # fmt: skip
    """Makes the bank's data differ from the hub's: `each` agreements of every class.
    Returns the bank_agreement_nos touched, by the class the hub will find."""
    active = sorted(
        (a for a in agreements.values() if a.status == "ACTIVE"), key=lambda a: a.bank_agreement_no
    )
    rng.shuffle(active)
    touched: dict[str, list[str]] = {"MISSING_AT_BANK": [], "STATUS_MISMATCH": [], "TERMS_MISMATCH": [],
                                     "MISSING_AT_HUB": []}  # fmt: skip
    stamp = now_local().isoformat()
    for a in active[:each]:
        del agreements[a.bank_agreement_no]
        touched["MISSING_AT_BANK"].append(a.bank_agreement_no)
    for a in active[each : 2 * each]:
        a.status, a.changed_at = "CANCELLED", stamp
        touched["STATUS_MISMATCH"].append(a.bank_agreement_no)
    for a in active[2 * each : 3 * each]:
        a.recharge_amount, a.changed_at = (a.recharge_amount or 0) + 1000, stamp
        if a.recharge_threshold is None:
            a.recharge_threshold = 500
        touched["TERMS_MISMATCH"].append(a.bank_agreement_no)
    source = template or (active[0] if active else None)
    for _ in range(each if source is not None else 0):
        assert source is not None
        number = f"X{uuid.uuid4().hex[:14].upper()}"
        phone = "1" + str(rng.randrange(3_000_000_000, 9_999_999_999))
        agreements[number] = BankAgreement(number, phone, source.account, None, "ACTIVE", signed_at=stamp,
                                           changed_at=stamp, recharge_threshold=1000, recharge_amount=5000,
                                           auto_pay=False)  # fmt: skip
        touched["MISSING_AT_HUB"].append(number)
    return touched


def drift_crm(agreements: dict[str, CrmAgreement], each: int, rng: random.Random,
              avoid: frozenset[str] = frozenset()) -> dict[str, list[str]]:  # fmt: skip
    """Makes the CRM's data differ from the hub's: `each` agreements of every class. Numbers in
    `avoid` (the bank's drift of the same round) are left alone: a change on both sides can cancel
    out, and the class would not show."""
    formal = sorted(
        (a for a in agreements.values() if a.active and not a.provisional and a.phone not in avoid),
        key=lambda a: a.agreement_id,
    )
    rng.shuffle(formal)
    touched: dict[str, list[str]] = {"MISSING_AT_CRM": [], "STATUS_MISMATCH": [], "TERMS_MISMATCH": [],
                                     "UNKNOWN_AT_HUB": []}  # fmt: skip
    stamp = now_local().isoformat()
    for a in formal[:each]:
        del agreements[a.agreement_id]
        touched["MISSING_AT_CRM"].append(a.agreement_id)
    for a in formal[each : 2 * each]:
        a.status, a.changed_at = "CANCELLED", stamp
        touched["STATUS_MISMATCH"].append(a.agreement_id)
    for a in formal[2 * each : 3 * each]:
        a.auto_pay, a.changed_at = not a.auto_pay, stamp
        touched["TERMS_MISMATCH"].append(a.agreement_id)
    for _ in range(each):
        agreement_id = f"P{uuid.uuid4().hex[:15]}"
        phone = "1" + str(rng.randrange(3_000_000_000, 9_999_999_999))
        agreements[agreement_id] = CrmAgreement(agreement_id, phone, "ICBC", UserType.POSTPAID, auto_pay=False,
                                                signed_at=stamp, changed_at=stamp)  # fmt: skip
        touched["UNKNOWN_AT_HUB"].append(agreement_id)
    return touched


def apply_error(
    agreements: dict[str, CrmAgreement], fields: Sequence[str]
) -> tuple[CrmAgreement, str] | None:
    """Corrects the CRM's data from one error-handling record (the hub's data wins). Returns the
    agreement and what BOSS must hear (`ADD`, `UPDATE`, `DELETE`), or None when nothing changed."""
    action, agreement_id, phone, bank_code, status, user_type, thr, amt, auto_pay, _reason = fields
    known = agreements.get(agreement_id)
    if action == "DELETE":
        if known is None or not known.active:
            return None
        known.status, known.changed_at = "CANCELLED", now_local().isoformat()
        return known, "DELETE"
    was_active = known is not None and known.active
    if known is None:
        known = CrmAgreement(
            agreement_id, phone, bank_code, UserType(user_type), signed_at=now_local().isoformat()
        )
        agreements[agreement_id] = known
    known.phone, known.bank_code, known.user_type, known.status = (
        phone,
        bank_code,
        UserType(user_type),
        status,
    )
    known.recharge_threshold, known.recharge_amount = (int(thr) if thr else None), (int(amt) if amt else None)
    known.auto_pay, known.provisional, known.changed_at = auto_pay == "Y", False, now_local().isoformat()
    if not known.active:
        return (known, "DELETE") if was_active else None
    return known, "UPDATE" if was_active else "ADD"
