"""Translation between the hub's records and store rows (shared by every store adapter)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from contracts.common import AccountType, Channel, UserType
from hub.agreements import Account, Agreement, AgreementStatus, Case, FlowState, SigningFlow, Terms
from hub.store.unit_of_work import OutboxRow


def ts(value: datetime | None) -> str | None:
    """UTC, fixed width: text order is time order, so indexes on it sort correctly."""
    if value is None:
        return None
    # isoformat with fixed microseconds writes the same text as a strftime pattern, faster.
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def from_ts(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _req_ts(value: str) -> datetime:
    return datetime.fromisoformat(value)


def flow_to_row(flow: SigningFlow) -> dict[str, Any]:
    terms = flow.terms
    data = {
        "province": flow.province,
        "account": [flow.account.fingerprint, flow.account.last4, flow.account.encrypted,
                    flow.account.account_type.value],
        "channel": flow.channel.value,
        "request_message_id": flow.request_message_id,
        "request_fingerprint": flow.request_fingerprint,
        "asks": flow.asks,
        "terms": None if terms is None else [terms.user_type.value, terms.recharge_threshold,
                                             terms.recharge_amount, terms.auto_pay_allowed],
        "reason_code": flow.reason_code,
        "approved_at": ts(flow.approved_at),
        "confirm_message_id": flow.confirm_message_id,
        "confirm_fingerprint": flow.confirm_fingerprint,
        "agreement_id": flow.agreement_id,
        "id_encrypted": flow.id_encrypted,
    }  # fmt: skip
    return {
        "flow_key": flow.key,
        "bank": flow.bank,
        "request_id": flow.request_id,
        "phone": flow.phone,
        "verify_id": flow.verify_id,
        "state": flow.state.value,
        "deadline": ts(flow.deadline) if flow.state is FlowState.VERIFYING else None,
        "data": json.dumps(data, separators=(",", ":")),
        "created_at": ts(flow.created_at),
    }


def row_to_flow(row: Any) -> SigningFlow:
    data = json.loads(row["data"])
    fp, last4, enc, acct_type = data["account"]
    terms = data["terms"]
    return SigningFlow(
        bank=row["bank"],
        request_id=row["request_id"],
        phone=row["phone"],
        province=data["province"],
        account=Account(fp, last4, enc, AccountType(acct_type)),
        channel=Channel(data["channel"]),
        request_message_id=data["request_message_id"],
        request_fingerprint=data["request_fingerprint"],
        state=FlowState(row["state"]),
        created_at=_req_ts(row["created_at"]),
        verify_id=row["verify_id"],
        asks=data["asks"],
        deadline=from_ts(row["deadline"]),
        terms=None if terms is None else Terms(UserType(terms[0]), terms[1], terms[2], terms[3]),
        reason_code=data["reason_code"],
        approved_at=from_ts(data["approved_at"]),
        confirm_message_id=data["confirm_message_id"],
        confirm_fingerprint=data["confirm_fingerprint"],
        agreement_id=data["agreement_id"],
        id_encrypted=data["id_encrypted"],
    )


def agreement_to_row(a: Agreement) -> dict[str, Any]:
    return {
        "agreement_id": a.agreement_id, "version": a.version, "status": a.status.value,
        "phone": a.phone, "province": a.province, "bank": a.bank,
        "bank_agreement_no": a.bank_agreement_no, "account_fp": a.account.fingerprint,
        "account_last4": a.account.last4, "account_enc": a.account.encrypted,
        "account_type": a.account.account_type.value, "user_type": a.user_type.value,
        "recharge_threshold": a.recharge_threshold, "recharge_amount": a.recharge_amount,
        "auto_pay": int(a.auto_pay), "channel": a.channel.value, "signed_at": ts(a.signed_at),
        "updated_at": ts(a.updated_at), "flow_key": a.flow_key, "auto_pay_allowed": int(a.auto_pay_allowed),
    }  # fmt: skip


def row_to_agreement(row: Any) -> Agreement:
    return Agreement(
        agreement_id=row["agreement_id"],
        version=row["version"],
        status=AgreementStatus(row["status"]),
        phone=row["phone"],
        province=row["province"],
        bank=row["bank"],
        bank_agreement_no=row["bank_agreement_no"],
        account=Account(
            row["account_fp"], row["account_last4"], row["account_enc"], AccountType(row["account_type"])
        ),
        user_type=UserType(row["user_type"]),
        recharge_threshold=row["recharge_threshold"],
        recharge_amount=row["recharge_amount"],
        auto_pay=bool(row["auto_pay"]),
        channel=Channel(row["channel"]),
        signed_at=_req_ts(row["signed_at"]),
        updated_at=_req_ts(row["updated_at"]),
        flow_key=row["flow_key"],
        auto_pay_allowed=bool(row["auto_pay_allowed"]),
    )


def terms_of(a: Agreement) -> dict[str, Any]:
    """What the history keeps of an agreement at one version: status and terms, no personal data."""
    return {
        "status": a.status.value, "version": a.version, "user_type": a.user_type.value,
        "recharge_threshold": a.recharge_threshold, "recharge_amount": a.recharge_amount, "auto_pay": a.auto_pay,
    }  # fmt: skip


def outbox_row(row: Any) -> OutboxRow:
    return OutboxRow(
        id=row["id"], message_id=row["message_id"], target=row["target"], routing_key=row["routing_key"],
        type=row["type"], correlation_id=row["correlation_id"], body=bytes(row["body"]),
        headers=json.loads(row["headers"]),
    )  # fmt: skip


def case_of(row: Any) -> Case:
    return Case(
        case_id=row["case_id"], phone=row["phone"], new_agreement_id=row["new_agreement_id"],
        existing_agreement_id=row["existing_agreement_id"], flow_key=row["flow_key"],
        message_id=row["message_id"], sender=row["sender"], opened_at=datetime.fromisoformat(row["opened_at"]),
        source=row["source"], state=row["state"],
    )  # fmt: skip
