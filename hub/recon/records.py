"""Rows of a comparison (`hub.recon.staging`, columns f_* of the file, h_* of the hub) as the
records the pure decisions take, and records as file fields. Pure."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from hub.flows.reconciliation import BankRecord, CrmRecord, ErrorRecord, HubRecord, Terms
from hub.recon.files import fmt_fen, fmt_flag


def _fen(value: Any) -> int | None:
    return None if value in (None, "") else int(value)


def _terms(row: dict[str, Any], p: str) -> Terms:
    thr, amt = ("f_thr", "f_amt") if p == "f" else ("h_recharge_threshold", "h_recharge_amount")
    return Terms(row[f"{p}_user_type"], _fen(row[thr]), _fen(row[amt]), bool(row[f"{p}_auto_pay"]))


def bank_of(row: dict[str, Any]) -> BankRecord | None:
    if row.get("k") is None:
        return None
    return BankRecord(row["k"], row["f_phone"], row["f_last4"], row["f_status"], _terms(row, "f"),
                      datetime.fromisoformat(row["f_signed_at"]), datetime.fromisoformat(row["f_changed_at"]),
                      bool(row["f_second"]))  # fmt: skip


def crm_of(row: dict[str, Any]) -> CrmRecord | None:
    if row.get("k") is None:
        return None
    return CrmRecord(row["k"], row["f_phone"], row["f_bank_code"], row["f_status"], _terms(row, "f"),
                     datetime.fromisoformat(row["f_changed_at"]), bool(row["f_second"]))  # fmt: skip


def hub_of(row: dict[str, Any]) -> HubRecord | None:
    if row.get("h_agreement_id") is None:
        return None
    return HubRecord(row["h_agreement_id"], row["h_bank"], row["h_bank_agreement_no"], row["h_phone"],
                     row["h_province"], row["h_status"], int(row["h_version"]), _terms(row, "h"),
                     datetime.fromisoformat(row["h_signed_at"]), datetime.fromisoformat(row["h_changed_at"]),
                     bool(row["h_second"]))  # fmt: skip


Rollback = Callable[[list[dict[str, Any]]], None]


def roll_back(rows: list[dict[str, Any]], cutoff: str, as_of: Callable[[list[str]], dict[str, Any]]) -> None:
    """Puts the hub's side of rows changed after `cutoff` back as it was then (`as_of`: agreement ids
    -> (terms, made at) of their last version at the cut-off); one made later is taken out."""
    later = [r for r in rows if r.get("h_agreement_id") is not None and r["h_changed_at"] >= cutoff]
    if not later:
        return
    then = as_of([r["h_agreement_id"] for r in later])
    for row in later:
        version = then.get(row["h_agreement_id"])
        if version is None:
            row["h_agreement_id"] = None
            continue
        terms, at = version
        row.update(h_status=terms["status"], h_version=terms["version"], h_user_type=terms["user_type"],
                   h_recharge_threshold=terms["recharge_threshold"], h_recharge_amount=terms["recharge_amount"],
                   h_auto_pay=bool(terms["auto_pay"]), h_changed_at=at)  # fmt: skip


def bank_line(r: BankRecord) -> str:
    t = r.terms
    return "|".join(("D", r.bank_agreement_no, r.phone, r.account_last4, r.status, t.user_type,
                     fmt_fen(t.recharge_threshold), fmt_fen(t.recharge_amount), fmt_flag(t.auto_pay),
                     r.signed_at.isoformat(), r.changed_at.isoformat()))  # fmt: skip


def crm_line(r: CrmRecord) -> str:
    t = r.terms
    return "|".join(("D", r.agreement_id, r.phone, r.bank_code, r.status, t.user_type, fmt_fen(t.recharge_threshold),
                     fmt_fen(t.recharge_amount), fmt_flag(t.auto_pay), r.changed_at.isoformat()))  # fmt: skip


def error_fields(e: ErrorRecord) -> tuple[str, ...]:
    t = e.terms
    return (e.action, e.agreement_id, e.phone, e.bank_code, e.status, t.user_type, fmt_fen(t.recharge_threshold),
            fmt_fen(t.recharge_amount), fmt_flag(t.auto_pay), e.reason_code)  # fmt: skip
