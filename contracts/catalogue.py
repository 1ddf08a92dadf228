"""The message catalogue: which party kind may send or receive which type, with which model.

The hub's edge looks a message up here; the AsyncAPI document is generated from here.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass

from contracts import bank, boss, crm, recharge, recon, rejection
from contracts.common import Message
from contracts.routing import PartyKind


@dataclass(frozen=True, slots=True)
class Entry:
    kind: PartyKind
    type: str
    model: builtins.type[Message]
    summary: str


_B, _C, _O = PartyKind.BANK, PartyKind.CRM, PartyKind.BOSS

INBOUND: tuple[Entry, ...] = (
    Entry(_B, "sign.request", bank.SignRequest, "bank-channel signing request (flow 2, step 2)"),
    Entry(_B, "sign.confirmed", bank.SignConfirmed, "the bank signed formally (flow 2 step 8; flow 1 step 5)"),
    Entry(_B, "sign.failed", bank.SignFailed, "the bank did not sign; the flow is closed without an answer"),
    Entry(_B, "unsign.request", bank.BankUnsignRequest, "the subscriber cancelled at the bank"),
    Entry(_B, "modify.request", bank.BankModifyRequest, "the subscriber changed terms at the bank"),
    Entry(_B, "recon.file", recon.ReconFile, "a bank reconciliation file was uploaded (scope DEBITS: flow 4, 1.1)"),
    Entry(_B, "debit.result", recharge.DebitResult, "answer to debit.request or debit.query (flow 4, 1.1)"),
    Entry(_B, "reverse.result", recharge.ReverseResult, "answer to debit.reverse (flow 4, 1.1)"),
    Entry(_C, "verify.response", crm.VerifyResponse, "answer to verify.request (flow 2, step 4)"),
    Entry(_C, "sign.synced", crm.SignSynced, "the CRM recorded the agreement"),
    Entry(_C, "unsign.request", crm.CrmUnsignRequest, "the subscriber cancelled at the operator"),
    Entry(_C, "modify.request", crm.CrmModifyRequest, "the subscriber changed terms at the operator"),
    Entry(_C, "boss.sync", crm.BossSync, "the CRM syncs an agreement to its BOSS; the hub relays it"),
    Entry(_C, "recon.file", recon.ReconFile, "the province's daily / monthly file (flow 3, step 3)"),
    Entry(_C, "errors.applied", crm.ErrorsApplied, "the CRM applied an error-handling file"),
    Entry(_O, "agreement.synced", boss.AgreementSynced, "BOSS answers a relayed agreement.sync"),
    Entry(_O, "recharge.request", recharge.RechargeRequest, "recharge this number under its agreement (flow 4, 1.1)"),
    Entry(_O, "credit.result", recharge.CreditResult, "answer to credit.request (flow 4, 1.1)"),
    Entry(_O, "recon.file", recon.ReconFile, "the day's credit file, scope CREDITS (flow 4, 1.1)"),
)  # fmt: skip

OUTBOUND: tuple[Entry, ...] = (
    Entry(_B, "sign.response", bank.SignResponse, "answer to sign.request (flow 2, steps 5-6)"),
    Entry(_B, "sign.result", bank.SignResult, "answer to sign.confirmed (flow 2 step 9; flow 1 step 6)"),
    Entry(_B, "unsign.result", bank.BankUnsignResult, "answer to the bank's unsign.request"),
    Entry(_B, "modify.result", bank.BankModifyResult, "answer to the bank's modify.request"),
    Entry(_B, "unsign.notice", bank.UnsignNotice, "the agreement was cancelled elsewhere; cancel yours"),
    Entry(_B, "modify.notice", bank.ModifyNotice, "the terms changed at the operator"),
    Entry(_B, "recon.result", recon.ReconResult, "outcome of your reconciliation file"),
    Entry(_B, "debit.request", recharge.DebitRequest, "debit the agreement's account (flow 4, 1.1)"),
    Entry(_B, "debit.query", recharge.DebitQuery, "what became of this debit? answer with debit.result (1.1)"),
    Entry(_B, "debit.reverse", recharge.DebitReverse, "undo this debit, and never execute it later (1.1)"),
    Entry(_B, "message.rejected", rejection.MessageRejected, "the hub could not take a message you sent"),
    Entry(_C, "verify.request", crm.VerifyRequest, "may this number sign? (flow 2, step 3)"),
    Entry(_C, "sign.notify", crm.SignNotify, "a formal agreement exists (flow 2 step 10; flow 1 step 6)"),
    Entry(_C, "unsign.notify", crm.UnsignNotify, "the agreement was cancelled at the bank or by the hub"),
    Entry(_C, "modify.notify", crm.ModifyNotify, "the terms changed at the bank"),
    Entry(_C, "unsign.result", crm.CrmUnsignResult, "answer to the CRM's unsign.request"),
    Entry(_C, "modify.result", crm.CrmModifyResult, "answer to the CRM's modify.request"),
    Entry(_C, "boss.synced", crm.BossSynced, "BOSS answered a boss.sync"),
    Entry(_C, "recon.errors", recon.ReconErrors, "your error-handling file is ready (flow 3, step 5)"),
    Entry(_C, "recon.result", recon.ReconResult, "sent when your file is refused whole"),
    Entry(_C, "recharge.notify", recharge.RechargeNotify, "a recharge ended: tell the subscriber by SMS (1.1)"),
    Entry(_C, "message.rejected", rejection.MessageRejected, "the hub could not take a message you sent"),
    Entry(_O, "agreement.sync", boss.AgreementSync, "a CRM's boss.sync, relayed"),
    Entry(_O, "credit.request", recharge.CreditRequest, "the bank was debited: credit the number (flow 4, 1.1)"),
    Entry(_O, "recharge.result", recharge.RechargeResult, "the outcome of a recharge.request (flow 4, 1.1)"),
    Entry(_O, "recon.result", recon.ReconResult, "outcome of your credit file (flow 4, 1.1)"),
    Entry(_O, "message.rejected", rejection.MessageRejected, "the hub could not take a message you sent"),
)  # fmt: skip

_INBOUND = {(e.kind, e.type): e for e in INBOUND}
_OUTBOUND = {(e.kind, e.type): e for e in OUTBOUND}
INBOUND_TYPES = frozenset(e.type for e in INBOUND)


def inbound(kind: PartyKind, msg_type: str) -> Entry | None:
    """The entry for a message a party of `kind` may send, or None."""
    return _INBOUND.get((kind, msg_type))


def outbound(kind: PartyKind, msg_type: str) -> Entry | None:
    """The entry for a message the hub may send to a party of `kind`, or None."""
    return _OUTBOUND.get((kind, msg_type))
