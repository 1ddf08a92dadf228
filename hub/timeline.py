"""An agreement's timeline across all parties, and what is still outstanding. Pure.

Built from the hub's own records: the flow's and the agreement's events (each names the party and
the message that proved it), the change history and the cases. No anchor system sees this across
banks, the hub, CRMs and BOSS; it is the place an operator looks first.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

_LABELS = {
    "sign.requested": "signing requested by the bank",
    "crm.verified": "home CRM answered the verification",
    "crm.timer": "home CRM silent: timer fired",
    "agreement.active": "confirmed by the bank; agreement recorded ACTIVE",
    "case.opened": "second agreement for the number: held for an operator",
    "sign.failed": "the bank did not sign",
    "crm.synced": "home CRM recorded the agreement",
    "boss.sync.relayed": "CRM's sync relayed to BOSS",
    "boss.synced": "BOSS answered the sync",
    "agreement.sign": "agreement recorded",
    "agreement.unsign": "agreement cancelled",
    "agreement.modify": "terms modified",
    "agreement.reconciled": "corrected by reconciliation: the bank's data wins",
    "notice.taken": "the bank's notice to the web hall taken by the hub",
    "notice.relayed": "the bank's notice passed on to the web hall",
    "notice.undelivered": "the web hall did not take the bank's notice within the session's window",
}
PUBLIC_COLUMNS = (
    "agreement_id", "version", "status", "phone", "province", "bank", "bank_agreement_no", "account_last4",
    "account_type", "user_type", "recharge_threshold", "recharge_amount", "auto_pay", "channel", "signed_at",
    "updated_at", "crm_synced", "boss_synced",
)  # fmt: skip


def _entry(event: dict[str, Any]) -> dict[str, Any]:
    detail = json.loads(event.get("detail") or "{}")
    return {
        "at": event["at"], "event": event["event"], "what": _LABELS.get(event["event"], event["event"]),
        "party": event.get("party"), "message_id": event.get("message_id"), "detail": detail,
    }  # fmt: skip


def _minutes(since: str, now: datetime) -> int:
    return int((now - datetime.fromisoformat(since)).total_seconds() // 60)


def outstanding(agreement: dict[str, Any], entries: list[dict[str, Any]], cases: list[dict[str, Any]],
                now: datetime) -> list[str]:  # fmt: skip
    """What the parties still owe: the CRM's record, BOSS's sync of the last change, an operator."""
    owed: list[str] = []
    last_change = max((e["at"] for e in entries if e["event"].startswith("agreement.")), default=None)
    if agreement["status"] == "ACTIVE" and not any(e["event"] == "crm.synced" for e in entries):
        since = last_change or agreement["signed_at"]
        owed.append(f"crm.{agreement['province']} has not confirmed the agreement (sign.synced) "
                    f"for {_minutes(since, now)} minutes")  # fmt: skip
    if last_change and not any(e["event"] == "boss.synced" and e["at"] >= last_change for e in entries):
        owed.append(f"boss.{agreement['province']} has not confirmed version {agreement['version']} "
                    f"for {_minutes(last_change, now)} minutes")  # fmt: skip
    owed += _notice_owed(entries)
    for case in cases:
        if case["state"] == "OPEN":
            owed.append(
                f"case {case['case_id']} has waited for an operator for {_minutes(case['opened_at'], now)} minutes"
            )
    return owed


def _notice_owed(entries: list[dict[str, Any]]) -> list[str]:
    """A bank's notice the hub is still passing on to the web hall (flow 1, `NoticeRelay`)."""
    tries = [e for e in entries if e["event"] == "notice.relayed"]
    if not tries or any(e["detail"].get("delivered") for e in tries):
        return []
    if any(e["event"] == "notice.undelivered" for e in entries):
        return []
    return [f"the web hall has not taken the bank's notice yet ({len(tries)} attempts so far)"]


def build(agreement: dict[str, Any], events: list[dict[str, Any]], history: list[dict[str, Any]],
          cases: list[dict[str, Any]], now: datetime) -> dict[str, Any]:  # fmt: skip
    entries = sorted((_entry(e) for e in events), key=lambda e: (e["at"], e["event"]))
    changes = [
        {"version": h["version"], "at": h["at"], "change": h["change"], "source": h["source"],
         "message_id": h["message_id"], "before": json.loads(h["before"]) if h["before"] else None,
         "after": json.loads(h["after"])}
        for h in history
    ]  # fmt: skip
    return {
        "agreement": {k: agreement.get(k) for k in PUBLIC_COLUMNS},
        "timeline": entries,
        "changes": changes,
        "cases": [
            {k: c[k] for k in ("case_id", "state", "opened_at", "resolution", "resolved_by", "reason")}
            for c in cases
        ],
        "outstanding": outstanding(agreement, entries, cases, now),
    }


def render(report: dict[str, Any]) -> str:
    """The report as text for `signhub agreement show`."""
    a = report["agreement"]
    lines = [
        f"agreement {a['agreement_id']} v{a['version']} {a['status']}: {a['phone']} ({a['province']}) at "
        f"{a['bank']} {a['bank_agreement_no']}, card ****{a['account_last4']}, {a['user_type']}, "
        f"threshold {a['recharge_threshold']} amount {a['recharge_amount']} fen, auto-pay {bool(a['auto_pay'])}",
        "timeline:",
    ]
    for e in report["timeline"]:
        detail = " ".join(f"{k}={v}" for k, v in e["detail"].items())
        lines.append(f"  {e['at']}  {e['what']:<52} {e['party'] or '':<10} {e['message_id'] or ''} {detail}")
    lines += ["changes:"] + [f"  v{c['version']} {c['change']:<7} by {c['source']} at {c['at']}: "
                            f"{c['before']} -> {c['after']}" for c in report["changes"]]  # fmt: skip
    lines += ["outstanding:"] + [f"  {o}" for o in report["outstanding"] or ["nothing"]]
    return "\n".join(lines)
